package mvcc

import (
	"bytes"
	"context"
	"errors"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/engine"
)

// flashbackBatch is how many keys one write of a flashback covers.
const flashbackBatch = 256

// ErrFlashbackNotPrepared means a FlashbackToVersion found no lock of its
// PrepareFlashbackToVersion on the range's first key: the range was never
// prepared, or its flashback already finished (TiKV answers both with the
// FlashbackNotPrepared region error).
var ErrFlashbackNotPrepared = errors.New("mvcc: range is not prepared for the flashback")

// PrepareFlashback is the first phase of TiKV's flashback of [start, end)
// (FLASHBACK CLUSTER): it rolls back every lock in the range, then locks
// start with a lock of transaction startTS that carries the key's value at
// version. That lock marks the range as prepared until Flashback commits
// it. Preparing again with the same startTS changes nothing. Every read
// and write is addressed with reqCtx, the request's context.
func (s *Store) PrepareFlashback(ctx context.Context, reqCtx *kvrpcpb.Context, start, end []byte, startTS, version uint64) error {
	if err := s.rollbackLocksInRange(ctx, reqCtx, start, end, startTS); err != nil {
		return err
	}
	return s.execute(ctx, reqCtx, [][]byte{start}, func(r *Reader, t *txn) error {
		return lockFlashbackKey(r, t, start, startTS, version)
	})
}

