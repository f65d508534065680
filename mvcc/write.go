package mvcc

import (
	"fmt"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// WriteType is the kind of a CfWrite record, stored as its first byte.
type WriteType byte

// Write types, with TiKV's byte values.
const (
	WriteTypePut      WriteType = 'P'
	WriteTypeDelete   WriteType = 'D'
	WriteTypeLock     WriteType = 'L'
	WriteTypeRollback WriteType = 'R'
)

// Flag bytes of the optional write fields, as TiKV writes them.
const (
	writeFlagShortValue         = 'v'
	writeFlagOverlappedRollback = 'R'
	writeFlagGCFence            = 'F'
	writeFlagLastChange         = 'l'
	writeFlagTxnSource          = 'S'
)

// protectedRollbackValue is the short value that marks a Rollback record as
// protected: it may not be collapsed, so a late prewrite of the rolled-back
// transaction always finds it.
var protectedRollbackValue = []byte("p")

// Write is a CfWrite record, stored at key@commit_ts (a Rollback at
// key@start_ts).
type Write struct {
	Type    WriteType
	StartTS uint64
	// ShortValue is the value of a Put of at most maxShortValueLen bytes
	// (nil: the value is in CfDefault at StartTS), or the protection marker
	// of a Rollback.
	ShortValue []byte
	// HasOverlappedRollback records that a rollback of another transaction
	// whose start_ts equals this record's commit_ts was requested: that
	// transaction counts as rolled back.
	HasOverlappedRollback bool
	// HasGCFence and GCFence are decoded and re-encoded for compatibility.
	HasGCFence           bool
	GCFence              uint64
	LastChangeTS         uint64
	VersionsToLastChange uint64
	TxnSource            uint64
}

// newRollback returns a Rollback record for the transaction startTS.
func newRollback(startTS uint64, protected bool) *Write {
	w := &Write{Type: WriteTypeRollback, StartTS: startTS}
	if protected {
		w.ShortValue = protectedRollbackValue
	}
	return w
}

// IsProtectedRollback reports whether the record is a protected Rollback.
func (w *Write) IsProtectedRollback() bool {
	return w.Type == WriteTypeRollback && string(w.ShortValue) == string(protectedRollbackValue)
}

// Marshal encodes the record in TiKV's format: type, uvarint start_ts, then
// flagged optional fields.
func (w *Write) Marshal() []byte {
	rw := recordWriter{buf: make([]byte, 0, 16+len(w.ShortValue))}
	rw.byte(byte(w.Type))
	rw.uvarint(w.StartTS)
	if w.ShortValue != nil {
		rw.byte(writeFlagShortValue)
		rw.shortValue(w.ShortValue)
	}
	if w.HasOverlappedRollback {
		rw.byte(writeFlagOverlappedRollback)
	}
	if w.HasGCFence {
		rw.byte(writeFlagGCFence)
		rw.u64(w.GCFence)
	}
	if w.LastChangeTS != 0 || w.VersionsToLastChange != 0 {
		rw.byte(writeFlagLastChange)
		rw.u64(w.LastChangeTS)
		rw.uvarint(w.VersionsToLastChange)
	}
	if w.TxnSource != 0 {
		rw.byte(writeFlagTxnSource)
		rw.uvarint(w.TxnSource)
	}
	return rw.buf
}

// UnmarshalWrite decodes a record written by Marshal or by TiKV.
func UnmarshalWrite(b []byte) (*Write, error) {
	r := recordReader{buf: b, what: "write"}
	w := &Write{Type: WriteType(r.byte())}
	switch w.Type {
	case WriteTypePut, WriteTypeDelete, WriteTypeLock, WriteTypeRollback:
	default:
		r.fail("unknown write type %#x", byte(w.Type))
	}
	w.StartTS = r.uvarint()
	for !r.done() {
		w.decodeField(&r, r.byte())
	}
	if r.err != nil {
		return nil, r.err
	}
	return w, nil
}

func (w *Write) decodeField(r *recordReader, flag byte) {
	switch flag {
	case writeFlagShortValue:
		w.ShortValue = r.shortValue()
	case writeFlagOverlappedRollback:
		w.HasOverlappedRollback = true
	case writeFlagGCFence:
		w.HasGCFence = true
		w.GCFence = r.u64()
	case writeFlagLastChange:
		w.LastChangeTS = r.u64()
		w.VersionsToLastChange = r.uvarint()
	case writeFlagTxnSource:
		w.TxnSource = r.uvarint()
	default:
		r.fail("unknown flag %#x", flag)
	}
}

// writeTypeOfLock maps the lock being committed to its write type; a
// pessimistic lock commits as a Lock record.
func writeTypeOfLock(t LockType) WriteType {
	switch t {
	case LockTypePut:
		return WriteTypePut
	case LockTypeDelete:
		return WriteTypeDelete
	default:
		return WriteTypeLock
	}
}

// Op returns the kvrpcpb operation of the write type.
func (w *Write) Op() kvrpcpb.Op {
	switch w.Type {
	case WriteTypePut:
		return kvrpcpb.Op_Put
	case WriteTypeDelete:
		return kvrpcpb.Op_Del
	case WriteTypeLock:
		return kvrpcpb.Op_Lock
	default:
		return kvrpcpb.Op_Rollback
	}
}

// String describes the record for logs and test failures.
func (w *Write) String() string {
	return fmt.Sprintf("Write{%c start=%d short=%q overlapped=%v}", w.Type, w.StartTS, w.ShortValue, w.HasOverlappedRollback)
}
