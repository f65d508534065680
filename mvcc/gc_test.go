package mvcc

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
)

func commitTimestamps(info *kvrpcpb.MvccInfo) []uint64 {
	var out []uint64
	for _, w := range info.Writes {
		out = append(out, w.CommitTs)
	}
	return out
}

func TestGC(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("L", 300)
	// k: Put@20 (long), Put@40, Lock@60, Rollback@70, Put@90.
	h.mustPrewritePut("k", 10, "k", long)
	h.mustCommit(10, 20, "k")
	h.mustPrewritePut("k", 30, "k", "v40")
	h.mustCommit(30, 40, "k")
	h.mustPrewrite(prewriteReq("k", 50, lockOp("k")))
	h.mustCommit(50, 60, "k")
	require.Nil(t, h.rollback(70, "k"))
	h.mustPrewritePut("k", 80, "k", "v90")
	h.mustCommit(80, 90, "k")
	// d: Put@20 then Delete@40: nothing remains below a later safe point.
	h.mustPrewritePut("d", 10, "d", long)
	h.mustCommit(10, 20, "d")
	h.mustPrewrite(prewriteReq("d", 30, del("d")))
	h.mustCommit(30, 40, "d")

	require.NoError(t, h.store.GC(h.ctx, nil, nil, nil, 75))
	require.Equal(t, []uint64{90, 40}, commitTimestamps(h.info("k")),
		"the newest Put below the safe point stays; Lock, Rollback and older Puts go")
	require.Empty(t, h.info("k").Values, "the long value of the dropped Put is deleted")
	h.mustGet("k", 75, "v40")
	h.mustGet("k", 90, "v90")
	require.Empty(t, h.info("d").Writes)
	require.Empty(t, h.info("d").Values)
	h.mustGetNone("d", 75)

	require.NoError(t, h.store.GC(h.ctx, nil, nil, nil, 100))
	require.Equal(t, []uint64{90}, commitTimestamps(h.info("k")))
	h.mustGet("k", 100, "v90")
}

func TestDeleteRange(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "1", "b", strings.Repeat("x", 300), "c", "3")
	h.mustCommit(10, 20, "a", "b", "c")
	h.mustPrewritePut("b", 30, "b", "locked")
	require.NoError(t, h.store.DeleteRange(h.ctx, nil, []byte("b"), []byte("c")))
	require.Equal(t, &kvrpcpb.MvccInfo{}, h.info("b"))
	h.mustGet("a", 20, "1")
	h.mustGet("c", 20, "3")
}

func TestMvccGetByStartTs(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "1")
	h.mustCommit(10, 20, "a")
	h.mustPrewritePut("b", 30, "b", "2")

	key, info, err := h.store.MvccGetByStartTs(h.ctx, nil, 10)
	require.NoError(t, err)
	require.Equal(t, []byte("a"), key)
	require.Equal(t, uint64(20), info.Writes[0].CommitTs)

	key, info, err = h.store.MvccGetByStartTs(h.ctx, nil, 30)
	require.NoError(t, err)
	require.Equal(t, []byte("b"), key)
	require.Equal(t, uint64(30), info.Lock.StartTs)

	key, _, err = h.store.MvccGetByStartTs(h.ctx, nil, 99)
	require.NoError(t, err)
	require.Nil(t, key)
}

func TestLatchesSerialiseOverlappingKeys(t *testing.T) {
	latches := NewLatches(8)
	var inside atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := [][]byte{[]byte("shared"), {byte(i)}, []byte("shared")}
			for range 200 {
				g := latches.Acquire(keys)
				if inside.Add(1) != 1 {
					t.Error("two holders of one key")
				}
				inside.Add(-1)
				g.Release()
			}
		}()
	}
	wg.Wait()
}

func TestConcurrencyManagerMaxTS(t *testing.T) {
	cm := NewConcurrencyManager(10)
	cm.UpdateMaxTS(5)
	require.Equal(t, uint64(10), cm.MaxTS())
	cm.UpdateMaxTS(20)
	cm.UpdateMaxTS(MaxTS)
	require.Equal(t, uint64(20), cm.MaxTS())
}

// ResolveLock and GC work in batches; more keys than a batch must all be
// handled.
func TestBatchedCommandsCoverEveryKey(t *testing.T) {
	h := newHarness(t)
	const n = 600
	var muts []*kvrpcpb.Mutation
	var keys []string
	for i := range n {
		k := string(account(i))
		keys = append(keys, k)
		muts = append(muts, put(k, "v"))
	}
	h.mustPrewrite(prewriteReq(keys[0], 10, muts...))
	resp, err := h.store.ResolveLock(h.ctx, &kvrpcpb.ResolveLockRequest{StartVersion: 10, CommitVersion: 20})
	require.NoError(t, err)
	require.Nil(t, resp.Error)
	for _, k := range keys {
		require.Nil(t, h.lockOf(k), k)
	}
	h.mustPrewrite(prewriteReq(keys[0], 30, muts...))
	h.mustCommit(30, 40, keys...)
	require.NoError(t, h.store.GC(h.ctx, nil, nil, nil, 50))
	for _, k := range keys {
		require.Equal(t, []uint64{40}, commitTimestamps(h.info(k)), k)
	}
}

func TestReaderLookups(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("k", 10, "k", "v1")
	h.mustCommit(10, 20, "k")
	require.Nil(t, h.rollback(25, "k"))
	require.NoError(t, h.store.withReader(h.ctx, nil, func(r *Reader) error {
		commitTS, w, err := r.SeekWrite([]byte("k"), MaxTS)
		require.NoError(t, err)
		require.Equal(t, uint64(25), commitTS)
		require.Equal(t, WriteTypeRollback, w.Type)
		commitTS, w, err = r.GetWrite([]byte("k"), MaxTS)
		require.NoError(t, err)
		require.Equal(t, uint64(20), commitTS)
		require.Equal(t, WriteTypePut, w.Type)
		value, found, err := r.GetValue([]byte("k"), 19)
		require.NoError(t, err)
		require.False(t, found)
		require.Nil(t, value)
		value, found, err = r.GetValue([]byte("k"), 20)
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, []byte("v1"), value)
		return nil
	}))
}
