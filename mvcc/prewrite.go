package mvcc

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/storage"
)

// Prewrite serves KvPrewrite, optimistic and pessimistic (for_update_ts !=
// 0), with async commit and 1PC.
//
// Every mutation is checked first; if any check fails nothing is written
// and the response carries the errors (KeyIsLocked errors of all keys, or
// the single other error). TiKV keeps the locks of the keys that passed;
// dropping them is equivalent because the client retries the whole batch
// after resolving the locks, and a re-prewrite is idempotent.
//
// For async commit and 1PC the locks are put in the concurrency manager's
// table before max_ts is read; the commit timestamp is then
// max(max_ts+1, start_ts+1, for_update_ts+1, min_commit_ts). If it exceeds
// a non-zero max_commit_ts the prewrite falls back to normal 2PC locks and
// returns min_commit_ts = one_pc_commit_ts = 0.
func (s *Store) Prewrite(ctx context.Context, req *kvrpcpb.PrewriteRequest) (*kvrpcpb.PrewriteResponse, error) {
	p := &prewriter{req: req, cm: s.cm}
	keyErrs, err := s.prewrite(ctx, req.GetContext(), p)
	switch {
	case err != nil:
		return nil, err
	case len(keyErrs) > 0:
		return &kvrpcpb.PrewriteResponse{Errors: keyErrs}, nil
	case p.committedTS != 0:
		return p.committedResponse(), nil
	}
	return p.response(), nil
}

// prewrite runs p under the latches of its keys: it checks every mutation
// and, if all pass and the transaction is not found committed already,
// writes the locks (or the 1PC commit records), reading and writing for
// reqCtx. It returns the KeyErrors that fail the prewrite, or a storage
// error.
func (s *Store) prewrite(ctx context.Context, reqCtx *kvrpcpb.Context, p *prewriter) ([]*kvrpcpb.KeyError, error) {
	guard := s.latches.Acquire(MutationKeys(p.req.GetMutations()))
	defer guard.Release()
	var keyErrs []*kvrpcpb.KeyError
	err := s.withReader(ctx, reqCtx, func(r *Reader) (err error) {
		keyErrs, err = p.checkMutations(r)
		return err
	})
	if err != nil || len(keyErrs) > 0 || p.committedTS != 0 {
		return keyErrs, err
	}
	memLocks := p.chooseCommitTS()
	defer memLocks.release()
	return nil, s.storage.Write(ctx, reqCtx, p.modifies())
}

// MutationKeys returns the keys of mutations, in order.
func MutationKeys(mutations []*kvrpcpb.Mutation) [][]byte {
	keys := make([][]byte, len(mutations))
	for i, m := range mutations {
		keys[i] = m.GetKey()
	}
	return keys
}

// prewriter carries one Prewrite command through its phases.
type prewriter struct {
	req *kvrpcpb.PrewriteRequest
	cm  *ConcurrencyManager
	// planned are the locks to write, one per mutation that needs one.
	planned []plannedLock
	// existingMinCommitTS is the largest min_commit_ts of locks this
	// transaction had already prewritten (a retried request), and
	// existingIs2PC reports that one of them is not an async-commit lock.
	existingMinCommitTS uint64
	existingIs2PC       bool
	// commitTS is the chosen min_commit_ts (async commit) or commit_ts
	// (1PC); zero for normal 2PC, including after a fallback.
	commitTS uint64
	// committedTS is non-zero when the transaction turned out to be
	// committed already (at that timestamp): nothing is written.
	committedTS uint64
	// generation is a pipelined-DML flush's generation (see Flush); 0 for
	// a prewrite. A flush replaces its transaction's locks of lower
	// generations and leaves those of higher ones.
	generation uint64
}

