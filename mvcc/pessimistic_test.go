package mvcc

import (
	"testing"

	"github.com/dgryski/go-farm"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
)

func pessimisticLockReq(primary string, startTS, forUpdateTS uint64, keys ...string) *kvrpcpb.PessimisticLockRequest {
	req := &kvrpcpb.PessimisticLockRequest{
		PrimaryLock:  []byte(primary),
		StartVersion: startTS,
		ForUpdateTs:  forUpdateTS,
		LockTtl:      3000,
	}
	for _, k := range keys {
		req.Mutations = append(req.Mutations, &kvrpcpb.Mutation{Op: kvrpcpb.Op_PessimisticLock, Key: []byte(k)})
	}
	return req
}

func (h *harness) pessimisticLock(req *kvrpcpb.PessimisticLockRequest) *kvrpcpb.PessimisticLockResponse {
	h.t.Helper()
	resp, err := h.store.PessimisticLock(h.ctx, req)
	require.NoError(h.t, err)
	return resp
}

func (h *harness) mustPessimisticLock(primary string, startTS, forUpdateTS uint64, keys ...string) {
	h.t.Helper()
	resp := h.pessimisticLock(pessimisticLockReq(primary, startTS, forUpdateTS, keys...))
	require.Empty(h.t, resp.Errors)
}

// pessimisticPrewriteReq prewrites puts of keys that hold pessimistic locks.
func pessimisticPrewriteReq(primary string, startTS, forUpdateTS uint64, muts ...*kvrpcpb.Mutation) *kvrpcpb.PrewriteRequest {
	req := prewriteReq(primary, startTS, muts...)
	req.ForUpdateTs = forUpdateTS
	for range muts {
		req.PessimisticActions = append(req.PessimisticActions, kvrpcpb.PrewriteRequest_DO_PESSIMISTIC_CHECK)
	}
	return req
}

func TestPessimisticLockPrewriteCommit(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 5, "a", "old")
	h.mustCommit(5, 6, "a")

	h.mustPessimisticLock("a", 10, 12, "a", "b")
	lock := h.lockOf("a")
	require.Equal(t, kvrpcpb.Op_PessimisticLock, lock.Type)
	require.Equal(t, uint64(12), lock.ForUpdateTs)
	h.mustGet("a", 15, "old") // pessimistic locks do not block reads

	h.mustPrewrite(pessimisticPrewriteReq("a", 10, 12, put("a", "new"), del("b")))
	require.Equal(t, kvrpcpb.Op_Put, h.lockOf("a").Type)
	require.Equal(t, uint64(12), h.lockOf("a").ForUpdateTs)
	h.mustCommit(10, 20, "a", "b")
	h.mustGet("a", 20, "new")
	h.mustGetNone("b", 20)
}

func TestPessimisticLockErrors(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "v")
	h.mustCommit(10, 20, "a")

	// A commit newer than for_update_ts is a write conflict.
	resp := h.pessimisticLock(pessimisticLockReq("a", 15, 15, "a"))
	require.Equal(t, kvrpcpb.WriteConflict_PessimisticRetry, resp.Errors[0].Conflict.Reason)
	require.Equal(t, uint64(20), resp.Errors[0].Conflict.ConflictCommitTs)

	// Another transaction's lock: KeyIsLocked, with what the waiter needs.
	h.mustPessimisticLock("a", 30, 30, "a")
	resp = h.pessimisticLock(pessimisticLockReq("x", 31, 31, "x", "a"))
	require.Len(t, resp.Errors, 1)
	require.Equal(t, uint64(30), resp.Errors[0].Locked.LockVersion)
	require.Equal(t, []byte("a"), resp.Errors[0].Locked.Key)
	require.Nil(t, h.lockOf("x"), "a failed lock request writes nothing")
	wait, ok := BlockingLock(resp)
	require.True(t, ok)
	require.Equal(t, []byte("a"), wait.Key)
	require.Equal(t, uint64(30), wait.LockTS)
	// The farmhash fingerprint client-go compares deadlock_key_hash with.
	require.Equal(t, farm.Fingerprint64([]byte("a")), wait.KeyHash)

	// Re-locking by the owner at a newer for_update_ts refreshes the lock.
	h.mustPessimisticLock("a", 30, 35, "a")
	require.Equal(t, uint64(35), h.lockOf("a").ForUpdateTs)

	// Assertion_NotExist on an existing key.
	req := pessimisticLockReq("b", 40, 40, "b")
	h.mustPrewritePut("b", 36, "b", "v")
	h.mustCommit(36, 37, "b")
	req.Mutations[0].Assertion = kvrpcpb.Assertion_NotExist
	resp = h.pessimisticLock(req)
	require.Equal(t, []byte("b"), resp.Errors[0].AlreadyExist.Key)

	// Locking after the transaction was rolled back on the key.
	require.Nil(t, h.rollback(50, "c"))
	resp = h.pessimisticLock(pessimisticLockReq("c", 50, 50, "c"))
	require.NotEmpty(t, resp.Errors[0].Abort)

	// A prewrite that expects a pessimistic lock that is not there fails
	// if the key changed since start_ts...
	h.mustPrewritePut("d", 61, "d", "v")
	h.mustCommit(61, 62, "d")
	pw := h.prewrite(pessimisticPrewriteReq("d", 60, 63, put("d", "v")))
	require.NotEmpty(t, pw.Errors[0].Abort)
	// ...and otherwise takes the lost lock as held.
	h.mustPrewrite(pessimisticPrewriteReq("e", 70, 70, put("e", "v")))
	h.mustCommit(70, 71, "e")
	// A retried prewrite after the commit is a no-op.
	h.mustPrewrite(pessimisticPrewriteReq("e", 70, 70, put("e", "v")))
	require.Nil(t, h.lockOf("e"))
}

