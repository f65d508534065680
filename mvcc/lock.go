package mvcc

import (
	"fmt"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// LockType is the kind of a lock in CfLock, stored as its first byte.
type LockType byte

// Lock types, with TiKV's byte values.
const (
	LockTypePut         LockType = 'P'
	LockTypeDelete      LockType = 'D'
	LockTypeLock        LockType = 'L'
	LockTypePessimistic LockType = 'S'
)

// maxShortValueLen is the longest value stored inline in a lock or write
// record; longer values go to CfDefault at the transaction's start_ts.
const maxShortValueLen = 255

// Flag bytes of the optional lock fields, as TiKV writes them.
const (
	lockFlagShortValue         = 'v'
	lockFlagForUpdateTS        = 'f'
	lockFlagTxnSize            = 't'
	lockFlagMinCommitTS        = 'c'
	lockFlagAsyncCommit        = 'a'
	lockFlagRollbackTS         = 'r'
	lockFlagLastChange         = 'l'
	lockFlagTxnSource          = 's'
	lockFlagLockedWithConflict = 'F'
	lockFlagGeneration         = 'g'
)

// Lock is a Percolator lock: the CfLock value of a key being written by the
// transaction StartTS.
type Lock struct {
	Type    LockType
	Primary []byte
	StartTS uint64
	// TTL is the lock's time to live in milliseconds, counted from the
	// physical part of StartTS.
	TTL uint64
	// ShortValue is the value of a Put lock when it is at most
	// maxShortValueLen bytes; nil means the value (if any) is in CfDefault
	// at StartTS. An empty value is a non-nil empty slice.
	ShortValue []byte
	// ForUpdateTS is non-zero exactly for locks of pessimistic transactions.
	ForUpdateTS uint64
	// TxnSize is the number of keys the transaction writes in the region.
	TxnSize uint64
	// MinCommitTS is the smallest commit_ts the transaction may commit at;
	// readers with a smaller start_ts are not blocked by the lock.
	MinCommitTS uint64
	// UseAsyncCommit marks an async-commit lock; only the primary's lock
	// lists the Secondaries.
	UseAsyncCommit bool
	Secondaries    [][]byte
	// RollbackTS lists timestamps at which protected rollbacks of other
	// transactions were requested on this key while it was locked; a
	// commit at one of them must keep the rollback (overlapped rollback).
	RollbackTS []uint64
	// The remaining fields are decoded and re-encoded for compatibility
	// with TiKV's format; TinyKV does not interpret them.
	LastChangeTS         uint64
	VersionsToLastChange uint64
	TxnSource            uint64
	LockedWithConflict   bool
	Generation           uint64
}

// Marshal encodes the lock in TiKV's format: type, compact primary, uvarint
// start_ts and ttl, then flagged optional fields.
func (l *Lock) Marshal() []byte {
	w := recordWriter{buf: make([]byte, 0, 32+len(l.Primary)+len(l.ShortValue))}
	w.byte(byte(l.Type))
	w.compactBytes(l.Primary)
	w.uvarint(l.StartTS)
	w.uvarint(l.TTL)
	if l.ShortValue != nil {
		w.byte(lockFlagShortValue)
		w.shortValue(l.ShortValue)
	}
	if l.ForUpdateTS != 0 {
		w.byte(lockFlagForUpdateTS)
		w.u64(l.ForUpdateTS)
	}
	if l.TxnSize != 0 {
		w.byte(lockFlagTxnSize)
		w.u64(l.TxnSize)
	}
	if l.MinCommitTS != 0 {
		w.byte(lockFlagMinCommitTS)
		w.u64(l.MinCommitTS)
	}
	if l.UseAsyncCommit {
		w.byte(lockFlagAsyncCommit)
		w.uvarint(uint64(len(l.Secondaries)))
		for _, s := range l.Secondaries {
			w.compactBytes(s)
		}
	}
	if len(l.RollbackTS) != 0 {
		w.byte(lockFlagRollbackTS)
		w.uvarint(uint64(len(l.RollbackTS)))
		for _, ts := range l.RollbackTS {
			w.u64(ts)
		}
	}
	if l.LastChangeTS != 0 || l.VersionsToLastChange != 0 {
		w.byte(lockFlagLastChange)
		w.u64(l.LastChangeTS)
		w.uvarint(l.VersionsToLastChange)
	}
	if l.TxnSource != 0 {
		w.byte(lockFlagTxnSource)
		w.uvarint(l.TxnSource)
	}
	if l.LockedWithConflict {
		w.byte(lockFlagLockedWithConflict)
	}
	if l.Generation != 0 {
		w.byte(lockFlagGeneration)
		w.u64(l.Generation)
	}
	return w.buf
}

// LockRank is the engine.Options.LockRank of every engine the MVCC layer
// stores in: a lock ranks by its start_ts, so that the engine can list the
// transactions holding locks without reading every lock. A value that does
// not decode ranks 0, which holds the resolved ts at 0 rather than let it
// pass the lock; reading that lock reports the damage.
func LockRank(value []byte) uint64 {
	r := recordReader{buf: value, what: "lock"}
	r.byte()
	r.compactBytes()
	startTS := r.uvarint()
	if r.err != nil {
		return 0
	}
	return startTS
}

// UnmarshalLock decodes a lock written by Marshal or by TiKV.
func UnmarshalLock(b []byte) (*Lock, error) {
	r := recordReader{buf: b, what: "lock"}
	l := &Lock{Type: LockType(r.byte())}
	switch l.Type {
	case LockTypePut, LockTypeDelete, LockTypeLock, LockTypePessimistic:
	default:
		r.fail("unknown lock type %#x", byte(l.Type))
	}
	l.Primary = r.compactBytes()
	l.StartTS = r.uvarint()
	l.TTL = r.uvarint()
	for !r.done() {
		l.decodeField(&r, r.byte())
	}
	if r.err != nil {
		return nil, r.err
	}
	return l, nil
}

func (l *Lock) decodeField(r *recordReader, flag byte) {
	switch flag {
	case lockFlagShortValue:
		l.ShortValue = r.shortValue()
	case lockFlagForUpdateTS:
		l.ForUpdateTS = r.u64()
	case lockFlagTxnSize:
		l.TxnSize = r.u64()
	case lockFlagMinCommitTS:
		l.MinCommitTS = r.u64()
	case lockFlagAsyncCommit:
		l.UseAsyncCommit = true
		n := r.uvarint()
		for i := uint64(0); i < n && r.err == nil; i++ {
			l.Secondaries = append(l.Secondaries, r.compactBytes())
		}
	case lockFlagRollbackTS:
		n := r.uvarint()
		for i := uint64(0); i < n && r.err == nil; i++ {
			l.RollbackTS = append(l.RollbackTS, r.u64())
		}
	case lockFlagLastChange:
		l.LastChangeTS = r.u64()
		l.VersionsToLastChange = r.uvarint()
	case lockFlagTxnSource:
		l.TxnSource = r.uvarint()
	case lockFlagLockedWithConflict:
		l.LockedWithConflict = true
	case lockFlagGeneration:
		l.Generation = r.u64()
	default:
		r.fail("unknown flag %#x", flag)
	}
}

// IsPessimisticTxn reports whether the lock belongs to a pessimistic
// transaction.
func (l *Lock) IsPessimisticTxn() bool { return l.ForUpdateTS != 0 }

// hasLongValue reports whether the lock is a Put whose value is in
// CfDefault at its start_ts; false for a nil lock.
func (l *Lock) hasLongValue() bool {
	return l != nil && l.Type == LockTypePut && l.ShortValue == nil
}

// Op returns the kvrpcpb operation of the lock type.
func (l *Lock) Op() kvrpcpb.Op {
	switch l.Type {
	case LockTypePut:
		return kvrpcpb.Op_Put
	case LockTypeDelete:
		return kvrpcpb.Op_Del
	case LockTypeLock:
		return kvrpcpb.Op_Lock
	default:
		return kvrpcpb.Op_PessimisticLock
	}
}

// LockInfo returns the lock as the client sees it, for the raw key.
func (l *Lock) LockInfo(rawKey []byte) *kvrpcpb.LockInfo {
	return &kvrpcpb.LockInfo{
		PrimaryLock:     l.Primary,
		LockVersion:     l.StartTS,
		Key:             rawKey,
		LockTtl:         l.TTL,
		TxnSize:         l.TxnSize,
		LockType:        l.Op(),
		LockForUpdateTs: l.ForUpdateTS,
		UseAsyncCommit:  l.UseAsyncCommit,
		MinCommitTs:     l.MinCommitTS,
		Secondaries:     l.Secondaries,
	}
}

// String describes the lock for logs and test failures.
func (l *Lock) String() string {
	return fmt.Sprintf("Lock{%c primary=%q start=%d ttl=%d for_update=%d min_commit=%d async=%v}",
		l.Type, l.Primary, l.StartTS, l.TTL, l.ForUpdateTS, l.MinCommitTS, l.UseAsyncCommit)
}

// blocksRead reports whether the lock hides the key from a snapshot read at
// readTS (TiKV's Lock::check_ts_conflict): only Put and Delete locks block,
// and only when the transaction could commit at or below readTS. A read at
// MaxTS of a primary key ignores its non-async-commit lock (an autocommit
// point get reads the latest committed version).
func (l *Lock) blocksRead(rawKey []byte, readTS uint64, resolved []uint64) bool {
	if l.StartTS > readTS || l.Type == LockTypeLock || l.Type == LockTypePessimistic {
		return false
	}
	if l.MinCommitTS > readTS {
		return false
	}
	if containsTS(resolved, l.StartTS) {
		return false
	}
	if readTS == MaxTS && string(rawKey) == string(l.Primary) && !l.UseAsyncCommit {
		return false
	}
	return true
}

func containsTS(list []uint64, ts uint64) bool {
	for _, t := range list {
		if t == ts {
			return true
		}
	}
	return false
}
