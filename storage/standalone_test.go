package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
	"github.com/tinykv/tinykv/storage/storagetest"
)

func openEngine(t *testing.T, opts engine.Options) *engine.Engine {
	t.Helper()
	opts.InMemory, opts.MemTableSize = true, engine.MinMemTableSize
	e, err := engine.Open(t.TempDir(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	return e
}

func newStandalone(t *testing.T) storage.Storage {
	t.Helper()
	return storage.NewStandalone(openEngine(t, engine.Options{LockRank: mvcc.LockRank}))
}

// TestStandaloneSnapshotSeesEarlierWrites: a snapshot taken after a Write
// sees its puts and deletes, whether or not the request context is set; a
// snapshot taken before does not.
func TestStandaloneSnapshotSeesEarlierWrites(t *testing.T) {
	s := newStandalone(t)
	ctx := context.Background()
	require.NoError(t, s.Write(ctx, nil, []storage.Modify{
		{CF: engine.CfDefault, Key: []byte("a"), Value: []byte("1")},
		{CF: engine.CfWrite, Key: []byte("b"), Value: []byte{}},
	}))
	before, err := s.Snapshot(ctx, nil)
	require.NoError(t, err)
	defer before.Close()

	req := &kvrpcpb.Context{RegionId: 7}
	require.NoError(t, s.Write(ctx, req, []storage.Modify{
		{CF: engine.CfDefault, Key: []byte("a"), Delete: true},
		{CF: engine.CfDefault, Key: []byte("c"), Value: []byte("3")},
	}))
	after, err := s.Snapshot(ctx, req)
	require.NoError(t, err)
	defer after.Close()

	get := func(snap storage.Snapshot, cf engine.CF, key string) []byte {
		t.Helper()
		value, err := snap.Get(cf, []byte(key))
		require.NoError(t, err)
		return value
	}
	require.Equal(t, []byte("1"), get(before, engine.CfDefault, "a"))
	require.Nil(t, get(before, engine.CfDefault, "c"))
	require.Nil(t, get(after, engine.CfDefault, "a"), "deleted key")
	require.Equal(t, []byte("3"), get(after, engine.CfDefault, "c"))
	empty := get(after, engine.CfWrite, "b")
	require.NotNil(t, empty, "a present empty value is not absent")
	require.Empty(t, empty)

	it := after.NewIterator(engine.CfDefault, engine.IterOptions{})
	defer it.Close()
	var keys []string
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, string(it.Key()))
	}
	require.Equal(t, []string{"c"}, keys)
}

// TestStandaloneNextLockByStartTS: locks are found by start_ts, in order,
// whatever their keys.
func TestStandaloneNextLockByStartTS(t *testing.T) {
	s := newStandalone(t)
	ctx := context.Background()
	lockAt := func(startTS uint64) []byte {
		return (&mvcc.Lock{Type: mvcc.LockTypePut, Primary: []byte("p"), StartTS: startTS, TTL: 1}).Marshal()
	}
	require.NoError(t, s.Write(ctx, nil, []storage.Modify{
		{CF: engine.CfLock, Key: mvcc.EncodeKey([]byte("a")), Value: lockAt(30)},
		{CF: engine.CfLock, Key: mvcc.EncodeKey([]byte("z")), Value: lockAt(10)},
	}))
	snap, err := s.Snapshot(ctx, nil)
	require.NoError(t, err)
	defer snap.Close()
	for _, tc := range []struct {
		from, want uint64
		ok         bool
	}{{0, 10, true}, {10, 10, true}, {11, 30, true}, {31, 0, false}} {
		value, ok := snap.NextLockByStartTS(tc.from)
		require.Equal(t, tc.ok, ok, "from %d", tc.from)
		if ok {
			lock, err := mvcc.UnmarshalLock(value)
			require.NoError(t, err)
			require.Equal(t, tc.want, lock.StartTS, "from %d", tc.from)
		}
	}
}

// TestStandaloneHonoursCancellation: a cancelled context fails both calls
// with its error and writes nothing.
func TestStandaloneHonoursCancellation(t *testing.T) {
	s := newStandalone(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Write(ctx, nil, []storage.Modify{{CF: engine.CfDefault, Key: []byte("a"), Value: []byte("1")}})
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.Snapshot(ctx, nil)
	require.ErrorIs(t, err, context.Canceled)

	snap, err := s.Snapshot(context.Background(), nil)
	require.NoError(t, err)
	defer snap.Close()
	value, err := snap.Get(engine.CfDefault, []byte("a"))
	require.NoError(t, err)
	require.Nil(t, value)
}

// TestStandaloneWrapsEngineErrors: an engine failure comes back wrapped,
// still identifiable, and is not a region error.
func TestStandaloneWrapsEngineErrors(t *testing.T) {
	e := openEngine(t, engine.Options{LockRank: mvcc.LockRank})
	s := storage.NewStandalone(e)
	require.NoError(t, e.Close())
	err := s.Write(context.Background(), nil, []storage.Modify{{CF: engine.CfDefault, Key: []byte("a"), Value: []byte("1")}})
	require.True(t, errors.Is(err, engine.ErrClosed), "got %v", err)
	require.Nil(t, storage.AsRegionError(err))
}

// TestNewStandaloneNeedsLockRank: an engine that does not rank its locks
// cannot answer NextLockByStartTS, so it is refused at once.
func TestNewStandaloneNeedsLockRank(t *testing.T) {
	e := openEngine(t, engine.Options{})
	require.Panics(t, func() { storage.NewStandalone(e) })
}

// TestStandaloneConformance runs the storage conformance suite on the
// standalone storage.
func TestStandaloneConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storagetest.Target {
		return storagetest.Target{Storage: newStandalone(t), Context: &kvrpcpb.Context{RegionId: 1}}
	})
}