// rollbackLocksInRange rolls back, a batch at a time, the locks in [start,
// end) of every transaction but the flashback's own.
func (s *Store) rollbackLocksInRange(ctx context.Context, reqCtx *kvrpcpb.Context, start, end []byte, startTS uint64) error {
	foreign := func(l *Lock) bool { return l.StartTS != startTS }
	for next := start; ; {
		var locks []KeyLock
		err := s.withReader(ctx, reqCtx, func(r *Reader) (err error) {
			locks, err = r.ScanLocks(next, end, flashbackBatch, foreign)
			return err
		})
		if err != nil || len(locks) == 0 {
			return err
		}
		keys := make([][]byte, len(locks))
		for i, kl := range locks {
			keys[i] = kl.Key
		}
		err = s.execute(ctx, reqCtx, keys, func(r *Reader, t *txn) error {
			for _, key := range keys {
				encoded := EncodeKey(key)
				lock, err := r.loadLockEncoded(encoded)
				if err != nil {
					return err
				}
				if lock != nil && foreign(lock) {
					if err := rollbackLock(r, t, encoded, key, lock, true); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		next = append(append([]byte(nil), keys[len(keys)-1]...), 0)
	}
}

// lockFlashbackKey locks key for the flashback transaction startTS with
// the key's value at version (a Delete lock when it had none), as TiKV's
// prewrite_flashback_key does.
func lockFlashbackKey(r *Reader, t *txn, key []byte, startTS, version uint64) error {
	encoded := EncodeKey(key)
	existing, err := r.loadLockEncoded(encoded)
	if err != nil || (existing != nil && existing.StartTS == startTS) {
		return err
	}
	write, err := flashbackWrite(r, t, encoded, startTS, version)
	if err != nil {
		return err
	}
	lock := &Lock{Type: LockTypeDelete, Primary: key, StartTS: startTS, TxnSize: 1}
	if write.Type == WriteTypePut {
		lock.Type, lock.ShortValue = LockTypePut, write.ShortValue
	}
	t.putLock(encoded, lock)
	return nil
}

// flashbackWrite returns the record that restores the key's value at
// version in a write of transaction startTS: a Put of that value (copied to
// CfDefault at startTS when it is long), or a Delete when the key had no
// value there.
func flashbackWrite(r *Reader, t *txn, encoded []byte, startTS, version uint64) (*Write, error) {
	_, old, err := r.getWriteEncoded(encoded, version)
	if err != nil {
		return nil, err
	}
	if old == nil || old.Type != WriteTypePut {
		return &Write{Type: WriteTypeDelete, StartTS: startTS}, nil
	}
	if old.ShortValue == nil {
		value, err := r.loadValue(encoded, old.StartTS, nil)
		if err != nil {
			return nil, err
		}
		t.putValue(encoded, startTS, value)
	}
	return &Write{Type: WriteTypePut, StartTS: startTS, ShortValue: old.ShortValue}, nil
}

// Flashback is the second phase: every key of [start, end) but start whose
// newest record is above version (and below commitTS: not yet flashed
// back) gets a record at commitTS that restores its value at version; then
// the lock on start is committed at commitTS. It fails with
// ErrFlashbackNotPrepared unless start holds the lock of PrepareFlashback
// with startTS. max_ts is raised to commitTS, so that no later 1PC or
// async-commit write commits below the flashback. Every read and write is
// addressed with reqCtx, the request's context.
func (s *Store) Flashback(ctx context.Context, reqCtx *kvrpcpb.Context, start, end []byte, startTS, commitTS, version uint64) error {
	if err := s.checkFlashbackPrepared(ctx, reqCtx, start, startTS); err != nil {
		return err
	}
	s.cm.UpdateMaxTS(commitTS)
	for from, more := start, true; more; {
		keys, next, err := s.changedKeys(ctx, reqCtx, from, end, start, version, commitTS)
		if err != nil {
			return err
		}
		if err := s.restoreKeys(ctx, reqCtx, keys, startTS, commitTS, version); err != nil {
			return err
		}
		from, more = next, next != nil
	}
	return s.execute(ctx, reqCtx, [][]byte{start}, func(r *Reader, t *txn) error {
		return commitFlashbackKey(r, t, start, startTS, commitTS)
	})
}

func (s *Store) checkFlashbackPrepared(ctx context.Context, reqCtx *kvrpcpb.Context, start []byte, startTS uint64) error {
	return s.withReader(ctx, reqCtx, func(r *Reader) error {
		lock, err := r.LoadLock(start)
		if err == nil && (lock == nil || lock.StartTS != startTS) {
			err = ErrFlashbackNotPrepared
		}
		return err
	})
}

// changedKeys returns up to flashbackBatch raw keys from [from, end),
// skipping skip, whose newest CfWrite record has a commit_ts in (version,
// commitTS), and the key to continue from (nil at the end of the range).
func (s *Store) changedKeys(ctx context.Context, reqCtx *kvrpcpb.Context, from, end, skip []byte,
	version, commitTS uint64) (keys [][]byte, next []byte, err error) {
	err = s.withReader(ctx, reqCtx, func(r *Reader) error {
		writes := r.snap.NewIterator(engine.CfWrite, lockBounds(from, end, false))
		defer writes.Close()
		cursor := scanCursor{writes: writes}
		for writes.Rewind(); writes.Valid(); {
			encoded, newest, err := SplitVersionedKey(writes.Key())
			if err != nil {
				return err
			}
			key, err := DecodeKey(encoded)
			if err != nil {
				return err
			}
			if len(keys) == flashbackBatch {
				next = key
				return nil
			}
			if newest > version && newest < commitTS && !bytes.Equal(key, skip) {
				keys = append(keys, key)
			}
			cursor.skipForward(append([]byte(nil), encoded...))
		}
		return nil
	})
	return keys, next, err
}

func (s *Store) restoreKeys(ctx context.Context, reqCtx *kvrpcpb.Context, keys [][]byte, startTS, commitTS, version uint64) error {
	if len(keys) == 0 {
		return nil
	}
	return s.execute(ctx, reqCtx, keys, func(r *Reader, t *txn) error {
		for _, key := range keys {
			if err := restoreKey(r, t, key, startTS, commitTS, version); err != nil {
				return err
			}
		}
		return nil
	})
}

// restoreKey writes key's value at version at commitTS, unless its newest
// record is not above version or is already the flashback's own.
func restoreKey(r *Reader, t *txn, key []byte, startTS, commitTS, version uint64) error {
	encoded := EncodeKey(key)
	newest, _, err := latestWrite(r, encoded)
	if err != nil || newest <= version || newest >= commitTS {
		return err
	}
	write, err := flashbackWrite(r, t, encoded, startTS, version)
	if err != nil {
		return err
	}
	t.putWrite(encoded, commitTS, write)
	return nil
}

// commitFlashbackKey commits the flashback's lock on key at commitTS.
func commitFlashbackKey(r *Reader, t *txn, key []byte, startTS, commitTS uint64) error {
	encoded := EncodeKey(key)
	lock, err := r.loadLockEncoded(encoded)
	if err != nil || lock == nil || lock.StartTS != startTS {
		return err
	}
	write := &Write{Type: writeTypeOfLock(lock.Type), StartTS: startTS}
	if write.Type == WriteTypePut {
		write.ShortValue = lock.ShortValue
	}
	t.putWrite(encoded, commitTS, write)
	t.unlock(encoded)
	return nil
}
