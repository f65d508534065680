package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
)

// valueLogOptions are disk options with tiny value log files and GC left to
// the test.
func valueLogOptions() Options {
	opts := diskOptions()
	opts.valueLogFileSize = 2 << 20
	opts.valueLogGCInterval = time.Hour
	return opts
}

// largeValue is key's value in round: large enough (over 1 MiB) for Badger
// to keep it in the value log.
func largeValue(round, key int) []byte {
	v := bytes.Repeat([]byte{byte(round)}, 1<<20+1000)
	v[0] = byte(key)
	return v
}

// overwriteLargeValues writes keys large values rounds times, each round
// followed by 10 MiB of small overwrites, so memtables flush, and then
// compacts everything: compaction drops the overwritten versions and
// counts them as garbage of their value log files.
func overwriteLargeValues(t *testing.T, e *Engine, rounds, keys int) {
	t.Helper()
	for round := range rounds {
		for k := range keys {
			wb := NewWriteBatch()
			wb.Put(CfDefault, fmt.Appendf(nil, "large%d", k), largeValue(round, k))
			require.NoError(t, e.Write(wb))
		}
		for batch := range 10 {
			wb := NewWriteBatch()
			for i := range 250 {
				wb.Put(CfWrite, fmt.Appendf(nil, "small%d-%d", batch, i), bytes.Repeat([]byte{byte(round)}, 4000))
			}
			require.NoError(t, e.Write(wb))
		}
	}
	require.NoError(t, e.db.Flatten(1))
}

func requireLargeValues(t *testing.T, e *Engine, round, keys int) {
	t.Helper()
	snap := e.Snapshot()
	defer snap.Close()
	for k := range keys {
		got, err := snap.Get(CfDefault, fmt.Appendf(nil, "large%d", k))
		require.NoError(t, err)
		require.True(t, bytes.Equal(largeValue(round, k), got), "large%d is not its round %d value", k, round)
	}
}

// valueLogFiles returns the value log files in dir and their total size.
func valueLogFiles(t *testing.T, dir string) (names []string, size int64) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, entry := range entries {
		if strings.HasSuffix(entry.Name(), ".vlog") {
			info, err := entry.Info()
			require.NoError(t, err)
			names = append(names, entry.Name())
			size += info.Size()
		}
	}
	return names, size
}

// engineWithGarbage opens an engine in a new directory and overwrites its
// large values (overwriteLargeValues).
func engineWithGarbage(t *testing.T, rounds, keys int) (*Engine, string) {
	t.Helper()
	dir := t.TempDir()
	e := openTestEngine(t, dir, valueLogOptions())
	overwriteLargeValues(t, e, rounds, keys)
	return e, dir
}

func TestValueLogGCReclaimsOverwrittenValues(t *testing.T) {
	const rounds, keys = 24, 2
	e, dir := engineWithGarbage(t, rounds, keys)
	_, before := valueLogFiles(t, dir)
	require.Greater(t, before, int64(rounds*keys)<<20, "the overwritten values are not in the value log")

	require.NoError(t, e.valueLogGC.collect())
	_, after := valueLogFiles(t, dir)
	require.Less(t, after, before/4, "value log holds %d bytes after GC, %d before", after, before)
	requireLargeValues(t, e, rounds-1, keys)

	require.NoError(t, e.Close())
	e = openTestEngine(t, dir, valueLogOptions())
	requireLargeValues(t, e, rounds-1, keys)
}

// TestValueLogGCKeepsARewrittenFileItCannotSync: until the moved values are
// durable, the rewritten file must stay on disk; when the sync fails, GC
// stops with the file kept and every value readable.
func TestValueLogGCKeepsARewrittenFileItCannotSync(t *testing.T) {
	const rounds, keys = 8, 2
	e, dir := engineWithGarbage(t, rounds, keys)
	files, _ := valueLogFiles(t, dir)

	e.valueLogGC.syncFiles = func(*badger.DB) error { return errors.New("disk gone") }
	rewritten, err := e.valueLogGC.rewriteOne()
	require.Error(t, err)
	require.False(t, rewritten)
	for _, name := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err, "value log file %s was deleted before the values moved out of it were synced", name)
	}
	requireLargeValues(t, e, rounds-1, keys)
}
