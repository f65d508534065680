package mvcc

import (
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// Sentinel errors. Transaction errors about a key are returned as a
// *KeyError that wraps one of them, so errors.Is identifies the kind and
// ToKeyError gives the kvrpcpb.KeyError that TiKV would send for it. Any
// other error from a command is a storage failure.
var (
	// ErrKeyIsLocked: the key is locked by another transaction whose lock
	// blocks the operation. KeyError.locked carries the lock.
	ErrKeyIsLocked = errors.New("mvcc: key is locked")

	// ErrWriteConflict: a version committed after the transaction's start_ts
	// (or for_update_ts) exists, or the transaction was already rolled back
	// on this key. KeyError.conflict carries the details.
	ErrWriteConflict = errors.New("mvcc: write conflict")

	// ErrAlreadyExist: an Insert, a CheckNotExists, or a pessimistic lock
	// with Assertion_NotExist found a visible value.
	ErrAlreadyExist = errors.New("mvcc: key already exists")

	// ErrTxnLockNotFound: Commit found neither the transaction's lock nor
	// its commit record (it was rolled back or never prewritten). TiKV
	// reports it as a retryable KeyError.
	ErrTxnLockNotFound = errors.New("mvcc: transaction lock not found")

	// ErrTxnNotFound: CheckTxnStatus or TxnHeartBeat found no lock and no
	// commit record for the transaction, and was not asked to roll back.
	ErrTxnNotFound = errors.New("mvcc: transaction not found")

	// ErrCommitTsExpired: Commit used a commit_ts below the lock's
	// min_commit_ts; the client retries with a newer timestamp.
	ErrCommitTsExpired = errors.New("mvcc: commit ts expired")

	// ErrAssertionFailed: a prewrite assertion (Exist / NotExist) does not
	// hold for the key.
	ErrAssertionFailed = errors.New("mvcc: assertion failed")

	// ErrPrimaryMismatch: CheckTxnStatus with verify_is_primary found a lock
	// whose primary is another key.
	ErrPrimaryMismatch = errors.New("mvcc: primary mismatch")

	// ErrAlreadyCommitted: Cleanup of a transaction that is committed.
	ErrAlreadyCommitted = errors.New("mvcc: transaction already committed")

	// ErrPessimisticLockNotFound: a pessimistic prewrite (DoPessimisticCheck)
	// found no pessimistic lock of its transaction on the key.
	ErrPessimisticLockNotFound = errors.New("mvcc: pessimistic lock not found")

	// ErrPessimisticLockRolledBack: a pessimistic lock request found that
	// its transaction was already rolled back on the key.
	ErrPessimisticLockRolledBack = errors.New("mvcc: pessimistic lock already rolled back")

	// ErrLockTypeNotMatch: a pessimistic lock request found the key already
	// prewritten by its transaction, or an optimistic prewrite found a
	// pessimistic lock of its transaction.
	ErrLockTypeNotMatch = errors.New("mvcc: lock type not match")

	// ErrInvalidTxnTso: a commit_ts not above the start_ts.
	ErrInvalidTxnTso = errors.New("mvcc: invalid transaction timestamps")

	// ErrInvalidRequest: a request whose fields contradict each other.
	ErrInvalidRequest = errors.New("mvcc: invalid request")

	// ErrCorrupted: a stored key, lock or write record cannot be decoded.
	// It is a storage failure, not a KeyError.
	ErrCorrupted = errors.New("mvcc: corrupted record")
)

// KeyError is a transaction error about one key, in the shape TiKV reports
// it to the client.
type KeyError struct {
	// kind is one of the sentinel errors above.
	kind error
	// proto is the KeyError sent to the client; never nil.
	proto *kvrpcpb.KeyError
}

// Error describes the error.
func (e *KeyError) Error() string { return fmt.Sprintf("%v: %s", e.kind, e.proto.String()) }

// Unwrap returns the sentinel error naming the kind.
func (e *KeyError) Unwrap() error { return e.kind }

// Proto returns the kvrpcpb.KeyError for the response.
func (e *KeyError) Proto() *kvrpcpb.KeyError { return e.proto }

// ToKeyError returns the kvrpcpb.KeyError for err when err is (or wraps) a
// *KeyError, and false when it is a storage failure that the service must
// report otherwise.
func ToKeyError(err error) (*kvrpcpb.KeyError, bool) {
	var keyErr *KeyError
	if errors.As(err, &keyErr) {
		return keyErr.proto, true
	}
	return nil, false
}

func newKeyError(kind error, proto *kvrpcpb.KeyError) *KeyError {
	return &KeyError{kind: kind, proto: proto}
}

func errKeyIsLocked(info *kvrpcpb.LockInfo) *KeyError {
	return newKeyError(ErrKeyIsLocked, &kvrpcpb.KeyError{Locked: info})
}

func errWriteConflict(startTS, conflictStartTS, conflictCommitTS uint64, key, primary []byte,
	reason kvrpcpb.WriteConflict_Reason) *KeyError {
	return newKeyError(ErrWriteConflict, &kvrpcpb.KeyError{Conflict: &kvrpcpb.WriteConflict{
		StartTs:          startTS,
		ConflictTs:       conflictStartTS,
		ConflictCommitTs: conflictCommitTS,
		Key:              key,
		Primary:          primary,
		Reason:           reason,
	}})
}

func errAlreadyExist(key []byte) *KeyError {
	return newKeyError(ErrAlreadyExist, &kvrpcpb.KeyError{AlreadyExist: &kvrpcpb.AlreadyExist{Key: key}})
}

func errTxnLockNotFound(startTS, commitTS uint64, key []byte) *KeyError {
	return newKeyError(ErrTxnLockNotFound, &kvrpcpb.KeyError{Retryable: fmt.Sprintf(
		"txn lock not found, start_ts: %d, commit_ts: %d, key: %q", startTS, commitTS, key)})
}

func errTxnNotFound(startTS uint64, key []byte) *KeyError {
	return newKeyError(ErrTxnNotFound, &kvrpcpb.KeyError{TxnNotFound: &kvrpcpb.TxnNotFound{
		StartTs: startTS, PrimaryKey: key,
	}})
}

func errCommitTsExpired(startTS, commitTS, minCommitTS uint64, key []byte) *KeyError {
	return newKeyError(ErrCommitTsExpired, &kvrpcpb.KeyError{CommitTsExpired: &kvrpcpb.CommitTsExpired{
		StartTs: startTS, AttemptedCommitTs: commitTS, Key: key, MinCommitTs: minCommitTS,
	}})
}

func errAssertionFailed(startTS uint64, key []byte, assertion kvrpcpb.Assertion,
	existingStartTS, existingCommitTS uint64) *KeyError {
	return newKeyError(ErrAssertionFailed, &kvrpcpb.KeyError{AssertionFailed: &kvrpcpb.AssertionFailed{
		StartTs:          startTS,
		Key:              key,
		Assertion:        assertion,
		ExistingStartTs:  existingStartTS,
		ExistingCommitTs: existingCommitTS,
	}})
}

func errPrimaryMismatch(info *kvrpcpb.LockInfo) *KeyError {
	return newKeyError(ErrPrimaryMismatch, &kvrpcpb.KeyError{PrimaryMismatch: &kvrpcpb.PrimaryMismatch{LockInfo: info}})
}

// errAbort builds a KeyError that TiKV reports as an abort message.
func errAbort(kind error, format string, args ...any) *KeyError {
	return newKeyError(kind, &kvrpcpb.KeyError{Abort: fmt.Sprintf("%v: %s", kind, fmt.Sprintf(format, args...))})
}
