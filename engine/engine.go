package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// deleteRangeChunk is how many deletes DeleteRange collects before writing
// them (in as many atomic chunks as they need).
const deleteRangeChunk = 10_000

// Engine is a Badger database holding the three column families. All methods
// are safe for concurrent use.
type Engine struct {
	db     *badger.DB
	logger *slog.Logger // never nil
	// committer performs every write to db, so that writes group commit.
	committer *committer
	// view is what snapshots see: the committer publishes to it.
	view *view
	// valueLogGC reclaims overwritten large values; nil in memory.
	valueLogGC *valueLogGC
}

// Open opens (creating if needed) the engine stored in dir. With
// opts.InMemory, dir is ignored. Two engines may be open at once in
// different directories.
func Open(dir string, opts Options) (*Engine, error) {
	if opts.MemTableSize != 0 && opts.MemTableSize < MinMemTableSize {
		return nil, fmt.Errorf("engine: open %q: MemTableSize %d is below the minimum %d",
			dir, opts.MemTableSize, MinMemTableSize)
	}
	db, err := badger.OpenManaged(opts.badgerOptions(dir))
	if err != nil {
		return nil, fmt.Errorf("engine: open %q: %w", dir, err)
	}
	var w *wal
	if opts.writeAheadLog() {
		if w, err = recoverWAL(db, filepath.Join(dir, walDirName), opts.walSegment()); err != nil {
			return nil, errors.Join(fmt.Errorf("engine: open %q: %w", dir, err), db.Close())
		}
	}
	v, err := openView(db, opts.LockRank)
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	e := &Engine{db: db, logger: opts.logger(), view: v}
	e.committer = newCommitter(db, v, w, e.logger, opts.OnLogSync)
	if !opts.InMemory {
		e.valueLogGC = startValueLogGC(db, e.logger, opts.valueLogGCEvery())
	}
	e.logger.Debug("engine opened", "dir", dir, "in_memory", opts.InMemory,
		"sync_writes", opts.SyncWrites, "max_batch_entries", e.MaxBatchEntries(),
		"max_batch_bytes", e.MaxBatchBytes())
	return e, nil
}

// Close waits for in-flight writes, then closes the database. Writes that
// start after Close begins fail with ErrClosed. All snapshots must be closed
// first, and no method may be called after Close.
func (e *Engine) Close() error {
	if e.valueLogGC != nil {
		e.valueLogGC.close()
	}
	e.committer.stop()
	w := e.committer.wal
	if err := e.db.Close(); err != nil {
		if w != nil {
			err = errors.Join(err, w.closeActive())
		}
		return fmt.Errorf("engine: close: %w", err)
	}
	if w == nil {
		return nil
	}
	// Badger flushed its memtables to SSTs on Close: the log is covered.
	if err := w.removeAll(); err != nil {
		return fmt.Errorf("engine: close: %w", err)
	}
	return nil
}

