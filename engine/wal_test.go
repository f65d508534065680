package engine

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// walSegments lists the segment files of the engine in dir.
func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, walDirName, "*"+walSuffix))
	require.NoError(t, err)
	return paths
}

// copyWAL copies the write-ahead log of the engine in from (open or not:
// appended records are synced) into to, which then holds the log alone, as
// if Badger had lost everything it had not flushed.
func copyWAL(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(to, walDirName), 0o755))
	for _, path := range walSegments(t, from) {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, walDirName, filepath.Base(path)), data, 0o644))
	}
}

// writeNumbered writes n batches, batch i putting key<i> in CfDefault and a
// lock in CfLock, and deleting the lock of batch i-1.
func writeNumbered(t *testing.T, e *Engine, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		wb := NewWriteBatch()
		wb.Put(CfDefault, fmt.Appendf(nil, "key%04d", i), fmt.Appendf(nil, "value%04d", i))
		wb.Put(CfLock, fmt.Appendf(nil, "lock%04d", i), []byte("l"))
		wb.Delete(CfLock, fmt.Appendf(nil, "lock%04d", i-1))
		require.NoError(t, e.Write(wb))
	}
}

// requireNumbered checks that batches [0, n) and nothing after are present.
func requireNumbered(t *testing.T, e *Engine, n int) {
	t.Helper()
	snap := e.Snapshot()
	defer snap.Close()
	got := collect(t, snap, CfDefault, IterOptions{}, nil)
	require.Len(t, got, n)
	for i, pair := range got {
		require.Equal(t, kv{fmt.Sprintf("key%04d", i), fmt.Sprintf("value%04d", i)}, pair)
	}
	locks := collect(t, snap, CfLock, IterOptions{}, nil)
	require.Equal(t, []kv{{fmt.Sprintf("lock%04d", n-1), "l"}}, locks)
}

// logOnlyCopy writes batches [0, n) to an engine opened with opts and
// returns it and a directory holding a copy of its write-ahead log alone.
func logOnlyCopy(t *testing.T, opts Options, n int) (*Engine, string) {
	t.Helper()
	original, recovered := t.TempDir(), t.TempDir()
	e := openTestEngine(t, original, opts)
	writeNumbered(t, e, 0, n)
	copyWAL(t, original, recovered)
	return e, recovered
}

// flipByte inverts the byte of the file at path that at picks.
func flipByte(t *testing.T, path string, at func(data []byte) int) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[at(data)] ^= 0xff
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

// requireAfterReopen closes e, opens dir again and checks that it holds
// batches [0, n).
func requireAfterReopen(t *testing.T, e *Engine, dir string, n int) {
	t.Helper()
	require.NoError(t, e.Close())
	requireNumbered(t, openTestEngine(t, dir, diskOptions()), n)
}

// TestWALReplaysWhatBadgerLost: acknowledged writes are in the log, so an
// engine whose Badger lost them (here: all of Badger) gets them back on
// Open, deletes and lock table included, and keeps working afterwards.
func TestWALReplaysWhatBadgerLost(t *testing.T) {
	_, recovered := logOnlyCopy(t, diskOptions(), 50)
	r, err := Open(recovered, diskOptions())
	require.NoError(t, err)
	requireNumbered(t, r, 50)
	writeNumbered(t, r, 50, 10)
	require.NoError(t, r.Close())
	require.Empty(t, walSegments(t, recovered), "a clean Close leaves Badger holding everything")
	requireNumbered(t, openTestEngine(t, recovered, diskOptions()), 60)
}

// TestWALTornTailIsCutOff: a damaged last record is a write that was never
// acknowledged; Open drops it, keeps everything before it, and a later Open
// does not mistake the cut segment for corruption.
func TestWALTornTailIsCutOff(t *testing.T) {
	_, recovered := logOnlyCopy(t, diskOptions(), 20)
	segments := walSegments(t, recovered)
	require.Len(t, segments, 1)
	flipByte(t, segments[0], func(data []byte) int { return len(bytes.TrimRight(data, "\x00")) - 1 })

	r, err := Open(recovered, diskOptions())
	require.NoError(t, err)
	requireNumbered(t, r, 19)
	writeNumbered(t, r, 19, 5)
	requireAfterReopen(t, r, recovered, 24)
}

