package raftstore

import (
	"context"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
)

// currentRegion is the region as the leader has it.
func (c *cluster) currentRegion() *metapb.Region {
	c.t.Helper()
	_, region, ok := c.findLeader(10 * time.Second)
	require.True(c.t, ok, "no leader within 10 s")
	return region
}

// changePeer proposes a ChangePeer at the region's current epoch, retried
// like any command; the header names the peer of the store asked. It may
// run off the test's goroutine.
func (c *cluster) changePeer(changeType eraftpb.ConfChangeType, target *metapb.Peer) error {
	return c.call(10*time.Second, nil, func(s *Store, id uint64, _ *metapb.Region) error {
		_, region, ok := c.findLeader(time.Second)
		if !ok {
			return regionErr(errNotLeader(c.region.GetId(), nil))
		}
		var self *metapb.Peer
		for _, p := range region.GetPeers() {
			if p.GetStoreId() == id {
				self = p
			}
		}
		if self == nil {
			return regionErr(errNotLeader(region.GetId(), nil))
		}
		ctx, cancel := context.WithTimeout(context.Background(), tryTimeout)
		defer cancel()
		_, err := s.Propose(ctx, &raft_cmdpb.RaftCmdRequest{
			Header: &raft_cmdpb.RaftRequestHeader{RegionId: region.GetId(), Peer: self, RegionEpoch: region.GetRegionEpoch()},
			AdminRequest: &raft_cmdpb.AdminRequest{CmdType: raft_cmdpb.AdminCmdType_ChangePeer,
				ChangePeer: &raft_cmdpb.ChangePeerRequest{ChangeType: changeType, Peer: target}},
		})
		return err
	})
}

// header names the region's peer on storeID at the current epoch.
func (c *cluster) currentHeader(storeID uint64) *raft_cmdpb.RaftRequestHeader {
	region := c.currentRegion()
	h := &raft_cmdpb.RaftRequestHeader{RegionId: region.GetId(), RegionEpoch: region.GetRegionEpoch()}
	for _, p := range region.GetPeers() {
		if p.GetStoreId() == storeID {
			h.Peer = p
		}
	}
	return h
}

func (c *cluster) mustEngineNone(storeID uint64, key string) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		_, ok := c.engineValue(storeID, key)
		return !ok
	}, 5*time.Second, 10*time.Millisecond, "store %d still has %q", storeID, key)
}

// TestBasicConfChange follows the course's TestBasicConfChange3B: a peer
// added on an empty store is filled by snapshot and then replicated to; a
// removed peer deletes its data and gets nothing more; a store that lost
// its peer takes a new one (a new peer id); conf_ver counts the changes,
// and membership survives a restart of every store.
func TestBasicConfChange(t *testing.T) {
	c := newPartialCluster(t, 5, 3, nil, nil)
	c.mustPut("k1", "v1")

	require.NoError(t, c.changePeer(eraftpb.ConfChangeType_AddNode, &metapb.Peer{Id: 4, StoreId: 4}))
	c.mustEngineEqual(4, "k1", "v1")
	c.mustPut("k2", "v2")
	c.mustEngineEqual(4, "k2", "v2")

	leader := c.leader()
	victim := uint64(2)
	if victim == leader {
		victim = 3
	}
	require.NoError(t, c.changePeer(eraftpb.ConfChangeType_RemoveNode, &metapb.Peer{Id: victim, StoreId: victim}))
	c.mustEngineNone(victim, "k1")
	c.mustPut("k3", "v3")
	c.mustEngineEqual(4, "k3", "v3")
	time.Sleep(3 * electionTimeout)
	_, ok := c.engineValue(victim, "k3")
	require.False(t, ok, "a removed peer applied a later write")

	require.NoError(t, c.changePeer(eraftpb.ConfChangeType_AddNode, &metapb.Peer{Id: 6, StoreId: victim}))
	c.mustEngineEqual(victim, "k1", "v1")
	c.mustEngineEqual(victim, "k3", "v3")
	region := c.currentRegion()
	require.Equal(t, uint64(1+3), region.GetRegionEpoch().GetConfVer())
	require.Len(t, region.GetPeers(), 4)
	require.Nil(t, peerByID(region, victim))

	for _, id := range c.ids {
		c.stop(id)
	}
	for _, id := range c.ids {
		c.start(id)
	}
	require.Equal(t, region.GetRegionEpoch(), c.currentRegion().GetRegionEpoch())
	c.mustPut("k4", "v4")
	for _, p := range region.GetPeers() {
		c.mustEngineEqual(p.GetStoreId(), "k4", "v4")
	}
	_, ok = c.engineValue(5, "k4")
	require.False(t, ok, "a store without a peer got data")
}

