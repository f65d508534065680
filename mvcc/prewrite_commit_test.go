package mvcc

import (
	"strings"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
)

func TestPrewriteCommitRoundTrip(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("x", maxShortValueLen+1)
	h.mustPrewrite(prewriteReq("a", 10, put("a", "short"), put("b", long), put("e", "")))
	h.mustGetLocked("a", 15)
	h.mustGetNone("a", 9) // a read below the lock's start_ts is not blocked
	h.mustCommit(10, 20, "a", "b", "e")

	h.mustGet("a", 20, "short")
	h.mustGet("b", 25, long)
	h.mustGet("e", 20, "")
	h.mustGetNone("a", 19)
	require.Nil(t, h.lockOf("a"))
	require.Equal(t, []byte("short"), h.writeAt("a", 20).ShortValue)
	info := h.info("b")
	require.Nil(t, info.Writes[0].ShortValue)
	require.Equal(t, []*kvrpcpb.MvccValue{{StartTs: 10, Value: []byte(long)}}, info.Values)

	h.mustPrewrite(prewriteReq("a", 30, del("a"), lockOp("b")))
	h.mustCommit(30, 40, "a", "b")
	h.mustGetNone("a", 40)
	h.mustGet("a", 39, "short")
	h.mustGet("b", 40, long) // a Lock record does not hide the value
	require.Equal(t, kvrpcpb.Op_Lock, h.writeAt("b", 40).Type)
}

func TestPrewriteConflicts(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("k", 10, "k", "v1")
	h.mustCommit(10, 20, "k")

	// Write conflict: a commit after our start_ts.
	resp := h.prewrite(prewriteReq("p", 15, put("k", "v2")))
	require.Len(t, resp.Errors, 1)
	require.Equal(t, &kvrpcpb.WriteConflict{
		StartTs: 15, ConflictTs: 10, ConflictCommitTs: 20, Key: []byte("k"), Primary: []byte("p"),
		Reason: kvrpcpb.WriteConflict_Optimistic,
	}, resp.Errors[0].Conflict)

	// Lock conflict: another transaction's lock, whatever the timestamps.
	h.mustPrewritePut("k", 30, "k", "v3")
	resp = h.prewrite(prewriteReq("q", 35, put("k", "v4"), put("other", "x")))
	require.Len(t, resp.Errors, 1)
	require.Equal(t, uint64(30), resp.Errors[0].Locked.LockVersion)
	require.Equal(t, []byte("k"), resp.Errors[0].Locked.Key)
	require.Nil(t, h.lockOf("other"), "a failed prewrite writes nothing")
}

func TestPrewriteAndCommitAreIdempotent(t *testing.T) {
	h := newHarness(t)
	req := prewriteReq("a", 10, put("a", "1"), put("b", "2"))
	h.mustPrewrite(req)
	h.mustPrewrite(req)
	h.mustCommit(10, 20, "a")
	h.mustCommit(10, 20, "a")
	h.mustCommit(10, 20, "a", "b")
	h.mustGet("b", 20, "2")
	require.Len(t, h.info("a").Writes, 1)
}

func TestCommitAfterRollbackFails(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "1")
	require.Nil(t, h.rollback(10, "a"))
	require.Nil(t, h.rollback(10, "a"), "rollback is idempotent")

	keyErr := h.commit(10, 20, "a")
	require.NotNil(t, keyErr)
	require.NotEmpty(t, keyErr.Retryable, "TxnLockNotFound is reported as retryable: %v", keyErr)

	// A late prewrite of the rolled-back transaction fails.
	resp := h.prewrite(prewriteReq("a", 10, put("a", "1")))
	require.Len(t, resp.Errors, 1)
	require.Equal(t, kvrpcpb.WriteConflict_SelfRolledBack, resp.Errors[0].Conflict.Reason)
	h.mustGetNone("a", 30)

	// Committing a transaction that never prewrote fails too.
	require.NotNil(t, h.commit(50, 60, "never"))
}

func TestRollbackAfterCommitFails(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "1")
	h.mustCommit(10, 20, "a")
	keyErr := h.rollback(10, "a")
	require.NotNil(t, keyErr)
	require.NotEmpty(t, keyErr.Abort)
	h.mustGet("a", 20, "1")

	resp, err := h.store.Cleanup(h.ctx, &kvrpcpb.CleanupRequest{Key: []byte("a"), StartVersion: 10})
	require.NoError(t, err)
	require.Nil(t, resp.Error)
	require.Equal(t, uint64(20), resp.CommitVersion)
}

func TestCommitTsExpiredAndInvalid(t *testing.T) {
	h := newHarness(t)
	req := prewriteReq("a", 10, put("a", "1"))
	req.MinCommitTs = 30
	h.mustPrewrite(req)
	keyErr := h.commit(10, 20, "a")
	require.Equal(t, &kvrpcpb.CommitTsExpired{StartTs: 10, AttemptedCommitTs: 20, Key: []byte("a"), MinCommitTs: 30},
		keyErr.CommitTsExpired)
	require.NotNil(t, h.commit(10, 10, "a"), "commit_ts must exceed start_ts")
	h.mustCommit(10, 30, "a")
}

