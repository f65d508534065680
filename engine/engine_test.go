package engine

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseCF(t *testing.T) {
	tests := []struct {
		name    string
		want    CF
		wantErr error
	}{
		{"", CfDefault, nil},
		{"default", CfDefault, nil},
		{"lock", CfLock, nil},
		{"write", CfWrite, nil},
		{"raft", 0, ErrUnknownCF},
	}
	for _, tt := range tests {
		got, err := ParseCF(tt.name)
		require.ErrorIs(t, err, tt.wantErr, tt.name)
		require.Equal(t, tt.want, got, tt.name)
		if tt.wantErr == nil && tt.name != "" {
			require.Equal(t, tt.name, got.String())
		}
	}
}

// TestRaftCFIsLocal checks that CfRaft holds data like any CF but stays out
// of what works on data CFs: a range delete over all CFs and size estimates.
func TestRaftCFIsLocal(t *testing.T) {
	e := openMemEngine(t)
	wb := NewWriteBatch()
	wb.Put(CfRaft, []byte("k"), []byte("apply state"))
	wb.Put(CfDefault, []byte("k"), []byte("data"))
	require.NoError(t, e.Write(wb))
	require.Equal(t, RangeStats{Keys: 1, Bytes: 5}, e.ApproximateSize(nil, nil))

	require.NoError(t, e.DeleteRangeAllCFs(nil, nil))
	_, err := e.Get(CfDefault, []byte("k"))
	require.ErrorIs(t, err, ErrNotFound)
	got, err := e.Get(CfRaft, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "apply state", string(got))
	require.Equal(t, "raft", CfRaft.String())
}

func TestWriteBatchAccounting(t *testing.T) {
	wb := NewWriteBatch()
	require.Equal(t, 0, wb.Len())
	wb.Put(CfDefault, []byte("k1"), []byte("value"))
	wb.Delete(CfLock, []byte("k22"))
	wb.Put(CfWrite, nil, nil)
	require.Equal(t, 3, wb.Len())
	require.Equal(t, len("k1")+len("value")+len("k22"), wb.Size())
	wb.Reset()
	require.Equal(t, 0, wb.Len())
	require.Equal(t, 0, wb.Size())
}

func TestWriteBatchCopiesArguments(t *testing.T) {
	e := openMemEngine(t)
	key, value := []byte("key"), []byte("value")
	wb := NewWriteBatch()
	wb.Put(CfDefault, key, value)
	copy(key, "XXX")
	copy(value, "XXXXX")
	require.NoError(t, e.Write(wb))
	got, err := e.Get(CfDefault, []byte("key"))
	require.NoError(t, err)
	require.Equal(t, "value", string(got))
}

func TestGetMissingEmptyValueAndEmptyKey(t *testing.T) {
	e := openMemEngine(t)
	_, err := e.Get(CfDefault, []byte("missing"))
	require.ErrorIs(t, err, ErrNotFound)

	put(t, e, CfDefault, "empty-value", "")
	got, err := e.Get(CfDefault, []byte("empty-value"))
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Empty(t, got)

	// The empty key is a key like any other and does not touch its neighbours.
	put(t, e, CfLock, "", "empty-key")
	put(t, e, CfLock, "\x00", "zero")
	put(t, e, CfDefault, "\xff\xff", "last-default")
	for _, cf := range []CF{CfDefault, CfWrite} {
		_, err = e.Get(cf, nil)
		require.ErrorIs(t, err, ErrNotFound, cf.String())
	}
	got, err = e.Get(CfLock, nil)
	require.NoError(t, err)
	require.Equal(t, "empty-key", string(got))

	snap := e.Snapshot()
	defer snap.Close()
	require.Equal(t, []kv{{"", "empty-key"}, {"\x00", "zero"}}, collect(t, snap, CfLock, IterOptions{}, nil))
	require.Equal(t, []kv{{"\x00", "zero"}, {"", "empty-key"}},
		collect(t, snap, CfLock, IterOptions{Reverse: true}, nil))
}

