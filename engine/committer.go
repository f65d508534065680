package engine

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// badgerEntryOverhead is what Badger adds to len(key)+len(value) when it sizes
// a transaction entry: 2 meta bytes and 10 bytes for the version suffix.
const badgerEntryOverhead = 12

// commitMarkerBytes bounds the size of the commit marker entry Badger
// appends to every transaction ("!badger!txn" plus version and timestamp).
const commitMarkerBytes = 64

// txnCost is an upper bound on what a set of writes counts against Badger's
// per-transaction limits.
type txnCost struct {
	entries int
	bytes   int
}

func (c txnCost) plus(other txnCost) txnCost {
	return txnCost{entries: c.entries + other.entries, bytes: c.bytes + other.bytes}
}

func (c txnCost) fits(limit txnCost) bool {
	return c.entries <= limit.entries && c.bytes <= limit.bytes
}

// txnLimit returns the largest cost one Badger transaction accepts. Badger
// rejects a transaction whose entry count or size reaches its limits, and
// counts one extra entry for the commit marker.
func txnLimit(db *badger.DB) txnCost {
	return txnCost{
		entries: int(db.MaxBatchCount()) - 2,
		bytes:   int(db.MaxBatchSize()) - 1 - commitMarkerBytes,
	}
}

// commitRequest is one Write waiting for its batch to be durable.
type commitRequest struct {
	batch *WriteBatch
	cost  txnCost
	done  chan error // buffered; receives the commit result once
}

// committer implements group commit. A durable commit costs one fdatasync,
// so concurrent writers that each committed on their own would each pay one.
// Instead, writers hand their batches to one goroutine, which merges every
// batch queued while the previous commit was running into one group, appends
// it to the write-ahead log (one fdatasync; without SyncWrites there is no
// log), commits it to Badger in one transaction, and wakes all of their
// writers. A cleaner goroutine deletes log segments once Badger holds their
// data durably.
type committer struct {
	db     *badger.DB
	view   *view // publishes each committed group
	wal    *wal  // nil without SyncWrites
	logger *slog.Logger
	// onLogSync is Options.OnLogSync, or a no-op.
	onLogSync func(took time.Duration)
	// syncStarted is when the running log append started, in Unix
	// nanoseconds; zero when none is running. Only run writes it.
	syncStarted atomic.Int64
	limit       txnCost
	// version is the Badger version of the last commit attempted; only run
	// touches it.
	version uint64

	// mu guards closed. Writers hold it shared while sending on requests, so
	// stop can close requests only when no send is in flight.
	mu     sync.RWMutex
	closed bool

	// requests carries writes to run; it is closed by stop.
	requests chan *commitRequest
	// stopped is closed when run has committed every request and returned.
	stopped chan struct{}

	// stats counts the groups committed; run updates it, any goroutine
	// reads it.
	stats commitCounters

	// cleanups asks the cleaner to remove covered log segments; run sends
	// (without blocking) after each segment rotation and closes it on exit.
	cleanups chan struct{}
	// cleaned is closed when the cleaner has returned.
	cleaned chan struct{}
}

func newCommitter(db *badger.DB, v *view, w *wal, logger *slog.Logger, onLogSync func(time.Duration)) *committer {
	if onLogSync == nil {
		onLogSync = func(time.Duration) {}
	}
	c := &committer{
		db:        db,
		view:      v,
		wal:       w,
		logger:    logger,
		onLogSync: onLogSync,
		version:   v.published,
		limit:     txnLimit(db),
		requests:  make(chan *commitRequest, 256),
		stopped:   make(chan struct{}),
		cleanups:  make(chan struct{}, 1),
		cleaned:   make(chan struct{}),
	}
	go c.run()
	go c.clean()
	return c
}

// submit queues wb, whose cost must fit c.limit, and waits for its commit.
func (c *committer) submit(wb *WriteBatch, cost txnCost) error {
	req := &commitRequest{batch: wb, cost: cost, done: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	c.requests <- req
	c.mu.RUnlock()
	return <-req.done
}

// runningSync returns how long the log append in progress has been
// running, or zero when none is.
func (c *committer) runningSync(now time.Time) time.Duration {
	started := c.syncStarted.Load()
	if started == 0 {
		return 0
	}
	return max(0, now.Sub(time.Unix(0, started)))
}

// stop refuses new requests and waits until the queued ones are committed.
func (c *committer) stop() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.requests)
	}
	c.mu.Unlock()
	<-c.stopped
	<-c.cleaned
}

func (c *committer) run() {
	defer close(c.stopped)
	defer close(c.cleanups)
	var leftover *commitRequest // received but did not fit the last group
	for {
		first := leftover
		if first == nil {
			var ok bool
			if first, ok = <-c.requests; !ok {
				return
			}
		}
		var group []*commitRequest
		group, leftover = c.gather(first)
		err := c.commit(group)
		for _, req := range group {
			req.done <- err
		}
	}
}