func TestInsertAndCheckNotExists(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "1")
	h.mustCommit(10, 20, "a")

	for _, m := range []*kvrpcpb.Mutation{insert("a", "2"), {Op: kvrpcpb.Op_CheckNotExists, Key: []byte("a")}} {
		resp := h.prewrite(prewriteReq("a", 30, m))
		require.Len(t, resp.Errors, 1)
		require.Equal(t, []byte("a"), resp.Errors[0].AlreadyExist.Key, "%v", m.Op)
	}

	// After a delete (and a Lock record on top) the key may be inserted.
	h.mustPrewrite(prewriteReq("a", 40, del("a")))
	h.mustCommit(40, 50, "a")
	h.mustPrewrite(prewriteReq("a", 60, lockOp("a")))
	h.mustCommit(60, 70, "a")
	h.mustPrewrite(prewriteReq("a", 80, insert("a", "3"), &kvrpcpb.Mutation{Op: kvrpcpb.Op_CheckNotExists, Key: []byte("b")}))
	require.Nil(t, h.lockOf("b"), "CheckNotExists writes no lock")
	h.mustCommit(80, 90, "a")
	h.mustGet("a", 90, "3")
}

// TestAssertions: the newest write record decides an assertion when it is
// a Put or Delete (or there is none); below a Rollback or Lock record (the
// rollbacks between cases write them) the versions are read.
func TestAssertions(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "1")
	h.mustCommit(10, 20, "a")
	h.mustPrewritePut("c", 30, "c", "1")
	h.mustCommit(30, 40, "c")
	h.mustPrewrite(prewriteReq("c", 50, del("c")))
	h.mustCommit(50, 60, "c")
	tests := []struct {
		key       string
		assertion kvrpcpb.Assertion
		fails     bool
	}{
		{"a", kvrpcpb.Assertion_Exist, false},
		{"a", kvrpcpb.Assertion_NotExist, true},
		{"b", kvrpcpb.Assertion_NotExist, false},
		{"b", kvrpcpb.Assertion_Exist, true},
		{"c", kvrpcpb.Assertion_Exist, true},
		{"c", kvrpcpb.Assertion_NotExist, false},
	}
	for _, level := range []kvrpcpb.AssertionLevel{kvrpcpb.AssertionLevel_Fast, kvrpcpb.AssertionLevel_Strict} {
		for i, tt := range tests {
			startTS := uint64(100 + 10*int(level) + i)
			m := put(tt.key, "v")
			m.Assertion = tt.assertion
			req := prewriteReq(tt.key, startTS, m)
			req.AssertionLevel = level
			resp := h.prewrite(req)
			if !tt.fails {
				require.Empty(t, resp.Errors, "%v %+v", level, tt)
				require.Nil(t, h.rollback(startTS, tt.key))
				continue
			}
			require.Len(t, resp.Errors, 1, "%v %+v", level, tt)
			failed := resp.Errors[0].AssertionFailed
			require.Equal(t, tt.assertion, failed.Assertion)
			if tt.assertion == kvrpcpb.Assertion_NotExist {
				require.Equal(t, uint64(10), failed.ExistingStartTs)
				require.Equal(t, uint64(20), failed.ExistingCommitTs)
			}
		}
	}
}

func TestRollbackRecords(t *testing.T) {
	h := newHarness(t)
	// Unprotected rollbacks of one key collapse: only the newest stays.
	require.Nil(t, h.rollback(10, "k"))
	require.Nil(t, h.rollback(20, "k"))
	writes := h.info("k").Writes
	require.Len(t, writes, 1)
	require.Equal(t, uint64(20), writes[0].StartTs)
	require.Equal(t, kvrpcpb.Op_Rollback, writes[0].Type)

	// The rollback of a pessimistic transaction's primary is protected and
	// survives later rollbacks.
	h.mustPessimisticLock("k", 30, 30, "k")
	require.Nil(t, h.rollback(30, "k"))
	require.Equal(t, []byte("p"), h.writeAt("k", 30).ShortValue)
	require.Nil(t, h.rollback(40, "k"))
	require.NotNil(t, h.writeAt("k", 30))

	// A rollback at a timestamp where another transaction committed does
	// not overwrite the commit record.
	h.mustPrewritePut("c", 50, "c", "v")
	h.mustCommit(50, 60, "c")
	require.Nil(t, h.rollback(60, "c"))
	h.mustGet("c", 60, "v")
	require.False(t, h.writeAt("c", 60).HasOverlappedRollback)
	// A protected one flags it instead.
	resp := h.checkTxnStatus(&kvrpcpb.CheckTxnStatusRequest{PrimaryKey: []byte("c"), LockTs: 60, CurrentTs: 70, RollbackIfNotExist: true})
	require.Equal(t, kvrpcpb.Action_LockNotExistRollback, resp.Action)
	require.True(t, h.writeAt("c", 60).HasOverlappedRollback)
	h.mustGet("c", 60, "v")
	resp = h.checkTxnStatus(&kvrpcpb.CheckTxnStatusRequest{PrimaryKey: []byte("c"), LockTs: 60, CurrentTs: 70, RollbackIfNotExist: true})
	require.Equal(t, kvrpcpb.Action_NoAction, resp.Action, "already rolled back")
}