// TestWALSegmentCreatedJustBeforeACrash: a crash between creating a
// segment and making its first record durable leaves an empty segment named
// by the next version; the reopened engine writes that version again.
func TestWALSegmentCreatedJustBeforeACrash(t *testing.T) {
	e, recovered := logOnlyCopy(t, diskOptions(), 10)
	next := e.view.published + 1
	empty := filepath.Join(recovered, walDirName, fmt.Sprintf("%016x%s", next, walSuffix))
	require.NoError(t, os.WriteFile(empty, nil, 0o644))

	r, err := Open(recovered, diskOptions())
	require.NoError(t, err)
	writeNumbered(t, r, 10, 5)
	requireNumbered(t, r, 15)
	requireAfterReopen(t, r, recovered, 15)
}

// TestWALCorruptionBeforeTheTailFailsOpen: damage in a segment that was
// complete when the next began is not a torn write; Open refuses it.
func TestWALCorruptionBeforeTheTailFailsOpen(t *testing.T) {
	opts := diskOptions()
	opts.walSegmentSize = 256
	_, recovered := logOnlyCopy(t, opts, 20)
	segments := walSegments(t, recovered)
	require.Greater(t, len(segments), 2)
	flipByte(t, segments[0], func([]byte) int { return walHeaderSize + 2 })

	_, err := Open(recovered, opts)
	require.ErrorIs(t, err, ErrWALCorrupt)
}

// TestWALSegmentsRemovedOnceFlushed: the log does not grow without bound:
// segments go once Badger has flushed the memtables holding their writes.
func TestWALSegmentsRemovedOnceFlushed(t *testing.T) {
	opts := diskOptions()
	opts.walSegmentSize = 256 << 10
	dir := t.TempDir()
	e := openTestEngine(t, dir, opts)
	value := bytes.Repeat([]byte("v"), 4<<10)
	const batches = 2 * testMemTableSize / (4 << 10) * 2 // four memtables' worth
	wb := NewWriteBatch()
	for i := range batches {
		wb.Reset()
		wb.Put(CfDefault, fmt.Appendf(nil, "key%06d", i), value)
		require.NoError(t, e.Write(wb))
	}
	written := batches * len(value) / int(opts.walSegmentSize)
	require.Less(t, len(walSegments(t, dir)), written/2,
		"segments of flushed memtables are removed while writing")
	require.NoError(t, e.Close())
	require.Empty(t, walSegments(t, dir))
}

// TestWALRecordRoundTrip: a record decodes to the operations encoded, in
// order, and any single flipped byte is detected.
func TestWALRecordRoundTrip(t *testing.T) {
	wb := NewWriteBatch()
	wb.Put(CfDefault, []byte("a"), []byte("1"))
	wb.Delete(CfWrite, []byte("b"))
	wb.Put(CfLock, []byte(""), nil)
	w := &wal{}
	w.encode(42, []*commitRequest{{batch: wb}})
	record := append([]byte(nil), w.buf...)

	payload, next, ok := nextRecord(record, 0)
	require.True(t, ok)
	require.Equal(t, len(record), next)
	decoded := NewWriteBatch()
	version, err := decodeWALPayload(payload, decoded)
	require.NoError(t, err)
	require.Equal(t, uint64(42), version)
	require.Equal(t, wb.ops, decoded.ops)
	require.Equal(t, wb.data, decoded.data)

	for i := range record {
		damaged := bytes.Clone(record)
		damaged[i] ^= 0x01
		_, _, ok := nextRecord(damaged, 0)
		require.False(t, ok, "flipped byte %d went unnoticed", i)
	}
}
