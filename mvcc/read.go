package mvcc

import (
	"bytes"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/storage"
)

// ReadOptions says at which timestamp and how a snapshot read sees locks.
type ReadOptions struct {
	// TS is the read timestamp: commits at or below it are visible.
	TS uint64
	// Isolation SI (and RCCheckTS) report blocking locks; RC ignores locks.
	Isolation kvrpcpb.IsolationLevel
	// ResolvedLocks are start_ts of transactions whose locks the read may
	// ignore (the client knows they are rolled back or commit after TS).
	ResolvedLocks []uint64
	// CommittedLocks are start_ts of transactions the client knows
	// committed at or below TS: their locked values are read as committed.
	CommittedLocks []uint64
}

// ReadOptionsFromContext builds the options of a read at ts from the
// request context.
func ReadOptionsFromContext(ctx *kvrpcpb.Context, ts uint64) ReadOptions {
	return ReadOptions{
		TS:             ts,
		Isolation:      ctx.GetIsolationLevel(),
		ResolvedLocks:  ctx.GetResolvedLocks(),
		CommittedLocks: ctx.GetCommittedLocks(),
	}
}

// checksLocks reports whether the read must look at locks.
func (o ReadOptions) checksLocks() bool { return o.Isolation != kvrpcpb.IsolationLevel_RC }

// checkLock returns a KeyIsLocked error when lock hides rawKey from the
// read; a nil error means the lock does not block.
func (o ReadOptions) checkLock(rawKey []byte, lock *Lock) error {
	if !lock.blocksRead(rawKey, o.TS, o.ResolvedLocks) || containsTS(o.CommittedLocks, lock.StartTS) {
		return nil
	}
	return errKeyIsLocked(lock.LockInfo(rawKey))
}

// lockedValue reads a key through its lock. decided is false when the
// lock does not matter and the committed value must be read; otherwise
// value/found are the answer (the lock's own value when its transaction is
// in CommittedLocks), or err is KeyIsLocked.
func (r *Reader) lockedValue(encoded, rawKey []byte, lock *Lock, opts ReadOptions) (value []byte, found, decided bool, err error) {
	if !lock.blocksRead(rawKey, opts.TS, opts.ResolvedLocks) {
		return nil, false, false, nil
	}
	if !containsTS(opts.CommittedLocks, lock.StartTS) {
		return nil, false, true, errKeyIsLocked(lock.LockInfo(rawKey))
	}
	if lock.Type != LockTypePut {
		return nil, false, true, nil
	}
	value, err = r.loadValue(encoded, lock.StartTS, lock.ShortValue)
	return value, err == nil, true, err
}

// Get returns the value of key visible to a read with opts (TiKV's point
// getter). found is false when there is none; a blocking lock yields a
// *KeyError wrapping ErrKeyIsLocked.
func (r *Reader) Get(key []byte, opts ReadOptions) (value []byte, found bool, err error) {
	encoded := EncodeKey(key)
	if opts.checksLocks() {
		lock, err := r.loadLockEncoded(encoded)
		if err != nil {
			return nil, false, err
		}
		if lock != nil {
			value, found, decided, err := r.lockedValue(encoded, key, lock, opts)
			if decided || err != nil {
				return value, found, err
			}
		}
	}
	return r.getValueEncoded(encoded, opts.TS)
}

// ScanOptions selects the keys of a Scan.
type ScanOptions struct {
	ReadOptions
	// Start is the inclusive lower bound and End the exclusive upper bound
	// of raw keys, in both directions; an empty End is unbounded.
	Start, End []byte
	// Reverse returns keys in descending order.
	Reverse bool
	// KeyOnly leaves values out of the pairs.
	KeyOnly bool
	// Limit is the largest number of pairs returned; 0 means no limit.
	Limit int
}

