package raftstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
	"github.com/tinykv/tinykv/storage/storagetest"
)

// seamContext addresses the harness's region on storeID as a client's
// request context does.
func seamContext(c *cluster, storeID uint64) *kvrpcpb.Context {
	return &kvrpcpb.Context{RegionId: c.region.GetId(), RegionEpoch: c.region.GetRegionEpoch(), Peer: &metapb.Peer{StoreId: storeID}}
}

func seamStorage(t *testing.T, s *Store) storage.Storage {
	st, err := s.Storage()
	require.NoError(t, err)
	return st
}

// TestStorageSeamReplicates: a write through the seam on the leader is
// applied on every store, and a seam snapshot on the leader reads it back,
// absent keys as nil.
func TestStorageSeamReplicates(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	leader := c.leader()
	st := seamStorage(t, c.stores[leader])
	ctx := context.Background()
	require.NoError(t, st.Write(ctx, seamContext(c, leader), []storage.Modify{
		{CF: engine.CfDefault, Key: []byte("a"), Value: []byte("1")},
		{CF: engine.CfWrite, Key: []byte("b"), Value: []byte("2")},
	}))
	snap, err := st.Snapshot(ctx, seamContext(c, leader))
	require.NoError(t, err)
	defer snap.Close()
	got, err := snap.Get(engine.CfWrite, []byte("b"))
	require.NoError(t, err)
	require.Equal(t, "2", string(got))
	absent, err := snap.Get(engine.CfDefault, []byte("zz"))
	require.NoError(t, err)
	require.Nil(t, absent)
	for _, id := range c.ids {
		c.mustEngineEqual(id, "a", "1")
	}
	require.NoError(t, st.Write(ctx, seamContext(c, leader), []storage.Modify{{CF: engine.CfDefault, Key: []byte("a"), Delete: true}}))
	for _, id := range c.ids {
		require.Eventually(t, func() bool { _, ok := c.engineValue(id, "a"); return !ok }, 5*time.Second, testTick)
	}
}

// TestStorageSeamRegionErrors: the seam answers region problems as
// storage.RegionError — a follower with NotLeader, a stale epoch with
// EpochNotMatch, a key outside the region with KeyNotInRegion — and a
// write addressing no region with ErrNoRegion.
func TestStorageSeamRegionErrors(t *testing.T) {
	c := newCluster(t, 3, []byte("b"), []byte("m"))
	leader := c.leader()
	follower := c.ids[0]
	if follower == leader {
		follower = c.ids[1]
	}
	ctx := context.Background()
	put := []storage.Modify{{CF: engine.CfDefault, Key: []byte("c"), Value: []byte("1")}}

	err := seamStorage(t, c.stores[follower]).Write(ctx, seamContext(c, follower), put)
	require.NotNil(t, storage.AsRegionError(err).GetNotLeader(), "write on a follower: %v", err)
	_, err = seamStorage(t, c.stores[follower]).Snapshot(ctx, seamContext(c, follower))
	require.NotNil(t, storage.AsRegionError(err).GetNotLeader(), "read on a follower: %v", err)

	st := seamStorage(t, c.stores[leader])
	stale := seamContext(c, leader)
	stale.RegionEpoch = &metapb.RegionEpoch{Version: 0, ConfVer: 1}
	err = st.Write(ctx, stale, put)
	require.NotNil(t, storage.AsRegionError(err).GetEpochNotMatch(), "write with a stale epoch: %v", err)

	err = st.Write(ctx, seamContext(c, leader), []storage.Modify{{CF: engine.CfDefault, Key: []byte("x"), Value: []byte("1")}})
	require.NotNil(t, storage.AsRegionError(err).GetKeyNotInRegion(), "write outside the region: %v", err)
	snap, err := st.Snapshot(ctx, seamContext(c, leader))
	require.NoError(t, err)
	_, err = snap.Get(engine.CfDefault, []byte("a"))
	snap.Close()
	require.NotNil(t, storage.AsRegionError(err).GetKeyNotInRegion(), "read outside the region: %v", err)

	require.ErrorIs(t, st.Write(ctx, nil, put), ErrNoRegion)
}

// TestStorageSeamNeedsRankedLocks: the seam refuses a KV engine that does
// not rank its locks, as NextLockByStartTS needs them ranked.
func TestStorageSeamNeedsRankedLocks(t *testing.T) {
	kv, raftDB := openTestEngine(t, "kv"), openTestEngine(t, "raft")
	s, err := Start(Config{StoreID: 1, KV: kv, Raft: raftDB, Transport: nopTransport{}})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Storage()
	require.ErrorIs(t, err, ErrConfig)
}

type nopTransport struct{}

func (nopTransport) Send(*raft_serverpb.RaftMessage) error { return nil }

// TestPercolatorOverRaft runs transactions of the transaction layer over
// the seam on a 3-store region: a prewrite and commit on the leader are
// read back at a later timestamp, the lock is visible to a background
// lock scan in between, and after a leader change the new leader serves
// the committed value.
func TestPercolatorOverRaft(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	leader := c.leader()
	txn := mvcc.NewStore(seamStorage(t, c.stores[leader]), mvcc.NewConcurrencyManager(0))
	ctx := context.Background()
	key := []byte("account")
	pw, err := txn.Prewrite(ctx, &kvrpcpb.PrewriteRequest{
		Context: seamContext(c, leader), PrimaryLock: key, StartVersion: 10, LockTtl: 3000,
		Mutations: []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_Put, Key: key, Value: []byte("100")}},
	})
	require.NoError(t, err)
	require.Empty(t, pw.GetErrors())
	require.Nil(t, pw.GetRegionError())

	var locked []uint64
	require.NoError(t, txn.LockedTxns(ctx, 100, func(startTS, _ uint64) { locked = append(locked, startTS) }))
	require.Equal(t, []uint64{10}, locked)

	cm, err := txn.Commit(ctx, &kvrpcpb.CommitRequest{Context: seamContext(c, leader), StartVersion: 10, CommitVersion: 11, Keys: [][]byte{key}})
	require.NoError(t, err)
	require.Nil(t, cm.GetError())
	require.Nil(t, cm.GetRegionError())

	get := func(storeID uint64) (*kvrpcpb.GetResponse, error) {
		reader := mvcc.NewStore(seamStorage(t, c.stores[storeID]), mvcc.NewConcurrencyManager(0))
		return reader.Get(ctx, &kvrpcpb.GetRequest{Context: seamContext(c, storeID), Key: key, Version: 20})
	}
	mustGet := func(storeID uint64) string {
		t.Helper()
		resp, err := get(storeID)
		require.NoError(t, err)
		return string(resp.GetValue())
	}
	require.Equal(t, "100", mustGet(leader))

	next := c.ids[0]
	if next == leader {
		next = c.ids[1]
	}
	_, err = get(next)
	require.NotNil(t, storage.AsRegionError(err).GetNotLeader(), "a follower answers NotLeader: %v", err)
	c.mustTransferLeader(&metapb.Peer{Id: next, StoreId: next})
	require.Equal(t, "100", mustGet(next))
}

// TestStorageConformance runs the storage conformance suite on one- and
// three-peer raftstores, through the leader.
func TestStorageConformance(t *testing.T) {
	for _, peers := range []int{1, 3} {
		t.Run(fmt.Sprintf("%dPeers", peers), func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) storagetest.Target {
				c := newCluster(t, peers, nil, nil)
				leader := c.leader()
				return storagetest.Target{Storage: seamStorage(t, c.stores[leader]), Context: seamContext(c, leader)}
			})
		})
	}
}
