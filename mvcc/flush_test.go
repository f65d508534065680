package mvcc

import (
	"math"
	"strings"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
)

func flushReq(primary string, startTS, generation uint64, muts ...*kvrpcpb.Mutation) *kvrpcpb.FlushRequest {
	return &kvrpcpb.FlushRequest{
		Mutations:   muts,
		PrimaryKey:  []byte(primary),
		StartTs:     startTS,
		MinCommitTs: startTS + 1,
		Generation:  generation,
		LockTtl:     20000,
	}
}

func (h *harness) flush(req *kvrpcpb.FlushRequest) []*kvrpcpb.KeyError {
	h.t.Helper()
	resp, err := h.store.Flush(h.ctx, req)
	require.NoError(h.t, err)
	return resp.GetErrors()
}

func (h *harness) mustFlush(req *kvrpcpb.FlushRequest) {
	h.t.Helper()
	require.Empty(h.t, h.flush(req))
}

func (h *harness) bufferGet(startTS uint64, keys ...string) []*kvrpcpb.KvPair {
	h.t.Helper()
	resp, err := h.store.BufferBatchGet(h.ctx, &kvrpcpb.BufferBatchGetRequest{Keys: rawKeys(keys), Version: startTS})
	require.NoError(h.t, err)
	return resp.GetPairs()
}

// TestFlushWritesLocksOfItsGeneration: a flush is a prewrite whose locks
// carry the generation, TiKV's min_commit_ts (start_ts+1 whatever the
// request says) and an unknown transaction size; committing them works as
// for any lock.
func TestFlushWritesLocksOfItsGeneration(t *testing.T) {
	h := newHarness(t)
	req := flushReq("a", 10, 1, put("a", "1"), del("b"))
	req.MinCommitTs = 50
	h.mustFlush(req)
	lock := h.loadLock("a")
	require.Equal(t, uint64(1), lock.Generation)
	require.Equal(t, uint64(11), lock.MinCommitTS)
	require.Equal(t, uint64(math.MaxUint64), lock.TxnSize)
	require.Equal(t, "a", string(lock.Primary))
	require.Equal(t, LockTypeDelete, h.loadLock("b").Type)

	h.mustGetLocked("a", 20)
	h.mustCommit(10, 12, "a", "b")
	h.mustGet("a", 12, "1")
	h.mustGetNone("b", 12)
}

// TestFlushGenerations: a later generation replaces the key's lock and
// value; an earlier one arriving late (a retry) leaves the newer lock.
// Generation 0 is refused.
func TestFlushGenerations(t *testing.T) {
	h := newHarness(t)
	errs := h.flush(flushReq("k", 10, 0, put("k", "v")))
	require.Len(t, errs, 1)
	require.Contains(t, errs[0].GetAbort(), "generation should be greater than 0")
	require.Nil(t, h.loadLock("k"))

	h.mustFlush(flushReq("k", 10, 2, put("k", "v2")))
	h.mustFlush(flushReq("k", 10, 1, put("k", "v1")))
	require.Equal(t, "v2", string(h.loadLock("k").ShortValue), "a stale generation is ignored")
	h.mustFlush(flushReq("k", 10, 2, put("k", "again")))
	require.Equal(t, "v2", string(h.loadLock("k").ShortValue), "the same generation is ignored")
	h.mustFlush(flushReq("k", 10, 3, put("k", "v3")))
	require.Equal(t, uint64(3), h.loadLock("k").Generation)
	h.mustCommit(10, 11, "k")
	h.mustGet("k", 11, "v3")
}

// TestFlushReplacesLongValues: a long value flushed earlier is replaced or,
// when the later flush stores its value inline or deletes, removed.
func TestFlushReplacesLongValues(t *testing.T) {
	h := newHarness(t)
	long1 := strings.Repeat("1", maxShortValueLen+1)
	long2 := strings.Repeat("2", maxShortValueLen+1)
	h.mustFlush(flushReq("a", 10, 1, put("a", long1), put("b", long1), put("c", long1)))
	h.mustFlush(flushReq("a", 10, 2, put("a", long2), put("b", "short"), del("c")))
	require.Equal(t, []*kvrpcpb.KvPair{
		{Key: []byte("a"), Value: []byte(long2)},
		{Key: []byte("b"), Value: []byte("short")},
		{Key: []byte("c"), Value: []byte{}},
	}, h.bufferGet(10, "c", "b", "a", "b"))
	require.Len(t, h.info("a").Values, 1)
	require.Empty(t, h.info("b").Values, "the stale long value is deleted")
	require.Empty(t, h.info("c").Values)

	h.mustCommit(10, 11, "a", "b", "c")
	h.mustGet("a", 11, long2)
	h.mustGet("b", 11, "short")
	h.mustGetNone("c", 11)
}

