package tikvsvc

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pingcap/kvproto/pkg/deadlock"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/mvcc"
)

// defaultLockWait is TiKV's wait-for-lock-timeout: the longest a pessimistic
// lock request waits in the store before answering "locked" (the client
// then resolves the lock or asks again).
const defaultLockWait = time.Second

// waitEdge records that a transaction waits for another's lock on key.
type waitEdge struct {
	waiter, holder uint64
	key            []byte
	since          time.Time
	wake           chan struct{}
}

// lockWaiter parks pessimistic lock requests that hit another transaction's
// lock until that transaction finishes, and detects deadlocks in the
// wait-for graph before parking.
type lockWaiter struct {
	now func() time.Time

	mu sync.Mutex
	// edges are the waits in progress. Invariant: the graph they form is
	// acyclic, because an edge that would close a cycle is refused.
	edges []*waitEdge
	// generation counts releases; releasedAt maps a transaction to the
	// generation of its latest release, so a request that saw a lock before
	// its holder finished does not then wait for a release already past.
	generation uint64
	releasedAt map[uint64]uint64
}

// maxReleaseHistory bounds releasedAt; the oldest half is dropped past it.
const maxReleaseHistory = 1 << 16

func newLockWaiter(now func() time.Time) *lockWaiter {
	return &lockWaiter{now: now, releasedAt: make(map[uint64]uint64)}
}

// currentGeneration returns the release generation; pass it to wait.
func (w *lockWaiter) currentGeneration() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.generation
}

// wait blocks until holder releases its locks, timeout passes or ctx ends.
// It returns at once if holder was released after generation seen. If
// waiting would close a cycle it returns the deadlock at once.
func (w *lockWaiter) wait(ctx context.Context, seen, waiter, holder uint64, key []byte, timeout time.Duration) *kvrpcpb.Deadlock {
	edge := &waitEdge{waiter: waiter, holder: holder, key: key, since: w.now(), wake: make(chan struct{})}
	w.mu.Lock()
	if w.releasedAt[holder] > seen {
		w.mu.Unlock()
		return nil
	}
	if cycle := w.pathLocked(holder, waiter); cycle != nil {
		w.mu.Unlock()
		return w.deadlock(edge, cycle)
	}
	w.edges = append(w.edges, edge)
	w.mu.Unlock()
	defer w.remove(edge)

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-edge.wake:
	case <-timer.C:
	case <-ctx.Done():
	}
	return nil
}

// pathLocked returns the edges of a wait path from txn from to txn to, or
// nil if to is not reachable.
func (w *lockWaiter) pathLocked(from, to uint64) []*waitEdge {
	visited := map[uint64]bool{}
	var walk func(txn uint64) []*waitEdge
	walk = func(txn uint64) []*waitEdge {
		if visited[txn] {
			return nil
		}
		visited[txn] = true
		for _, e := range w.edges {
			if e.waiter != txn {
				continue
			}
			if e.holder == to {
				return []*waitEdge{e}
			}
			if rest := walk(e.holder); rest != nil {
				return append([]*waitEdge{e}, rest...)
			}
		}
		return nil
	}
	return walk(from)
}

// deadlock describes the cycle that edge would close: edge itself followed
// by the path from its holder back to its waiter.
func (w *lockWaiter) deadlock(edge *waitEdge, path []*waitEdge) *kvrpcpb.Deadlock {
	closing := path[len(path)-1] // a wait on a lock that edge's waiter holds
	chain := make([]*deadlock.WaitForEntry, 0, len(path)+1)
	for _, e := range append([]*waitEdge{edge}, path...) {
		chain = append(chain, w.entry(e))
	}
	return &kvrpcpb.Deadlock{
		LockTs:          edge.holder,
		LockKey:         edge.key,
		DeadlockKey:     closing.key,
		DeadlockKeyHash: mvcc.KeyHash(closing.key),
		WaitChain:       chain,
	}
}

func (w *lockWaiter) entry(e *waitEdge) *deadlock.WaitForEntry {
	return &deadlock.WaitForEntry{
		Txn:        e.waiter,
		WaitForTxn: e.holder,
		Key:        e.key,
		KeyHash:    mvcc.KeyHash(e.key),
		WaitTime:   uint64(w.now().Sub(e.since).Milliseconds()),
	}
}

func (w *lockWaiter) remove(edge *waitEdge) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.edges = slices.DeleteFunc(w.edges, func(e *waitEdge) bool { return e == edge })
}

// release wakes every request waiting for txn's locks.
func (w *lockWaiter) release(txns ...uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.generation++
	if len(w.releasedAt) >= maxReleaseHistory {
		w.forgetOldReleasesLocked()
	}
	for _, txn := range txns {
		w.releasedAt[txn] = w.generation
	}
	for _, e := range w.edges {
		if slices.Contains(txns, e.holder) {
			select {
			case <-e.wake:
			default:
				close(e.wake)
			}
		}
	}
}

// forgetOldReleasesLocked drops the releases of the older half of the
// history; requests that old have long finished waiting.
func (w *lockWaiter) forgetOldReleasesLocked() {
	cutoff := w.generation - min(w.generation, maxReleaseHistory/2)
	for txn, gen := range w.releasedAt {
		if gen <= cutoff {
			delete(w.releasedAt, txn)
		}
	}
	if len(w.releasedAt) >= maxReleaseHistory {
		clear(w.releasedAt)
	}
}

// waitInfo lists the waits in progress.
func (w *lockWaiter) waitInfo() []*deadlock.WaitForEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	entries := make([]*deadlock.WaitForEntry, len(w.edges))
	for i, e := range w.edges {
		entries[i] = w.entry(e)
	}
	return entries
}

// lockWaitTimeout turns a request's wait_timeout (ms; negative: no wait,
// 0: the default) into how long the store waits, capped at defaultLockWait.
func lockWaitTimeout(waitTimeoutMs int64) time.Duration {
	switch {
	case waitTimeoutMs < 0:
		return 0
	case waitTimeoutMs == 0 || waitTimeoutMs >= defaultLockWait.Milliseconds():
		return defaultLockWait
	}
	return time.Duration(waitTimeoutMs) * time.Millisecond
}