func TestCFIsolation(t *testing.T) {
	e := openMemEngine(t)
	wb := NewWriteBatch()
	for _, cf := range AllCFs() {
		wb.Put(cf, []byte("k"), []byte(cf.String()))
	}
	require.NoError(t, e.Write(wb))
	for _, cf := range AllCFs() {
		got, err := e.Get(cf, []byte("k"))
		require.NoError(t, err)
		require.Equal(t, cf.String(), string(got))
	}

	wb.Reset()
	wb.Delete(CfLock, []byte("k"))
	require.NoError(t, e.Write(wb))
	_, err := e.Get(CfLock, []byte("k"))
	require.ErrorIs(t, err, ErrNotFound)

	snap := e.Snapshot()
	defer snap.Close()
	for _, cf := range []CF{CfDefault, CfWrite} {
		for _, reverse := range []bool{false, true} {
			got := collect(t, snap, cf, IterOptions{Reverse: reverse}, nil)
			require.Equal(t, []kv{{"k", cf.String()}}, got, "%s reverse=%v", cf, reverse)
		}
	}
	require.Empty(t, collect(t, snap, CfLock, IterOptions{}, nil))
	require.Empty(t, collect(t, snap, CfLock, IterOptions{Reverse: true}, nil))
}

func TestLaterOperationInBatchWins(t *testing.T) {
	e := openMemEngine(t)
	wb := NewWriteBatch()
	wb.Put(CfDefault, []byte("a"), []byte("1"))
	wb.Put(CfDefault, []byte("a"), []byte("2"))
	wb.Put(CfDefault, []byte("b"), []byte("1"))
	wb.Delete(CfDefault, []byte("b"))
	require.NoError(t, e.Write(wb))
	got, err := e.Get(CfDefault, []byte("a"))
	require.NoError(t, err)
	require.Equal(t, "2", string(got))
	_, err = e.Get(CfDefault, []byte("b"))
	require.ErrorIs(t, err, ErrNotFound)
}

// TestBatchAtomicAcrossCFs has readers check, on snapshots taken while a
// writer commits batches, that each batch's three CF writes are all visible
// or none are.
func TestBatchAtomicAcrossCFs(t *testing.T) {
	e := openMemEngine(t)
	const rounds = 300
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				snap := e.Snapshot()
				var values []string
				for _, cf := range AllCFs() {
					v, err := snap.Get(cf, []byte("k"))
					if err == nil {
						values = append(values, string(v))
					} else {
						require.ErrorIs(t, err, ErrNotFound)
						values = append(values, "")
					}
				}
				snap.Close()
				require.Equal(t, values[0], values[1])
				require.Equal(t, values[0], values[2])
			}
		})
	}
	wb := NewWriteBatch()
	for i := range rounds {
		wb.Reset()
		for _, cf := range AllCFs() {
			wb.Put(cf, []byte("k"), fmt.Appendf(nil, "%d", i))
		}
		require.NoError(t, e.Write(wb))
	}
	close(done)
	wg.Wait()
}

func TestSnapshotIsolation(t *testing.T) {
	e := openMemEngine(t)
	put(t, e, CfDefault, "a", "old")
	put(t, e, CfDefault, "b", "old")
	snap := e.Snapshot()
	defer snap.Close()

	wb := NewWriteBatch()
	wb.Put(CfDefault, []byte("a"), []byte("new"))
	wb.Delete(CfDefault, []byte("b"))
	wb.Put(CfDefault, []byte("c"), []byte("new"))
	wb.Put(CfWrite, []byte("a"), []byte("new"))
	require.NoError(t, e.Write(wb))

	got, err := snap.Get(CfDefault, []byte("a"))
	require.NoError(t, err)
	require.Equal(t, "old", string(got))
	_, err = snap.Get(CfDefault, []byte("c"))
	require.ErrorIs(t, err, ErrNotFound)
	_, err = snap.Get(CfWrite, []byte("a"))
	require.ErrorIs(t, err, ErrNotFound)
	want := []kv{{"a", "old"}, {"b", "old"}}
	require.Equal(t, want, collect(t, snap, CfDefault, IterOptions{}, nil))

	latest := e.Snapshot()
	defer latest.Close()
	require.Equal(t, []kv{{"a", "new"}, {"c", "new"}}, collect(t, latest, CfDefault, IterOptions{}, nil))
}

func TestKeyTooLargeRejectsWholeBatch(t *testing.T) {
	e := openMemEngine(t)
	wb := NewWriteBatch()
	wb.Put(CfDefault, []byte("small"), []byte("v"))
	wb.Put(CfDefault, bytes.Repeat([]byte("k"), MaxKeySize+1), []byte("v"))
	require.ErrorIs(t, e.Write(wb), ErrKeyTooLarge)
	_, err := e.Get(CfDefault, []byte("small"))
	require.ErrorIs(t, err, ErrNotFound)

	wb.Reset()
	wb.Put(CfWrite, bytes.Repeat([]byte("k"), MaxKeySize), []byte("v"))
	require.NoError(t, e.Write(wb))
}