// Scan returns the visible key-value pairs in the range, in order. As in
// TiKV, a key hidden by a lock yields a pair carrying the KeyError instead
// of a value, and counts towards the limit.
func (r *Reader) Scan(opts ScanOptions) ([]*kvrpcpb.KvPair, error) {
	bounds := lockBounds(opts.Start, opts.End, opts.Reverse)
	writes := r.snap.NewIterator(engine.CfWrite, bounds)
	defer writes.Close()
	writes.Rewind()
	var locks storage.Iterator
	if opts.checksLocks() {
		locks = r.snap.NewIterator(engine.CfLock, bounds)
		defer locks.Close()
		locks.Rewind()
	}
	s := scanCursor{writes: writes, locks: locks, reverse: opts.Reverse, ts: opts.TS}
	var pairs []*kvrpcpb.KvPair
	for opts.Limit == 0 || len(pairs) < opts.Limit {
		key, err := s.next()
		if err != nil {
			return nil, err
		}
		if key.encoded == nil {
			break
		}
		pair, err := r.scanPair(key, opts)
		if err != nil {
			return nil, err
		}
		if pair != nil {
			pairs = append(pairs, pair)
		}
	}
	return pairs, nil
}

// scanPair returns the pair of one scanned key, or nil when the key has no
// visible value.
func (r *Reader) scanPair(key scannedKey, opts ScanOptions) (*kvrpcpb.KvPair, error) {
	rawKey, err := DecodeKey(key.encoded)
	if err != nil {
		return nil, err
	}
	var value []byte
	var found, decided bool
	if key.lock != nil {
		value, found, decided, err = r.lockedValue(key.encoded, rawKey, key.lock, opts.ReadOptions)
		if keyErr, ok := ToKeyError(err); ok {
			return &kvrpcpb.KvPair{Key: rawKey, Error: keyErr}, nil
		}
		if err != nil {
			return nil, err
		}
	}
	if !decided {
		if value, found, err = r.scannedValue(key, opts.TS); err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, nil
	}
	if opts.KeyOnly {
		value = nil
	}
	return &kvrpcpb.KvPair{Key: rawKey, Value: value}, nil
}

// scannedValue returns the committed value of a scanned key at ts, from
// the write record the scan found when it has one.
func (r *Reader) scannedValue(key scannedKey, ts uint64) ([]byte, bool, error) {
	if !key.versionsRead {
		return r.getValueEncoded(key.encoded, ts)
	}
	if key.write == nil || key.write.Type != WriteTypePut {
		return nil, false, nil
	}
	value, err := r.loadValue(key.encoded, key.write.StartTS, key.write.ShortValue)
	return value, err == nil, err
}

// seekBound is how many CfWrite records a forward scan steps over with
// Next before it seeks instead, as TiKV's near_seek does: a step costs far
// less than a seek while a key has few versions.
const seekBound = 8

// scannedKey is one user key a scan reached.
type scannedKey struct {
	encoded []byte
	lock    *Lock // nil without one, or when locks are not checked
	// versionsRead reports that the scan read the key's versions on its
	// way past them (forward scans do); write is then its newest Put or
	// Delete record with commit_ts <= ts, or nil.
	versionsRead bool
	write        *Write
}

// scanCursor merges the user keys of CfWrite and CfLock in scan order.
type scanCursor struct {
	writes  storage.Iterator // over versioned keys; positioned on the next user key's versions
	locks   storage.Iterator // nil when locks are not checked
	reverse bool
	ts      uint64 // the read timestamp
}