// recoverWAL opens the write-ahead log in walDir and re-applies to db every
// record Badger may not hold durably: all versions above those in its SSTs
// (its memtables may have lost any part of their unsynced log). Re-applying
// a version Badger already has writes the same keys and values at the same
// version again, which changes nothing.
func recoverWAL(db *badger.DB, walDir string, segmentSize int64) (*wal, error) {
	w, err := openWAL(walDir, segmentSize)
	if err != nil {
		return nil, err
	}
	err = w.replay(flushedVersion(db), func(version uint64, wb *WriteBatch) error {
		return commitToBadger(db, version, []*commitRequest{{batch: wb}})
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// RanksLocks reports whether the engine was opened with Options.LockRank, so
// that its snapshots answer NextRankedLock.
func (e *Engine) RanksLocks() bool { return e.view.rank != nil }

// MaxBatchEntries is the largest number of operations one atomic Write takes.
func (e *Engine) MaxBatchEntries() int { return e.committer.limit.entries }

// MaxBatchBytes is the largest total size one atomic Write takes, counted as
// Σ(len(key)+len(value)) plus 13 bytes per operation.
func (e *Engine) MaxBatchBytes() int { return e.committer.limit.bytes }

// RunningLogSync returns how long the write-ahead log append in progress
// (a write and an fdatasync) has been running, or zero when none is. A
// disk that stops answering shows here before any append completes.
func (e *Engine) RunningLogSync() time.Duration { return e.committer.runningSync(time.Now()) }

// CommitStats returns the engine's group-commit counts since Open.
func (e *Engine) CommitStats() CommitStats { return e.committer.stats.snapshot() }

// Write applies wb atomically: after a crash either all of it or none of it
// is present, and no snapshot sees part of it. With SyncWrites, it returns
// once the batch is durable. Concurrent Writes share one commit and one
// fsync; their order is the order in which they reached the committer.
//
// A batch over the atomic limits fails with ErrBatchTooLarge, one with an
// oversized key with ErrKeyTooLarge; either way nothing is applied. Any other
// error is an I/O failure after which the engine's state is unknown; callers
// should treat it as fatal. An empty batch is a no-op.
func (e *Engine) Write(wb *WriteBatch) error {
	if wb.Len() == 0 {
		return nil
	}
	if longest := wb.longestKey(); longest > MaxKeySize {
		return fmt.Errorf("engine: write: key of %d bytes: %w", longest, ErrKeyTooLarge)
	}
	cost := wb.cost()
	if !cost.fits(e.committer.limit) {
		return fmt.Errorf("engine: write: %d operations, %d bytes (limit %d, %d): %w",
			cost.entries, cost.bytes, e.MaxBatchEntries(), e.MaxBatchBytes(), ErrBatchTooLarge)
	}
	return e.committer.submit(wb, cost)
}

// WriteNonAtomic applies wb of any size as a sequence of atomic chunks, in
// order. If it fails or the process crashes part way, a prefix of the chunks
// is applied and the rest is not. Concurrent snapshots may see a prefix.
func (e *Engine) WriteNonAtomic(wb *WriteBatch) error {
	if longest := wb.longestKey(); longest > MaxKeySize {
		return fmt.Errorf("engine: write: key of %d bytes: %w", longest, ErrKeyTooLarge)
	}
	chunk := NewWriteBatch()
	for _, op := range wb.ops {
		if chunk.Len() > 0 && !chunk.cost().plus(wb.opCost(op)).fits(e.committer.limit) {
			if err := e.Write(chunk); err != nil {
				return err
			}
			chunk.Reset()
		}
		chunk.addStored(wb.storedKey(op), wb.value(op), op.delete)
	}
	return e.Write(chunk)
}

// Get returns the value of key in cf, or ErrNotFound.
func (e *Engine) Get(cf CF, key []byte) ([]byte, error) {
	snap := e.Snapshot()
	defer snap.Close()
	return snap.Get(cf, key)
}

// Scan calls fn for each key of cf within opts' bounds, in opts' order, on a
// fresh snapshot, until fn returns false. See Snapshot.Scan.
func (e *Engine) Scan(cf CF, opts IterOptions, fn func(key, value []byte) bool) error {
	snap := e.Snapshot()
	defer snap.Close()
	return snap.Scan(cf, opts, fn)
}

// Sync makes every acknowledged write durable. It is needed only with
// SyncWrites off.
func (e *Engine) Sync() error {
	if err := e.db.Sync(); err != nil {
		return fmt.Errorf("engine: sync: %w", err)
	}
	return nil
}

// DeleteRange deletes every key of cf in [start, end); an empty end means the
// end of the CF. It is not atomic: it commits deletes in chunks, so a crash
// or error may leave a subset deleted, and keys written into the range while
// it runs may survive.
func (e *Engine) DeleteRange(cf CF, start, end []byte) error {
	snap := e.Snapshot()
	defer snap.Close()
	wb := NewWriteBatch()
	var writeErr error
	scanErr := snap.Scan(cf, IterOptions{LowerBound: start, UpperBound: end, KeyOnly: true},
		func(key, _ []byte) bool {
			wb.Delete(cf, key)
			if wb.Len() < deleteRangeChunk {
				return true
			}
			writeErr = e.WriteNonAtomic(wb)
			wb.Reset()
			return writeErr == nil
		})
	if scanErr != nil {
		return fmt.Errorf("engine: delete range in %s: %w", cf, scanErr)
	}
	if writeErr != nil {
		return fmt.Errorf("engine: delete range in %s: %w", cf, writeErr)
	}
	if err := e.WriteNonAtomic(wb); err != nil {
		return fmt.Errorf("engine: delete range in %s: %w", cf, err)
	}
	return nil
}

// DeleteRangeAllCFs runs DeleteRange on every CF, for UnsafeDestroyRange. It
// is not atomic, across or within CFs.
func (e *Engine) DeleteRangeAllCFs(start, end []byte) error {
	for _, cf := range AllCFs() {
		if err := e.DeleteRange(cf, start, end); err != nil {
			return err
		}
	}
	return nil
}

// RangeStats describes the live data in a key range.
type RangeStats struct {
	// Keys is the number of keys, summed over the CFs.
	Keys uint64
	// Bytes is Σ(len(key)+len(value)) over those keys. It ignores
	// compression, deleted data not yet compacted, and Badger's overheads.
	Bytes uint64
}

// ApproximateSize returns the size of [start, end) summed over all CFs; an
// empty end means unbounded. It scans keys (not values), so it costs time
// linear in the number of keys in the range. The result is consistent with
// one snapshot.
func (e *Engine) ApproximateSize(start, end []byte) RangeStats {
	snap := e.Snapshot()
	defer snap.Close()
	var stats RangeStats
	for _, cf := range AllCFs() {
		it := snap.NewIterator(cf, IterOptions{LowerBound: start, UpperBound: end, KeyOnly: true})
		for it.Rewind(); it.Valid(); it.Next() {
			stats.Keys++
			stats.Bytes += uint64(len(it.Key())) + uint64(it.ValueSize())
		}
		it.Close()
	}
	return stats
}
