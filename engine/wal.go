package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// walDirName is the engine's write-ahead log directory, inside its Badger
// directory (Badger ignores subdirectories).
const walDirName = "wal"

// walSuffix names segment files: <first version, 16 hex digits>.wal.
const walSuffix = ".wal"

// walHeaderSize is a record's header: CRC-32C of the payload, then its
// length, both little-endian uint32.
const walHeaderSize = 8

// walGrowth is how far a segment file is extended with zeros at a time.
// Records are then written over already-allocated blocks, so the fdatasync
// after a record flushes data only, without a file-size or extent change to
// journal.
const walGrowth = 4 << 20

// defaultWALSegmentSize is the size after which the log moves to a new
// segment file; the old one is deleted once Badger holds its data durably.
const defaultWALSegmentSize = 64 << 20

// walOp kinds in a record payload.
const (
	walPut    byte = 0
	walDelete byte = 1
)

var walCRCTable = crc32.MakeTable(crc32.Castagnoli)

// wal is the engine's write-ahead log. With SyncWrites, Badger runs without
// its own syncing: the committer appends each group to the log and
// fdatasyncs it before committing it to Badger, so an acknowledged write is
// on disk even if Badger's unsynced log is lost. Open replays the records
// that Badger may not hold durably.
//
// A record is one group commit: header, then the payload
// [version u64][op]..., an op being [kind u8][uvarint len][stored key] and,
// for a put, [uvarint len][value]. Records follow each other from the start
// of a segment; a zero length (the zero-filled tail) or the end of the file
// ends the segment.
//
// Invariants: segments are named by the first version they hold, and hold
// versions in increasing order; every segment but the last ends cleanly
// (Open truncates a torn tail before it appends to a new segment). Segment i
// holds versions below the first version of segment i+1.
type wal struct {
	dir         string
	segmentSize int64

	// mu guards segments, which both the committer (rotate) and the
	// cleaner (removeCovered) change.
	mu sync.Mutex
	// segments are the first versions of the segment files, ascending; the
	// last one is active.
	segments []uint64

	// The fields below are used only by the committer goroutine.

	// active is the segment file being appended to; nil until the first
	// append after Open.
	active *os.File
	// offset is where the next record goes in active; allocated is the
	// file's size, all of it zero beyond offset.
	offset, allocated int64
	// buf holds the record being encoded, reused between appends.
	buf []byte
	// failed is the first append error: after it the log's tail is unknown,
	// so every later append fails too.
	failed error
}

// openWAL opens the log in dir, creating it if needed. Nothing is appended
// until replay has run.
func openWAL(dir string, segmentSize int64) (*wal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("engine: wal: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("engine: wal: %w", err)
	}
	w := &wal{dir: dir, segmentSize: segmentSize}
	for _, entry := range entries {
		name := entry.Name()
		if !strings.HasSuffix(name, walSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, walSuffix), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("engine: wal: segment name %q: %w", name, ErrWALCorrupt)
		}
		w.segments = append(w.segments, first)
	}
	slices.Sort(w.segments)
	return w, nil
}

func (w *wal) segmentPath(first uint64) string {
	return filepath.Join(w.dir, fmt.Sprintf("%016x%s", first, walSuffix))
}

// replay calls apply for every record with a version above after, in log
// order. A torn record at the end of the last segment (a write that was never
// acknowledged) is cut off; any other damage is ErrWALCorrupt.
func (w *wal) replay(after uint64, apply func(version uint64, wb *WriteBatch) error) error {
	for i, first := range w.segments {
		last := i == len(w.segments)-1
		if err := w.replaySegment(w.segmentPath(first), last, after, apply); err != nil {
			return err
		}
	}
	return nil
}

func (w *wal) replaySegment(path string, last bool, after uint64, apply func(uint64, *WriteBatch) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("engine: wal: %w", err)
	}
	wb := NewWriteBatch()
	offset := 0
	for {
		payload, next, ok := nextRecord(data, offset)
		if !ok {
			break
		}
		version, err := decodeWALPayload(payload, wb)
		if err != nil {
			return fmt.Errorf("engine: wal: %s at %d: %w", path, offset, err)
		}
		if version > after {
			if err := apply(version, wb); err != nil {
				return err
			}
		}
		offset = next
	}
	if offset == len(data) || isZero(data[offset:]) {
		return nil
	}
	if !last {
		return fmt.Errorf("engine: wal: %s: bad record at %d: %w", path, offset, ErrWALCorrupt)
	}
	if err := truncateFile(path, int64(offset)); err != nil {
		return fmt.Errorf("engine: wal: cut torn tail of %s: %w", path, err)
	}
	return nil
}

// nextRecord returns the payload of the record at data[offset:] and where
// the next record starts, or ok false if there is no intact record there.
func nextRecord(data []byte, offset int) (payload []byte, next int, ok bool) {
	if len(data)-offset < walHeaderSize {
		return nil, 0, false
	}
	sum := binary.LittleEndian.Uint32(data[offset:])
	length := int(binary.LittleEndian.Uint32(data[offset+4:]))
	start := offset + walHeaderSize
	if length == 0 || length > len(data)-start {
		return nil, 0, false
	}
	payload = data[start : start+length]
	if crc32.Checksum(payload, walCRCTable) != sum {
		return nil, 0, false
	}
	return payload, start + length, true
}

