package mvcc

import (
	"context"

	"github.com/dgryski/go-farm"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// KeyHash is the hash of a key that TiKV's deadlock detector and client-go
// use (farmhash Fingerprint64), e.g. for Deadlock.deadlock_key_hash.
func KeyHash(key []byte) uint64 { return farm.Fingerprint64(key) }

// LockWait is what a PessimisticLock request that met another
// transaction's lock would wait for: the service layer's lock waiting and
// deadlock detection key on it.
type LockWait struct {
	// Key is the raw key of the blocking lock, KeyHash its KeyHash.
	Key     []byte
	KeyHash uint64
	// LockTS is the start_ts of the transaction holding the lock.
	LockTS uint64
	// Lock is the blocking lock as the client sees it.
	Lock *kvrpcpb.LockInfo
}

// BlockingLock returns the lock that made a PessimisticLock response fail,
// and false if it failed for another reason or did not fail.
func BlockingLock(resp *kvrpcpb.PessimisticLockResponse) (LockWait, bool) {
	if len(resp.GetErrors()) == 0 || resp.GetErrors()[0].GetLocked() == nil {
		return LockWait{}, false
	}
	lock := resp.GetErrors()[0].GetLocked()
	return LockWait{Key: lock.GetKey(), KeyHash: KeyHash(lock.GetKey()), LockTS: lock.GetLockVersion(), Lock: lock}, true
}

// PessimisticLock serves KvPessimisticLock. Every key gets a pessimistic
// lock at for_update_ts, or the command fails as a whole and writes
// nothing. A key locked by another transaction yields KeyIsLocked: waiting
// for it and deadlock detection belong to the caller, which finds the
// blocking transaction in errors[0].locked (lock_version, key) and can
// hash the key with KeyHash.
//
// In the normal wake-up mode, results is empty and values / not_founds are
// filled when return_values / check_existence ask. In ForceLock mode
// (fair locking, one key) a newer commit than for_update_ts does not fail:
// the key is locked at that commit_ts and reported as
// LockResultLockedWithConflict; results has one entry.
func (s *Store) PessimisticLock(ctx context.Context, req *kvrpcpb.PessimisticLockRequest) (*kvrpcpb.PessimisticLockResponse, error) {
	// The values returned are read at the latest version, which must stay
	// below any later async-commit timestamp.
	s.cm.UpdateMaxTS(req.GetForUpdateTs())
	forceLock := req.GetWakeUpMode() == kvrpcpb.PessimisticLockWakeUpMode_WakeUpModeForceLock
	keys := make([][]byte, len(req.GetMutations()))
	for i, m := range req.GetMutations() {
		keys[i] = m.GetKey()
	}
	results := make([]lockedKey, len(keys))
	err := s.execute(ctx, req.GetContext(), keys, func(r *Reader, t *txn) error {
		if req.GetLockOnlyIfExists() && !req.GetReturnValues() {
			return errAbort(ErrInvalidRequest, "lock_only_if_exists without return_values")
		}
		for i, m := range req.GetMutations() {
			var err error
			results[i], err = acquirePessimisticLock(r, t, req, m, forceLock)
			if err != nil {
				return err
			}
		}
		return nil
	})
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	if forceLock {
		return forceLockResponse(results, keyErr), nil
	}
	return normalLockResponse(req, results, keyErr), nil
}

// lockedKey is what acquiring one pessimistic lock found.
type lockedKey struct {
	value  []byte
	exists bool
	// conflictTS is the commit_ts of a version newer than for_update_ts
	// that a ForceLock request locked over; 0 if none.
	conflictTS uint64
}

func normalLockResponse(req *kvrpcpb.PessimisticLockRequest, results []lockedKey, keyErr *kvrpcpb.KeyError) *kvrpcpb.PessimisticLockResponse {
	resp := &kvrpcpb.PessimisticLockResponse{}
	if keyErr != nil {
		resp.Errors = []*kvrpcpb.KeyError{keyErr}
		return resp
	}
	if !req.GetReturnValues() && !req.GetCheckExistence() {
		return resp
	}
	resp.NotFounds = make([]bool, len(results))
	if req.GetReturnValues() {
		resp.Values = make([][]byte, len(results))
	}
	for i, res := range results {
		resp.NotFounds[i] = !res.exists
		if req.GetReturnValues() {
			resp.Values[i] = res.value
		}
	}
	return resp
}

func forceLockResponse(results []lockedKey, keyErr *kvrpcpb.KeyError) *kvrpcpb.PessimisticLockResponse {
	if keyErr != nil {
		return &kvrpcpb.PessimisticLockResponse{
			Errors:  []*kvrpcpb.KeyError{keyErr},
			Results: []*kvrpcpb.PessimisticLockKeyResult{{Type: kvrpcpb.PessimisticLockKeyResultType_LockResultFailed}},
		}
	}
	resp := &kvrpcpb.PessimisticLockResponse{}
	for _, res := range results {
		result := &kvrpcpb.PessimisticLockKeyResult{
			Type:      kvrpcpb.PessimisticLockKeyResultType_LockResultNormal,
			Value:     res.value,
			Existence: res.exists,
		}
		if res.conflictTS != 0 {
			result.Type = kvrpcpb.PessimisticLockKeyResultType_LockResultLockedWithConflict
			result.LockedWithConflictTs = res.conflictTS
		}
		resp.Results = append(resp.Results, result)
	}
	return resp
}

// acquirePessimisticLock locks one key (TiKV's acquire_pessimistic_lock
// action). The value and existence are always read: the key is locked or
// about to be, so the latest committed version is the one the transaction
// will overwrite.
func acquirePessimisticLock(r *Reader, t *txn, req *kvrpcpb.PessimisticLockRequest, m *kvrpcpb.Mutation, forceLock bool) (lockedKey, error) {
	key, startTS, forUpdateTS := m.GetKey(), req.GetStartVersion(), req.GetForUpdateTs()
	encoded := EncodeKey(key)
	lock, err := r.loadLockEncoded(encoded)
	if err != nil {
		return lockedKey{}, err
	}
	if lock != nil {
		return relockOwnKey(r, t, encoded, key, lock, req)
	}
	var res lockedKey
	commitTS, latest, err := latestWrite(r, encoded)
	if err != nil {
		return lockedKey{}, err
	}
	if latest != nil {
		if res.conflictTS, err = checkPessimisticConflict(r, encoded, req, m, commitTS, latest, forceLock); err != nil {
			return lockedKey{}, err
		}
	}
	if res.value, res.exists, err = r.getValueEncoded(encoded, MaxTS); err != nil {
		return lockedKey{}, err
	}
	if m.GetAssertion() == kvrpcpb.Assertion_NotExist && res.exists {
		return lockedKey{}, errAlreadyExist(key)
	}
	if req.GetLockOnlyIfExists() && !res.exists {
		return res, nil
	}
	t.putLock(encoded, &Lock{
		Type:               LockTypePessimistic,
		Primary:            req.GetPrimaryLock(),
		StartTS:            startTS,
		TTL:                req.GetLockTtl(),
		ForUpdateTS:        max(forUpdateTS, res.conflictTS),
		MinCommitTS:        req.GetMinCommitTs(),
		LockedWithConflict: res.conflictTS != 0,
	})
	return res, nil
}

// relockOwnKey handles a key that already has a lock: another
// transaction's blocks; this transaction's pessimistic lock is refreshed to
// a newer for_update_ts; its prewrite lock cannot be locked again.
func relockOwnKey(r *Reader, t *txn, encoded, key []byte, lock *Lock, req *kvrpcpb.PessimisticLockRequest) (lockedKey, error) {
	if lock.StartTS != req.GetStartVersion() {
		return lockedKey{}, errKeyIsLocked(lock.LockInfo(key))
	}
	if lock.Type != LockTypePessimistic {
		return lockedKey{}, errAbort(ErrLockTypeNotMatch, "start_ts %d key %q is already prewritten", lock.StartTS, key)
	}
	var res lockedKey
	var err error
	if res.value, res.exists, err = r.getValueEncoded(encoded, MaxTS); err != nil {
		return lockedKey{}, err
	}
	if req.GetForUpdateTs() > lock.ForUpdateTS {
		refreshed := *lock
		refreshed.ForUpdateTS = req.GetForUpdateTs()
		refreshed.TTL = max(lock.TTL, req.GetLockTtl())
		t.putLock(encoded, &refreshed)
	}
	return res, nil
}

// checkPessimisticConflict checks the newest version of an unlocked key: a
// commit after for_update_ts is a write conflict (or, with forceLock, the
// returned conflict timestamp), and a Rollback of this transaction means
// it was already rolled back.
func checkPessimisticConflict(r *Reader, encoded []byte, req *kvrpcpb.PessimisticLockRequest, m *kvrpcpb.Mutation,
	commitTS uint64, latest *Write, forceLock bool) (conflictTS uint64, err error) {
	key, startTS := m.GetKey(), req.GetStartVersion()
	if commitTS > req.GetForUpdateTs() && latest.Type != WriteTypeRollback {
		if !forceLock {
			return 0, errWriteConflict(startTS, latest.StartTS, commitTS, key, req.GetPrimaryLock(), kvrpcpb.WriteConflict_PessimisticRetry)
		}
		conflictTS = commitTS
	}
	rolledBack, err := rolledBackAt(r, encoded, startTS, commitTS, latest)
	if err != nil {
		return 0, err
	}
	if rolledBack {
		return 0, errAbort(ErrPessimisticLockRolledBack, "start_ts %d key %q", startTS, key)
	}
	return conflictTS, nil
}

// rolledBackAt reports whether the record at startTS rolls the transaction
// back, given the newest record (commitTS, latest).
func rolledBackAt(r *Reader, encoded []byte, startTS, commitTS uint64, latest *Write) (bool, error) {
	if commitTS < startTS {
		return false, nil
	}
	if commitTS > startTS {
		var err error
		if commitTS, latest, err = seekWriteEncoded(r, encoded, startTS); err != nil || latest == nil {
			return false, err
		}
	}
	return commitTS == startTS && (latest.Type == WriteTypeRollback || latest.HasOverlappedRollback), nil
}

func latestWrite(r *Reader, encoded []byte) (uint64, *Write, error) {
	return seekWriteEncoded(r, encoded, MaxTS)
}

func seekWriteEncoded(r *Reader, encoded []byte, ts uint64) (commitTS uint64, write *Write, err error) {
	err = r.versions(encoded, ts, func(c uint64, w *Write) bool {
		commitTS, write = c, w
		return false
	})
	return commitTS, write, err
}

// PessimisticRollback serves KvPessimisticRollback: it removes the
// transaction's pessimistic locks with for_update_ts <= the request's, and
// leaves every other lock alone.
func (s *Store) PessimisticRollback(ctx context.Context, req *kvrpcpb.PessimisticRollbackRequest) (*kvrpcpb.PessimisticRollbackResponse, error) {
	err := s.execute(ctx, req.GetContext(), req.GetKeys(), func(r *Reader, t *txn) error {
		for _, key := range req.GetKeys() {
			encoded := EncodeKey(key)
			lock, err := r.loadLockEncoded(encoded)
			if err != nil {
				return err
			}
			if lock != nil && lock.StartTS == req.GetStartVersion() && lock.Type == LockTypePessimistic &&
				lock.ForUpdateTS <= req.GetForUpdateTs() {
				t.unlock(encoded)
			}
		}
		return nil
	})
	keyErr, err := splitKeyError(err)
	if err != nil {
		return nil, err
	}
	resp := &kvrpcpb.PessimisticRollbackResponse{}
	if keyErr != nil {
		resp.Errors = []*kvrpcpb.KeyError{keyErr}
	}
	return resp, nil
}
