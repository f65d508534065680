package mvcc

import (
	"bytes"
	"context"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// CheckTxnStatus serves KvCheckTxnStatus on a transaction's primary key:
// it reports the transaction committed (commit_version), rolled back, or
// alive (lock_ttl and lock_info), rolling back an expired lock and, if
// asked, a transaction that never wrote the primary. For a live lock it may
// push min_commit_ts above caller_start_ts so the caller's read need not
// wait. Async-commit locks are never rolled back here (unless
// force_sync_commit): the caller resolves them with CheckSecondaryLocks.
func (s *Store) CheckTxnStatus(ctx context.Context, req *kvrpcpb.CheckTxnStatusRequest) (*kvrpcpb.CheckTxnStatusResponse, error) {
	// A Rollback record written here at lock_ts must not be overwritten by
	// an async-commit or 1PC commit record at the same timestamp.
	s.cm.UpdateMaxTS(req.GetLockTs())
	var status txnStatus
	err := s.execute(ctx, req.GetContext(), [][]byte{req.GetPrimaryKey()}, func(r *Reader, t *txn) (err error) {
		status, err = checkTxnStatus(r, t, req)
		return err
	})
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	if keyErr != nil {
		return &kvrpcpb.CheckTxnStatusResponse{Error: keyErr}, nil
	}
	return checkTxnStatusResponse(status), nil
}

func checkTxnStatus(r *Reader, t *txn, req *kvrpcpb.CheckTxnStatusRequest) (txnStatus, error) {
	key := req.GetPrimaryKey()
	encoded := EncodeKey(key)
	lock, err := r.loadLockEncoded(encoded)
	if err != nil {
		return txnStatus{}, err
	}
	if lock != nil && lock.StartTS == req.GetLockTs() {
		return checkLockStatus(r, t, encoded, key, lock, req)
	}
	action := missingReturnError
	if req.GetRollbackIfNotExist() {
		action = missingProtectedRollback
	}
	return checkMissingLock(r, t, encoded, key, req.GetLockTs(), lock, action, req.GetResolvingPessimisticLock())
}

// checkLockStatus decides about the transaction's own lock on its primary.
func checkLockStatus(r *Reader, t *txn, encoded, key []byte, lock *Lock, req *kvrpcpb.CheckTxnStatusRequest) (txnStatus, error) {
	if req.GetVerifyIsPrimary() && !bytes.Equal(lock.Primary, key) {
		return txnStatus{}, errPrimaryMismatch(lock.LockInfo(key))
	}
	if lock.UseAsyncCommit && !req.GetForceSyncCommit() {
		return txnStatus{kind: statusUncommitted, lock: lock}, nil
	}
	if lockExpired(lock, req.GetCurrentTs()) {
		if req.GetResolvingPessimisticLock() && lock.Type == LockTypePessimistic {
			t.unlock(encoded)
			return txnStatus{kind: statusPessimisticRollback}, nil
		}
		if err := rollbackLock(r, t, encoded, key, lock, true); err != nil {
			return txnStatus{}, err
		}
		return txnStatus{kind: statusTTLExpire}, nil
	}
	callerStartTS := req.GetCallerStartTs()
	// min_commit_ts 0 marks a lock of a client that does not support
	// pushing; MaxTS callers are autocommit point gets, which just skip the
	// lock.
	if lock.MinCommitTS != 0 && lock.Type != LockTypePessimistic && callerStartTS != MaxTS &&
		callerStartTS >= lock.MinCommitTS {
		pushed := *lock
		pushed.MinCommitTS = max(callerStartTS+1, req.GetCurrentTs())
		t.putLock(encoded, &pushed)
		return txnStatus{kind: statusUncommitted, lock: &pushed, minCommitTSPushed: true}, nil
	}
	return txnStatus{kind: statusUncommitted, lock: lock}, nil
}

func checkTxnStatusResponse(status txnStatus) *kvrpcpb.CheckTxnStatusResponse {
	resp := &kvrpcpb.CheckTxnStatusResponse{}
	switch status.kind {
	case statusUncommitted:
		if status.minCommitTSPushed {
			resp.Action = kvrpcpb.Action_MinCommitTSPushed
		}
		resp.LockTtl = status.lock.TTL
		resp.LockInfo = status.lock.LockInfo(status.lock.Primary)
	case statusCommitted:
		resp.CommitVersion = status.commitTS
	case statusRolledBack:
		resp.Action = kvrpcpb.Action_NoAction
	case statusTTLExpire:
		resp.Action = kvrpcpb.Action_TTLExpireRollback
	case statusLockNotExist:
		resp.Action = kvrpcpb.Action_LockNotExistRollback
	case statusLockNotExistDoNothing:
		resp.Action = kvrpcpb.Action_LockNotExistDoNothing
	case statusPessimisticRollback:
		resp.Action = kvrpcpb.Action_TTLExpirePessimisticRollback
	}
	return resp
}

// TxnHeartBeat serves KvTxnHeartBeat: it raises the TTL of the primary lock
// to advise_lock_ttl (never lowers it) and returns the TTL in effect. A
// missing lock is TxnNotFound.
func (s *Store) TxnHeartBeat(ctx context.Context, req *kvrpcpb.TxnHeartBeatRequest) (*kvrpcpb.TxnHeartBeatResponse, error) {
	var ttl uint64
	err := s.execute(ctx, req.GetContext(), [][]byte{req.GetPrimaryLock()}, func(r *Reader, t *txn) error {
		encoded := EncodeKey(req.GetPrimaryLock())
		lock, err := r.loadLockEncoded(encoded)
		if err != nil {
			return err
		}
		if lock == nil || lock.StartTS != req.GetStartVersion() {
			return errTxnNotFound(req.GetStartVersion(), req.GetPrimaryLock())
		}
		updated := *lock
		updated.TTL = max(lock.TTL, req.GetAdviseLockTtl())
		if !lock.UseAsyncCommit {
			updated.MinCommitTS = max(lock.MinCommitTS, req.GetMinCommitTs())
		}
		if updated.TTL != lock.TTL || updated.MinCommitTS != lock.MinCommitTS {
			t.putLock(encoded, &updated)
		}
		ttl = updated.TTL
		return nil
	})
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	return &kvrpcpb.TxnHeartBeatResponse{Error: keyErr, LockTtl: ttl}, nil
}
