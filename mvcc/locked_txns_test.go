package mvcc

import (
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
)

// txnSeen is one visit of LockedTxns.
type txnSeen struct{ startTS, generation uint64 }

func (h *harness) lockedTxns(maxTS uint64) []txnSeen {
	h.t.Helper()
	var seen []txnSeen
	require.NoError(h.t, h.store.LockedTxns(h.ctx, maxTS, func(startTS, generation uint64) {
		seen = append(seen, txnSeen{startTS, generation})
	}))
	return seen
}

// TestLockedTxnsVisitsEachTransactionOnce: stored locks are reported once
// per transaction, by ascending start_ts, with their generation, up to
// maxTS; locks that are committed or rolled back no longer count.
func TestLockedTxnsVisitsEachTransactionOnce(t *testing.T) {
	h := newHarness(t)
	require.Empty(t, h.lockedTxns(MaxTS))

	h.mustPrewritePut("b1", 30, "b1", "v", "b2", "v", "b3", "v")
	h.mustPrewritePut("a", 20, "a", "v")
	var muts []string
	for i := range 50 {
		muts = append(muts, fmt.Sprintf("p%03d", i), "v")
	}
	h.mustFlush(flushReq("p000", 40, 3, putPairs(muts)...))
	h.mustPrewritePut("z", 50, "z", "v")

	require.Equal(t, []txnSeen{{20, 0}, {30, 0}, {40, 3}, {50, 0}}, h.lockedTxns(MaxTS))
	require.Equal(t, []txnSeen{{20, 0}, {30, 0}, {40, 3}}, h.lockedTxns(49))
	require.Equal(t, []txnSeen{{20, 0}}, h.lockedTxns(20))
	require.Empty(t, h.lockedTxns(19))

	require.Nil(t, h.commit(30, 35, "b1", "b2", "b3"))
	require.Nil(t, h.rollback(20, "a"))
	require.Equal(t, []txnSeen{{40, 3}, {50, 0}}, h.lockedTxns(MaxTS))
}

// TestLockRankIsTheStartTS: the engine ranks each lock by its start_ts, and
// a value that does not decode ranks 0, where it holds the resolved ts.
func TestLockRankIsTheStartTS(t *testing.T) {
	lock := &Lock{Type: LockTypePut, Primary: []byte("primary"), StartTS: 1 << 40, TTL: 100, Generation: 2}
	require.Equal(t, uint64(1<<40), LockRank(lock.Marshal()))
	require.Equal(t, uint64(0), LockRank(nil))
	require.Equal(t, uint64(0), LockRank([]byte{'P', 0x10}))
}

func putPairs(kvs []string) []*kvrpcpb.Mutation {
	var muts []*kvrpcpb.Mutation
	for i := 0; i < len(kvs); i += 2 {
		muts = append(muts, put(kvs[i], kvs[i+1]))
	}
	return muts
}