// gather returns first plus the requests already queued behind it that fit in
// one transaction with it. The first queued request that does not fit is
// returned as leftover, to start the next group.
func (c *committer) gather(first *commitRequest) (group []*commitRequest, leftover *commitRequest) {
	group = []*commitRequest{first}
	total := first.cost
	for {
		select {
		case req, ok := <-c.requests:
			if !ok {
				return group, nil
			}
			if !total.plus(req.cost).fits(c.limit) {
				return group, req
			}
			total = total.plus(req.cost)
			group = append(group, req)
		default:
			return group, nil
		}
	}
}

// commit applies the batches of group, in order, in one Badger transaction
// at the next version, and publishes it before any of their writers
// returns. A version is never reused, even when its commit failed.
func (c *committer) commit(group []*commitRequest) error {
	c.version++
	c.stats.groups.Add(1)
	c.stats.writes.Add(uint64(len(group)))
	if c.wal != nil {
		start := time.Now()
		c.syncStarted.Store(start.UnixNano())
		rotated, err := c.wal.append(c.version, group)
		c.syncStarted.Store(0)
		took := time.Since(start)
		c.stats.logSyncs.Add(1)
		c.stats.logSyncNanos.Add(uint64(took))
		c.onLogSync(took)
		if err != nil {
			return err
		}
		if rotated {
			select {
			case c.cleanups <- struct{}{}:
			default:
			}
		}
	}
	if err := commitToBadger(c.db, c.version, group); err != nil {
		return err
	}
	c.view.publish(c.version, group)
	return nil
}

// commitToBadger applies the batches of group, in order, in one Badger
// transaction at version.
func commitToBadger(db *badger.DB, version uint64, group []*commitRequest) error {
	txn := db.NewTransactionAt(version-1, true)
	defer txn.Discard()
	for _, req := range group {
		if err := stageBatch(txn, req.batch); err != nil {
			return err
		}
	}
	if err := txn.CommitAt(version, nil); err != nil {
		return fmt.Errorf("engine: commit: %w", err)
	}
	return nil
}

// clean removes the log segments whose data Badger holds durably: a version
// is durable in Badger once a memtable holding it has been flushed to an
// SST, since memtables flush in version order. The sync makes the value log
// files (values of 1 MiB and more, which SSTs only point to) durable as
// well, including any Badger has moved past since the last clean.
func (c *committer) clean() {
	defer close(c.cleaned)
	for range c.cleanups {
		durable := flushedVersion(c.db)
		if err := syncBadgerFiles(c.db); err != nil {
			c.logger.Warn("engine: sync before removing log segments", "err", err)
			continue
		}
		if err := c.wal.removeCovered(durable); err != nil {
			c.logger.Warn("engine: remove log segments", "err", err)
		}
	}
}

// flushedVersion returns the highest version in Badger's SSTs: every version
// up to it is on disk in an SST.
func flushedVersion(db *badger.DB) uint64 {
	var flushed uint64
	for _, table := range db.Tables() {
		flushed = max(flushed, table.MaxVersion)
	}
	return flushed
}

// stageBatch adds the operations of wb to txn.
func stageBatch(txn *badger.Txn, wb *WriteBatch) error {
	for _, op := range wb.ops {
		var err error
		if op.delete {
			err = txn.Delete(wb.storedKey(op))
		} else {
			err = txn.Set(wb.storedKey(op), wb.value(op))
		}
		if err != nil {
			return fmt.Errorf("engine: stage write: %w", err)
		}
	}
	return nil
}

// commitCounters are the cumulative counts behind CommitStats.
type commitCounters struct {
	groups, writes, logSyncs, logSyncNanos atomic.Uint64
}

// CommitStats counts an engine's group commits since it opened. Writes per
// group show how well concurrent writers share a commit; log syncs and their
// time show what durability costs.
type CommitStats struct {
	// Groups is the number of group commits attempted, Writes the number of
	// Write calls (and atomic chunks) they carried.
	Groups, Writes uint64
	// LogSyncs is the number of write-ahead log appends, each one write and
	// one fdatasync (zero without SyncWrites); LogSyncTime is their total
	// duration.
	LogSyncs    uint64
	LogSyncTime time.Duration
}

func (c *commitCounters) snapshot() CommitStats {
	return CommitStats{
		Groups:      c.groups.Load(),
		Writes:      c.writes.Load(),
		LogSyncs:    c.logSyncs.Load(),
		LogSyncTime: time.Duration(c.logSyncNanos.Load()),
	}
}