func TestPessimisticLockReturnValues(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "va")
	h.mustCommit(10, 20, "a")

	req := pessimisticLockReq("a", 30, 30, "a", "missing")
	req.ReturnValues = true
	resp := h.pessimisticLock(req)
	require.Empty(t, resp.Errors)
	require.Empty(t, resp.Results)
	require.Equal(t, [][]byte{[]byte("va"), nil}, resp.Values)
	require.Equal(t, []bool{false, true}, resp.NotFounds)

	req = pessimisticLockReq("a", 40, 40, "b", "a")
	req.CheckExistence = true
	require.Nil(t, h.rollback(30, "a", "missing"))
	resp = h.pessimisticLock(req)
	require.Equal(t, []bool{true, false}, resp.NotFounds)
	require.Nil(t, resp.Values)

	// lock_only_if_exists locks only existing keys.
	req = pessimisticLockReq("c", 50, 50, "c", "a")
	req.ReturnValues, req.LockOnlyIfExists = true, true
	require.Nil(t, h.rollback(40, "a", "b"))
	resp = h.pessimisticLock(req)
	require.Empty(t, resp.Errors)
	require.Nil(t, h.lockOf("c"))
	require.NotNil(t, h.lockOf("a"))
}

func TestPessimisticLockForceLockMode(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "v")
	h.mustCommit(10, 20, "a")

	req := pessimisticLockReq("a", 15, 15, "a")
	req.WakeUpMode = kvrpcpb.PessimisticLockWakeUpMode_WakeUpModeForceLock
	resp := h.pessimisticLock(req)
	require.Empty(t, resp.Errors)
	require.Equal(t, []*kvrpcpb.PessimisticLockKeyResult{{
		Type:                 kvrpcpb.PessimisticLockKeyResultType_LockResultLockedWithConflict,
		Value:                []byte("v"),
		Existence:            true,
		LockedWithConflictTs: 20,
	}}, resp.Results)
	require.Equal(t, uint64(20), h.lockOf("a").ForUpdateTs)

	req = pessimisticLockReq("b", 16, 16, "a")
	req.WakeUpMode = kvrpcpb.PessimisticLockWakeUpMode_WakeUpModeForceLock
	resp = h.pessimisticLock(req)
	require.Len(t, resp.Results, 1)
	require.Equal(t, kvrpcpb.PessimisticLockKeyResultType_LockResultFailed, resp.Results[0].Type)
	require.NotNil(t, resp.Errors[0].Locked)
}

func TestPessimisticRollback(t *testing.T) {
	h := newHarness(t)
	h.mustPessimisticLock("a", 10, 12, "a", "b")
	h.mustPrewrite(pessimisticPrewriteReq("a", 10, 12, put("b", "v")))
	resp, err := h.store.PessimisticRollback(h.ctx, &kvrpcpb.PessimisticRollbackRequest{
		StartVersion: 10, ForUpdateTs: 12, Keys: rawKeys([]string{"a", "b"}),
	})
	require.NoError(t, err)
	require.Empty(t, resp.Errors)
	require.Nil(t, h.lockOf("a"))
	require.NotNil(t, h.lockOf("b"), "prewritten locks stay")
	require.Empty(t, h.info("a").Writes, "no rollback record")
}

func TestPessimisticPrewriteActions(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("u", 20, "u", "taken", "n", "x")
	h.mustCommit(20, 30, "u", "n")

	// DoConstraintCheck: checked like an optimistic key against start_ts.
	req := pessimisticPrewriteReq("p", 10, 40, insert("u", "mine"))
	req.PessimisticActions[0] = kvrpcpb.PrewriteRequest_DO_CONSTRAINT_CHECK
	resp := h.prewrite(req)
	require.Equal(t, kvrpcpb.WriteConflict_LazyUniquenessCheck, resp.Errors[0].Conflict.Reason)

	req = pessimisticPrewriteReq("p", 35, 40, insert("u", "mine"))
	req.PessimisticActions[0] = kvrpcpb.PrewriteRequest_DO_CONSTRAINT_CHECK
	resp = h.prewrite(req)
	require.Equal(t, []byte("u"), resp.Errors[0].AlreadyExist.Key)

	// SkipPessimisticCheck: not checked, as in TiKV.
	req = pessimisticPrewriteReq("p", 10, 40, put("n", "y"))
	req.PessimisticActions[0] = kvrpcpb.PrewriteRequest_SKIP_PESSIMISTIC_CHECK
	h.mustPrewrite(req)
}

func TestCleanupHonoursTTL(t *testing.T) {
	h := newHarness(t)
	start := ts(1000)
	h.mustPrewritePut("k", start, "k", string(make([]byte, 300)))
	cleanup := func(currentTS uint64) *kvrpcpb.CleanupResponse {
		resp, err := h.store.Cleanup(h.ctx, &kvrpcpb.CleanupRequest{Key: []byte("k"), StartVersion: start, CurrentTs: currentTS})
		require.NoError(t, err)
		return resp
	}
	require.NotNil(t, cleanup(ts(2000)).Error.Locked, "TTL 3000ms not yet expired")
	resp := cleanup(ts(4001))
	require.Nil(t, resp.Error)
	require.Nil(t, h.lockOf("k"))
	require.Empty(t, h.info("k").Values, "the rolled-back long value is deleted")
	require.Equal(t, kvrpcpb.Op_Rollback, h.writeAt("k", start).Type)
}
