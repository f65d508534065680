package engine

import (
	"bytes"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// IterOptions bounds and orients an Iterator.
type IterOptions struct {
	// LowerBound is the inclusive lower bound; empty means the start of the CF.
	LowerBound []byte
	// UpperBound is the exclusive upper bound; empty means the end of the CF
	// (as an empty region end key does in TiKV).
	UpperBound []byte
	// Reverse iterates from the largest key down.
	Reverse bool
	// KeyOnly declares that only keys will be read; Value then returns
	// ErrKeyOnly.
	KeyOnly bool
}

// Iterator walks the keys of one CF of a Snapshot within
// [LowerBound, UpperBound), ascending or, with Reverse, descending. A new
// iterator is unpositioned: call Rewind or Seek first. Not safe for
// concurrent use.
type Iterator struct {
	// it is a Badger iterator, or for CfLock a walk of the lock table.
	it      cursor
	cf      CF
	reverse bool
	keyOnly bool
	// lower and upper are the bounds in stored form (CF prefix included);
	// lower <= upper, and both lie within the CF's stored range.
	lower, upper []byte
	// valid reports that it is positioned on a stored key in [lower, upper).
	valid bool
}

// NewIterator returns an iterator over cf. It must be closed before the
// snapshot.
func (s *Snapshot) NewIterator(cf CF, opts IterOptions) *Iterator {
	lower, upper := encodeRange(cf, opts.LowerBound, opts.UpperBound)
	var it cursor
	if cf == CfLock {
		it = &treeCursor{tree: s.locks, reverse: opts.Reverse}
	} else {
		badgerOpts := badger.DefaultIteratorOptions
		badgerOpts.Reverse = opts.Reverse
		// Values are read on demand: prefetching would copy values of keys
		// past the bounds and of keys a point lookup never reads.
		badgerOpts.PrefetchValues = false
		it = badgerCursor{it: s.txn.NewIterator(badgerOpts)}
	}
	return &Iterator{
		it:      it,
		cf:      cf,
		reverse: opts.Reverse,
		keyOnly: opts.KeyOnly,
		lower:   lower,
		upper:   upper,
	}
}

// Rewind positions the iterator on the first key in iteration order: the
// smallest key >= LowerBound, or with Reverse the largest key < UpperBound.
func (it *Iterator) Rewind() {
	if it.reverse {
		it.seekBefore(it.upper)
	} else {
		it.it.seek(it.lower)
	}
	it.updateValid()
}

// Seek positions a forward iterator on the smallest key >= key, and a reverse
// iterator on the largest key <= key (RocksDB's SeekForPrev), both clamped to
// the bounds. To seek a reverse iterator strictly below key, use key as its
// UpperBound.
func (it *Iterator) Seek(key []byte) {
	target := encodeKey(it.cf, key)
	switch {
	case !it.reverse:
		it.it.seek(maxBytes(target, it.lower))
	case bytes.Compare(target, it.upper) >= 0:
		it.seekBefore(it.upper)
	default:
		it.it.seek(target)
	}
	it.updateValid()
}

// Next moves to the next key in iteration order. The iterator must be valid;
// Next, Key and Value panic otherwise.
func (it *Iterator) Next() {
	it.it.next()
	it.updateValid()
}

// Valid reports whether the iterator is positioned on a key within bounds.
func (it *Iterator) Valid() bool { return it.valid }

// Key returns the current user key (without CF prefix). The slice is valid
// until the iterator moves; copy it to keep it.
func (it *Iterator) Key() []byte { return decodeKey(it.it.key()) }

// Value returns a copy of the current value.
func (it *Iterator) Value() ([]byte, error) {
	if it.keyOnly {
		return nil, ErrKeyOnly
	}
	value, err := it.it.value()
	if err != nil {
		return nil, fmt.Errorf("engine: read value %s %q: %w", it.cf, it.Key(), err)
	}
	return value, nil
}

// Close releases the iterator. Closing it twice is a no-op.
func (it *Iterator) Close() { it.it.close() }

// ValueSize returns the length of the current value without reading it.
func (it *Iterator) ValueSize() int64 { return it.it.valueSize() }

// seekBefore positions a reverse iterator on the largest stored key < bound.
func (it *Iterator) seekBefore(bound []byte) {
	it.it.seek(bound)
	if it.it.valid() && bytes.Equal(it.it.key(), bound) {
		it.it.next()
	}
}

func (it *Iterator) updateValid() {
	if !it.it.valid() {
		it.valid = false
		return
	}
	key := it.it.key()
	it.valid = bytes.Compare(key, it.lower) >= 0 && bytes.Compare(key, it.upper) < 0
}

func maxBytes(a, b []byte) []byte {
	if bytes.Compare(a, b) >= 0 {
		return a
	}
	return b
}