// TestLargeBatchAtomic writes 100k keys in one batch with the default
// memtable size and checks a snapshot sees none or all of them.
func TestLargeBatchAtomic(t *testing.T) {
	opts := testOptions()
	opts.MemTableSize = 0
	e := openTestEngine(t, "", opts)
	const keys = 100_000
	require.GreaterOrEqual(t, e.MaxBatchEntries(), keys)

	before := e.Snapshot()
	defer before.Close()
	wb := NewWriteBatch()
	for i := range keys {
		wb.Put(CfWrite, fmt.Appendf(nil, "key%08d", i), fmt.Appendf(nil, "value%08d", i))
	}
	require.NoError(t, e.Write(wb))

	after := e.Snapshot()
	defer after.Close()
	countKeys := func(snap *Snapshot) int {
		n := 0
		require.NoError(t, snap.Scan(CfWrite, IterOptions{KeyOnly: true}, func(_, _ []byte) bool {
			n++
			return true
		}))
		return n
	}
	require.Equal(t, 0, countKeys(before))
	require.Equal(t, keys, countKeys(after))
	stats := e.ApproximateSize(nil, nil)
	require.Equal(t, uint64(keys), stats.Keys)
	require.Equal(t, uint64(keys*(11+13)), stats.Bytes)
}

func TestBatchTooLargeAndWriteNonAtomic(t *testing.T) {
	opts := testOptions()
	e := openTestEngine(t, "", opts)
	keys := e.MaxBatchEntries() + 1
	wb := NewWriteBatch()
	for i := range keys {
		wb.Put(CfDefault, fmt.Appendf(nil, "key%08d", i), []byte("v"))
	}
	require.ErrorIs(t, e.Write(wb), ErrBatchTooLarge)
	require.Equal(t, uint64(0), e.ApproximateSize(nil, nil).Keys)

	require.NoError(t, e.WriteNonAtomic(wb))
	require.Equal(t, uint64(keys), e.ApproximateSize(nil, nil).Keys)
}

func TestDeleteRange(t *testing.T) {
	e := openMemEngine(t)
	wb := NewWriteBatch()
	for _, cf := range AllCFs() {
		for _, key := range []string{"a", "b", "b\x00", "c", "d"} {
			wb.Put(cf, []byte(key), []byte("v"))
		}
	}
	require.NoError(t, e.Write(wb))

	require.NoError(t, e.DeleteRange(CfLock, []byte("b"), []byte("d")))
	require.NoError(t, e.DeleteRangeAllCFs([]byte("d"), nil))

	snap := e.Snapshot()
	defer snap.Close()
	keyOnly := IterOptions{KeyOnly: true}
	require.Equal(t, []kv{{key: "a"}}, collect(t, snap, CfLock, keyOnly, nil))
	for _, cf := range []CF{CfDefault, CfWrite} {
		require.Equal(t, []kv{{key: "a"}, {key: "b"}, {key: "b\x00"}, {key: "c"}}, collect(t, snap, cf, keyOnly, nil))
	}
	require.Equal(t, RangeStats{Keys: 3, Bytes: 3 * 2}, e.ApproximateSize([]byte("a"), []byte("b")))
}

func TestDeleteRangeManyChunks(t *testing.T) {
	e := openMemEngine(t)
	wb := NewWriteBatch()
	const keys = deleteRangeChunk*2 + 7
	for i := range keys {
		wb.Put(CfWrite, fmt.Appendf(nil, "key%08d", i), nil)
	}
	require.NoError(t, e.WriteNonAtomic(wb))
	require.NoError(t, e.DeleteRange(CfWrite, nil, nil))
	require.Equal(t, RangeStats{}, e.ApproximateSize(nil, nil))
}

func TestReopenDurability(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, diskOptions())
	require.NoError(t, err)
	wb := NewWriteBatch()
	for i := range 1000 {
		wb.Put(AllCFs()[i%3], fmt.Appendf(nil, "key%04d", i), fmt.Appendf(nil, "value%04d", i))
	}
	wb.Put(CfLock, nil, []byte("empty key"))
	require.NoError(t, e.Write(wb))
	require.NoError(t, e.Close())

	e = openTestEngine(t, dir, diskOptions())
	for i := range 1000 {
		got, err := e.Get(AllCFs()[i%3], fmt.Appendf(nil, "key%04d", i))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("value%04d", i), string(got))
	}
	got, err := e.Get(CfLock, nil)
	require.NoError(t, err)
	require.Equal(t, "empty key", string(got))
}

