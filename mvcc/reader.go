package mvcc

import (
	"bytes"
	"fmt"

	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/storage"
)

// Reader reads locks, write records and values from one snapshot. Keys in
// its API are raw user keys. It is not safe for concurrent use; Close it
// before the snapshot.
type Reader struct {
	snap storage.Snapshot
	// writes is an unbounded forward iterator over CfWrite, created on
	// first use and reused for every version lookup.
	writes storage.Iterator
}

// NewReader returns a Reader over snap.
func NewReader(snap storage.Snapshot) *Reader { return &Reader{snap: snap} }

// Close releases the reader's iterators (not the snapshot).
func (r *Reader) Close() {
	if r.writes != nil {
		r.writes.Close()
		r.writes = nil
	}
}

// LoadLock returns the lock on key, or nil.
func (r *Reader) LoadLock(key []byte) (*Lock, error) {
	return r.loadLockEncoded(EncodeKey(key))
}

func (r *Reader) loadLockEncoded(encoded []byte) (*Lock, error) {
	value, err := r.snap.Get(engine.CfLock, encoded)
	if err != nil || value == nil {
		return nil, err
	}
	lock, err := UnmarshalLock(value)
	if err != nil {
		return nil, fmt.Errorf("mvcc: lock of %x: %w", encoded, err)
	}
	return lock, nil
}

// SeekWrite returns the newest write record of key with commit_ts <= ts, or
// a nil record when there is none.
func (r *Reader) SeekWrite(key []byte, ts uint64) (commitTS uint64, write *Write, err error) {
	return seekWriteEncoded(r, EncodeKey(key), ts)
}

// GetWrite returns the newest Put or Delete record of key with commit_ts <=
// ts, skipping Lock and Rollback records, or a nil record.
func (r *Reader) GetWrite(key []byte, ts uint64) (commitTS uint64, write *Write, err error) {
	return r.getWriteEncoded(EncodeKey(key), ts)
}

func (r *Reader) getWriteEncoded(encoded []byte, ts uint64) (commitTS uint64, write *Write, err error) {
	err = r.versions(encoded, ts, func(c uint64, w *Write) bool {
		if w.Type == WriteTypePut || w.Type == WriteTypeDelete {
			commitTS, write = c, w
			return false
		}
		return true
	})
	return commitTS, write, err
}

// GetValue returns the committed value of key visible at ts, ignoring
// locks; found is false when the key has no value there.
func (r *Reader) GetValue(key []byte, ts uint64) (value []byte, found bool, err error) {
	return r.getValueEncoded(EncodeKey(key), ts)
}

func (r *Reader) getValueEncoded(encoded []byte, ts uint64) ([]byte, bool, error) {
	_, write, err := r.getWriteEncoded(encoded, ts)
	if err != nil || write == nil || write.Type != WriteTypePut {
		return nil, false, err
	}
	value, err := r.loadValue(encoded, write.StartTS, write.ShortValue)
	return value, err == nil, err
}

// loadValue returns the short value if there is one, else the CfDefault
// value written by the transaction startTS.
func (r *Reader) loadValue(encoded []byte, startTS uint64, shortValue []byte) ([]byte, error) {
	if shortValue != nil {
		return shortValue, nil
	}
	value, err := r.snap.Get(engine.CfDefault, VersionedKey(encoded, startTS))
	if err != nil {
		return nil, err
	}
	if value == nil {
		return nil, fmt.Errorf("mvcc: default value of %x@%d missing: %w", encoded, startTS, ErrCorrupted)
	}
	return value, nil
}

// versions calls fn with the write records of the encoded key, newest
// first, starting at the newest with commit_ts <= fromTS, until fn returns
// false.
func (r *Reader) versions(encoded []byte, fromTS uint64, fn func(commitTS uint64, w *Write) bool) error {
	if r.writes == nil {
		r.writes = r.snap.NewIterator(engine.CfWrite, engine.IterOptions{})
	}
	it := r.writes
	for it.Seek(VersionedKey(encoded, fromTS)); it.Valid(); it.Next() {
		key := it.Key()
		if len(key) != len(encoded)+tsLen || !bytes.HasPrefix(key, encoded) {
			return nil
		}
		_, commitTS, err := SplitVersionedKey(key)
		if err != nil {
			return err
		}
		write, err := currentWrite(it, encoded, commitTS)
		if err != nil {
			return err
		}
		if !fn(commitTS, write) {
			return nil
		}
	}
	return nil
}

