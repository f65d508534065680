package tikvsvc

import (
	"context"
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/mvcc"
	"google.golang.org/grpc/status"
)

// contextual is a request that carries a kvrpcpb.Context.
type contextual interface{ GetContext() *kvrpcpb.Context }

// txnCall runs a transactional command after the region checks: the
// context, then that every key lies in the region. Transaction errors come
// back inside the response, and so does a storage failure, as TiKV reports
// one: a region error from storage (splitRegionError) in region_error and
// nothing else; any other failure as a key error whose abort carries the
// message (a failed call would end a client's whole BatchCommands stream,
// failing its other requests too). The store closing is a region error, so
// that the client retries elsewhere; a request whose client has gone ends
// with its context's error. failed builds the response for a region error
// or a key error.
func txnCall[Req contextual, Resp any](s *Service, ctx context.Context, req Req, keys [][]byte,
	run func(context.Context, Req) (Resp, error), failed func(*errorpb.Error, *kvrpcpb.KeyError) Resp) (Resp, error) {
	region, regionErr := s.regions.Check(req.GetContext())
	if regionErr == nil {
		regionErr = checkTxnKeys(region, keys...)
	}
	if regionErr != nil {
		return failed(regionErr, nil), nil
	}
	resp, err := run(ctx, req)
	switch {
	case err == nil:
		return resp, nil
	case ctx.Err() != nil:
		return resp, status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, engine.ErrClosed):
		return failed(&errorpb.Error{Message: "store is closing"}, nil), nil
	}
	if regionErr, _ := splitRegionError(err); regionErr != nil {
		return failed(regionErr, nil), nil
	}
	s.log.Warn("txn aborts", "region_id", region.GetId(), "err", err)
	return failed(nil, &kvrpcpb.KeyError{Abort: err.Error()}), nil
}

// keyErrors is the repeated form of a key error, for the responses that
// carry one per key.
func keyErrors(keyErr *kvrpcpb.KeyError) []*kvrpcpb.KeyError {
	if keyErr == nil {
		return nil
	}
	return []*kvrpcpb.KeyError{keyErr}
}

// mutationsSize is the bytes of the keys and values of mutations, the size
// of the raft entry they would make.
func mutationsSize(mutations []*kvrpcpb.Mutation) int {
	size := 0
	for _, m := range mutations {
		size += len(m.GetKey()) + len(m.GetValue())
	}
	return size
}

