package engine

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
)

// benchValue is a typical short TiKV value.
var benchValue = make([]byte, 100)

// runWriters calls write(i) for i in [0, b.N) from the given number of
// goroutines and reports the achieved writes per second.
func runWriters(b *testing.B, goroutines int, write func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range goroutines {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
				if err := write(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
}

// writeOneKey writes one single-key batch through the engine.
func writeOneKey(e *Engine) func(i int) error {
	return func(i int) error {
		wb := NewWriteBatch()
		wb.Put(CfDefault, fmt.Appendf(nil, "key%010d", i), benchValue)
		return e.Write(wb)
	}
}

// writeOneKeyToBadger commits one single-key transaction to db, a plain
// Badger opened with its own SyncWrites: the peer the engine's log and group
// commit are measured against.
func writeOneKeyToBadger(db *badger.DB) func(i int) error {
	var version atomic.Uint64
	return func(i int) error {
		txn := db.NewTransactionAt(0, true)
		defer txn.Discard()
		if err := txn.Set(fmt.Appendf(nil, "key%010d", i), benchValue); err != nil {
			return err
		}
		return txn.CommitAt(version.Add(1), nil)
	}
}

// BenchmarkWriteSync measures durable single-key writes: through the engine
// (its write-ahead log, with group commit when writers overlap) and, as the
// peer in the same run, through a plain Badger that syncs every transaction
// itself (its memory-mapped log, msync).
func BenchmarkWriteSync(b *testing.B) {
	for _, goroutines := range []int{1, 16} {
		b.Run(fmt.Sprintf("engine/writers=%d", goroutines), func(b *testing.B) {
			e := openTestEngine(b, b.TempDir(), diskOptions())
			runWriters(b, goroutines, writeOneKey(e))
		})
		b.Run(fmt.Sprintf("badger/writers=%d", goroutines), func(b *testing.B) {
			opts := diskOptions().badgerOptions(b.TempDir()).WithSyncWrites(true)
			db, err := badger.OpenManaged(opts)
			require.NoError(b, err)
			b.Cleanup(func() { _ = db.Close() })
			runWriters(b, goroutines, writeOneKeyToBadger(db))
		})
	}
}

const benchKeys = 100_000

// openLoadedEngine returns an on-disk engine holding benchKeys keys in
// CfWrite.
func openLoadedEngine(b *testing.B) *Engine {
	opts := diskOptions()
	opts.SyncWrites = false
	e := openTestEngine(b, b.TempDir(), opts)
	wb := NewWriteBatch()
	for i := range benchKeys {
		wb.Put(CfWrite, fmt.Appendf(nil, "key%010d", i), benchValue)
	}
	require.NoError(b, e.WriteNonAtomic(wb))
	return e
}

func BenchmarkGet(b *testing.B) {
	e := openLoadedEngine(b)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for range b.N {
		if _, err := e.Get(CfWrite, fmt.Appendf(nil, "key%010d", rng.IntN(benchKeys))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIterate(b *testing.B) {
	e := openLoadedEngine(b)
	for _, reverse := range []bool{false, true} {
		b.Run(fmt.Sprintf("reverse=%v", reverse), func(b *testing.B) {
			snap := e.Snapshot()
			defer snap.Close()
			it := snap.NewIterator(CfWrite, IterOptions{Reverse: reverse})
			defer it.Close()
			it.Rewind()
			b.ResetTimer()
			for range b.N {
				if !it.Valid() {
					it.Rewind()
				}
				if _, err := it.Value(); err != nil {
					b.Fatal(err)
				}
				it.Next()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}
