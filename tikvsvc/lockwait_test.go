package tikvsvc

import (
	"context"
	"testing"
	"time"
)

func TestLockWaiterWakesOnRelease(t *testing.T) {
	w := newLockWaiter(time.Now)
	done := make(chan time.Duration)
	go func() {
		start := time.Now()
		if dl := w.wait(context.Background(), w.currentGeneration(), 20, 10, []byte("k"), 10*time.Second); dl != nil {
			t.Errorf("unexpected deadlock %v", dl)
		}
		done <- time.Since(start)
	}()
	waitForEdges(t, w, 1)
	if info := w.waitInfo(); info[0].GetTxn() != 20 || info[0].GetWaitForTxn() != 10 || string(info[0].GetKey()) != "k" {
		t.Fatalf("wait info %v", info)
	}
	w.release(10)
	if waited := <-done; waited > 5*time.Second {
		t.Fatalf("waiter not woken by release (waited %v)", waited)
	}
	if len(w.waitInfo()) != 0 {
		t.Fatalf("edge left behind")
	}
}

func TestLockWaiterTimesOutAndSkipsPastReleases(t *testing.T) {
	w := newLockWaiter(time.Now)
	start := time.Now()
	w.wait(context.Background(), w.currentGeneration(), 2, 1, []byte("k"), 50*time.Millisecond)
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("returned after %v, before the timeout", waited)
	}
	seen := w.currentGeneration()
	w.release(1)
	start = time.Now()
	w.wait(context.Background(), seen, 2, 1, []byte("k"), 10*time.Second)
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("waited %v for a release that had already happened", waited)
	}
}

// TestLockWaiterDetectsDeadlock: 1 waits for 2, 2 waits for 3; 3 asking to
// wait for 1 closes the cycle and gets the chain 3→1→2→3.
func TestLockWaiterDetectsDeadlock(t *testing.T) {
	w := newLockWaiter(time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.wait(ctx, 0, 1, 2, []byte("b"), time.Minute)
	waitForEdges(t, w, 1)
	go w.wait(ctx, 0, 2, 3, []byte("c"), time.Minute)
	waitForEdges(t, w, 2)
	dl := w.wait(ctx, 0, 3, 1, []byte("a"), time.Minute)
	if dl == nil {
		t.Fatal("no deadlock reported")
	}
	if dl.GetLockTs() != 1 || string(dl.GetLockKey()) != "a" || string(dl.GetDeadlockKey()) != "c" {
		t.Fatalf("deadlock %v", dl)
	}
	var chain [][2]uint64
	for _, e := range dl.GetWaitChain() {
		chain = append(chain, [2]uint64{e.GetTxn(), e.GetWaitForTxn()})
	}
	want := [][2]uint64{{3, 1}, {1, 2}, {2, 3}}
	if len(chain) != len(want) || chain[0] != want[0] || chain[1] != want[1] || chain[2] != want[2] {
		t.Fatalf("wait chain %v, want %v", chain, want)
	}
	if noCycle := w.wait(ctx, 0, 4, 1, []byte("a"), time.Millisecond); noCycle != nil {
		t.Fatalf("a wait outside the cycle reported a deadlock: %v", noCycle)
	}
}

func TestLockWaitTimeout(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want time.Duration
	}{{-1, 0}, {0, defaultLockWait}, {200, 200 * time.Millisecond}, {1 << 62, defaultLockWait}} {
		if got := lockWaitTimeout(tc.ms); got != tc.want {
			t.Errorf("lockWaitTimeout(%d) = %v, want %v", tc.ms, got, tc.want)
		}
	}
}

func waitForEdges(t *testing.T, w *lockWaiter, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(w.waitInfo()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %d waits", n)
		}
		time.Sleep(time.Millisecond)
	}
}