// decodeWALPayload decodes a record payload into wb (reset first) and
// returns its version.
func decodeWALPayload(payload []byte, wb *WriteBatch) (uint64, error) {
	wb.Reset()
	if len(payload) < 8 {
		return 0, ErrWALCorrupt
	}
	version := binary.LittleEndian.Uint64(payload)
	rest := payload[8:]
	for len(rest) > 0 {
		kind := rest[0]
		key, afterKey, ok := cutUvarintBytes(rest[1:])
		if !ok || len(key) == 0 {
			return 0, ErrWALCorrupt
		}
		switch kind {
		case walDelete:
			wb.addStored(key, nil, true)
			rest = afterKey
		case walPut:
			value, afterValue, ok := cutUvarintBytes(afterKey)
			if !ok {
				return 0, ErrWALCorrupt
			}
			wb.addStored(key, value, false)
			rest = afterValue
		default:
			return 0, ErrWALCorrupt
		}
	}
	return version, nil
}

// cutUvarintBytes splits a uvarint-length-prefixed byte string off b.
func cutUvarintBytes(b []byte) (field, rest []byte, ok bool) {
	n, size := binary.Uvarint(b)
	if size <= 0 || n > uint64(len(b)-size) {
		return nil, nil, false
	}
	end := size + int(n)
	return b[size:end], b[end:], true
}

// encode puts the record for group at version in w.buf.
func (w *wal) encode(version uint64, group []*commitRequest) {
	buf := append(w.buf[:0], make([]byte, walHeaderSize)...)
	buf = binary.LittleEndian.AppendUint64(buf, version)
	for _, req := range group {
		wb := req.batch
		for _, op := range wb.ops {
			kind := walPut
			if op.delete {
				kind = walDelete
			}
			buf = append(buf, kind)
			key := wb.storedKey(op)
			buf = binary.AppendUvarint(buf, uint64(len(key)))
			buf = append(buf, key...)
			if !op.delete {
				value := wb.value(op)
				buf = binary.AppendUvarint(buf, uint64(len(value)))
				buf = append(buf, value...)
			}
		}
	}
	payload := buf[walHeaderSize:]
	binary.LittleEndian.PutUint32(buf, crc32.Checksum(payload, walCRCTable))
	binary.LittleEndian.PutUint32(buf[4:], uint32(len(payload)))
	w.buf = buf
}

// append writes group's record at version and fdatasyncs it, and reports
// whether it started a new segment. Only the committer calls it, with
// increasing versions.
func (w *wal) append(version uint64, group []*commitRequest) (rotated bool, err error) {
	if w.failed != nil {
		return false, w.failed
	}
	w.encode(version, group)
	if rotated, err = w.writeRecord(version); err != nil {
		w.failed = fmt.Errorf("engine: wal append: %w", err)
		return false, w.failed
	}
	return rotated, nil
}

func (w *wal) writeRecord(version uint64) (rotated bool, err error) {
	size := int64(len(w.buf))
	if w.active == nil || (w.offset > 0 && w.offset+size > w.segmentSize) {
		if err := w.rotate(version); err != nil {
			return false, err
		}
		rotated = true
	}
	if err := w.ensureAllocated(w.offset + size); err != nil {
		return false, err
	}
	if _, err := w.active.WriteAt(w.buf, w.offset); err != nil {
		return false, err
	}
	if err := unix.Fdatasync(int(w.active.Fd())); err != nil {
		return false, err
	}
	w.offset += size
	return rotated, nil
}

// rotate starts a new segment whose first version is version. A segment
// of that name can exist only if a crash came before its first record was
// durable (a replayed record would have moved the versions past it), so it
// holds nothing and is overwritten.
func (w *wal) rotate(version uint64) error {
	f, err := os.OpenFile(w.segmentPath(version), os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := syncPath(w.dir); err != nil {
		return errors.Join(err, f.Close())
	}
	if w.active != nil {
		if err := w.active.Close(); err != nil {
			return errors.Join(err, f.Close())
		}
	}
	w.active, w.offset, w.allocated = f, 0, 0
	w.mu.Lock()
	if n := len(w.segments); n == 0 || w.segments[n-1] != version {
		w.segments = append(w.segments, version)
	}
	w.mu.Unlock()
	return nil
}

// ensureAllocated extends the active segment with zeros, walGrowth (or the
// segment size, if smaller) at a time, until it is at least size bytes long.
func (w *wal) ensureAllocated(size int64) error {
	if size <= w.allocated {
		return nil
	}
	grown := max(w.allocated+min(walGrowth, w.segmentSize), size)
	zeros := make([]byte, grown-w.allocated)
	if _, err := w.active.WriteAt(zeros, w.allocated); err != nil {
		return err
	}
	w.allocated = grown
	return nil
}

// removeCovered deletes the segments, other than the active one, whose
// versions are all at most durable.
func (w *wal) removeCovered(durable uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	removed := 0
	for removed+1 < len(w.segments) && w.segments[removed+1]-1 <= durable {
		if err := os.Remove(w.segmentPath(w.segments[removed])); err != nil {
			return fmt.Errorf("engine: wal: %w", err)
		}
		removed++
	}
	w.segments = w.segments[removed:]
	return nil
}

// removeAll deletes every segment, once Badger holds all their data durably.
func (w *wal) removeAll() error {
	if err := w.closeActive(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, first := range w.segments {
		if err := os.Remove(w.segmentPath(first)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("engine: wal: %w", err)
		}
	}
	w.segments = nil
	return nil
}

func (w *wal) closeActive() error {
	if w.active == nil {
		return nil
	}
	err := w.active.Close()
	w.active = nil
	if err != nil {
		return fmt.Errorf("engine: wal: %w", err)
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		return errors.Join(err, f.Close())
	}
	return errors.Join(f.Sync(), f.Close())
}

// syncPath fsyncs the file or directory at path. For a directory, that
// makes a file creation or removal in it durable.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
