package engine

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenSnapshotsHoldBackDiscard: Badger may drop versions only below the
// oldest open snapshot, and up to the latest commit once none is open.
func TestOpenSnapshotsHoldBackDiscard(t *testing.T) {
	e := openMemEngine(t)
	oldest := func() uint64 {
		e.view.mu.Lock()
		defer e.view.mu.Unlock()
		return e.view.oldestReadable()
	}
	put(t, e, CfWrite, "k", "1")
	first := e.Snapshot()
	put(t, e, CfWrite, "k", "2")
	second := e.Snapshot()
	put(t, e, CfWrite, "k", "3")
	require.Equal(t, first.version, oldest())
	require.Less(t, first.version, second.version)

	first.Close()
	first.Close() // a second Close changes nothing
	require.Equal(t, second.version, oldest())
	second.Close()
	require.Equal(t, e.view.published, oldest())
}

// TestLockTableFollowsCommitsAndSnapshots: CfLock reads come from the lock
// table; a snapshot keeps the locks it saw while later writes add and
// remove locks, and a reopened engine loads the live locks only.
func TestLockTableFollowsCommitsAndSnapshots(t *testing.T) {
	dir := t.TempDir()
	e := openTestEngine(t, dir, diskOptions())
	for round := range 50 { // churn: every lock written and deleted many times
		wb := NewWriteBatch()
		for i := range 20 {
			wb.Put(CfLock, fmt.Appendf(nil, "k%02d", i), fmt.Appendf(nil, "v%d", round))
		}
		require.NoError(t, e.Write(wb))
		wb.Reset()
		for i := range 20 {
			wb.Delete(CfLock, fmt.Appendf(nil, "k%02d", i))
		}
		require.NoError(t, e.Write(wb))
	}
	put(t, e, CfLock, "k05", "live")
	before := e.Snapshot()
	put(t, e, CfLock, "k10", "later")
	wb := NewWriteBatch()
	wb.Delete(CfLock, []byte("k05"))
	wb.Put(CfLock, []byte("k15"), []byte("latest"))
	require.NoError(t, e.Write(wb))

	require.Equal(t, []kv{{"k05", "live"}}, collect(t, before, CfLock, IterOptions{}, nil))
	before.Close()
	after := e.Snapshot()
	want := []kv{{"k10", "later"}, {"k15", "latest"}}
	require.Equal(t, want, collect(t, after, CfLock, IterOptions{}, nil))
	require.Equal(t, []kv{want[1], want[0]}, collect(t, after, CfLock, IterOptions{Reverse: true}, nil))
	require.Equal(t, []kv{want[0]}, collect(t, after, CfLock, IterOptions{LowerBound: []byte("k06"), UpperBound: []byte("k15")}, nil))
	after.Close()
	require.NoError(t, e.Close())

	reopened := openTestEngine(t, dir, diskOptions())
	snap := reopened.Snapshot()
	defer snap.Close()
	require.Equal(t, want, collect(t, snap, CfLock, IterOptions{}, nil))
}
