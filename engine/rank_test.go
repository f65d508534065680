package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/internal/testutil"
)

// testLockRank ranks a lock by the big-endian uint64 its value starts with,
// as the MVCC layer ranks one by its start_ts; shorter values rank 0.
func testLockRank(value []byte) uint64 {
	if len(value) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(value)
}

func rankedValue(rank uint64, tag string) string {
	return string(binary.BigEndian.AppendUint64(nil, rank)) + tag
}

// expectedNextRank is NextRankedLock computed from a model of CfLock.
func expectedNextRank(locks map[string]string, from uint64) (rank uint64, value string, ok bool) {
	var bestKey string
	for key, v := range locks {
		r := testLockRank([]byte(v))
		if r < from {
			continue
		}
		if !ok || r < rank || (r == rank && key < bestKey) {
			rank, value, bestKey, ok = r, v, key, true
		}
	}
	return rank, value, ok
}

// TestNextRankedLockFollowsTheLockTable puts, replaces and deletes locks at
// random (DeleteRange and reopening included) and checks after every step
// that NextRankedLock agrees with a model for every rank in use, and that a
// snapshot keeps answering for its own version.
func TestNextRankedLockFollowsTheLockTable(t *testing.T) {
	rng := testutil.Rand(t)
	dir := t.TempDir()
	opts := diskOptions()
	opts.LockRank = testLockRank
	e, err := Open(dir, opts)
	require.NoError(t, err)
	defer func() { _ = e.Close() }()
	require.True(t, e.RanksLocks())

	model := map[string]string{}
	check := func(snap *Snapshot, locks map[string]string) {
		t.Helper()
		for from := uint64(0); from <= 12; from++ {
			wantRank, wantValue, wantOK := expectedNextRank(locks, from)
			rank, value, ok := snap.NextRankedLock(from)
			require.Equal(t, wantOK, ok, "from %d", from)
			if ok {
				require.Equal(t, wantRank, rank, "from %d", from)
				require.Equal(t, wantValue, string(value), "from %d", from)
			}
		}
		_, _, ok := snap.NextRankedLock(math.MaxUint64)
		require.False(t, ok)
	}
	for step := range 400 {
		before := e.Snapshot()
		beforeModel := make(map[string]string, len(model))
		for k, v := range model {
			beforeModel[k] = v
		}
		key := fmt.Sprintf("k%02d", rng.IntN(30))
		switch op := rng.IntN(10); {
		case op < 6:
			value := rankedValue(uint64(rng.IntN(10)), fmt.Sprint(step))
			if rng.IntN(8) == 0 {
				value = "short"
			}
			put(t, e, CfLock, key, value)
			model[key] = value
		case op < 9:
			wb := NewWriteBatch()
			wb.Delete(CfLock, []byte(key))
			require.NoError(t, e.Write(wb))
			delete(model, key)
		default:
			end := fmt.Sprintf("k%02d", rng.IntN(30))
			require.NoError(t, e.DeleteRange(CfLock, []byte(key), []byte(end)))
			for k := range model {
				if k >= key && k < end {
					delete(model, k)
				}
			}
		}
		if rng.IntN(50) == 0 {
			before.Close()
			require.NoError(t, e.Close())
			e, err = Open(dir, opts)
			require.NoError(t, err)
			before = nil
		}
		snap := e.Snapshot()
		check(snap, model)
		snap.Close()
		if before != nil {
			check(before, beforeModel)
			before.Close()
		}
	}
}

func TestNextRankedLockNeedsLockRank(t *testing.T) {
	e := openMemEngine(t)
	require.False(t, e.RanksLocks())
	snap := e.Snapshot()
	defer snap.Close()
	require.Panics(t, func() { snap.NextRankedLock(0) })
}
