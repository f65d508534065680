package mvcc

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// BatchRollback serves KvBatchRollback: it rolls back the transaction on
// every key, whatever the lock's TTL, leaving a Rollback record so that a
// late prewrite fails. Rolling back a committed key fails.
func (s *Store) BatchRollback(ctx context.Context, req *kvrpcpb.BatchRollbackRequest) (*kvrpcpb.BatchRollbackResponse, error) {
	err := s.execute(ctx, req.GetContext(), req.GetKeys(), func(r *Reader, t *txn) error {
		for _, key := range req.GetKeys() {
			if err := cleanupKey(r, t, key, req.GetStartVersion(), 0, false); err != nil {
				return err
			}
		}
		return nil
	})
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	return &kvrpcpb.BatchRollbackResponse{Error: keyErr}, nil
}

// Cleanup serves KvCleanup: it rolls back the transaction on the key if its
// lock expired by current_ts (0: regardless of TTL), with a protected
// Rollback when there is no lock. A committed transaction is reported
// through commit_version.
func (s *Store) Cleanup(ctx context.Context, req *kvrpcpb.CleanupRequest) (*kvrpcpb.CleanupResponse, error) {
	// No async-commit or 1PC commit may land on the protected Rollback.
	s.cm.UpdateMaxTS(req.GetStartVersion())
	var commitTS uint64
	err := s.execute(ctx, req.GetContext(), [][]byte{req.GetKey()}, func(r *Reader, t *txn) error {
		err := cleanupKey(r, t, req.GetKey(), req.GetStartVersion(), req.GetCurrentTs(), true)
		var committed *committedError
		if errors.As(err, &committed) {
			commitTS = committed.commitTS
			return nil
		}
		return err
	})
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	return &kvrpcpb.CleanupResponse{Error: keyErr, CommitVersion: commitTS}, nil
}

// committedError is the KeyError of a rollback of a committed transaction,
// with the commit timestamp Cleanup reports.
type committedError struct {
	keyErr   *KeyError
	commitTS uint64
}

func (c *committedError) Error() string { return c.keyErr.Error() }

// Unwrap exposes the KeyError to ToKeyError and errors.Is.
func (c *committedError) Unwrap() error { return c.keyErr }

// cleanupKey rolls back transaction startTS on the raw key (TiKV's cleanup
// action). With currentTS != 0 a lock that has not expired is reported as
// KeyIsLocked instead.
func cleanupKey(r *Reader, t *txn, key []byte, startTS, currentTS uint64, protect bool) error {
	encoded := EncodeKey(key)
	lock, err := r.loadLockEncoded(encoded)
	if err != nil {
		return err
	}
	if lock != nil && lock.StartTS == startTS {
		if currentTS != 0 && !lockExpired(lock, currentTS) {
			return errKeyIsLocked(lock.LockInfo(key))
		}
		return rollbackLock(r, t, encoded, key, lock, !protect)
	}
	status, err := checkMissingLock(r, t, encoded, key, startTS, lock, missingLockRollback(protect), false)
	if err != nil {
		return err
	}
	if status.kind == statusCommitted {
		return &committedError{
			keyErr:   errAbort(ErrAlreadyCommitted, "start_ts %d key %q committed at %d", startTS, key, status.commitTS),
			commitTS: status.commitTS,
		}
	}
	return nil
}

// lockExpired reports whether the lock's TTL ran out before currentTS.
func lockExpired(lock *Lock, currentTS uint64) bool {
	return Physical(lock.StartTS)+lock.TTL < Physical(currentTS)
}

// rollbackLock removes the transaction's lock on the key and leaves a
// Rollback record (protected for the primary of a pessimistic
// transaction), deleting the value of a long Put.
func rollbackLock(r *Reader, t *txn, encoded, key []byte, lock *Lock, collapse bool) error {
	rec, err := r.txnCommitRecord(encoded, lock.StartTS)
	if err != nil {
		return err
	}
	if rec.committed() {
		return fmt.Errorf("mvcc: key %q has both a lock and a commit record of %d: %w", key, lock.StartTS, ErrCorrupted)
	}
	if rec.rolledBack() {
		t.unlock(encoded)
		return nil
	}
	if lock.hasLongValue() {
		t.deleteValue(encoded, lock.StartTS)
	}
	protected := lock.IsPessimisticTxn() && bytes.Equal(key, lock.Primary)
	putRollback(t, encoded, lock.StartTS, protected, rec.overlapped)
	if collapse {
		if err := collapsePrevRollback(r, t, encoded, lock.StartTS); err != nil {
			return err
		}
	}
	t.unlock(encoded)
	return nil
}

