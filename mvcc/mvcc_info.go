package mvcc

import (
	"bytes"
	"context"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/engine"
)

// MvccGetByKey returns everything stored about a raw key: its lock, its
// write records newest first, and its CfDefault values newest first, read
// for reqCtx, the request's context.
func (s *Store) MvccGetByKey(ctx context.Context, reqCtx *kvrpcpb.Context, key []byte) (*kvrpcpb.MvccInfo, error) {
	var info *kvrpcpb.MvccInfo
	err := s.withReader(ctx, reqCtx, func(r *Reader) (err error) {
		info, err = r.mvccInfo(EncodeKey(key))
		return err
	})
	return info, err
}

// MvccGetByStartTs finds a key written by transaction startTS (locked by
// it, or with a record of it) and returns the key and its MvccInfo; a nil
// key means none was found. It scans the whole snapshot, taken for reqCtx,
// the request's context.
func (s *Store) MvccGetByStartTs(ctx context.Context, reqCtx *kvrpcpb.Context, startTS uint64) ([]byte, *kvrpcpb.MvccInfo, error) {
	var key []byte
	var info *kvrpcpb.MvccInfo
	err := s.withReader(ctx, reqCtx, func(r *Reader) error {
		encoded, err := r.findKeyOfTxn(startTS)
		if err != nil || encoded == nil {
			return err
		}
		if key, err = DecodeKey(encoded); err != nil {
			return err
		}
		info, err = r.mvccInfo(encoded)
		return err
	})
	return key, info, err
}

func (r *Reader) findKeyOfTxn(startTS uint64) ([]byte, error) {
	locks, err := r.ScanLocks(nil, nil, 1, func(l *Lock) bool { return l.StartTS == startTS })
	if err != nil {
		return nil, err
	}
	if len(locks) > 0 {
		return EncodeKey(locks[0].Key), nil
	}
	it := r.snap.NewIterator(engine.CfWrite, engine.IterOptions{})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		value, err := it.Value()
		if err != nil {
			return nil, err
		}
		w, err := UnmarshalWrite(value)
		if err != nil {
			return nil, err
		}
		if w.StartTS == startTS {
			encoded, _, err := SplitVersionedKey(it.Key())
			return append([]byte(nil), encoded...), err
		}
	}
	return nil, nil
}

func (r *Reader) mvccInfo(encoded []byte) (*kvrpcpb.MvccInfo, error) {
	info := &kvrpcpb.MvccInfo{}
	lock, err := r.loadLockEncoded(encoded)
	if err != nil {
		return nil, err
	}
	if lock != nil {
		info.Lock = mvccLock(lock)
	}
	err = r.versions(encoded, MaxTS, func(commitTS uint64, w *Write) bool {
		info.Writes = append(info.Writes, &kvrpcpb.MvccWrite{
			Type:                  w.Op(),
			StartTs:               w.StartTS,
			CommitTs:              commitTS,
			ShortValue:            w.ShortValue,
			HasOverlappedRollback: w.HasOverlappedRollback,
			HasGcFence:            w.HasGCFence,
			GcFence:               w.GCFence,
			LastChangeTs:          w.LastChangeTS,
			VersionsToLastChange:  w.VersionsToLastChange,
		})
		return true
	})
	if err != nil {
		return nil, err
	}
	info.Values, err = r.defaultValues(encoded)
	return info, err
}

func mvccLock(l *Lock) *kvrpcpb.MvccLock {
	return &kvrpcpb.MvccLock{
		Type:                 l.Op(),
		StartTs:              l.StartTS,
		Primary:              l.Primary,
		ShortValue:           l.ShortValue,
		Ttl:                  l.TTL,
		ForUpdateTs:          l.ForUpdateTS,
		TxnSize:              l.TxnSize,
		UseAsyncCommit:       l.UseAsyncCommit,
		Secondaries:          l.Secondaries,
		RollbackTs:           l.RollbackTS,
		LastChangeTs:         l.LastChangeTS,
		VersionsToLastChange: l.VersionsToLastChange,
	}
}

func (r *Reader) defaultValues(encoded []byte) ([]*kvrpcpb.MvccValue, error) {
	it := r.snap.NewIterator(engine.CfDefault, engine.IterOptions{
		LowerBound: encoded,
		UpperBound: keyVersionsEnd(encoded),
	})
	defer it.Close()
	var values []*kvrpcpb.MvccValue
	for it.Rewind(); it.Valid(); it.Next() {
		key, startTS, err := SplitVersionedKey(it.Key())
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(key, encoded) {
			continue
		}
		value, err := it.Value()
		if err != nil {
			return nil, err
		}
		values = append(values, &kvrpcpb.MvccValue{StartTs: startTS, Value: value})
	}
	return values, nil
}