// next returns the next user key, with its lock if locks are checked and
// it has one, and moves past it; a nil encoded key means the range is done.
func (s *scanCursor) next() (scannedKey, error) {
	writeKey, err := s.writeUserKey()
	if err != nil {
		return scannedKey{}, err
	}
	var lockKey []byte
	if s.locks != nil && s.locks.Valid() {
		lockKey = s.locks.Key()
	}
	encoded := s.first(writeKey, lockKey)
	if encoded == nil {
		return scannedKey{}, nil
	}
	key := scannedKey{encoded: append([]byte(nil), encoded...)}
	if lockKey != nil && bytes.Equal(lockKey, key.encoded) {
		if key.lock, err = s.currentLock(); err != nil {
			return scannedKey{}, err
		}
		s.locks.Next()
	}
	switch {
	case writeKey == nil || !bytes.Equal(writeKey, key.encoded):
	case s.reverse:
		s.skipVersionsBackward(key.encoded)
	default:
		key.versionsRead = true
		if key.write, err = s.readVersions(key.encoded); err != nil {
			return scannedKey{}, err
		}
	}
	return key, nil
}

func (s *scanCursor) writeUserKey() ([]byte, error) {
	if !s.writes.Valid() {
		return nil, nil
	}
	encoded, _, err := SplitVersionedKey(s.writes.Key())
	return encoded, err
}

// first returns whichever of a and b comes first in scan order; nil stands
// for an exhausted cursor.
func (s *scanCursor) first(a, b []byte) []byte {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case (bytes.Compare(a, b) < 0) != s.reverse:
		return a
	default:
		return b
	}
}

func (s *scanCursor) currentLock() (*Lock, error) {
	value, err := s.locks.Value()
	if err != nil {
		return nil, err
	}
	return UnmarshalLock(value)
}

// onVersionOf reports whether the write cursor is on a version of encoded.
func (s *scanCursor) onVersionOf(encoded []byte) bool {
	if !s.writes.Valid() {
		return false
	}
	key := s.writes.Key()
	return len(key) == len(encoded)+tsLen && bytes.HasPrefix(key, encoded)
}

// readVersions moves the forward write cursor, which is on the newest
// version of encoded, past all of them, and returns the newest Put or
// Delete record with commit_ts <= ts, or nil.
func (s *scanCursor) readVersions(encoded []byte) (*Write, error) {
	write, err := s.visibleWrite(encoded)
	if err != nil {
		return nil, err
	}
	s.skipForward(encoded)
	return write, nil
}

// skipForward moves the forward write cursor past the versions of encoded
// it is on: step by step while there are few, then with a seek.
func (s *scanCursor) skipForward(encoded []byte) {
	for steps := 0; s.onVersionOf(encoded); steps++ {
		if steps == seekBound {
			s.writes.Seek(keyVersionsEnd(encoded))
			return
		}
		s.writes.Next()
	}
}

// visibleWrite moves the forward write cursor to the newest Put or Delete
// record of encoded with commit_ts <= ts and returns it, stepping over
// newer versions and over Lock and Rollback records; nil when there is
// none, the cursor then being past encoded's versions.
func (s *scanCursor) visibleWrite(encoded []byte) (*Write, error) {
	for steps := 0; s.onVersionOf(encoded); steps++ {
		_, commitTS, err := SplitVersionedKey(s.writes.Key())
		if err != nil {
			return nil, err
		}
		if commitTS > s.ts {
			if steps >= seekBound {
				// Every version from here on has commit_ts <= ts.
				s.writes.Seek(VersionedKey(encoded, s.ts))
			} else {
				s.writes.Next()
			}
			continue
		}
		write, err := currentWrite(s.writes, encoded, commitTS)
		if err != nil {
			return nil, err
		}
		if write.Type == WriteTypePut || write.Type == WriteTypeDelete {
			return write, nil
		}
		s.writes.Next()
	}
	return nil, nil
}

// skipVersionsBackward moves the reverse write cursor past every version
// of encoded. The largest key <= encoded is a version of the previous user
// key: every version of encoded sorts above encoded itself. Reverse scans
// seek rather than step: a backward step in a Badger memtable is itself a
// search from the top of the skiplist (BenchmarkScan/reverse100).
func (s *scanCursor) skipVersionsBackward(encoded []byte) { s.writes.Seek(encoded) }
