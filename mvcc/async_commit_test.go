package mvcc

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
)

func asyncPrewriteReq(primary string, startTS uint64, muts ...*kvrpcpb.Mutation) *kvrpcpb.PrewriteRequest {
	req := prewriteReq(primary, startTS, muts...)
	req.UseAsyncCommit = true
	for _, m := range muts {
		if string(m.Key) != primary {
			req.Secondaries = append(req.Secondaries, m.Key)
		}
	}
	return req
}

// The min_commit_ts of an async-commit prewrite exceeds the start_ts of
// every read that happened before it (the max_ts rule), so the reader,
// which saw the keys unlocked, keeps seeing the old value.
func TestAsyncCommitMinCommitTSAboveReads(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "old")
	h.mustCommit(10, 20, "a")

	h.mustGet("a", 100, "old") // a concurrent reader at 100
	resp := h.mustPrewrite(asyncPrewriteReq("a", 50, put("a", "new"), put("b", "x")))
	require.Equal(t, uint64(101), resp.MinCommitTs)
	require.Zero(t, resp.OnePcCommitTs)

	lock := h.loadLock("a")
	require.True(t, lock.UseAsyncCommit)
	require.Equal(t, uint64(101), lock.MinCommitTS)
	require.Equal(t, [][]byte{[]byte("b")}, lock.Secondaries)
	require.Empty(t, h.loadLock("b").Secondaries)

	// The reader at 100 is not blocked by the lock (min_commit_ts > 100).
	h.mustGet("a", 100, "old")
	h.mustGetLocked("a", 101)

	// A retried prewrite returns the same min_commit_ts.
	require.Equal(t, uint64(101), h.mustPrewrite(asyncPrewriteReq("a", 50, put("a", "new"), put("b", "x"))).MinCommitTs)
	require.NotNil(t, h.commit(50, 100, "a").CommitTsExpired)
	h.mustCommit(50, 101, "a", "b")
	h.mustGet("a", 101, "new")
}

func TestAsyncCommitFallsBackAboveMaxCommitTS(t *testing.T) {
	h := newHarness(t)
	h.mustGetNone("a", 100) // raises max_ts to 100
	req := asyncPrewriteReq("a", 50, put("a", "v"))
	req.MaxCommitTs = 80
	resp := h.mustPrewrite(req)
	require.Zero(t, resp.MinCommitTs)
	lock := h.loadLock("a")
	require.False(t, lock.UseAsyncCommit)
	require.Equal(t, uint64(51), lock.MinCommitTS)
}

func TestOnePC(t *testing.T) {
	h := newHarness(t)
	h.mustGetNone("x", 200)
	req := prewriteReq("a", 100, put("a", "1"), put("b", string(make([]byte, 300))), del("c"))
	req.TryOnePc = true
	resp := h.mustPrewrite(req)
	require.Equal(t, uint64(201), resp.OnePcCommitTs)
	require.Zero(t, resp.MinCommitTs)
	for _, k := range []string{"a", "b", "c"} {
		require.Nil(t, h.lockOf(k), "1PC leaves no lock on %q", k)
	}
	h.mustGet("a", 201, "1")
	h.mustGetNone("a", 200)
	h.mustGet("b", 201, string(make([]byte, 300)))

	// 1PC over pessimistic locks removes them.
	h.mustPessimisticLock("p", 300, 300, "p")
	req = pessimisticPrewriteReq("p", 300, 300, put("p", "v"))
	req.TryOnePc = true
	resp = h.mustPrewrite(req)
	require.Equal(t, uint64(301), resp.OnePcCommitTs)
	require.Nil(t, h.lockOf("p"))
	h.mustGet("p", 301, "v")

	// Fallback: both timestamps zero, normal locks written.
	req = prewriteReq("f", 400, put("f", "v"))
	req.TryOnePc, req.MaxCommitTs = true, 400
	resp = h.mustPrewrite(req)
	require.Zero(t, resp.OnePcCommitTs)
	require.Zero(t, resp.MinCommitTs)
	require.NotNil(t, h.lockOf("f"))
}

// A read that arrives while an async-commit prewrite is choosing its
// timestamp sees the in-memory lock.
func TestMemoryLockBlocksReads(t *testing.T) {
	h := newHarness(t)
	lock := &Lock{Type: LockTypePut, Primary: []byte("a"), StartTS: 50, TTL: 100, UseAsyncCommit: true}
	mem := h.store.cm.lockInMemory([]encodedLock{{encoded: EncodeKey([]byte("a")), lock: lock}})
	info := h.mustGetLocked("a", 60)
	require.Equal(t, uint64(50), info.LockVersion)
	h.mustGetNone("a", 40)

	scan, err := h.store.Scan(h.ctx, &kvrpcpb.ScanRequest{Context: &kvrpcpb.Context{}, StartKey: []byte("a"), Version: 60})
	require.NoError(t, err)
	require.NotNil(t, scan.Error.Locked)

	mem.setMinCommitTS(70)
	h.mustGetNone("a", 65) // min_commit_ts above the read
	mem.release()
	h.mustGetNone("a", 80)
}