// TestFlushConflicts: a flushed key is locked like a prewritten one, and a
// flush meets other transactions' locks and newer versions as a prewrite
// does.
func TestFlushConflicts(t *testing.T) {
	h := newHarness(t)
	h.mustFlush(flushReq("k", 10, 1, put("k", "v")))
	errs := h.flush(flushReq("k", 20, 1, put("k", "other")))
	require.Len(t, errs, 1)
	require.Equal(t, uint64(10), errs[0].GetLocked().GetLockVersion())
	require.NotEmpty(t, h.prewrite(prewriteReq("k", 20, put("k", "x"))).GetErrors())
	lockResp, err := h.store.PessimisticLock(h.ctx, &kvrpcpb.PessimisticLockRequest{
		Mutations:   []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_PessimisticLock, Key: []byte("k")}},
		PrimaryLock: []byte("k"), StartVersion: 20, ForUpdateTs: 20, LockTtl: 3000,
	})
	require.NoError(t, err)
	require.NotEmpty(t, lockResp.GetErrors())

	h.mustPrewritePut("p", 30, "p", "pending")
	errs = h.flush(flushReq("f", 40, 1, put("f", "1"), put("p", "2")))
	require.Len(t, errs, 1)
	require.Equal(t, uint64(30), errs[0].GetLocked().GetLockVersion())
	require.Nil(t, h.loadLock("f"), "a failed flush writes nothing")

	h.mustPrewritePut("w", 50, "w", "newer")
	h.mustCommit(50, 51, "w")
	errs = h.flush(flushReq("w", 45, 1, put("w", "late")))
	require.Len(t, errs, 1)
	require.NotNil(t, errs[0].GetConflict())
}

// TestFlushExistenceChecks: an Insert fails on a key an earlier flush of
// the same transaction put, as on a committed one; assertions are checked
// on a key's first flush only.
func TestFlushExistenceChecks(t *testing.T) {
	h := newHarness(t)
	h.mustFlush(flushReq("k", 10, 1, put("k", "v")))
	errs := h.flush(flushReq("k", 10, 2, insert("k", "again")))
	require.Len(t, errs, 1)
	require.NotNil(t, errs[0].GetAlreadyExist())
	h.mustCommit(10, 11, "k")
	errs = h.flush(flushReq("k", 20, 1, insert("k", "dup")))
	require.Len(t, errs, 1)
	require.NotNil(t, errs[0].GetAlreadyExist())

	req := flushReq("n", 30, 1, &kvrpcpb.Mutation{Op: kvrpcpb.Op_Put, Key: []byte("n"), Value: []byte("1"), Assertion: kvrpcpb.Assertion_NotExist})
	req.AssertionLevel = kvrpcpb.AssertionLevel_Strict
	h.mustFlush(req)
	req = flushReq("n", 30, 2, &kvrpcpb.Mutation{Op: kvrpcpb.Op_Put, Key: []byte("n"), Value: []byte("2"), Assertion: kvrpcpb.Assertion_Exist})
	req.AssertionLevel = kvrpcpb.AssertionLevel_Strict
	h.mustFlush(req)
	require.Equal(t, "2", string(h.loadLock("n").ShortValue))

	req = flushReq("m", 30, 1, &kvrpcpb.Mutation{Op: kvrpcpb.Op_Put, Key: []byte("m"), Value: []byte("1"), Assertion: kvrpcpb.Assertion_Exist})
	req.AssertionLevel = kvrpcpb.AssertionLevel_Strict
	errs = h.flush(req)
	require.Len(t, errs, 1)
	require.NotNil(t, errs[0].GetAssertionFailed(), "a first flush is asserted")
}

// TestBufferBatchGetReadsOnlyItsOwnLocks: committed data, other
// transactions' locks and keys never flushed are left out.
func TestBufferBatchGetReadsOnlyItsOwnLocks(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("c", 1, "c", "committed")
	h.mustCommit(1, 2, "c")
	h.mustPrewritePut("o", 5, "o", "other")
	h.mustFlush(flushReq("m", 10, 1, put("m", "mine")))
	require.Equal(t, []*kvrpcpb.KvPair{{Key: []byte("m"), Value: []byte("mine")}},
		h.bufferGet(10, "c", "m", "o", "missing"))
	require.Empty(t, h.bufferGet(11, "m"))

	h.mustPrewrite(prewriteReq("l", 20, lockOp("l")))
	pairs := h.bufferGet(20, "l")
	require.Len(t, pairs, 1)
	require.Contains(t, pairs[0].GetError().GetAbort(), "pipelined DML flushes only puts and deletes")
}

// TestFlushedTransactionRollsBack: resolving a flushed transaction as rolled
// back (how the client aborts one) removes its locks and long values.
func TestFlushedTransactionRollsBack(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("L", maxShortValueLen+1)
	h.mustFlush(flushReq("a", 10, 1, put("a", long), put("b", "short")))
	resp, err := h.store.ResolveLock(h.ctx, &kvrpcpb.ResolveLockRequest{StartVersion: 10})
	require.NoError(t, err)
	require.Nil(t, resp.GetError())
	require.Nil(t, h.loadLock("a"))
	require.Nil(t, h.loadLock("b"))
	require.Empty(t, h.info("a").Values)
	h.mustGetNone("a", 20)
	require.NotEmpty(t, h.flush(flushReq("a", 10, 2, put("a", "late"))), "a rolled-back transaction cannot flush again")
}
