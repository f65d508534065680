package raftstore

import (
	"path/filepath"
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/raft"
)

func openTestEngine(t *testing.T, name string) *engine.Engine {
	t.Helper()
	e, err := engine.Open(filepath.Join(t.TempDir(), name), engine.DefaultOptions())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	return e
}

func testRegion() *metapb.Region {
	return &metapb.Region{Id: 1, RegionEpoch: &metapb.RegionEpoch{Version: 1, ConfVer: 1},
		Peers: []*metapb.Peer{{Id: 1, StoreId: 1}, {Id: 2, StoreId: 2}, {Id: 3, StoreId: 3, Role: metapb.PeerRole_Learner}}}
}

func bootApplyState() *raft_serverpb.RaftApplyState {
	return &raft_serverpb.RaftApplyState{AppliedIndex: initLogIndex,
		TruncatedState: &raft_serverpb.RaftTruncatedState{Index: initLogIndex, Term: initLogTerm}}
}

func entries(term uint64, from, to uint64) []*eraftpb.Entry {
	var ents []*eraftpb.Entry
	for i := from; i <= to; i++ {
		ents = append(ents, &eraftpb.Entry{Index: i, Term: term, Data: []byte{byte(i)}})
	}
	return ents
}

// persistEntries appends and saves the raft state, as a Ready does.
func persistEntries(t *testing.T, ps *peerStorage, ents []*eraftpb.Entry, hs eraftpb.HardState) {
	t.Helper()
	wb := engine.NewWriteBatch()
	require.NoError(t, ps.append(ents, wb))
	require.NoError(t, ps.saveRaftState(hs, wb))
	require.NoError(t, ps.raftDB.Write(wb))
}

// TestPeerStorageLog: appends replace the tail they overlap, and the log
// reads the same from the cache and, after a reload, from the raft engine.
func TestPeerStorageLog(t *testing.T) {
	kv, raftDB := openTestEngine(t, "kv"), openTestEngine(t, "raft")
	region := testRegion()
	require.NoError(t, BootstrapRegion(kv, raftDB, region))
	ps, err := loadPeerStorage(raftDB, region, bootApplyState())
	require.NoError(t, err)
	hs, cs, err := ps.InitialState()
	require.NoError(t, err)
	require.Equal(t, eraftpb.HardState{Term: initLogTerm, Commit: initLogIndex}, hs)
	require.Equal(t, []uint64{1, 2}, cs.Voters)
	require.Equal(t, []uint64{3}, cs.Learners)

	persistEntries(t, ps, entries(6, 6, 10), eraftpb.HardState{Term: 6, Commit: 8})
	// A new leader overwrites 9 and 10 with a shorter tail.
	persistEntries(t, ps, entries(7, 9, 9), eraftpb.HardState{Term: 7, Commit: 8})

	check := func(ps *peerStorage) {
		t.Helper()
		first, _ := ps.FirstIndex()
		last, _ := ps.LastIndex()
		require.Equal(t, uint64(6), first)
		require.Equal(t, uint64(9), last)
		for i, want := range map[uint64]uint64{5: 5, 6: 6, 8: 6, 9: 7} {
			got, err := ps.Term(i)
			require.NoError(t, err)
			require.Equal(t, want, got, "term of %d", i)
		}
		_, err := ps.Term(4)
		require.ErrorIs(t, err, raft.ErrCompacted)
		_, err = ps.Term(10)
		require.ErrorIs(t, err, raft.ErrUnavailable)
		ents, err := ps.Entries(6, 10, 0)
		require.NoError(t, err)
		require.Len(t, ents, 4)
		require.Equal(t, uint64(7), ents[3].Term)
		one, err := ps.Entries(6, 10, 1)
		require.NoError(t, err)
		require.Len(t, one, 1, "a size limit still returns one entry")
		_, err = ps.Entries(5, 7, 0)
		require.ErrorIs(t, err, raft.ErrCompacted)
	}
	check(ps)
	reloaded, err := loadPeerStorage(raftDB, region, bootApplyState())
	require.NoError(t, err)
	require.Empty(t, reloaded.cache)
	check(reloaded)
	hs, _, err = reloaded.InitialState()
	require.NoError(t, err)
	require.Equal(t, eraftpb.HardState{Term: 7, Commit: 8}, hs)
}

