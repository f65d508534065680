package tikvsvc

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// stagedSuffix names a complete staged SST: <uuid in hex>.sst. A Write in
// progress writes <uuid in hex>.<random>.tmp and renames it when done.
const (
	stagedSuffix  = ".sst"
	partialSuffix = ".tmp"
)

// stagedTrailerSize is the trailer of a staged file: commit ts, pair count
// (both uint64) and CRC-32C of everything before (uint32), little-endian.
const stagedTrailerSize = 20

var stagedCRCTable = crc32.MakeTable(crc32.Castagnoli)

// importDir keeps the SSTs that Write staged and Ingest has not consumed
// yet, as files, so they survive a store restart as TiKV's import directory
// does (TiDB may ingest after the store came back). A staged file holds
// pairs as [uvarint len][key][uvarint len][value], then the trailer.
type importDir struct {
	dir string

	mu sync.Mutex
	// ingesting holds the uuids being ingested, so that two ingests of one
	// SST do not both apply it.
	ingesting map[string]bool
}

// openImportDir opens dir, creating it, and removes what Writes interrupted
// by a restart left behind.
func openImportDir(dir string) (*importDir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("import dir: %w", err)
	}
	partial, err := filepath.Glob(filepath.Join(dir, "*"+partialSuffix))
	if err != nil {
		return nil, fmt.Errorf("import dir: %w", err)
	}
	for _, path := range partial {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("import dir: %w", err)
		}
	}
	return &importDir{dir: dir, ingesting: make(map[string]bool)}, nil
}

func (d *importDir) path(uuid []byte) string {
	return filepath.Join(d.dir, hex.EncodeToString(uuid)+stagedSuffix)
}

// stagedWriter writes one staged file.
type stagedWriter struct {
	file  *os.File
	buf   *bufio.Writer
	crc   hash.Hash32
	pairs uint64
	bytes uint64 // Σ len(key)+len(value)
}

// create starts a staged file; commit or abort must follow.
func (d *importDir) create() (*stagedWriter, error) {
	f, err := os.CreateTemp(d.dir, "write.*"+partialSuffix)
	if err != nil {
		return nil, fmt.Errorf("import dir: %w", err)
	}
	crc := crc32.New(stagedCRCTable)
	return &stagedWriter{file: f, buf: bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20), crc: crc}, nil
}

func (w *stagedWriter) add(key, value []byte) error {
	var lenBuf [binary.MaxVarintLen64]byte
	for _, field := range [][]byte{key, value} {
		if _, err := w.buf.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(field)))]); err != nil {
			return err
		}
		if _, err := w.buf.Write(field); err != nil {
			return err
		}
	}
	w.pairs++
	w.bytes += uint64(len(key) + len(value))
	return nil
}

// commit finishes the file as the staged SST uuid, durably, replacing an
// earlier one with the same uuid.
func (w *stagedWriter) commit(d *importDir, uuid []byte, commitTS uint64) error {
	if err := w.finish(commitTS); err != nil {
		return errors.Join(err, w.abort())
	}
	if err := os.Rename(w.file.Name(), d.path(uuid)); err != nil {
		return errors.Join(err, w.abort())
	}
	return syncDir(d.dir)
}

func (w *stagedWriter) finish(commitTS uint64) error {
	if err := w.buf.Flush(); err != nil {
		return err
	}
	trailer := binary.LittleEndian.AppendUint64(nil, commitTS)
	trailer = binary.LittleEndian.AppendUint64(trailer, w.pairs)
	trailer = binary.LittleEndian.AppendUint32(trailer, w.crc.Sum32())
	if _, err := w.file.Write(trailer); err != nil {
		return err
	}
	return errors.Join(w.file.Sync(), w.file.Close())
}

// abort deletes the unfinished file.
func (w *stagedWriter) abort() error {
	w.file.Close()
	if err := os.Remove(w.file.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// stagedReader reads the pairs of a staged file whose checksum was verified.
type stagedReader struct {
	file     *os.File
	buf      *bufio.Reader
	commitTS uint64
	pairs    uint64 // not yet read
}

// errStagedNotFound means no staged SST has the uuid.
var errStagedNotFound = errors.New("staged sst not found")

// open claims the staged SST uuid for ingesting and verifies it; release
// must follow.
func (d *importDir) open(uuid []byte) (*stagedReader, error) {
	d.mu.Lock()
	if d.ingesting[string(uuid)] {
		d.mu.Unlock()
		return nil, fmt.Errorf("sst %x is being ingested", uuid)
	}
	d.ingesting[string(uuid)] = true
	d.mu.Unlock()
	r, err := d.openClaimed(uuid)
	if err != nil {
		d.release(uuid, false)
		return nil, err
	}
	return r, nil
}

func (d *importDir) openClaimed(uuid []byte) (*stagedReader, error) {
	f, err := os.Open(d.path(uuid))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errStagedNotFound
	}
	if err != nil {
		return nil, err
	}
	r, err := verifyStaged(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("staged sst %x: %w", uuid, err)
	}
	return r, nil
}

// verifyStaged checks f's trailer and checksum and positions a reader on
// its first pair.
func verifyStaged(f *os.File) (*stagedReader, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	bodySize := info.Size() - stagedTrailerSize
	if bodySize < 0 {
		return nil, errors.New("truncated")
	}
	trailer := make([]byte, stagedTrailerSize)
	if _, err := f.ReadAt(trailer, bodySize); err != nil {
		return nil, err
	}
	crc := crc32.New(stagedCRCTable)
	if _, err := io.Copy(crc, io.NewSectionReader(f, 0, bodySize)); err != nil {
		return nil, err
	}
	if crc.Sum32() != binary.LittleEndian.Uint32(trailer[16:]) {
		return nil, errors.New("checksum mismatch")
	}
	return &stagedReader{
		file:     f,
		buf:      bufio.NewReaderSize(io.NewSectionReader(f, 0, bodySize), 1<<20),
		commitTS: binary.LittleEndian.Uint64(trailer),
		pairs:    binary.LittleEndian.Uint64(trailer[8:]),
	}, nil
}

// next returns the next pair, or io.EOF after the last.
func (r *stagedReader) next() (key, value []byte, err error) {
	if r.pairs == 0 {
		return nil, nil, io.EOF
	}
	if key, err = readField(r.buf); err != nil {
		return nil, nil, err
	}
	if value, err = readField(r.buf); err != nil {
		return nil, nil, err
	}
	r.pairs--
	return key, value, nil
}

func readField(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("staged sst: %w", err)
	}
	field := make([]byte, n)
	if _, err := io.ReadFull(r, field); err != nil {
		return nil, fmt.Errorf("staged sst: %w", err)
	}
	return field, nil
}

// release ends an ingest of uuid; after a successful one the staged file
// is deleted, after a failed one it stays for a retry.
func (d *importDir) release(uuid []byte, ingested bool) error {
	var err error
	if ingested {
		err = os.Remove(d.path(uuid))
	}
	d.mu.Lock()
	delete(d.ingesting, string(uuid))
	d.mu.Unlock()
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
