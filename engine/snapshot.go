package engine

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// Snapshot is a consistent read-only view of all CFs as of its creation:
// writes committed later are invisible to it. Get is safe for concurrent use;
// each Iterator must stay on one goroutine. Close every iterator before the
// snapshot, and every snapshot before the engine. An open snapshot holds back
// Badger's garbage collection of the versions it can see.
//
// CfLock is read from a clone of the lock table and the other CFs from a
// Badger transaction, both as of the same published version (see view).
type Snapshot struct {
	view    *view
	version uint64      // the Badger version read
	locks   *lockTree   // read-only clone
	ranks   *rankTree   // read-only clone; nil when locks are not ranked
	txn     *badger.Txn // read-only
	closed  sync.Once
}

// Snapshot returns a view of the engine's current state. It must be closed.
func (e *Engine) Snapshot() *Snapshot {
	version, tables := e.view.acquire()
	return &Snapshot{view: e.view, version: version, locks: tables.locks, ranks: tables.ranks,
		txn: e.db.NewTransactionAt(version, false)}
}

// Close releases the snapshot. Closing it with an iterator still open panics
// (in Badger); closing it twice is a no-op.
func (s *Snapshot) Close() {
	s.closed.Do(func() {
		s.txn.Discard()
		s.view.release(s.version)
	})
}

// Get returns a copy of the value of key in cf, or ErrNotFound. A present key
// with an empty value yields a non-nil empty slice.
func (s *Snapshot) Get(cf CF, key []byte) ([]byte, error) {
	if cf == CfLock {
		entry, ok := s.locks.Get(storedEntry{key: encodeKey(cf, key)})
		if !ok {
			return nil, ErrNotFound
		}
		return bytes.Clone(entry.value), nil
	}
	item, err := s.txn.Get(encodeKey(cf, key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("engine: get %s %q: %w", cf, key, err)
	}
	value, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("engine: read value %s %q: %w", cf, key, err)
	}
	if value == nil {
		value = []byte{}
	}
	return value, nil
}

// NextRankedLock returns the smallest rank at or above from that a CfLock
// entry has (see Options.LockRank), and a copy of the value of the entry
// with that rank and the smallest key; ok is false when no entry ranks that
// high. Its cost is logarithmic in the number of locks, however many share a
// rank. It panics when the engine was opened without LockRank.
func (s *Snapshot) NextRankedLock(from uint64) (rank uint64, value []byte, ok bool) {
	if s.ranks == nil {
		panic("engine: NextRankedLock on an engine opened without Options.LockRank")
	}
	var next rankedLock
	s.ranks.AscendGreaterOrEqual(rankedLock{rank: from}, func(r rankedLock) bool {
		next, ok = r, true
		return false
	})
	if !ok {
		return 0, nil, false
	}
	entry, _ := s.locks.Get(storedEntry{key: next.key})
	return next.rank, bytes.Clone(entry.value), true
}

// Scan calls fn for each key of cf within opts' bounds, in opts' order,
// until fn returns false. key and value are valid only during the call; value
// is nil when opts.KeyOnly is set.
func (s *Snapshot) Scan(cf CF, opts IterOptions, fn func(key, value []byte) bool) error {
	it := s.NewIterator(cf, opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var value []byte
		if !opts.KeyOnly {
			var err error
			if value, err = it.Value(); err != nil {
				return err
			}
		}
		if !fn(it.Key(), value) {
			return nil
		}
	}
	return nil
}
