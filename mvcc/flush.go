package mvcc

import (
	"bytes"
	"context"
	"math"
	"slices"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// Flush serves KvFlush, the write of pipelined DML (TiDB's
// tidb_dml_type = 'bulk'). Such a transaction writes its buffer to the
// store while it runs, in flushes numbered by a generation, and commits by
// committing its primary and resolving the rest of its locks by range.
//
// A flush is an optimistic prewrite whose locks carry the generation, with
// TiKV's settings for them: min_commit_ts start_ts+1 (whatever the request
// says), txn_size the largest uint64 (the transaction's size is unknown, so
// readers never resolve its locks one by one), no async commit or 1PC. A
// key may be flushed again by a later generation, which replaces the lock
// and value of the earlier one; a flush older than the key's lock leaves
// it. Errors are reported as for a prewrite.
func (s *Store) Flush(ctx context.Context, req *kvrpcpb.FlushRequest) (*kvrpcpb.FlushResponse, error) {
	if req.GetGeneration() == 0 {
		err := errAbort(ErrInvalidRequest, "generation should be greater than 0 for Flush requests (start_ts %d)", req.GetStartTs())
		return &kvrpcpb.FlushResponse{Errors: []*kvrpcpb.KeyError{err.Proto()}}, nil
	}
	p := &prewriter{
		req: &kvrpcpb.PrewriteRequest{
			Mutations:      req.GetMutations(),
			PrimaryLock:    req.GetPrimaryKey(),
			StartVersion:   req.GetStartTs(),
			LockTtl:        req.GetLockTtl(),
			TxnSize:        math.MaxUint64,
			MinCommitTs:    req.GetStartTs() + 1,
			AssertionLevel: req.GetAssertionLevel(),
		},
		cm:         s.cm,
		generation: req.GetGeneration(),
	}
	keyErrs, err := s.prewrite(ctx, req.GetContext(), p)
	if err != nil {
		return nil, err
	}
	return &kvrpcpb.FlushResponse{Errors: keyErrs}, nil
}

// BufferBatchGet serves KvBufferBatchGet: a pipelined-DML transaction
// (start_ts = version) reads back what it has flushed. Only the locks are
// read, never committed data or other transactions' locks. A key flushed
// as a Put gives its value; one flushed as a Delete gives an empty value,
// as in the client's own buffer; other keys are left out. The pairs come
// in key order, each key once.
func (s *Store) BufferBatchGet(ctx context.Context, req *kvrpcpb.BufferBatchGetRequest) (*kvrpcpb.BufferBatchGetResponse, error) {
	keys := slices.Clone(req.GetKeys())
	slices.SortFunc(keys, bytes.Compare)
	keys = slices.CompactFunc(keys, bytes.Equal)
	pairs, err := s.readPairs(ctx, req.GetContext(), keys, func(r *Reader, _ int, key []byte) (*kvrpcpb.KvPair, error) {
		return bufferedPair(r, key, req.GetVersion())
	})
	if err != nil {
		return nil, err
	}
	return &kvrpcpb.BufferBatchGetResponse{Pairs: pairs}, nil
}

// bufferedPair is key's pair in a BufferBatchGet of transaction startTS,
// nil if the transaction has not flushed the key.
func bufferedPair(r *Reader, key []byte, startTS uint64) (*kvrpcpb.KvPair, error) {
	encoded := EncodeKey(key)
	lock, err := r.loadLockEncoded(encoded)
	if err != nil || lock == nil || lock.StartTS != startTS {
		return nil, err
	}
	switch lock.Type {
	case LockTypePut:
		value, err := r.loadValue(encoded, startTS, lock.ShortValue)
		if err != nil {
			return nil, err
		}
		return &kvrpcpb.KvPair{Key: key, Value: value}, nil
	case LockTypeDelete:
		return &kvrpcpb.KvPair{Key: key, Value: []byte{}}, nil
	default:
		keyErr := errAbort(ErrInvalidRequest, "buffer batch get of %q: transaction %d holds a %v lock there; pipelined DML flushes only puts and deletes",
			key, startTS, lock.Op())
		return &kvrpcpb.KvPair{Key: key, Error: keyErr.Proto()}, nil
	}
}