// TestPeerStorageRecoversFromAHalfAppliedSnapshot: a crash after the KV
// side of a received snapshot (apply state truncated at it) but before the
// raft side leaves a log that does not continue the snapshot; loading
// empties it at the snapshot instead of trusting it.
func TestPeerStorageRecoversFromAHalfAppliedSnapshot(t *testing.T) {
	kv, raftDB := openTestEngine(t, "kv"), openTestEngine(t, "raft")
	region := testRegion()
	require.NoError(t, BootstrapRegion(kv, raftDB, region))
	ps, err := loadPeerStorage(raftDB, region, bootApplyState())
	require.NoError(t, err)
	persistEntries(t, ps, entries(6, 6, 12), eraftpb.HardState{Term: 6, Commit: 7})

	snapshotAt := func(index, term uint64) *raft_serverpb.RaftApplyState {
		return &raft_serverpb.RaftApplyState{AppliedIndex: index,
			TruncatedState: &raft_serverpb.RaftTruncatedState{Index: index, Term: term}}
	}
	// The old log holds term 6 at 10; the snapshot says term 8: the tail
	// after it belongs to another history.
	ps, err = loadPeerStorage(raftDB, region, snapshotAt(10, 8))
	require.NoError(t, err)
	last, _ := ps.LastIndex()
	require.Equal(t, uint64(10), last)
	hs, _, _ := ps.InitialState()
	require.Equal(t, uint64(10), hs.Commit)
	require.Equal(t, uint64(8), hs.Term)

	// A snapshot past the end of the old log.
	ps, err = loadPeerStorage(raftDB, region, snapshotAt(20, 9))
	require.NoError(t, err)
	last, _ = ps.LastIndex()
	require.Equal(t, uint64(20), last)

	// A snapshot the log continues (same term at its index) keeps the tail.
	ps, err = loadPeerStorage(raftDB, region, snapshotAt(10, 6))
	require.NoError(t, err)
	last, _ = ps.LastIndex()
	require.Equal(t, uint64(12), last)
}

// TestPeerStorageCompactTo: compaction moves the first index and drops the
// cached entries it covers.
func TestPeerStorageCompactTo(t *testing.T) {
	kv, raftDB := openTestEngine(t, "kv"), openTestEngine(t, "raft")
	region := testRegion()
	require.NoError(t, BootstrapRegion(kv, raftDB, region))
	ps, err := loadPeerStorage(raftDB, region, bootApplyState())
	require.NoError(t, err)
	persistEntries(t, ps, entries(6, 6, 12), eraftpb.HardState{Term: 6, Commit: 12})
	require.True(t, ps.compactTo(&raft_serverpb.RaftTruncatedState{Index: 9, Term: 6}))
	require.False(t, ps.compactTo(&raft_serverpb.RaftTruncatedState{Index: 8, Term: 6}))
	first, _ := ps.FirstIndex()
	require.Equal(t, uint64(10), first)
	require.Equal(t, uint64(10), ps.cache[0].Index)
	term, err := ps.Term(9)
	require.NoError(t, err)
	require.Equal(t, uint64(6), term)
	_, err = ps.Entries(9, 12, 0)
	require.ErrorIs(t, err, raft.ErrCompacted)
}

// TestPeerStorageEntriesSurviveCacheTrim: entries handed to raft (which
// keeps them in messages until they are sent) stay intact when the cache
// is trimmed after apply — found by the generic scenarios as a message
// with a nil entry.
func TestPeerStorageEntriesSurviveCacheTrim(t *testing.T) {
	kv, raftDB := openTestEngine(t, "kv"), openTestEngine(t, "raft")
	region := testRegion()
	require.NoError(t, BootstrapRegion(kv, raftDB, region))
	ps, err := loadPeerStorage(raftDB, region, bootApplyState())
	require.NoError(t, err)
	last := uint64(initLogIndex + entryCacheLimit + 10)
	persistEntries(t, ps, entries(6, initLogIndex+1, last), eraftpb.HardState{Term: 6, Commit: last})
	held, err := ps.Entries(initLogIndex+1, initLogIndex+11, 1<<30)
	require.NoError(t, err)
	require.Len(t, held, 10)
	ps.trimCache(last)
	for i, e := range held {
		require.NotNil(t, e, "entry %d of a held slice", i)
		require.Equal(t, uint64(initLogIndex+1+i), e.Index)
	}
}
