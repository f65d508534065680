package engine

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// testMemTableSize keeps test engines small; tests that need large atomic
// batches use DefaultMemTableSize.
const testMemTableSize = 8 << 20

func testOptions() Options {
	return Options{InMemory: true, MemTableSize: testMemTableSize, BlockCacheSize: 1 << 20}
}

func diskOptions() Options {
	opts := DefaultOptions()
	opts.MemTableSize = testMemTableSize
	opts.BlockCacheSize = 1 << 20
	return opts
}

// openTestEngine opens an engine that is closed when the test ends.
func openTestEngine(t testing.TB, dir string, opts Options) *Engine {
	t.Helper()
	e, err := Open(dir, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func openMemEngine(t testing.TB) *Engine {
	return openTestEngine(t, "", testOptions())
}

func put(t testing.TB, e *Engine, cf CF, key, value string) {
	t.Helper()
	wb := NewWriteBatch()
	wb.Put(cf, []byte(key), []byte(value))
	require.NoError(t, e.Write(wb))
}

// kv is a key-value pair as strings, for readable expectations.
type kv struct{ key, value string }

// collect drains a fresh iterator over cf in opts' order, after seeking to
// seek (Rewind when seek is nil).
func collect(t testing.TB, snap *Snapshot, cf CF, opts IterOptions, seek []byte) []kv {
	t.Helper()
	it := snap.NewIterator(cf, opts)
	defer it.Close()
	if seek == nil {
		it.Rewind()
	} else {
		it.Seek(seek)
	}
	var got []kv
	for ; it.Valid(); it.Next() {
		pair := kv{key: string(it.Key())}
		if !opts.KeyOnly {
			value, err := it.Value()
			require.NoError(t, err)
			pair.value = string(value)
		}
		got = append(got, pair)
	}
	return got
}