// plannedLock is the lock one mutation will write.
type plannedLock struct {
	encoded []byte
	lock    *Lock
	// longValue goes to CfDefault at start_ts when not nil.
	longValue []byte
	// replacesPessimisticLock: the key holds this transaction's pessimistic
	// lock, which 1PC must delete.
	replacesPessimisticLock bool
	// dropsLongValue: the lock replaces a flushed Put lock of this
	// transaction whose value is in CfDefault at start_ts, and has no long
	// value to put there instead, so the stale value is deleted.
	dropsLongValue bool
}

func (p *prewriter) startTS() uint64 { return p.req.GetStartVersion() }

func (p *prewriter) isPessimistic() bool { return p.req.GetForUpdateTs() != 0 }

func (p *prewriter) wantsAsyncOrOnePC() bool {
	return p.req.GetUseAsyncCommit() || p.req.GetTryOnePc()
}

// pessimisticAction is the action for mutation i; optimistic transactions
// and missing entries skip the pessimistic check.
func (p *prewriter) pessimisticAction(i int) kvrpcpb.PrewriteRequest_PessimisticAction {
	actions := p.req.GetPessimisticActions()
	if !p.isPessimistic() || i >= len(actions) {
		return kvrpcpb.PrewriteRequest_SKIP_PESSIMISTIC_CHECK
	}
	return actions[i]
}

// checkMutations checks every mutation and plans its lock. It returns the
// KeyErrors that make the prewrite fail, or a storage error.
func (p *prewriter) checkMutations(r *Reader) ([]*kvrpcpb.KeyError, error) {
	var locked []*kvrpcpb.KeyError
	for i, m := range p.req.GetMutations() {
		err := p.checkMutation(r, m, p.pessimisticAction(i))
		if errors.Is(err, ErrWriteConflict) || errors.Is(err, ErrPessimisticLockNotFound) {
			committed, checkErr := p.alreadyCommitted(r, m.GetKey())
			if checkErr != nil {
				return nil, checkErr
			}
			if committed {
				continue
			}
		}
		keyErr, err := splitKeyError(err)
		if err != nil {
			return nil, fmt.Errorf("mvcc: prewrite %q: %w", m.GetKey(), err)
		}
		if keyErr == nil {
			continue
		}
		if keyErr.Locked == nil {
			return []*kvrpcpb.KeyError{keyErr}, nil
		}
		locked = append(locked, keyErr)
	}
	return locked, nil
}

// alreadyCommitted reports whether a conflict on key is this
// transaction's own commit: the request is a retry of a prewrite whose
// transaction has committed since (TiKV's check_committed_record_on_err).
// It records the commit timestamp for the response.
func (p *prewriter) alreadyCommitted(r *Reader, key []byte) (bool, error) {
	rec, err := r.txnCommitRecord(EncodeKey(key), p.startTS())
	if err != nil || !rec.committed() {
		return false, err
	}
	p.committedTS = rec.commitTS
	return true, nil
}

// checkMutation applies Percolator's prewrite checks to one mutation and,
// if it needs a lock, adds it to planned.
func (p *prewriter) checkMutation(r *Reader, m *kvrpcpb.Mutation, action kvrpcpb.PrewriteRequest_PessimisticAction) error {
	encoded := EncodeKey(m.GetKey())
	state, err := p.examineLock(r, encoded, m, action)
	if err != nil || state.done {
		return err
	}
	var newest newestWrite
	if !state.pessimisticLocked && p.needsConstraintCheck(action) {
		if newest, err = p.checkNewerVersion(r, encoded, m); err != nil {
			return err
		}
	}
	if m.GetOp() == kvrpcpb.Op_CheckNotExists {
		// A read: it writes no lock but must move max_ts like one.
		p.cm.UpdateMaxTS(p.startTS())
		return nil
	}
	if state.flushed == nil {
		// A key is asserted once per transaction: a later flush of it may
		// carry an assertion made after the earlier flush changed it.
		if err := p.checkAssertion(r, encoded, m, newest); err != nil {
			if errors.Is(err, ErrAssertionFailed) && !newest.read {
				if conflict := p.madeUpConstraintCheck(r, encoded, m, action); conflict != nil {
					return conflict
				}
			}
			return err
		}
	}
	return p.planLock(encoded, m, state)
}