// TestConfChangeRefusals: changes TiKV refuses are answered with an error
// and change nothing.
func TestConfChangeRefusals(t *testing.T) {
	c := newPartialCluster(t, 4, 3, nil, nil)
	c.mustPut("k", "v")
	leader := c.leader()
	before := c.currentRegion()
	refused := map[string]struct {
		typ  eraftpb.ConfChangeType
		peer *metapb.Peer
	}{
		"remove the leader":      {eraftpb.ConfChangeType_RemoveNode, &metapb.Peer{Id: leader, StoreId: leader}},
		"remove a stranger":      {eraftpb.ConfChangeType_RemoveNode, &metapb.Peer{Id: 9, StoreId: 4}},
		"add a voter again":      {eraftpb.ConfChangeType_AddNode, &metapb.Peer{Id: leader, StoreId: leader}},
		"a second peer on store": {eraftpb.ConfChangeType_AddNode, &metapb.Peer{Id: 9, StoreId: leader}},
	}
	for name, r := range refused {
		err := c.changePeer(r.typ, r.peer)
		require.Error(t, err, name)
	}
	h := c.currentHeader(leader)
	h.RegionEpoch = &metapb.RegionEpoch{Version: 1, ConfVer: 0}
	_, err := c.stores[leader].Propose(context.Background(), &raft_cmdpb.RaftCmdRequest{Header: h,
		AdminRequest: &raft_cmdpb.AdminRequest{CmdType: raft_cmdpb.AdminCmdType_ChangePeer,
			ChangePeer: &raft_cmdpb.ChangePeerRequest{ChangeType: eraftpb.ConfChangeType_AddNode, Peer: &metapb.Peer{Id: 4, StoreId: 4}}}})
	require.NotNil(t, regionErrorOf(t, err).GetEpochNotMatch(), "a conf change at an old conf_ver")
	require.Equal(t, before.GetRegionEpoch(), c.currentRegion().GetRegionEpoch())

	require.NoError(t, c.changePeer(eraftpb.ConfChangeType_AddLearnerNode, &metapb.Peer{Id: 4, StoreId: 4}))
	c.mustEngineEqual(4, "k", "v")
	require.NoError(t, c.changePeer(eraftpb.ConfChangeType_AddNode, &metapb.Peer{Id: 4, StoreId: 4}))
	require.Equal(t, metapb.PeerRole_Voter, peerByID(c.currentRegion(), 4).GetRole())
}

func TestConfChangeRecover3B(t *testing.T) {
	runGeneric(t, genericOpts{clients: 1, crash: true, confChange: true})
}
func TestConfChangeUnreliable3B(t *testing.T) {
	runGeneric(t, genericOpts{clients: 5, unreliable: true, confChange: true})
}
func TestConfChangeSnapshotUnreliableRecoverConcurrentPartition3B(t *testing.T) {
	runGeneric(t, genericOpts{clients: 5, unreliable: true, crash: true, partitions: true, maxRaftLog: 100, confChange: true})
}

// regionState reads the region state on a store; nil when there is none.
func (c *cluster) regionState(storeID uint64) *raft_serverpb.RegionLocalState {
	state := &raft_serverpb.RegionLocalState{}
	found, err := loadProto(c.kv[storeID], engine.CfRaft, regionStateKey(c.region.GetId()), state)
	require.NoError(c.t, err)
	if !found {
		return nil
	}
	return state
}

// isolateAndRemove cuts store 3 off, waits for a leader among the others
// (and for store 3 to step down) and removes store 3's peer (id 3).
func isolateAndRemove(t *testing.T, c *cluster) {
	c.mustPut("k1", "v1")
	c.mustEngineEqual(3, "k1", "v1")
	c.partition([]uint64{1, 2}, []uint64{3})
	require.Eventually(t, func() bool {
		leader, _, ok := c.findLeader(time.Second)
		st, _ := c.stores[3].Status(context.Background(), c.region.GetId())
		return ok && leader != 3 && !st.Leader
	}, 10*time.Second, testTick, "store 3 still leads, or nobody does")
	require.NoError(t, c.changePeer(eraftpb.ConfChangeType_RemoveNode, &metapb.Peer{Id: 3, StoreId: 3}))
	c.mustPut("k2", "v2")
}

// TestRemovedPeerIsCollected: a peer removed while it was cut off never
// applies its removal; when it comes back and campaigns, the others answer
// with a GC message (TiKV's is_tombstone) and it destroys itself.
func TestRemovedPeerIsCollected(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	isolateAndRemove(t, c)
	require.Equal(t, uint64(1), c.regionState(3).GetRegion().GetRegionEpoch().GetConfVer(), "the cut-off peer saw its removal")
	c.heal()
	c.mustEngineNone(3, "k1")
	require.Eventually(t, func() bool {
		return c.regionState(3).GetState() == raft_serverpb.PeerState_Tombstone
	}, 5*time.Second, testTick)
	_, ok := c.stores[3].Status(context.Background(), c.region.GetId())
	require.False(t, ok, "store 3 still has a peer")
}

// TestStalePeerReplacedByNewPeer: a store whose peer was removed and a new
// one (another id) added while it was cut off learns of it from messages
// to the new id: the old peer destroys itself and the new one is created
// and filled by snapshot.
func TestStalePeerReplacedByNewPeer(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	isolateAndRemove(t, c)
	require.NoError(t, c.changePeer(eraftpb.ConfChangeType_AddNode, &metapb.Peer{Id: 9, StoreId: 3}))
	c.mustPut("k3", "v3")
	c.heal()
	c.mustEngineEqual(3, "k3", "v3")
	c.mustEngineEqual(3, "k1", "v1")
	st, ok := c.stores[3].Status(context.Background(), c.region.GetId())
	require.True(t, ok)
	require.Equal(t, uint64(9), st.Peer.GetId())
	require.Equal(t, raft_serverpb.PeerState_Normal, c.regionState(3).GetState())
	c.mustPut("k4", "v4")
	c.mustEngineEqual(3, "k4", "v4")
}
