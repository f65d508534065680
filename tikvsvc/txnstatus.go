package tikvsvc

import (
	"context"
	"sync"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// Bounds of the txn status cache, after TiKV's: an entry not refreshed for
// txnStatusKeepTime may be evicted once the cache holds txnStatusCapacity
// transactions. Clients refresh ongoing transactions with every heartbeat.
const (
	txnStatusCapacity = 1 << 16
	txnStatusKeepTime = 30 * time.Second
)

// txnState is what the store was told of a pipelined-DML transaction:
// ongoing with a min_commit_ts, committed, or rolled back.
type txnState struct {
	// minCommitTS is the ongoing transaction's min_commit_ts (at least its
	// start_ts); 0 once it is committed or rolled back.
	minCommitTS uint64
	commitTS    uint64
	rolledBack  bool
	updated     time.Time
}

func (s txnState) ongoing() bool { return !s.rolledBack && s.commitTS == 0 }

// txnStatusCache holds the statuses that clients broadcast
// (BroadcastTxnStatus) for the large transactions of pipelined DML, keyed
// by start_ts. The resolved ts uses them (TiKV's resolver does the same): a
// lock of such a transaction holds the safe ts back only to the
// transaction's min_commit_ts, and not at all once it is committed or
// rolled back, so stale reads do not stall for as long as it runs. A
// missing entry only makes the safe ts more conservative.
//
// Invariant: an entry that is committed or rolled back never becomes
// ongoing again, and an ongoing entry's minCommitTS never decreases.
type txnStatusCache struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[uint64]txnState
}

func newTxnStatusCache(now func() time.Time) *txnStatusCache {
	return &txnStatusCache{now: now, entries: make(map[uint64]txnState)}
}

// update records one broadcast status. A completed transaction (all its
// locks resolved) is forgotten.
func (c *txnStatusCache) update(status *kvrpcpb.TxnStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	startTS := status.GetStartTs()
	if status.GetIsCompleted() {
		delete(c.entries, startTS)
		return
	}
	next := txnState{
		minCommitTS: max(status.GetMinCommitTs(), startTS),
		commitTS:    status.GetCommitTs(),
		rolledBack:  status.GetRolledBack(),
		updated:     c.now(),
	}
	if !next.ongoing() {
		next.minCommitTS = 0
	}
	prev, known := c.entries[startTS]
	switch {
	case known && !prev.ongoing():
		return
	case known && next.ongoing():
		next.minCommitTS = max(next.minCommitTS, prev.minCommitTS)
	case !known:
		c.makeRoom()
	}
	c.entries[startTS] = next
}

// makeRoom evicts, when the cache is full, the entries not refreshed for
// txnStatusKeepTime, or failing that the least recently refreshed one.
// The caller holds mu.
func (c *txnStatusCache) makeRoom() {
	if len(c.entries) < txnStatusCapacity {
		return
	}
	cutoff := c.now().Add(-txnStatusKeepTime)
	var oldestTS uint64
	var oldest time.Time
	for ts, e := range c.entries {
		if e.updated.Before(cutoff) {
			delete(c.entries, ts)
			continue
		}
		if oldest.IsZero() || e.updated.Before(oldest) {
			oldestTS, oldest = ts, e.updated
		}
	}
	if len(c.entries) >= txnStatusCapacity {
		delete(c.entries, oldestTS)
	}
}

// lockBound is how far a lock of transaction startTS holds the resolved
// ts back: reads up to the returned ts minus one are safe. bounds is false
// when the lock does not bound it (its transaction is committed or rolled
// back; a resolve is all that is left). Only pipelined-DML locks
// (generation > 0) consult the cache.
func (c *txnStatusCache) lockBound(startTS, generation uint64) (ts uint64, bounds bool) {
	if generation == 0 {
		return startTS, true
	}
	c.mu.Lock()
	state, known := c.entries[startTS]
	c.mu.Unlock()
	switch {
	case !known:
		return startTS, true
	case state.ongoing():
		return state.minCommitTS, true
	default:
		return 0, false
	}
}

// BroadcastTxnStatus takes the statuses of pipelined-DML transactions that
// clients send to every store; the response is empty, as in TiKV.
func (s *Service) BroadcastTxnStatus(_ context.Context, req *kvrpcpb.BroadcastTxnStatusRequest) (*kvrpcpb.BroadcastTxnStatusResponse, error) {
	for _, status := range req.GetTxnStatus() {
		s.txnStatus.update(status)
	}
	return &kvrpcpb.BroadcastTxnStatusResponse{}, nil
}