// newestWrite is the newest write record of a key (nil if none), when the
// constraint check has read it.
type newestWrite struct {
	read     bool
	commitTS uint64
	write    *Write
}

// decidesExistence reports whether the record tells if the key exists: a
// Lock or Rollback record does not, the versions below it do.
func (n newestWrite) decidesExistence() bool {
	return n.read && (n.write == nil || n.write.Type == WriteTypePut || n.write.Type == WriteTypeDelete)
}

// keyState is what examineLock found on a mutation's key.
type keyState struct {
	// done: the key needs nothing (already prewritten or committed by this
	// transaction; a retried request).
	done bool
	// pessimisticLocked: the key holds this transaction's pessimistic lock
	// (stored, or lost but amended), so it needs no conflict check.
	pessimisticLocked bool
	// stored is this transaction's pessimistic lock on the key, if any.
	stored *Lock
	// flushed is this transaction's lock from an earlier flush, which a
	// flush of a higher generation replaces.
	flushed *Lock
}

// examineLock checks the key's lock against the transaction.
func (p *prewriter) examineLock(r *Reader, encoded []byte, m *kvrpcpb.Mutation, action kvrpcpb.PrewriteRequest_PessimisticAction) (keyState, error) {
	existing, err := r.loadLockEncoded(encoded)
	if err != nil {
		return keyState{}, err
	}
	key := m.GetKey()
	switch {
	case existing != nil && existing.StartTS != p.startTS():
		if action == kvrpcpb.PrewriteRequest_DO_PESSIMISTIC_CHECK {
			return keyState{}, errAbort(ErrPessimisticLockNotFound, "start_ts %d key %q locked by %d", p.startTS(), key, existing.StartTS)
		}
		return keyState{}, errKeyIsLocked(existing.LockInfo(key))
	case existing != nil && existing.Type != LockTypePessimistic && p.generation > 0:
		return p.examineFlushedLock(existing, m)
	case existing != nil && existing.Type != LockTypePessimistic:
		p.existingMinCommitTS = max(p.existingMinCommitTS, existing.MinCommitTS)
		p.existingIs2PC = p.existingIs2PC || !existing.UseAsyncCommit
		return keyState{done: true}, nil
	case existing != nil:
		if !p.isPessimistic() {
			return keyState{}, errAbort(ErrLockTypeNotMatch, "optimistic prewrite of %q found pessimistic lock of %d", key, p.startTS())
		}
		return keyState{pessimisticLocked: true, stored: existing}, nil
	case action == kvrpcpb.PrewriteRequest_DO_PESSIMISTIC_CHECK:
		return keyState{pessimisticLocked: true}, p.amendPessimisticLock(r, encoded, key)
	default:
		return keyState{}, nil
	}
}

// examineFlushedLock checks a flush's key that holds a lock of the same
// transaction (TiKV's check_lock with a generation). A lock of the same or
// a later generation is newer than this flush (a retried request), so the
// key is left alone. An Insert or CheckNotExists fails on a key an earlier
// flush put. Otherwise this flush replaces the lock.
func (p *prewriter) examineFlushedLock(existing *Lock, m *kvrpcpb.Mutation) (keyState, error) {
	shouldNotExist := m.GetOp() == kvrpcpb.Op_Insert || m.GetOp() == kvrpcpb.Op_CheckNotExists
	switch {
	case existing.Generation >= p.generation:
		return keyState{done: true}, nil
	case existing.Generation > 0 && existing.Type == LockTypePut && shouldNotExist:
		return keyState{}, errAlreadyExist(m.GetKey())
	}
	return keyState{flushed: existing}, nil
}

