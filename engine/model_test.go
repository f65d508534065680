package engine

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// model is the reference the engine is checked against: per CF, a map from
// key to value.
type model map[CF]map[string]string

func newModel() model {
	m := model{}
	for _, cf := range AllCFs() {
		m[cf] = map[string]string{}
	}
	return m
}

func (m model) clone() model {
	c := model{}
	for cf, entries := range m {
		c[cf] = maps.Clone(entries)
	}
	return c
}

// scan returns the pairs of cf an iterator with opts yields after seeking
// to seek (or rewinding, when seek is nil).
func (m model) scan(cf CF, opts IterOptions, seek []byte) []kv {
	lower, upper := string(opts.LowerBound), string(opts.UpperBound)
	var pairs []kv
	for _, key := range slices.Sorted(maps.Keys(m[cf])) {
		inBounds := key >= lower && (upper == "" || key < upper)
		afterSeek := seek == nil || (!opts.Reverse && key >= string(seek)) || (opts.Reverse && key <= string(seek))
		if inBounds && afterSeek {
			pairs = append(pairs, kv{key, m[cf][key]})
		}
	}
	if opts.Reverse {
		slices.Reverse(pairs)
	}
	if opts.KeyOnly {
		for i := range pairs {
			pairs[i].value = ""
		}
	}
	return pairs
}

// modelChecker drives random operations against an engine and a model.
type modelChecker struct {
	t      *testing.T
	rng    *rand.Rand
	engine *Engine
	model  model
	// snapshots are open engine snapshots with the model state they must show.
	snapshots []frozenSnapshot
}

type frozenSnapshot struct {
	snap  *Snapshot
	model model
}

// keyBytes are the bytes random keys are made of: the extremes, and
// neighbours, so keys are often prefixes of one another.
var keyBytes = []byte{0x00, 0x01, 'a', 'b', 0xfe, 0xff}

func (c *modelChecker) randomKey() []byte {
	key := make([]byte, c.rng.IntN(4))
	for i := range key {
		key[i] = keyBytes[c.rng.IntN(len(keyBytes))]
	}
	return key
}

func (c *modelChecker) randomCF() CF { return AllCFs()[c.rng.IntN(3)] }

func (c *modelChecker) writeRandomBatch() {
	wb := NewWriteBatch()
	for range 1 + c.rng.IntN(8) {
		cf, key := c.randomCF(), c.randomKey()
		if c.rng.IntN(3) == 0 {
			wb.Delete(cf, key)
			delete(c.model[cf], string(key))
			continue
		}
		value := strconv.Itoa(c.rng.IntN(1000))
		wb.Put(cf, key, []byte(value))
		c.model[cf][string(key)] = value
	}
	require.NoError(c.t, c.engine.Write(wb))
}

func (c *modelChecker) checkGet(snap *Snapshot, want model) {
	cf, key := c.randomCF(), c.randomKey()
	got, err := snap.Get(cf, key)
	wantValue, ok := want[cf][string(key)]
	if !ok {
		require.ErrorIs(c.t, err, ErrNotFound, "get %s %q", cf, key)
		return
	}
	require.NoError(c.t, err)
	require.Equal(c.t, wantValue, string(got), "get %s %q", cf, key)
}

func (c *modelChecker) checkScan(snap *Snapshot, want model) {
	cf := c.randomCF()
	opts := IterOptions{Reverse: c.rng.IntN(2) == 0, KeyOnly: c.rng.IntN(4) == 0}
	if c.rng.IntN(3) > 0 {
		opts.LowerBound = c.randomKey()
	}
	if c.rng.IntN(3) > 0 {
		opts.UpperBound = c.randomKey()
	}
	var seek []byte
	if c.rng.IntN(2) == 0 {
		seek = c.randomKey()
	}
	got := collect(c.t, snap, cf, opts, seek)
	require.Equal(c.t, want.scan(cf, opts, seek), got, "scan %s %+v seek %q", cf, opts, seek)
}

// checkRead checks a random read against the latest state or an older
// snapshot.
func (c *modelChecker) checkRead() {
	snap, want := c.engine.Snapshot(), c.model
	defer snap.Close()
	if len(c.snapshots) > 0 && c.rng.IntN(2) == 0 {
		frozen := c.snapshots[c.rng.IntN(len(c.snapshots))]
		snap, want = frozen.snap, frozen.model
	}
	if c.rng.IntN(2) == 0 {
		c.checkGet(snap, want)
	} else {
		c.checkScan(snap, want)
	}
}

func (c *modelChecker) takeOrDropSnapshot() {
	if len(c.snapshots) < 4 {
		c.snapshots = append(c.snapshots, frozenSnapshot{c.engine.Snapshot(), c.model.clone()})
		return
	}
	i := c.rng.IntN(len(c.snapshots))
	c.snapshots[i].snap.Close()
	c.snapshots = slices.Delete(c.snapshots, i, i+1)
}

func (c *modelChecker) closeSnapshots() {
	for _, frozen := range c.snapshots {
		frozen.snap.Close()
	}
	c.snapshots = nil
}

func (c *modelChecker) reopen(dir string) {
	c.closeSnapshots()
	require.NoError(c.t, c.engine.Close())
	engine, err := Open(dir, diskOptions())
	require.NoError(c.t, err)
	c.engine = engine
}

// TestModel runs random writes, snapshots and reads (gets and scans in both
// directions with random bounds and seeks) against the engine and a sorted
// map, reopening the engine now and then. TINYKV_ENGINE_SEED replays a seed;
// TINYKV_LONG=1 runs longer.
func TestModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TINYKV_ENGINE_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	step := 0
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("failed at step %d; replay with TINYKV_ENGINE_SEED=%d", step, seed)
		}
	})
	steps := 3000
	if os.Getenv("TINYKV_LONG") != "" {
		steps = 100_000
	}

	dir := t.TempDir()
	engine, err := Open(dir, diskOptions())
	require.NoError(t, err)
	c := &modelChecker{t: t, rng: rand.New(rand.NewPCG(seed, 0)), engine: engine, model: newModel()}
	defer func() {
		c.closeSnapshots()
		require.NoError(t, c.engine.Close())
	}()
	for ; step < steps; step++ {
		switch roll := c.rng.IntN(100); {
		case roll < 45:
			c.writeRandomBatch()
		case roll < 95:
			c.checkRead()
		case roll < 99:
			c.takeOrDropSnapshot()
		default:
			c.reopen(dir)
		}
	}
	for _, cf := range AllCFs() {
		snap := c.engine.Snapshot()
		require.Equal(t, c.model.scan(cf, IterOptions{}, nil), collect(t, snap, cf, IterOptions{}, nil), fmt.Sprint(cf))
		snap.Close()
	}
}