func (s *Service) KvGet(ctx context.Context, req *kvrpcpb.GetRequest) (*kvrpcpb.GetResponse, error) {
	return txnCall(s, ctx, req, [][]byte{req.GetKey()}, s.txn.Get,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.GetResponse {
			return &kvrpcpb.GetResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KvBatchGet(ctx context.Context, req *kvrpcpb.BatchGetRequest) (*kvrpcpb.BatchGetResponse, error) {
	return txnCall(s, ctx, req, req.GetKeys(), s.txn.BatchGet,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.BatchGetResponse {
			return &kvrpcpb.BatchGetResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KvScan(ctx context.Context, req *kvrpcpb.ScanRequest) (*kvrpcpb.ScanResponse, error) {
	return txnCall(s, ctx, req, nil, s.txn.Scan,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.ScanResponse {
			return &kvrpcpb.ScanResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KvPrewrite(ctx context.Context, req *kvrpcpb.PrewriteRequest) (*kvrpcpb.PrewriteResponse, error) {
	if regionErr := entryTooLarge(req.GetContext().GetRegionId(), mutationsSize(req.GetMutations())); regionErr != nil {
		return &kvrpcpb.PrewriteResponse{RegionError: regionErr}, nil
	}
	if req.GetUseAsyncCommit() || req.GetTryOnePc() {
		if regionErr := s.maxTS.check(req.GetContext().GetRegionId()); regionErr != nil {
			return &kvrpcpb.PrewriteResponse{RegionError: regionErr}, nil
		}
	}
	return txnCall(s, ctx, req, mvcc.MutationKeys(req.GetMutations()), s.txn.Prewrite,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.PrewriteResponse {
			return &kvrpcpb.PrewriteResponse{RegionError: e, Errors: keyErrors(k)}
		})
}

// KvFlush writes a batch of a pipelined-DML transaction's buffer as locks
// of one generation (mvcc.Store.Flush).
func (s *Service) KvFlush(ctx context.Context, req *kvrpcpb.FlushRequest) (*kvrpcpb.FlushResponse, error) {
	if regionErr := entryTooLarge(req.GetContext().GetRegionId(), mutationsSize(req.GetMutations())); regionErr != nil {
		return &kvrpcpb.FlushResponse{RegionError: regionErr}, nil
	}
	return txnCall(s, ctx, req, mvcc.MutationKeys(req.GetMutations()), s.txn.Flush,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.FlushResponse {
			return &kvrpcpb.FlushResponse{RegionError: e, Errors: keyErrors(k)}
		})
}

// KvBufferBatchGet reads back what a pipelined-DML transaction flushed
// (mvcc.Store.BufferBatchGet).
func (s *Service) KvBufferBatchGet(ctx context.Context, req *kvrpcpb.BufferBatchGetRequest) (*kvrpcpb.BufferBatchGetResponse, error) {
	return txnCall(s, ctx, req, req.GetKeys(), s.txn.BufferBatchGet,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.BufferBatchGetResponse {
			return &kvrpcpb.BufferBatchGetResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KvCommit(ctx context.Context, req *kvrpcpb.CommitRequest) (*kvrpcpb.CommitResponse, error) {
	defer s.waiter.release(req.GetStartVersion())
	return txnCall(s, ctx, req, req.GetKeys(), s.txn.Commit,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.CommitResponse {
			return &kvrpcpb.CommitResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KvCleanup(ctx context.Context, req *kvrpcpb.CleanupRequest) (*kvrpcpb.CleanupResponse, error) {
	defer s.waiter.release(req.GetStartVersion())
	return txnCall(s, ctx, req, [][]byte{req.GetKey()}, s.txn.Cleanup,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.CleanupResponse {
			return &kvrpcpb.CleanupResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KvBatchRollback(ctx context.Context, req *kvrpcpb.BatchRollbackRequest) (*kvrpcpb.BatchRollbackResponse, error) {
	defer s.waiter.release(req.GetStartVersion())
	return txnCall(s, ctx, req, req.GetKeys(), s.txn.BatchRollback,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.BatchRollbackResponse {
			return &kvrpcpb.BatchRollbackResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KvCheckTxnStatus(ctx context.Context, req *kvrpcpb.CheckTxnStatusRequest) (*kvrpcpb.CheckTxnStatusResponse, error) {
	defer s.waiter.release(req.GetLockTs())
	return txnCall(s, ctx, req, [][]byte{req.GetPrimaryKey()}, s.txn.CheckTxnStatus,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.CheckTxnStatusResponse {
			return &kvrpcpb.CheckTxnStatusResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KvTxnHeartBeat(ctx context.Context, req *kvrpcpb.TxnHeartBeatRequest) (*kvrpcpb.TxnHeartBeatResponse, error) {
	return txnCall(s, ctx, req, [][]byte{req.GetPrimaryLock()}, s.txn.TxnHeartBeat,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.TxnHeartBeatResponse {
			return &kvrpcpb.TxnHeartBeatResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KvCheckSecondaryLocks(ctx context.Context, req *kvrpcpb.CheckSecondaryLocksRequest) (*kvrpcpb.CheckSecondaryLocksResponse, error) {
	return txnCall(s, ctx, req, req.GetKeys(), s.txn.CheckSecondaryLocks,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.CheckSecondaryLocksResponse {
			return &kvrpcpb.CheckSecondaryLocksResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KvResolveLock(ctx context.Context, req *kvrpcpb.ResolveLockRequest) (*kvrpcpb.ResolveLockResponse, error) {
	defer s.waiter.release(resolvedTxns(req)...)
	return txnCall(s, ctx, req, req.GetKeys(), s.txn.ResolveLock,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.ResolveLockResponse {
			return &kvrpcpb.ResolveLockResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KvScanLock(ctx context.Context, req *kvrpcpb.ScanLockRequest) (*kvrpcpb.ScanLockResponse, error) {
	return txnCall(s, ctx, req, nil, s.txn.ScanLock,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.ScanLockResponse {
			return &kvrpcpb.ScanLockResponse{RegionError: e, Error: k}
		})
}

func (s *Service) KVPessimisticRollback(ctx context.Context, req *kvrpcpb.PessimisticRollbackRequest) (*kvrpcpb.PessimisticRollbackResponse, error) {
	defer s.waiter.release(req.GetStartVersion())
	return txnCall(s, ctx, req, req.GetKeys(), s.txn.PessimisticRollback,
		func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.PessimisticRollbackResponse {
			return &kvrpcpb.PessimisticRollbackResponse{RegionError: e, Errors: keyErrors(k)}
		})
}

// KvPessimisticLock acquires pessimistic locks. A key locked by another
// transaction makes the request wait in the store — up to its wait_timeout,
// at most defaultLockWait — for that transaction to finish, then try again;
// a wait that would close a cycle of waiting transactions fails at once
// with a deadlock error carrying the wait chain.
func (s *Service) KvPessimisticLock(ctx context.Context, req *kvrpcpb.PessimisticLockRequest) (*kvrpcpb.PessimisticLockResponse, error) {
	deadline := s.raw.now().Add(lockWaitTimeout(req.GetWaitTimeout()))
	for {
		seen := s.waiter.currentGeneration()
		resp, err := txnCall(s, ctx, req, mvcc.MutationKeys(req.GetMutations()), s.txn.PessimisticLock,
			func(e *errorpb.Error, k *kvrpcpb.KeyError) *kvrpcpb.PessimisticLockResponse {
				return &kvrpcpb.PessimisticLockResponse{RegionError: e, Errors: keyErrors(k)}
			})
		blocking, locked := mvcc.BlockingLock(resp)
		remaining := deadline.Sub(s.raw.now())
		if err != nil || !locked || remaining <= 0 {
			return resp, err
		}
		if dl := s.waiter.wait(ctx, seen, req.GetStartVersion(), blocking.LockTS, blocking.Key, remaining); dl != nil {
			return deadlockResponse(req, dl), nil
		}
		if ctx.Err() != nil {
			return resp, nil
		}
	}
}

func deadlockResponse(req *kvrpcpb.PessimisticLockRequest, dl *kvrpcpb.Deadlock) *kvrpcpb.PessimisticLockResponse {
	resp := &kvrpcpb.PessimisticLockResponse{Errors: []*kvrpcpb.KeyError{{Deadlock: dl}}}
	if req.GetWakeUpMode() == kvrpcpb.PessimisticLockWakeUpMode_WakeUpModeForceLock {
		resp.Results = []*kvrpcpb.PessimisticLockKeyResult{{Type: kvrpcpb.PessimisticLockKeyResultType_LockResultFailed}}
	}
	return resp
}

// resolvedTxns lists the transactions a ResolveLock request finishes.
func resolvedTxns(req *kvrpcpb.ResolveLockRequest) []uint64 {
	txns := []uint64{req.GetStartVersion()}
	for _, info := range req.GetTxnInfos() {
		txns = append(txns, info.GetTxn())
	}
	return txns
}

// GetLockWaitInfo lists the pessimistic lock waits in progress.
func (s *Service) GetLockWaitInfo(ctx context.Context, _ *kvrpcpb.GetLockWaitInfoRequest) (*kvrpcpb.GetLockWaitInfoResponse, error) {
	return &kvrpcpb.GetLockWaitInfoResponse{Entries: s.waiter.waitInfo()}, nil
}

// KvGC cleans the versions below the safe point in the region.
func (s *Service) KvGC(ctx context.Context, req *kvrpcpb.GCRequest) (*kvrpcpb.GCResponse, error) {
	region, regionErr := s.regions.Check(req.GetContext())
	if regionErr != nil {
		return &kvrpcpb.GCResponse{RegionError: regionErr}, nil
	}
	start, end, err := rawRegionRange(region)
	if err == nil {
		err = s.txn.GC(ctx, req.GetContext(), start, end, req.GetSafePoint())
	}
	return answer(&kvrpcpb.GCResponse{}, err, func(e *errorpb.Error, err error) *kvrpcpb.GCResponse {
		return &kvrpcpb.GCResponse{RegionError: e, Error: abortError(err)}
	}), nil
}

// KvDeleteRange removes all data of raw keys in [start_key, end_key).
func (s *Service) KvDeleteRange(ctx context.Context, req *kvrpcpb.DeleteRangeRequest) (*kvrpcpb.DeleteRangeResponse, error) {
	if _, regionErr := s.regions.Check(req.GetContext()); regionErr != nil {
		return &kvrpcpb.DeleteRangeResponse{RegionError: regionErr}, nil
	}
	err := s.txn.DeleteRange(ctx, req.GetContext(), req.GetStartKey(), req.GetEndKey())
	return answer(&kvrpcpb.DeleteRangeResponse{}, err, func(e *errorpb.Error, err error) *kvrpcpb.DeleteRangeResponse {
		return &kvrpcpb.DeleteRangeResponse{RegionError: e, Error: errString(err)}
	}), nil
}

// UnsafeDestroyRange is sent to every store, without a region: it removes
// all data of raw keys in [start_key, end_key).
func (s *Service) UnsafeDestroyRange(ctx context.Context, req *kvrpcpb.UnsafeDestroyRangeRequest) (*kvrpcpb.UnsafeDestroyRangeResponse, error) {
	err := s.txn.DestroyRange(ctx, req.GetStartKey(), req.GetEndKey())
	return answer(&kvrpcpb.UnsafeDestroyRangeResponse{}, err, func(e *errorpb.Error, err error) *kvrpcpb.UnsafeDestroyRangeResponse {
		return &kvrpcpb.UnsafeDestroyRangeResponse{RegionError: e, Error: errString(err)}
	}), nil
}

func (s *Service) MvccGetByKey(ctx context.Context, req *kvrpcpb.MvccGetByKeyRequest) (*kvrpcpb.MvccGetByKeyResponse, error) {
	region, regionErr := s.regions.Check(req.GetContext())
	if regionErr == nil {
		regionErr = checkTxnKeys(region, req.GetKey())
	}
	if regionErr != nil {
		return &kvrpcpb.MvccGetByKeyResponse{RegionError: regionErr}, nil
	}
	info, err := s.txn.MvccGetByKey(ctx, req.GetContext(), req.GetKey())
	return answer(&kvrpcpb.MvccGetByKeyResponse{Info: info}, err, func(e *errorpb.Error, err error) *kvrpcpb.MvccGetByKeyResponse {
		return &kvrpcpb.MvccGetByKeyResponse{RegionError: e, Error: errString(err)}
	}), nil
}

func (s *Service) MvccGetByStartTs(ctx context.Context, req *kvrpcpb.MvccGetByStartTsRequest) (*kvrpcpb.MvccGetByStartTsResponse, error) {
	if _, regionErr := s.regions.Check(req.GetContext()); regionErr != nil {
		return &kvrpcpb.MvccGetByStartTsResponse{RegionError: regionErr}, nil
	}
	key, info, err := s.txn.MvccGetByStartTs(ctx, req.GetContext(), req.GetStartTs())
	return answer(&kvrpcpb.MvccGetByStartTsResponse{Key: key, Info: info}, err,
		func(e *errorpb.Error, err error) *kvrpcpb.MvccGetByStartTsResponse {
			return &kvrpcpb.MvccGetByStartTsResponse{RegionError: e, Error: errString(err)}
		}), nil
}

// KvPrepareFlashbackToVersion is the first phase of FLASHBACK CLUSTER on the
// range [start_key, end_key): it rolls back the range's locks and locks its
// first key for the flashback transaction start_ts. Failures are answered
// in the response's error, which TiDB retries.
func (s *Service) KvPrepareFlashbackToVersion(ctx context.Context, req *kvrpcpb.PrepareFlashbackToVersionRequest) (*kvrpcpb.PrepareFlashbackToVersionResponse, error) {
	if _, regionErr := s.regions.Check(req.GetContext()); regionErr != nil {
		return &kvrpcpb.PrepareFlashbackToVersionResponse{RegionError: regionErr}, nil
	}
	err := s.txn.PrepareFlashback(ctx, req.GetContext(), req.GetStartKey(), req.GetEndKey(), req.GetStartTs(), req.GetVersion())
	return answer(&kvrpcpb.PrepareFlashbackToVersionResponse{}, err,
		func(e *errorpb.Error, err error) *kvrpcpb.PrepareFlashbackToVersionResponse {
			return &kvrpcpb.PrepareFlashbackToVersionResponse{RegionError: e, Error: errString(err)}
		}), nil
}

// KvFlashbackToVersion is the second phase: it writes, at commit_ts, the
// values the range's keys had at version and commits the first key's lock.
// A range that is not prepared (never, or already flashed back) gets
// TiKV's FlashbackNotPrepared region error, which TiDB takes as done.
func (s *Service) KvFlashbackToVersion(ctx context.Context, req *kvrpcpb.FlashbackToVersionRequest) (*kvrpcpb.FlashbackToVersionResponse, error) {
	region, regionErr := s.regions.Check(req.GetContext())
	if regionErr != nil {
		return &kvrpcpb.FlashbackToVersionResponse{RegionError: regionErr}, nil
	}
	err := s.txn.Flashback(ctx, req.GetContext(), req.GetStartKey(), req.GetEndKey(), req.GetStartTs(), req.GetCommitTs(), req.GetVersion())
	if errors.Is(err, mvcc.ErrFlashbackNotPrepared) {
		return &kvrpcpb.FlashbackToVersionResponse{RegionError: &errorpb.Error{
			Message:              fmt.Sprintf("region %d is not prepared for the flashback", region.GetId()),
			FlashbackNotPrepared: &errorpb.FlashbackNotPrepared{RegionId: region.GetId()},
		}}, nil
	}
	return answer(&kvrpcpb.FlashbackToVersionResponse{}, err, func(e *errorpb.Error, err error) *kvrpcpb.FlashbackToVersionResponse {
		return &kvrpcpb.FlashbackToVersionResponse{RegionError: e, Error: errString(err)}
	}), nil
}