// needsConstraintCheck reports whether a key without this transaction's
// pessimistic lock is checked for newer versions: always for optimistic
// transactions unless skip_constraint_check, and only for
// DoConstraintCheck keys of pessimistic ones (the others are covered by
// pessimistic locks on related keys, as in TiKV).
func (p *prewriter) needsConstraintCheck(action kvrpcpb.PrewriteRequest_PessimisticAction) bool {
	if !p.isPessimistic() {
		return !p.req.GetSkipConstraintCheck()
	}
	return action == kvrpcpb.PrewriteRequest_DO_CONSTRAINT_CHECK
}

// amendPessimisticLock handles a DoPessimisticCheck key without a lock.
// As in TiKV, the lost lock is taken as held if no version was committed
// at or after start_ts; otherwise the prewrite fails with
// PessimisticLockNotFound.
func (p *prewriter) amendPessimisticLock(r *Reader, encoded, rawKey []byte) error {
	commitTS, latest, err := latestWrite(r, encoded)
	if err != nil {
		return err
	}
	if latest != nil && commitTS >= p.startTS() {
		return errAbort(ErrPessimisticLockNotFound, "start_ts %d key %q: lock missing and a version committed at %d",
			p.startTS(), rawKey, commitTS)
	}
	return nil
}

// checkNewerVersion is the write-conflict check: no version may be
// committed after start_ts, the transaction must not be rolled back on the
// key, and Insert / CheckNotExists need the key absent.
func (p *prewriter) checkNewerVersion(r *Reader, encoded []byte, m *kvrpcpb.Mutation) (newestWrite, error) {
	commitTS, latest, err := latestWrite(r, encoded)
	if err != nil {
		return newestWrite{}, err
	}
	newest := newestWrite{read: true, commitTS: commitTS, write: latest}
	if latest != nil {
		if err := p.checkConflict(m.GetKey(), commitTS, latest); err != nil {
			return newestWrite{}, err
		}
	}
	if m.GetOp() != kvrpcpb.Op_Insert && m.GetOp() != kvrpcpb.Op_CheckNotExists {
		return newest, nil
	}
	_, data, err := r.getWriteEncoded(encoded, MaxTS)
	if err != nil {
		return newestWrite{}, err
	}
	if data != nil && data.Type == WriteTypePut {
		return newestWrite{}, errAlreadyExist(m.GetKey())
	}
	return newest, nil
}

func (p *prewriter) checkConflict(key []byte, commitTS uint64, latest *Write) error {
	if commitTS > p.startTS() {
		reason := kvrpcpb.WriteConflict_Optimistic
		if p.isPessimistic() {
			reason = kvrpcpb.WriteConflict_LazyUniquenessCheck
		}
		return errWriteConflict(p.startTS(), latest.StartTS, commitTS, key, p.req.GetPrimaryLock(), reason)
	}
	if commitTS == p.startTS() && (latest.Type == WriteTypeRollback || latest.HasOverlappedRollback) {
		return errWriteConflict(p.startTS(), latest.StartTS, commitTS, key, p.req.GetPrimaryLock(), kvrpcpb.WriteConflict_SelfRolledBack)
	}
	return nil
}

// checkAssertion verifies Assertion_Exist / Assertion_NotExist against the
// latest committed version. The Fast level checks only keys whose versions
// the constraint check already read (newest); Strict checks every key. The
// newest record is used when it decides; otherwise the versions are read.
func (p *prewriter) checkAssertion(r *Reader, encoded []byte, m *kvrpcpb.Mutation, newest newestWrite) error {
	level, assertion := p.req.GetAssertionLevel(), m.GetAssertion()
	if level == kvrpcpb.AssertionLevel_Off || assertion == kvrpcpb.Assertion_None {
		return nil
	}
	if level == kvrpcpb.AssertionLevel_Fast && !newest.read {
		return nil
	}
	commitTS, data := newest.commitTS, newest.write
	if !newest.decidesExistence() {
		var err error
		if commitTS, data, err = r.getWriteEncoded(encoded, MaxTS); err != nil {
			return err
		}
	}
	exists := data != nil && data.Type == WriteTypePut
	switch {
	case assertion == kvrpcpb.Assertion_Exist && !exists:
		return errAssertionFailed(p.startTS(), m.GetKey(), assertion, 0, 0)
	case assertion == kvrpcpb.Assertion_NotExist && exists:
		return errAssertionFailed(p.startTS(), m.GetKey(), assertion, data.StartTS, commitTS)
	}
	return nil
}