func TestTwoEnginesInTwoDirs(t *testing.T) {
	kvEngine := openTestEngine(t, t.TempDir(), diskOptions())
	raftEngine := openTestEngine(t, t.TempDir(), diskOptions())
	put(t, kvEngine, CfDefault, "k", "kv")
	put(t, raftEngine, CfDefault, "k", "raft")
	for engine, want := range map[*Engine]string{kvEngine: "kv", raftEngine: "raft"} {
		got, err := engine.Get(CfDefault, []byte("k"))
		require.NoError(t, err)
		require.Equal(t, want, string(got))
	}
}

func TestOpenRejectsTinyMemTable(t *testing.T) {
	opts := testOptions()
	opts.MemTableSize = MinMemTableSize - 1
	_, err := Open("", opts)
	require.ErrorContains(t, err, "MemTableSize")
}

func TestWriteAfterCloseFails(t *testing.T) {
	e, err := Open("", testOptions())
	require.NoError(t, err)
	require.NoError(t, e.Close())
	wb := NewWriteBatch()
	wb.Put(CfDefault, []byte("k"), []byte("v"))
	require.ErrorIs(t, e.Write(wb), ErrClosed)
	require.NoError(t, e.Write(NewWriteBatch()), "empty batch is a no-op")
}

// TestConcurrentWriters has writers race each other (and Sync and readers)
// through group commit; each must read its own writes, and all must land.
func TestConcurrentWriters(t *testing.T) {
	e := openTestEngine(t, t.TempDir(), diskOptions())
	const writers, writesEach = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			wb := NewWriteBatch()
			for i := range writesEach {
				key := fmt.Appendf(nil, "w%d-%03d", w, i)
				wb.Reset()
				wb.Put(CfDefault, key, key)
				wb.Put(CfWrite, key, key)
				require.NoError(t, e.Write(wb))
				got, err := e.Get(CfWrite, key)
				require.NoError(t, err)
				require.Equal(t, key, got)
			}
		})
	}
	wg.Go(func() { require.NoError(t, e.Sync()) })
	wg.Wait()
	require.Equal(t, uint64(2*writers*writesEach), e.ApproximateSize(nil, nil).Keys)
}

func TestBadgerLoggerForwardsWarningsOnly(t *testing.T) {
	var out strings.Builder
	logger := badgerLogger{slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	logger.Debugf("debug %d", 1)
	logger.Infof("info %d", 2)
	logger.Warningf("warn %d\n", 3)
	logger.Errorf("error %d", 4)
	logged := out.String()
	require.NotContains(t, logged, "debug 1")
	require.NotContains(t, logged, "info 2")
	require.Contains(t, logged, `level=WARN msg="warn 3" component=badger`)
	require.Contains(t, logged, `level=ERROR msg="error 4" component=badger`)
}

func TestSnapshotSharedByReaders(t *testing.T) {
	e := openMemEngine(t)
	put(t, e, CfDefault, "k", "v")
	snap := e.Snapshot()
	defer snap.Close()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				got, err := snap.Get(CfDefault, []byte("k"))
				require.NoError(t, err)
				require.Equal(t, "v", string(got))
				require.Equal(t, []kv{{"k", "v"}}, collect(t, snap, CfDefault, IterOptions{}, nil))
			}
		})
	}
	put(t, e, CfDefault, "k", "changed")
	wg.Wait()
}

// TestCommitStats: every Write is counted in a group, with one log sync per
// group on disk and none in memory; concurrent writers share groups.
func TestCommitStats(t *testing.T) {
	disk := openTestEngine(t, t.TempDir(), diskOptions())
	before := disk.CommitStats()
	for i := range 5 {
		put(t, disk, CfDefault, fmt.Sprintf("k%d", i), "v")
	}
	after := disk.CommitStats()
	require.Equal(t, uint64(5), after.Groups-before.Groups)
	require.Equal(t, uint64(5), after.Writes-before.Writes)
	require.Equal(t, uint64(5), after.LogSyncs-before.LogSyncs)
	require.Greater(t, after.LogSyncTime, before.LogSyncTime)

	mem := openMemEngine(t)
	var wg sync.WaitGroup
	errs := make(chan error, 160)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				wb := NewWriteBatch()
				wb.Put(CfDefault, fmt.Appendf(nil, "w%d-%d", w, i), []byte("v"))
				errs <- mem.Write(wb)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	stats := mem.CommitStats()
	require.Equal(t, uint64(160), stats.Writes)
	require.LessOrEqual(t, stats.Groups, stats.Writes)
	require.Positive(t, stats.Groups)
	require.Zero(t, stats.LogSyncs)
}
