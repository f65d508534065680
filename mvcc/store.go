package mvcc

import (
	"context"
	"math"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/storage"
)

// defaultLatchSlots is the number of latch slots of a Store.
const defaultLatchSlots = 1 << 12

// Store runs TiKV's transactional KV commands over a storage.Storage. Every
// write command holds the latches of its keys from the snapshot it reads
// until its modifies are written, so commands on the same keys are
// serialised. Methods take kvrpcpb requests and return kvrpcpb responses
// with transaction errors in the fields where TiKV puts them; a returned
// error is a storage failure. Every snapshot and write of a command is
// addressed with the command's request context (req.GetContext()). Region
// errors are left to the caller: a storage error carrying a
// *storage.RegionError is returned as it is, never turned into a key error.
type Store struct {
	storage storage.Storage
	latches *Latches
	cm      *ConcurrencyManager
}

// NewStore returns a Store over st using cm for max_ts and in-memory locks.
func NewStore(st storage.Storage, cm *ConcurrencyManager) *Store {
	return &Store{storage: st, latches: NewLatches(defaultLatchSlots), cm: cm}
}

// ConcurrencyManager returns the Store's concurrency manager.
func (s *Store) ConcurrencyManager() *ConcurrencyManager { return s.cm }

// execute runs a write command: under the latches of keys, fn reads a
// fresh snapshot and buffers modifies, which are written if fn succeeds.
// The snapshot and the write are addressed with reqCtx, the request
// context of the command (nil for work that serves no request).
func (s *Store) execute(ctx context.Context, reqCtx *kvrpcpb.Context, keys [][]byte, fn func(r *Reader, t *txn) error) error {
	guard := s.latches.Acquire(keys)
	defer guard.Release()
	t := &txn{}
	if err := s.withReader(ctx, reqCtx, func(r *Reader) error { return fn(r, t) }); err != nil {
		return err
	}
	return s.storage.Write(ctx, reqCtx, t.modifies)
}

// withReader calls fn with a reader over a fresh snapshot taken for
// reqCtx.
func (s *Store) withReader(ctx context.Context, reqCtx *kvrpcpb.Context, fn func(r *Reader) error) error {
	snap, err := s.storage.Snapshot(ctx, reqCtx)
	if err != nil {
		return err
	}
	defer snap.Close()
	r := NewReader(snap)
	defer r.Close()
	return fn(r)
}

// splitKeyError separates a transaction error (returned as the proto) from
// a storage failure (returned as err). A region error is a storage failure
// whatever else its chain holds.
func splitKeyError(err error) (*kvrpcpb.KeyError, error) {
	if err == nil || storage.AsRegionError(err) != nil {
		return nil, err
	}
	if keyErr, ok := ToKeyError(err); ok {
		return keyErr, nil
	}
	return nil, err
}

// prepareRead raises max_ts to the read's timestamp and checks the
// in-memory locks of async-commit and 1PC prewrites in flight, in that
// order (see ConcurrencyManager).
func (s *Store) prepareRead(opts ReadOptions, checkMemory func(check func(key []byte, lock *Lock) error) error) error {
	if !opts.checksLocks() {
		return nil
	}
	s.cm.UpdateMaxTS(opts.TS)
	return checkMemory(func(key []byte, lock *Lock) error { return opts.checkLock(key, lock) })
}

func (s *Store) prepareKeyRead(opts ReadOptions, key []byte) error {
	return s.prepareRead(opts, func(check func([]byte, *Lock) error) error {
		return s.cm.CheckKey(key, func(lock *Lock) error { return check(key, lock) })
	})
}

// Get serves KvGet.
func (s *Store) Get(ctx context.Context, req *kvrpcpb.GetRequest) (*kvrpcpb.GetResponse, error) {
	opts := ReadOptionsFromContext(req.GetContext(), req.GetVersion())
	var value []byte
	var found bool
	err := s.prepareKeyRead(opts, req.GetKey())
	if err == nil {
		err = s.withReader(ctx, req.GetContext(), func(r *Reader) (err error) {
			value, found, err = r.Get(req.GetKey(), opts)
			return err
		})
	}
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	return &kvrpcpb.GetResponse{Error: keyErr, Value: value, NotFound: keyErr == nil && !found}, nil
}

// BatchGet serves KvBatchGet: found keys become pairs, locked keys pairs
// carrying the KeyError, missing keys are left out. Like every read, it
// raises max_ts and checks the in-memory locks before taking its snapshot.
func (s *Store) BatchGet(ctx context.Context, req *kvrpcpb.BatchGetRequest) (*kvrpcpb.BatchGetResponse, error) {
	opts := ReadOptionsFromContext(req.GetContext(), req.GetVersion())
	memoryErrs := make([]error, len(req.GetKeys()))
	for i, key := range req.GetKeys() {
		memoryErrs[i] = s.prepareKeyRead(opts, key)
	}
	pairs, err := s.readPairs(ctx, req.GetContext(), req.GetKeys(), func(r *Reader, i int, key []byte) (*kvrpcpb.KvPair, error) {
		return batchGetPair(r, key, opts, memoryErrs[i])
	})
	if err != nil {
		return nil, err
	}
	return &kvrpcpb.BatchGetResponse{Pairs: pairs}, nil
}

