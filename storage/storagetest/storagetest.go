// Package storagetest is the conformance suite of storage.Storage: the same
// tests run against every implementation — the standalone engine, and one-
// and three-peer raftstores — so that the transaction layer can rely on one
// contract whatever is under it.
package storagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
)

// Target is a storage under test and the request context that addresses
// the one region it serves, which covers every key.
type Target struct {
	Storage storage.Storage
	Context *kvrpcpb.Context
}

// Run runs the suite; newTarget returns a fresh, empty storage for each
// test.
func Run(t *testing.T, newTarget func(t *testing.T) Target) {
	tests := []struct {
		name string
		run  func(*testing.T, Target)
	}{
		{"WritesAreVisible", testWritesAreVisible},
		{"SnapshotsAreConsistent", testSnapshotsAreConsistent},
		{"BatchesAreAtomic", testBatchesAreAtomic},
		{"IteratorsKeepOrderAndBounds", testIteratorsKeepOrderAndBounds},
		{"NextLockByStartTS", testNextLockByStartTS},
		{"DestroyRange", testDestroyRange},
		{"Percolator", testPercolator},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newTarget(t)) })
	}
}

func put(cf engine.CF, key, value string) storage.Modify {
	return storage.Modify{CF: cf, Key: []byte(key), Value: []byte(value)}
}

func del(cf engine.CF, key string) storage.Modify {
	return storage.Modify{CF: cf, Key: []byte(key), Delete: true}
}

func (tg Target) write(t *testing.T, mods ...storage.Modify) {
	t.Helper()
	require.NoError(t, tg.Storage.Write(context.Background(), tg.Context, mods))
}

func (tg Target) snapshot(t *testing.T) storage.Snapshot {
	t.Helper()
	snap, err := tg.Storage.Snapshot(context.Background(), tg.Context)
	require.NoError(t, err)
	t.Cleanup(snap.Close)
	return snap
}

func get(t *testing.T, snap storage.Snapshot, cf engine.CF, key string) []byte {
	t.Helper()
	value, err := snap.Get(cf, []byte(key))
	require.NoError(t, err)
	return value
}

// testWritesAreVisible: puts and deletes in every data CF are seen by a
// later snapshot; an absent key reads nil, a present empty value a
// non-nil empty slice.
func testWritesAreVisible(t *testing.T, tg Target) {
	tg.write(t, put(engine.CfDefault, "a", "1"), put(engine.CfLock, "a", "l"), put(engine.CfWrite, "a", "w"), put(engine.CfDefault, "empty", ""))
	snap := tg.snapshot(t)
	require.Equal(t, "1", string(get(t, snap, engine.CfDefault, "a")))
	require.Equal(t, "l", string(get(t, snap, engine.CfLock, "a")))
	require.Equal(t, "w", string(get(t, snap, engine.CfWrite, "a")))
	require.Nil(t, get(t, snap, engine.CfDefault, "absent"))
	empty := get(t, snap, engine.CfDefault, "empty")
	require.NotNil(t, empty, "a present empty value")
	require.Empty(t, empty)

	tg.write(t, del(engine.CfDefault, "a"), put(engine.CfWrite, "a", "w2"))
	after := tg.snapshot(t)
	require.Nil(t, get(t, after, engine.CfDefault, "a"))
	require.Equal(t, "w2", string(get(t, after, engine.CfWrite, "a")))
	require.Equal(t, "l", string(get(t, after, engine.CfLock, "a")))
}

// testSnapshotsAreConsistent: a snapshot taken before a write never sees
// it, however long it is kept.
func testSnapshotsAreConsistent(t *testing.T, tg Target) {
	tg.write(t, put(engine.CfDefault, "k", "old"))
	before := tg.snapshot(t)
	tg.write(t, put(engine.CfDefault, "k", "new"), put(engine.CfDefault, "k2", "new"))
	require.Equal(t, "old", string(get(t, before, engine.CfDefault, "k")))
	require.Nil(t, get(t, before, engine.CfDefault, "k2"))
	it := before.NewIterator(engine.CfDefault, engine.IterOptions{})
	defer it.Close()
	var keys []string
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, string(it.Key()))
	}
	require.Equal(t, []string{"k"}, keys)
	require.Equal(t, "new", string(get(t, tg.snapshot(t), engine.CfDefault, "k2")))
}