// madeUpConstraintCheck runs, for a key whose assertion failed and whose
// constraint check was skipped (a pessimistic transaction's key), the
// check TiKV makes up there: the assertion may have failed because another
// transaction wrote the key after this one read it, or this one was rolled
// back, and that is the error to answer — a retryable conflict, not the
// data-corruption alarm an assertion failure raises in TiDB. A newer
// version than for_update_ts means the pessimistic lock was lost
// (PessimisticLockNotFound); with DoConstraintCheck, or in an optimistic
// transaction, a version newer than start_ts is a write conflict.
func (p *prewriter) madeUpConstraintCheck(r *Reader, encoded []byte, m *kvrpcpb.Mutation, action kvrpcpb.PrewriteRequest_PessimisticAction) error {
	commitTS, latest, err := latestWrite(r, encoded)
	if err != nil || latest == nil {
		return err
	}
	if !p.isPessimistic() || action == kvrpcpb.PrewriteRequest_DO_CONSTRAINT_CHECK {
		return p.checkConflict(m.GetKey(), commitTS, latest)
	}
	if commitTS == p.startTS() && (latest.Type == WriteTypeRollback || latest.HasOverlappedRollback) {
		return errWriteConflict(p.startTS(), latest.StartTS, commitTS, m.GetKey(), p.req.GetPrimaryLock(), kvrpcpb.WriteConflict_SelfRolledBack)
	}
	if commitTS > p.req.GetForUpdateTs() {
		return errAbort(ErrPessimisticLockNotFound, "start_ts %d key %q: a version committed at %d, after for_update_ts %d",
			p.startTS(), m.GetKey(), commitTS, p.req.GetForUpdateTs())
	}
	return nil
}

// planLock builds the lock of a mutation that passed the checks. A stored
// pessimistic lock may have had its TTL and min_commit_ts raised, which
// the new lock keeps.
func (p *prewriter) planLock(encoded []byte, m *kvrpcpb.Mutation, state keyState) error {
	lock := &Lock{
		Primary:     p.req.GetPrimaryLock(),
		StartTS:     p.startTS(),
		TTL:         p.req.GetLockTtl(),
		ForUpdateTS: p.req.GetForUpdateTs(),
		TxnSize:     p.req.GetTxnSize(),
		MinCommitTS: p.req.GetMinCommitTs(),
		Generation:  p.generation,
	}
	if state.stored != nil {
		lock.TTL = max(lock.TTL, state.stored.TTL)
		lock.MinCommitTS = max(lock.MinCommitTS, state.stored.MinCommitTS)
	}
	planned := plannedLock{encoded: encoded, lock: lock, replacesPessimisticLock: state.stored != nil}
	switch m.GetOp() {
	case kvrpcpb.Op_Put, kvrpcpb.Op_Insert:
		lock.Type = LockTypePut
		lock.ShortValue, planned.longValue = splitValue(m.GetValue())
	case kvrpcpb.Op_Del:
		lock.Type = LockTypeDelete
	case kvrpcpb.Op_Lock:
		lock.Type = LockTypeLock
	default:
		return errAbort(ErrInvalidRequest, "prewrite of %q with op %v", m.GetKey(), m.GetOp())
	}
	planned.dropsLongValue = state.flushed.hasLongValue() && planned.longValue == nil
	lock.UseAsyncCommit = p.req.GetUseAsyncCommit()
	if lock.UseAsyncCommit && bytes.Equal(m.GetKey(), p.req.GetPrimaryLock()) {
		lock.Secondaries = p.req.GetSecondaries()
	}
	p.planned = append(p.planned, planned)
	return nil
}