// putRollback writes the Rollback record of transaction ts. When another
// transaction committed at ts, its record is kept and, for a protected
// rollback, flagged as carrying the rollback.
func putRollback(t *txn, encoded []byte, ts uint64, protected bool, overlapped *Write) {
	if overlapped == nil {
		t.putWrite(encoded, ts, newRollback(ts, protected))
		return
	}
	if protected {
		flagged := *overlapped
		flagged.HasOverlappedRollback = true
		t.putWrite(encoded, ts, &flagged)
	}
}

// collapsePrevRollback deletes the newest record below ts if it is an
// unprotected Rollback: the new Rollback at ts makes it redundant for
// conflict detection, and collapsing keeps Rollback records from piling up
// on hot keys.
func collapsePrevRollback(r *Reader, t *txn, encoded []byte, ts uint64) error {
	if ts == 0 {
		return nil
	}
	return r.versions(encoded, ts-1, func(commitTS uint64, w *Write) bool {
		if w.Type == WriteTypeRollback && !w.IsProtectedRollback() {
			t.deleteWrite(encoded, commitTS)
		}
		return false
	})
}

// missingLockAction says what to do about a transaction without a lock or
// commit record on a key.
type missingLockAction int

const (
	missingReturnError missingLockAction = iota
	missingRollback
	missingProtectedRollback
)

func missingLockRollback(protect bool) missingLockAction {
	if protect {
		return missingProtectedRollback
	}
	return missingRollback
}

// statusKind is what a command found out about a transaction.
type statusKind int

const (
	statusUncommitted statusKind = iota
	statusCommitted
	statusRolledBack
	statusTTLExpire
	statusLockNotExist
	statusLockNotExistDoNothing
	statusPessimisticRollback
)

type txnStatus struct {
	kind statusKind
	// commitTS is set for statusCommitted.
	commitTS uint64
	// lock is set for statusUncommitted.
	lock              *Lock
	minCommitTSPushed bool
}

// checkMissingLock is TiKV's check_txn_status_missing_lock: the key has no
// lock of transaction startTS (mismatch is another transaction's lock, or
// nil). It reports a commit or rollback found in CfWrite; otherwise, as
// action says, it fails with TxnNotFound or writes a Rollback record.
func checkMissingLock(r *Reader, t *txn, encoded, key []byte, startTS uint64, mismatch *Lock,
	action missingLockAction, resolvingPessimistic bool) (txnStatus, error) {
	rec, err := r.txnCommitRecord(encoded, startTS)
	if err != nil {
		return txnStatus{}, err
	}
	switch {
	case rec.committed():
		return txnStatus{kind: statusCommitted, commitTS: rec.commitTS}, nil
	case rec.rolledBack():
		return txnStatus{kind: statusRolledBack}, nil
	case action == missingReturnError:
		return txnStatus{}, errTxnNotFound(startTS, key)
	case resolvingPessimistic:
		return txnStatus{kind: statusLockNotExistDoNothing}, nil
	}
	protected := action == missingProtectedRollback
	if !protected {
		if err := collapsePrevRollback(r, t, encoded, startTS); err != nil {
			return txnStatus{}, err
		}
	}
	if mismatch != nil && rec.overlapped == nil {
		markRollbackOnLock(t, encoded, mismatch, startTS, protected)
	}
	putRollback(t, encoded, startTS, protected, rec.overlapped)
	return txnStatus{kind: statusLockNotExist}, nil
}

// markRollbackOnLock records a protected rollback at ts in another
// transaction's async-commit lock that started before ts: that transaction
// may commit exactly at ts, and its commit record must then keep the
// rollback (Write.HasOverlappedRollback). Normal locks commit at a fresh
// TSO timestamp, never at another transaction's start_ts.
func markRollbackOnLock(t *txn, encoded []byte, lock *Lock, ts uint64, protected bool) {
	if !protected || !lock.UseAsyncCommit || lock.StartTS > ts {
		return
	}
	marked := *lock
	marked.RollbackTS = append(append([]uint64(nil), lock.RollbackTS...), ts)
	t.putLock(encoded, &marked)
}
