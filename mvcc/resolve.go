package mvcc

import (
	"context"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// resolveLockBatch is how many locks ResolveLock resolves per write.
const resolveLockBatch = 256

// ResolveLock serves KvResolveLock: it commits (commit_version != 0) or
// rolls back (commit_version == 0) the locks of the transaction
// start_version, or of every transaction in txn_infos (status = commit
// timestamp). With keys it resolves just those keys; otherwise it scans
// CfLock for the transactions' locks and resolves them in batches, each
// under the latches of its keys.
func (s *Store) ResolveLock(ctx context.Context, req *kvrpcpb.ResolveLockRequest) (*kvrpcpb.ResolveLockResponse, error) {
	commitTSOf := map[uint64]uint64{req.GetStartVersion(): req.GetCommitVersion()}
	if len(req.GetTxnInfos()) > 0 {
		commitTSOf = make(map[uint64]uint64, len(req.GetTxnInfos()))
		for _, info := range req.GetTxnInfos() {
			commitTSOf[info.GetTxn()] = info.GetStatus()
		}
	}
	var err error
	if len(req.GetKeys()) > 0 {
		err = s.resolveKeys(ctx, req.GetContext(), req.GetKeys(), req.GetStartVersion(), req.GetCommitVersion())
	} else {
		err = s.resolveScannedLocks(ctx, req.GetContext(), commitTSOf)
	}
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	return &kvrpcpb.ResolveLockResponse{Error: keyErr}, nil
}

// resolveKeys resolves the given keys of one transaction.
func (s *Store) resolveKeys(ctx context.Context, reqCtx *kvrpcpb.Context, keys [][]byte, startTS, commitTS uint64) error {
	return s.execute(ctx, reqCtx, keys, func(r *Reader, t *txn) error {
		for _, key := range keys {
			if err := resolveKey(r, t, key, startTS, commitTS); err != nil {
				return err
			}
		}
		return nil
	})
}

// resolveScannedLocks finds the locks of the transactions in commitTSOf
// and resolves them, a batch at a time.
func (s *Store) resolveScannedLocks(ctx context.Context, reqCtx *kvrpcpb.Context, commitTSOf map[uint64]uint64) error {
	var start []byte
	for {
		var locks []KeyLock
		err := s.withReader(ctx, reqCtx, func(r *Reader) (err error) {
			locks, err = r.ScanLocks(start, nil, resolveLockBatch, func(l *Lock) bool {
				_, ok := commitTSOf[l.StartTS]
				return ok
			})
			return err
		})
		if err != nil || len(locks) == 0 {
			return err
		}
		if err := s.resolveBatch(ctx, reqCtx, locks, commitTSOf); err != nil {
			return err
		}
		if len(locks) < resolveLockBatch {
			return nil
		}
		start = append(append([]byte(nil), locks[len(locks)-1].Key...), 0)
	}
}

// resolveBatch resolves scanned locks under their latches; a lock that
// changed since the scan is resolved by what it is now.
func (s *Store) resolveBatch(ctx context.Context, reqCtx *kvrpcpb.Context, locks []KeyLock, commitTSOf map[uint64]uint64) error {
	keys := make([][]byte, len(locks))
	for i, kl := range locks {
		keys[i] = kl.Key
	}
	return s.execute(ctx, reqCtx, keys, func(r *Reader, t *txn) error {
		for _, key := range keys {
			lock, err := r.LoadLock(key)
			if err != nil {
				return err
			}
			if lock == nil {
				continue
			}
			commitTS, ok := commitTSOf[lock.StartTS]
			if !ok {
				continue
			}
			if err := resolveKey(r, t, key, lock.StartTS, commitTS); err != nil {
				return err
			}
		}
		return nil
	})
}

// resolveKey commits or rolls back transaction startTS on one key.
func resolveKey(r *Reader, t *txn, key []byte, startTS, commitTS uint64) error {
	if commitTS == 0 {
		return cleanupKey(r, t, key, startTS, 0, false)
	}
	if commitTS <= startTS {
		return errAbort(ErrInvalidTxnTso, "resolve %q: commit_ts %d <= start_ts %d", key, commitTS, startTS)
	}
	return commitKey(r, t, key, startTS, commitTS)
}

// CheckSecondaryLocks serves KvCheckSecondaryLocks for an async-commit
// transaction: if every key still has its lock, it returns the locks; if a
// key is committed, commit_ts; if a key is missing its lock and has no
// commit record, it writes a protected Rollback there (so the transaction
// can never commit) and returns neither.
func (s *Store) CheckSecondaryLocks(ctx context.Context, req *kvrpcpb.CheckSecondaryLocksRequest) (*kvrpcpb.CheckSecondaryLocksResponse, error) {
	s.cm.UpdateMaxTS(req.GetStartVersion())
	resp := &kvrpcpb.CheckSecondaryLocksResponse{}
	err := s.execute(ctx, req.GetContext(), req.GetKeys(), func(r *Reader, t *txn) error {
		for _, key := range req.GetKeys() {
			status, err := checkSecondaryLock(r, t, key, req.GetStartVersion())
			if err != nil {
				return err
			}
			switch status.kind {
			case statusUncommitted:
				resp.Locks = append(resp.Locks, status.lock.LockInfo(key))
			case statusCommitted:
				resp.Locks, resp.CommitTs = nil, status.commitTS
				return nil
			default:
				resp.Locks = nil
				return nil
			}
		}
		return nil
	})
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	if keyErr != nil {
		return &kvrpcpb.CheckSecondaryLocksResponse{Error: keyErr}, nil
	}
	return resp, nil
}

// checkSecondaryLock reports one secondary: locked, committed, or rolled
// back (now, if needed). A pessimistic lock is not a prewritten secondary:
// the transaction cannot have committed, so it is rolled back.
func checkSecondaryLock(r *Reader, t *txn, key []byte, startTS uint64) (txnStatus, error) {
	encoded := EncodeKey(key)
	lock, err := r.loadLockEncoded(encoded)
	if err != nil {
		return txnStatus{}, err
	}
	if lock != nil && lock.StartTS == startTS {
		if lock.Type != LockTypePessimistic {
			return txnStatus{kind: statusUncommitted, lock: lock}, nil
		}
		t.unlock(encoded)
		lock = nil
	}
	return checkMissingLock(r, t, encoded, key, startTS, lock, missingProtectedRollback, false)
}