// chooseCommitTS computes the async-commit min_commit_ts or the 1PC
// commit_ts, with the planned locks held in the in-memory table, which the
// caller releases after writing. It falls back to 2PC when the timestamp
// would exceed max_commit_ts.
func (p *prewriter) chooseCommitTS() *memoryLocks {
	if !p.wantsAsyncOrOnePC() {
		return nil
	}
	if p.existingIs2PC {
		// A retried request whose earlier attempt wrote 2PC locks.
		p.fallBackTo2PC()
		return nil
	}
	if len(p.planned) == 0 {
		// A retried request: every lock is in place with its timestamp.
		p.commitTS = p.existingMinCommitTS
		return nil
	}
	inFlight := make([]encodedLock, len(p.planned))
	for i, pl := range p.planned {
		inFlight[i] = encodedLock{encoded: pl.encoded, lock: pl.lock}
	}
	memLocks := p.cm.lockInMemory(inFlight)
	ts := max(p.cm.MaxTS(), p.startTS(), p.req.GetForUpdateTs()) + 1
	ts = max(ts, p.req.GetMinCommitTs(), p.existingMinCommitTS)
	if maxCommitTS := p.req.GetMaxCommitTs(); maxCommitTS != 0 && ts > maxCommitTS {
		memLocks.release()
		p.fallBackTo2PC()
		return nil
	}
	memLocks.setMinCommitTS(ts)
	for _, pl := range p.planned {
		pl.lock.MinCommitTS = ts
	}
	p.commitTS = ts
	return memLocks
}

// fallBackTo2PC turns the planned locks into normal 2PC locks.
func (p *prewriter) fallBackTo2PC() {
	for _, pl := range p.planned {
		pl.lock.UseAsyncCommit = false
		pl.lock.Secondaries = nil
	}
}

func (p *prewriter) isOnePC() bool { return p.req.GetTryOnePc() && p.commitTS != 0 }

// modifies returns the writes of the prewrite: locks and long values, or
// for 1PC the commit records directly.
func (p *prewriter) modifies() []storage.Modify {
	t := &txn{}
	for _, pl := range p.planned {
		if pl.longValue != nil {
			t.putValue(pl.encoded, p.startTS(), pl.longValue)
		}
		if pl.dropsLongValue {
			t.deleteValue(pl.encoded, p.startTS())
		}
		if !p.isOnePC() {
			t.putLock(pl.encoded, pl.lock)
			continue
		}
		t.putWrite(pl.encoded, p.commitTS, &Write{
			Type:       writeTypeOfLock(pl.lock.Type),
			StartTS:    p.startTS(),
			ShortValue: pl.lock.ShortValue,
		})
		if pl.replacesPessimisticLock {
			t.unlock(pl.encoded)
		}
	}
	return t.modifies
}

// committedResponse answers a retried prewrite of a committed
// transaction with its commit timestamp where the mode expects one.
func (p *prewriter) committedResponse() *kvrpcpb.PrewriteResponse {
	resp := &kvrpcpb.PrewriteResponse{}
	switch {
	case p.req.GetTryOnePc():
		resp.OnePcCommitTs = p.committedTS
	case p.req.GetUseAsyncCommit():
		resp.MinCommitTs = p.committedTS
	}
	return resp
}

func (p *prewriter) response() *kvrpcpb.PrewriteResponse {
	resp := &kvrpcpb.PrewriteResponse{}
	switch {
	case p.isOnePC():
		resp.OnePcCommitTs = p.commitTS
	case p.req.GetUseAsyncCommit() && !p.req.GetTryOnePc() && p.commitTS != 0:
		resp.MinCommitTs = p.commitTS
	}
	return resp
}
