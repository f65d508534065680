package mvcc

import (
	"encoding/binary"
	"fmt"
)

// recordWriter appends the primitive encodings of TiKV's lock and write
// records.
type recordWriter struct{ buf []byte }

func (w *recordWriter) byte(b byte) { w.buf = append(w.buf, b) }

func (w *recordWriter) uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

func (w *recordWriter) u64(v uint64) { w.buf = binary.BigEndian.AppendUint64(w.buf, v) }

// compactBytes writes a zigzag varint length, then the bytes.
func (w *recordWriter) compactBytes(b []byte) {
	w.buf = binary.AppendVarint(w.buf, int64(len(b)))
	w.buf = append(w.buf, b...)
}

// shortValue writes a one-byte length, then the value; callers guarantee
// len(v) <= maxShortValueLen.
func (w *recordWriter) shortValue(v []byte) {
	w.buf = append(w.buf, byte(len(v)))
	w.buf = append(w.buf, v...)
}

// recordReader consumes the primitive encodings; the first failure sticks
// in err and makes every later read return zero values.
type recordReader struct {
	buf  []byte
	what string // "lock" or "write", for error messages
	err  error
}

func (r *recordReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("mvcc: decode %s: %s: %w", r.what, fmt.Sprintf(format, args...), ErrCorrupted)
	}
}

func (r *recordReader) done() bool { return r.err != nil || len(r.buf) == 0 }

func (r *recordReader) byte() byte {
	if r.err != nil || len(r.buf) < 1 {
		r.fail("truncated")
		return 0
	}
	b := r.buf[0]
	r.buf = r.buf[1:]
	return b
}

func (r *recordReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *recordReader) u64() uint64 {
	if r.err != nil || len(r.buf) < 8 {
		r.fail("truncated u64")
		return 0
	}
	v := binary.BigEndian.Uint64(r.buf)
	r.buf = r.buf[8:]
	return v
}

func (r *recordReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || len(r.buf) < n {
		r.fail("truncated bytes")
		return nil
	}
	b := append([]byte{}, r.buf[:n]...)
	r.buf = r.buf[n:]
	return b
}

func (r *recordReader) compactBytes() []byte {
	if r.err != nil {
		return nil
	}
	n, size := binary.Varint(r.buf)
	if size <= 0 || n < 0 {
		r.fail("bad compact bytes length")
		return nil
	}
	r.buf = r.buf[size:]
	return r.bytes(int(n))
}

// shortValue returns a non-nil slice, empty for an empty value.
func (r *recordReader) shortValue() []byte {
	return r.bytes(int(r.byte()))
}