// testBatchesAreAtomic: readers running beside writes of 50-key batches
// see each batch whole or not at all.
func testBatchesAreAtomic(t *testing.T, tg Target) {
	const batches, keys = 8, 50
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 1)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			snap, err := tg.Storage.Snapshot(context.Background(), tg.Context)
			if err != nil {
				continue
			}
			counts := map[string]int{}
			it := snap.NewIterator(engine.CfDefault, engine.IterOptions{})
			for it.Rewind(); it.Valid(); it.Next() {
				value, _ := it.Value()
				counts[string(value)]++
			}
			it.Close()
			snap.Close()
			for batch, n := range counts {
				if n != keys {
					select {
					case errs <- fmt.Errorf("a snapshot saw %d of the %d keys of batch %s", n, keys, batch):
					default:
					}
				}
			}
		}
	})
	for b := range batches {
		mods := make([]storage.Modify, keys)
		for i := range mods {
			mods[i] = put(engine.CfDefault, fmt.Sprintf("b%d-%03d", b, i), fmt.Sprint(b))
		}
		tg.write(t, mods...)
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// testIteratorsKeepOrderAndBounds: iterators walk their CF within the
// bounds, ascending or descending, and Seek lands on the first key at or
// after (before, in reverse) the target.
func testIteratorsKeepOrderAndBounds(t *testing.T, tg Target) {
	var mods []storage.Modify
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		mods = append(mods, put(engine.CfWrite, k, "v"+k))
	}
	tg.write(t, append(mods, put(engine.CfDefault, "c", "other CF"))...)
	snap := tg.snapshot(t)
	walk := func(opts engine.IterOptions, seek string) []string {
		it := snap.NewIterator(engine.CfWrite, opts)
		defer it.Close()
		if seek == "" {
			it.Rewind()
		} else {
			it.Seek([]byte(seek))
		}
		var keys []string
		for ; it.Valid(); it.Next() {
			value, err := it.Value()
			require.NoError(t, err)
			require.Equal(t, "v"+string(it.Key()), string(value))
			keys = append(keys, string(it.Key()))
		}
		return keys
	}
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, walk(engine.IterOptions{}, ""))
	require.Equal(t, []string{"b", "c"}, walk(engine.IterOptions{LowerBound: []byte("b"), UpperBound: []byte("d")}, ""))
	require.Equal(t, []string{"d", "c", "b"}, walk(engine.IterOptions{LowerBound: []byte("b"), UpperBound: []byte("e"), Reverse: true}, ""))
	require.Equal(t, []string{"c", "d", "e"}, walk(engine.IterOptions{}, "bb"))
	require.Equal(t, []string{"b", "a"}, walk(engine.IterOptions{Reverse: true}, "bb"))
}

// testNextLockByStartTS: locks are found by ascending start_ts.
func testNextLockByStartTS(t *testing.T, tg Target) {
	var mods []storage.Modify
	for i, ts := range []uint64{9, 5, 7} {
		lock := &mvcc.Lock{Type: mvcc.LockTypePut, Primary: []byte("p"), StartTS: ts, TTL: 100}
		mods = append(mods, storage.Modify{CF: engine.CfLock, Key: mvcc.EncodeKey([]byte{byte('a' + i)}), Value: lock.Marshal()})
	}
	tg.write(t, mods...)
	snap := tg.snapshot(t)
	for from, want := range map[uint64]uint64{0: 5, 5: 5, 6: 7, 8: 9} {
		value, ok := snap.NextLockByStartTS(from)
		require.True(t, ok, "a lock from %d", from)
		lock, err := mvcc.UnmarshalLock(value)
		require.NoError(t, err)
		require.Equal(t, want, lock.StartTS, "the first lock from %d", from)
	}
	_, ok := snap.NextLockByStartTS(10)
	require.False(t, ok)
}

// testDestroyRange: every data CF loses the keys in the range and keeps
// the others.
func testDestroyRange(t *testing.T, tg Target) {
	var mods []storage.Modify
	for _, cf := range engine.AllCFs() {
		for _, k := range []string{"a", "m1", "m2", "z"} {
			mods = append(mods, put(cf, k, "v"))
		}
	}
	tg.write(t, mods...)
	require.NoError(t, tg.Storage.DestroyRange(context.Background(), []byte("m"), []byte("n")))
	snap := tg.snapshot(t)
	for _, cf := range engine.AllCFs() {
		require.NotNil(t, get(t, snap, cf, "a"), "%s keeps a", cf)
		require.Nil(t, get(t, snap, cf, "m1"), "%s loses m1", cf)
		require.Nil(t, get(t, snap, cf, "m2"), "%s loses m2", cf)
		require.NotNil(t, get(t, snap, cf, "z"), "%s keeps z", cf)
	}
}

// testPercolator runs transactions of the transaction layer over the
// storage: prewrite, commit and read back; a rolled-back transaction
// leaves nothing; a reader between prewrite and commit meets the lock.
func testPercolator(t *testing.T, tg Target) {
	txn := mvcc.NewStore(tg.Storage, mvcc.NewConcurrencyManager(0))
	ctx := context.Background()
	prewrite := func(startTS uint64, key, value string) {
		t.Helper()
		resp, err := txn.Prewrite(ctx, &kvrpcpb.PrewriteRequest{Context: tg.Context, PrimaryLock: []byte(key), StartVersion: startTS, LockTtl: 3000,
			Mutations: []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_Put, Key: []byte(key), Value: []byte(value)}}})
		require.NoError(t, err)
		require.Empty(t, resp.GetErrors())
	}
	read := func(key string, ts uint64) *kvrpcpb.GetResponse {
		t.Helper()
		resp, err := txn.Get(ctx, &kvrpcpb.GetRequest{Context: tg.Context, Key: []byte(key), Version: ts})
		require.NoError(t, err)
		return resp
	}
	prewrite(10, "k", "v1")
	require.NotNil(t, read("k", 15).GetError().GetLocked(), "a reader after the prewrite meets the lock")
	resp, err := txn.Commit(ctx, &kvrpcpb.CommitRequest{Context: tg.Context, StartVersion: 10, CommitVersion: 11, Keys: [][]byte{[]byte("k")}})
	require.NoError(t, err)
	require.Nil(t, resp.GetError())
	require.Equal(t, "v1", string(read("k", 15).GetValue()))
	require.True(t, read("k", 9).GetNotFound(), "a read below the commit")

	prewrite(20, "k", "v2")
	rb, err := txn.BatchRollback(ctx, &kvrpcpb.BatchRollbackRequest{Context: tg.Context, StartVersion: 20, Keys: [][]byte{[]byte("k")}})
	require.NoError(t, err)
	require.Nil(t, rb.GetError())
	require.Equal(t, "v1", string(read("k", 25).GetValue()))
}
