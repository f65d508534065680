package mvcc

import (
	"context"
	"fmt"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// Commit serves KvCommit: it turns the transaction's locks on the keys into
// commit records at commit_version. Committing an already committed key
// succeeds; a key whose lock is gone without a commit record (rolled back)
// fails with TxnLockNotFound, and a commit_version below a lock's
// min_commit_ts with CommitTsExpired. Any error leaves every key as it was.
func (s *Store) Commit(ctx context.Context, req *kvrpcpb.CommitRequest) (*kvrpcpb.CommitResponse, error) {
	startTS, commitTS := req.GetStartVersion(), req.GetCommitVersion()
	if commitTS <= startTS {
		keyErr := errAbort(ErrInvalidTxnTso, "commit_ts %d <= start_ts %d", commitTS, startTS)
		return &kvrpcpb.CommitResponse{Error: keyErr.Proto()}, nil
	}
	err := s.execute(ctx, req.GetContext(), req.GetKeys(), func(r *Reader, t *txn) error {
		for _, key := range req.GetKeys() {
			if err := commitKey(r, t, key, startTS, commitTS); err != nil {
				return err
			}
		}
		return nil
	})
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	return &kvrpcpb.CommitResponse{Error: keyErr}, nil
}

// commitKey commits the lock of transaction startTS on the raw key (TiKV's
// commit action). A pessimistic lock left behind commits as a Lock record.
func commitKey(r *Reader, t *txn, key []byte, startTS, commitTS uint64) error {
	encoded := EncodeKey(key)
	lock, err := r.loadLockEncoded(encoded)
	if err != nil {
		return err
	}
	if lock == nil || lock.StartTS != startTS {
		return commitWithoutLock(r, encoded, key, startTS, commitTS)
	}
	if commitTS < lock.MinCommitTS {
		return errCommitTsExpired(startTS, commitTS, lock.MinCommitTS, key)
	}
	write := &Write{
		Type:                  writeTypeOfLock(lock.Type),
		StartTS:               startTS,
		HasOverlappedRollback: containsTS(lock.RollbackTS, commitTS),
	}
	if write.Type == WriteTypePut {
		write.ShortValue = lock.ShortValue
	}
	t.putWrite(encoded, commitTS, write)
	t.unlock(encoded)
	return nil
}

// commitWithoutLock decides a commit whose lock is missing: success if the
// transaction is already committed, TxnLockNotFound otherwise.
func commitWithoutLock(r *Reader, encoded, key []byte, startTS, commitTS uint64) error {
	rec, err := r.txnCommitRecord(encoded, startTS)
	if err != nil {
		return fmt.Errorf("mvcc: commit %q: %w", key, err)
	}
	if rec.committed() {
		return nil
	}
	return errTxnLockNotFound(startTS, commitTS, key)
}
