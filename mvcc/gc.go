package mvcc

import (
	"context"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/storage"
)

// gcBatchKeys is how many user keys GC cleans per write.
const gcBatchKeys = 256

// deleteRangeBatch is how many engine keys DeleteRange deletes per write.
const deleteRangeBatch = 10_000

// GC removes the versions no read at or above safePoint can see, for raw
// keys in [start, end) (empty end: unbounded). Per key, versions newer than
// safePoint stay; of the older ones only the newest Put stays (with its
// value). A newest Delete below the safe point goes too, as do Lock and
// Rollback records, which matter only to transactions that can no longer
// run. Locks are left alone. Each batch of keys is cleaned under latches.
// Reads and writes are addressed with reqCtx: the context of the KvGC
// request served, or nil for the store's own GC.
func (s *Store) GC(ctx context.Context, reqCtx *kvrpcpb.Context, start, end []byte, safePoint uint64) error {
	next := start
	for {
		var keys [][]byte
		err := s.withReader(ctx, reqCtx, func(r *Reader) (err error) {
			keys, err = r.scanUserKeys(next, end, gcBatchKeys)
			return err
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		if err := s.gcKeys(ctx, reqCtx, keys, safePoint); err != nil {
			return err
		}
		if len(keys) < gcBatchKeys {
			return nil
		}
		next = append(append([]byte(nil), keys[len(keys)-1]...), 0)
	}
}

func (s *Store) gcKeys(ctx context.Context, reqCtx *kvrpcpb.Context, keys [][]byte, safePoint uint64) error {
	return s.execute(ctx, reqCtx, keys, func(r *Reader, t *txn) error {
		for _, key := range keys {
			if err := gcKey(r, t, EncodeKey(key), safePoint); err != nil {
				return err
			}
		}
		return nil
	})
}

// gcKey buffers the deletes of one key's obsolete versions.
func gcKey(r *Reader, t *txn, encoded []byte, safePoint uint64) error {
	// removeOlder: a newer version at or below the safe point already
	// decides what every read at or above it sees.
	removeOlder := false
	return r.versions(encoded, safePoint, func(commitTS uint64, w *Write) bool {
		if !removeOlder && w.Type == WriteTypePut {
			removeOlder = true
			return true
		}
		if w.Type == WriteTypeDelete {
			// A newest Delete reads the same as no version at all.
			removeOlder = true
		}
		t.deleteWrite(encoded, commitTS)
		if w.Type == WriteTypePut && w.ShortValue == nil {
			t.deleteValue(encoded, w.StartTS)
		}
		return true
	})
}

// scanUserKeys returns up to limit distinct raw keys with versions in
// CfWrite within [start, end).
func (r *Reader) scanUserKeys(start, end []byte, limit int) ([][]byte, error) {
	it := r.snap.NewIterator(engine.CfWrite, lockBounds(start, end, false))
	defer it.Close()
	var keys [][]byte
	for it.Rewind(); it.Valid() && len(keys) < limit; {
		encoded, _, err := SplitVersionedKey(it.Key())
		if err != nil {
			return nil, err
		}
		raw, err := DecodeKey(encoded)
		if err != nil {
			return nil, err
		}
		keys = append(keys, raw)
		it.Seek(keyVersionsEnd(encoded))
	}
	return keys, nil
}

// DeleteRange deletes every lock, write record and value of raw keys in
// [start, end) (empty end: unbounded) through the storage's writes, as
// KvDeleteRange does. It takes no latches and is not atomic: it deletes in batches, so a failure
// leaves part of the range deleted, and concurrent transactions on the
// range see an unspecified state. Reads and writes are addressed with
// reqCtx, the request's context.
func (s *Store) DeleteRange(ctx context.Context, reqCtx *kvrpcpb.Context, start, end []byte) error {
	for _, cf := range engine.AllCFs() {
		if err := s.deleteRangeCF(ctx, reqCtx, cf, lockBounds(start, end, false)); err != nil {
			return err
		}
	}
	return nil
}

// DestroyRange removes every lock, write record and value of raw keys in
// [start, end) (empty end: unbounded) from this store alone, outside
// replication, as UnsafeDestroyRange does. It is not atomic.
func (s *Store) DestroyRange(ctx context.Context, start, end []byte) error {
	bounds := lockBounds(start, end, false)
	return s.storage.DestroyRange(ctx, bounds.LowerBound, bounds.UpperBound)
}

func (s *Store) deleteRangeCF(ctx context.Context, reqCtx *kvrpcpb.Context, cf engine.CF, bounds engine.IterOptions) error {
	bounds.KeyOnly = true
	var batch []storage.Modify
	err := s.withReader(ctx, reqCtx, func(r *Reader) error {
		it := r.snap.NewIterator(cf, bounds)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			batch = append(batch, storage.Modify{CF: cf, Key: append([]byte(nil), it.Key()...), Delete: true})
			if len(batch) == deleteRangeBatch {
				if err := s.storage.Write(ctx, reqCtx, batch); err != nil {
					return err
				}
				batch = nil
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.storage.Write(ctx, reqCtx, batch)
}
