package mvcc

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
)

// assertedPut is a put of key asserting it does not exist yet.
func assertedPut(key string) *kvrpcpb.Mutation {
	m := put(key, "t1")
	m.Assertion = kvrpcpb.Assertion_NotExist
	return m
}

// strictPessimisticPrewrite prewrites muts for a pessimistic transaction at
// assertion level Strict, each with its pessimistic action.
func strictPessimisticPrewrite(startTS, forUpdateTS uint64, muts []*kvrpcpb.Mutation, actions []kvrpcpb.PrewriteRequest_PessimisticAction) *kvrpcpb.PrewriteRequest {
	req := prewriteReq("A", startTS, muts...)
	req.ForUpdateTs = forUpdateTS
	req.PessimisticActions = actions
	req.AssertionLevel = kvrpcpb.AssertionLevel_Strict
	return req
}

// TestPrewriteConflictWinsOverAssertion follows issue 20: a pessimistic T1
// locks A and writes B unlocked, both asserted not to exist; T2 rolls T1's
// lock back and commits A and B. T1's prewrites then fail with the
// conflict (PessimisticLockNotFound), not AssertionFailed, whichever of
// the primary's and the secondary's requests comes first — as TiKV makes
// up the skipped constraint check when an assertion fails.
func TestPrewriteConflictWinsOverAssertion(t *testing.T) {
	for _, secondaryFirst := range []bool{false, true} {
		h := newHarness(t)
		h.mustPessimisticLock("A", 10, 10, "A")
		require.Nil(t, h.rollback(10, "A"))
		h.mustPrewritePut("A", 20, "A", "t2", "B", "t2")
		h.mustCommit(20, 30, "A", "B")

		primary := strictPessimisticPrewrite(10, 10, []*kvrpcpb.Mutation{assertedPut("A")},
			[]kvrpcpb.PrewriteRequest_PessimisticAction{kvrpcpb.PrewriteRequest_DO_PESSIMISTIC_CHECK})
		secondary := strictPessimisticPrewrite(10, 10, []*kvrpcpb.Mutation{assertedPut("B")},
			[]kvrpcpb.PrewriteRequest_PessimisticAction{kvrpcpb.PrewriteRequest_SKIP_PESSIMISTIC_CHECK})
		order := []*kvrpcpb.PrewriteRequest{primary, secondary}
		if secondaryFirst {
			order = []*kvrpcpb.PrewriteRequest{secondary, primary}
		}
		for _, req := range order {
			resp := h.prewrite(req)
			key := string(req.GetMutations()[0].GetKey())
			require.Len(t, resp.Errors, 1, "secondary first %v, key %s", secondaryFirst, key)
			keyErr := resp.Errors[0]
			require.Nil(t, keyErr.AssertionFailed, "secondary first %v, key %s: %v", secondaryFirst, key, keyErr)
			require.Contains(t, keyErr.Abort, "pessimistic lock not found", "secondary first %v, key %s", secondaryFirst, key)
		}
	}
}

// TestAssertionFailureWithoutConflict: a key that existed before the
// transaction began, with nothing newer, still fails its NotExist
// assertion as an assertion failure — optimistic with the constraint check
// skipped, and pessimistic without a lock.
func TestAssertionFailureWithoutConflict(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("C", 5, "C", "old")
	h.mustCommit(5, 6, "C")

	optimistic := prewriteReq("C", 10, assertedPut("C"))
	optimistic.SkipConstraintCheck = true
	optimistic.AssertionLevel = kvrpcpb.AssertionLevel_Strict
	resp := h.prewrite(optimistic)
	require.Len(t, resp.Errors, 1)
	require.NotNil(t, resp.Errors[0].AssertionFailed, "optimistic: %v", resp.Errors[0])

	pessimistic := strictPessimisticPrewrite(20, 20, []*kvrpcpb.Mutation{assertedPut("C")},
		[]kvrpcpb.PrewriteRequest_PessimisticAction{kvrpcpb.PrewriteRequest_SKIP_PESSIMISTIC_CHECK})
	pessimistic.PrimaryLock = []byte("C")
	resp = h.prewrite(pessimistic)
	require.Len(t, resp.Errors, 1)
	failed := resp.Errors[0].AssertionFailed
	require.NotNil(t, failed, "pessimistic: %v", resp.Errors[0])
	require.Equal(t, uint64(5), failed.ExistingStartTs)
	require.Equal(t, uint64(6), failed.ExistingCommitTs)

	// Optimistic with a newer write than start_ts skipped too: a conflict.
	h.mustPrewritePut("C", 30, "C", "newer")
	h.mustCommit(30, 31, "C")
	late := prewriteReq("C", 25, assertedPut("C"))
	late.SkipConstraintCheck = true
	late.AssertionLevel = kvrpcpb.AssertionLevel_Strict
	resp = h.prewrite(late)
	require.Len(t, resp.Errors, 1)
	require.NotNil(t, resp.Errors[0].Conflict, "optimistic, newer write: %v", resp.Errors[0])
}