func TestCheckSecondaryLocks(t *testing.T) {
	check := func(h *harness, startTS uint64, keys ...string) *kvrpcpb.CheckSecondaryLocksResponse {
		resp, err := h.store.CheckSecondaryLocks(h.ctx, &kvrpcpb.CheckSecondaryLocksRequest{StartVersion: startTS, Keys: rawKeys(keys)})
		require.NoError(t, err)
		require.Nil(t, resp.Error)
		return resp
	}
	t.Run("all locked", func(t *testing.T) {
		h := newHarness(t)
		h.mustPrewrite(asyncPrewriteReq("p", 10, put("p", "1"), put("s1", "2"), put("s2", "3")))
		resp := check(h, 10, "s1", "s2")
		require.Len(t, resp.Locks, 2)
		require.Zero(t, resp.CommitTs)
		require.True(t, resp.Locks[0].UseAsyncCommit)
	})
	t.Run("one committed", func(t *testing.T) {
		h := newHarness(t)
		h.mustPrewrite(asyncPrewriteReq("p", 10, put("p", "1"), put("s1", "2"), put("s2", "3")))
		h.mustCommit(10, 30, "s2")
		resp := check(h, 10, "s1", "s2")
		require.Empty(t, resp.Locks)
		require.Equal(t, uint64(30), resp.CommitTs)
	})
	t.Run("one missing is rolled back for good", func(t *testing.T) {
		h := newHarness(t)
		h.mustPrewrite(asyncPrewriteReq("p", 10, put("p", "1"), put("s1", "2")))
		resp := check(h, 10, "s1", "s2")
		require.Empty(t, resp.Locks)
		require.Zero(t, resp.CommitTs)
		rollback := h.writeAt("s2", 10)
		require.Equal(t, kvrpcpb.Op_Rollback, rollback.Type)
		require.Equal(t, []byte("p"), rollback.ShortValue, "protected")
		late := h.prewrite(asyncPrewriteReq("p", 10, put("s2", "late")))
		require.NotNil(t, late.Errors[0].Conflict)
	})
	t.Run("pessimistic lock counts as not prewritten", func(t *testing.T) {
		h := newHarness(t)
		h.mustPessimisticLock("p", 10, 10, "s1")
		resp := check(h, 10, "s1")
		require.Empty(t, resp.Locks)
		require.Nil(t, h.lockOf("s1"))
		require.Equal(t, kvrpcpb.Op_Rollback, h.writeAt("s1", 10).Type)
	})
}

// A protected rollback at ts on a key locked by an earlier async-commit
// transaction is remembered in the lock, so a commit at exactly ts keeps
// the rollback.
func TestRollbackTSOnAsyncCommitLock(t *testing.T) {
	h := newHarness(t)
	h.mustPrewrite(asyncPrewriteReq("k", 10, put("k", "v")))
	resp := h.checkTxnStatus(&kvrpcpb.CheckTxnStatusRequest{PrimaryKey: []byte("k"), LockTs: 15, CurrentTs: 20, RollbackIfNotExist: true})
	require.Equal(t, kvrpcpb.Action_LockNotExistRollback, resp.Action)
	require.Equal(t, []uint64{15}, h.loadLock("k").RollbackTS)
	h.mustCommit(10, 15, "k")
	w := h.writeAt("k", 15)
	require.Equal(t, kvrpcpb.Op_Put, w.Type)
	require.True(t, w.HasOverlappedRollback)
	late := h.prewrite(prewriteReq("k", 15, put("k", "late")))
	require.NotNil(t, late.Errors[0].Conflict)
}

// A prewrite retried after its transaction committed succeeds without
// writing, reporting the commit timestamp where the mode expects one.
func TestPrewriteRetriedAfterCommit(t *testing.T) {
	h := newHarness(t)
	plain := prewriteReq("a", 10, put("a", "1"))
	h.mustPrewrite(plain)
	h.mustCommit(10, 20, "a")
	resp := h.mustPrewrite(plain)
	require.Zero(t, resp.MinCommitTs)
	require.Nil(t, h.lockOf("a"))

	async := asyncPrewriteReq("b", 30, put("b", "1"))
	first := h.mustPrewrite(async)
	h.mustCommit(30, first.MinCommitTs, "b")
	require.Equal(t, first.MinCommitTs, h.mustPrewrite(async).MinCommitTs)

	onePC := prewriteReq("c", 40, put("c", "1"))
	onePC.TryOnePc = true
	first = h.mustPrewrite(onePC)
	require.NotZero(t, first.OnePcCommitTs)
	require.Equal(t, first.OnePcCommitTs, h.mustPrewrite(onePC).OnePcCommitTs)
	require.Len(t, h.info("c").Writes, 1)
}