// currentWrite decodes the write record of encoded@commitTS that the CfWrite
// iterator is on.
func currentWrite(it storage.Iterator, encoded []byte, commitTS uint64) (*Write, error) {
	value, err := it.Value()
	if err != nil {
		return nil, err
	}
	write, err := UnmarshalWrite(value)
	if err != nil {
		return nil, fmt.Errorf("mvcc: write of %x@%d: %w", encoded, commitTS, err)
	}
	return write, nil
}

// commitRecord is what CfWrite says about one transaction on one key.
type commitRecord struct {
	// commitTS and write are the transaction's own record (a commit, or a
	// Rollback at its start_ts); write is nil when there is none.
	commitTS uint64
	write    *Write
	// overlappedRollback: another transaction's commit record at the
	// start_ts carries the rollback of this transaction.
	overlappedRollback bool
	// overlapped is another transaction's record at commit_ts == start_ts
	// without the rollback flag; a rollback must flag it rather than
	// overwrite it.
	overlapped *Write
}

// committed reports whether the record shows the transaction committed.
func (c commitRecord) committed() bool {
	return c.write != nil && c.write.Type != WriteTypeRollback
}

// rolledBack reports whether the record shows the transaction rolled back.
func (c commitRecord) rolledBack() bool {
	return c.overlappedRollback || (c.write != nil && c.write.Type == WriteTypeRollback)
}

// txnCommitRecord finds the record of the transaction startTS on the
// encoded key among the versions with commit_ts >= startTS.
func (r *Reader) txnCommitRecord(encoded []byte, startTS uint64) (commitRecord, error) {
	var rec commitRecord
	err := r.versions(encoded, MaxTS, func(commitTS uint64, w *Write) bool {
		if commitTS < startTS {
			return false
		}
		if w.StartTS == startTS {
			rec.commitTS, rec.write = commitTS, w
			return false
		}
		if commitTS == startTS {
			if w.HasOverlappedRollback {
				rec.overlappedRollback = true
			} else {
				rec.overlapped = w
			}
			return false
		}
		return true
	})
	return rec, err
}

// KeyLock is a lock with the raw key it locks.
type KeyLock struct {
	Key  []byte
	Lock *Lock
}

// ScanLocks returns, in key order, up to limit (0: no limit) locks on raw
// keys in [start, end) (empty end: unbounded) accepted by filter.
func (r *Reader) ScanLocks(start, end []byte, limit int, filter func(*Lock) bool) ([]KeyLock, error) {
	it := r.snap.NewIterator(engine.CfLock, lockBounds(start, end, false))
	defer it.Close()
	var locks []KeyLock
	for it.Rewind(); it.Valid() && (limit == 0 || len(locks) < limit); it.Next() {
		value, err := it.Value()
		if err != nil {
			return nil, err
		}
		lock, err := UnmarshalLock(value)
		if err != nil {
			return nil, fmt.Errorf("mvcc: lock of %x: %w", it.Key(), err)
		}
		if !filter(lock) {
			continue
		}
		raw, err := DecodeKey(it.Key())
		if err != nil {
			return nil, err
		}
		locks = append(locks, KeyLock{Key: raw, Lock: lock})
	}
	return locks, nil
}

// lockBounds converts a raw key range to engine bounds; a nil or empty end
// means unbounded. The same bounds select the versions of those keys in
// CfWrite and CfDefault, since encodings are prefix-free.
func lockBounds(start, end []byte, reverse bool) engine.IterOptions {
	opts := engine.IterOptions{LowerBound: EncodeKey(start), Reverse: reverse}
	if len(end) > 0 {
		opts.UpperBound = EncodeKey(end)
	}
	return opts
}