// readPairs reads, from one snapshot taken for reqCtx, the pair of each key
// in order (pairOf gets the key's index); a nil pair is left out.
func (s *Store) readPairs(ctx context.Context, reqCtx *kvrpcpb.Context, keys [][]byte,
	pairOf func(r *Reader, i int, key []byte) (*kvrpcpb.KvPair, error)) ([]*kvrpcpb.KvPair, error) {
	var pairs []*kvrpcpb.KvPair
	err := s.withReader(ctx, reqCtx, func(r *Reader) error {
		for i, key := range keys {
			pair, err := pairOf(r, i, key)
			if err != nil {
				return err
			}
			if pair != nil {
				pairs = append(pairs, pair)
			}
		}
		return nil
	})
	return pairs, err
}

// batchGetPair reads one key of a BatchGet whose in-memory lock check gave
// memoryErr.
func batchGetPair(r *Reader, key []byte, opts ReadOptions, memoryErr error) (*kvrpcpb.KvPair, error) {
	err := memoryErr
	var value []byte
	var found bool
	if err == nil {
		value, found, err = r.Get(key, opts)
	}
	keyErr, err := splitKeyError(err)
	switch {
	case err != nil:
		return nil, err
	case keyErr != nil:
		return &kvrpcpb.KvPair{Key: key, Error: keyErr}, nil
	case found:
		return &kvrpcpb.KvPair{Key: key, Value: value}, nil
	default:
		return nil, nil
	}
}

// Scan serves KvScan. A reverse scan takes start_key as the exclusive
// upper bound and end_key as the inclusive lower bound, as client-go sends
// them.
func (s *Store) Scan(ctx context.Context, req *kvrpcpb.ScanRequest) (*kvrpcpb.ScanResponse, error) {
	opts := ScanOptions{
		ReadOptions: ReadOptionsFromContext(req.GetContext(), req.GetVersion()),
		Start:       req.GetStartKey(),
		End:         req.GetEndKey(),
		Reverse:     req.GetReverse(),
		KeyOnly:     req.GetKeyOnly(),
		Limit:       int(req.GetLimit()),
	}
	if opts.Reverse {
		opts.Start, opts.End = req.GetEndKey(), req.GetStartKey()
	}
	var pairs []*kvrpcpb.KvPair
	err := s.prepareRead(opts.ReadOptions, func(check func([]byte, *Lock) error) error {
		return s.cm.CheckRange(opts.Start, opts.End, check)
	})
	if err == nil {
		err = s.withReader(ctx, req.GetContext(), func(r *Reader) (err error) {
			pairs, err = r.Scan(opts)
			return err
		})
	}
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	return &kvrpcpb.ScanResponse{Pairs: pairs, Error: keyErr}, nil
}

// ScanLock serves KvScanLock: locks with start_ts <= max_version in
// [start_key, end_key), up to limit.
func (s *Store) ScanLock(ctx context.Context, req *kvrpcpb.ScanLockRequest) (*kvrpcpb.ScanLockResponse, error) {
	s.cm.UpdateMaxTS(req.GetMaxVersion())
	maxVersion := req.GetMaxVersion()
	var infos []*kvrpcpb.LockInfo
	err := s.cm.CheckRange(req.GetStartKey(), req.GetEndKey(), func(key []byte, lock *Lock) error {
		if lock.StartTS <= maxVersion {
			return errKeyIsLocked(lock.LockInfo(key))
		}
		return nil
	})
	if err == nil {
		err = s.withReader(ctx, req.GetContext(), func(r *Reader) error {
			locks, err := r.ScanLocks(req.GetStartKey(), req.GetEndKey(), int(req.GetLimit()),
				func(l *Lock) bool { return l.StartTS <= maxVersion })
			for _, kl := range locks {
				infos = append(infos, kl.Lock.LockInfo(kl.Key))
			}
			return err
		})
	}
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	return &kvrpcpb.ScanLockResponse{Error: keyErr, Locks: infos}, nil
}

// LockedTxns calls visit for every transaction that holds a lock with
// start_ts at most maxTS, with its start_ts and the generation of one of its
// locks (a pipelined-DML transaction writes only locks of generation > 0,
// others only of generation 0): first for the in-memory locks of
// async-commit and 1PC prewrites being written (in no order; a transaction
// may come more than once), then for the stored locks, each transaction
// once, by ascending start_ts. Its cost grows with the number of
// transactions, not of locks. It serves no request: its snapshot is taken
// without a request context, and the locks it finds are the whole store's.
func (s *Store) LockedTxns(ctx context.Context, maxTS uint64, visit func(startTS, generation uint64)) error {
	err := s.cm.CheckRange(nil, nil, func(_ []byte, l *Lock) error {
		if l.StartTS <= maxTS {
			visit(l.StartTS, l.Generation)
		}
		return nil
	})
	if err != nil {
		return err
	}
	snap, err := s.storage.Snapshot(ctx, nil)
	if err != nil {
		return err
	}
	defer snap.Close()
	for from := uint64(0); from <= maxTS; {
		value, ok := snap.NextLockByStartTS(from)
		if !ok {
			return nil
		}
		lock, err := UnmarshalLock(value)
		if err != nil {
			return err
		}
		if lock.StartTS > maxTS {
			return nil
		}
		visit(lock.StartTS, lock.Generation)
		if lock.StartTS == math.MaxUint64 {
			return nil
		}
		from = lock.StartTS + 1
	}
	return nil
}

// Storage returns the storage the Store reads and writes.
func (s *Store) Storage() storage.Storage { return s.storage }
