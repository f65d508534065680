package testutil

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// Rand returns a generator seeded from TINYKV_SEED or the clock, and logs the
// seed so that a failing run can be replayed with TINYKV_SEED=<seed>.
func Rand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TINYKV_SEED"); s != "" {
		parsed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TINYKV_SEED=%q: %v", s, err)
		}
		seed = parsed
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("random seed: TINYKV_SEED=%d", seed)
		}
	})
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Long reports whether the long test target (TINYKV_LONG=1) is running.
func Long() bool { return os.Getenv("TINYKV_LONG") != "" }
