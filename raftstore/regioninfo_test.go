package raftstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
)

// TestCheckContext: a request context is checked against the store's view
// of the region before it is served — another store, an unknown region and
// an old version are refused with the errors TiKV answers; the conf_ver is
// left to the peer, as reads and writes do not check it.
func TestCheckContext(t *testing.T) {
	c := newCluster(t, 1, nil, nil)
	s := c.stores[1]
	region, regionErr := s.CheckContext(seamContext(c, 1))
	require.Nil(t, regionErr)
	require.Equal(t, c.region.GetId(), region.GetId())

	_, regionErr = s.CheckContext(&kvrpcpb.Context{RegionId: c.region.GetId(), RegionEpoch: c.region.GetRegionEpoch(), Peer: &metapb.Peer{StoreId: 9}})
	require.NotNil(t, regionErr.GetStoreNotMatch())
	_, regionErr = s.CheckContext(&kvrpcpb.Context{RegionId: 77, RegionEpoch: c.region.GetRegionEpoch()})
	require.NotNil(t, regionErr.GetRegionNotFound())
	_, regionErr = s.CheckContext(&kvrpcpb.Context{RegionId: c.region.GetId(), RegionEpoch: &metapb.RegionEpoch{Version: 9, ConfVer: 1}})
	require.Equal(t, []*metapb.Region{c.region}, regionErr.GetEpochNotMatch().GetCurrentRegions())
	_, regionErr = s.CheckContext(&kvrpcpb.Context{RegionId: c.region.GetId(), RegionEpoch: &metapb.RegionEpoch{Version: 1, ConfVer: 9}})
	require.Nil(t, regionErr)
}

// leaderNotices records the notices OnLeaderChange was called with.
type leaderNotices struct {
	mu           sync.Mutex
	gained, lost int
}

func (n *leaderNotices) record(_ uint64, leader bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if leader {
		n.gained++
	} else {
		n.lost++
	}
}

func (n *leaderNotices) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gained
}

func (n *leaderNotices) losses() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lost
}

// TestLeaderRegions: only the leader reports a region for the heartbeats,
// with its term; a peer added by conf change is pending until the leader's
// snapshot fills it; the leader is noticed when elected, when its region
// changes and when a pending peer catches up, and its loss of leadership is
// noticed too.
func TestLeaderRegions(t *testing.T) {
	notices := &leaderNotices{}
	c := newPartialCluster(t, 4, 3, nil, nil, func(cfg *Config) { cfg.OnLeaderChange = notices.record })
	c.mustPut("k", "v")
	leader := c.leader()
	ctx := context.Background()
	for _, id := range c.ids {
		infos := c.stores[id].LeaderRegions(ctx)
		if id != leader {
			require.Empty(t, infos, "store %d is not the leader", id)
			continue
		}
		require.Len(t, infos, 1)
		require.Equal(t, leader, infos[0].Leader.GetStoreId())
		require.NotZero(t, infos[0].Term)
		require.Empty(t, infos[0].PendingPeers)
	}
	require.Eventually(t, func() bool { return notices.count() >= 1 }, 5*time.Second, testTick)
	before := notices.count()

	c.partition([]uint64{1, 2, 3})
	require.NoError(t, c.changePeer(eraftpb.ConfChangeType_AddNode, &metapb.Peer{Id: 4, StoreId: 4}))
	leader = c.leader()
	info, ok := c.stores[leader].LeaderRegion(ctx, c.region.GetId())
	require.True(t, ok)
	require.Equal(t, []*metapb.Peer{{Id: 4, StoreId: 4}}, info.PendingPeers, "the new peer is cut off")
	require.Greater(t, notices.count(), before, "the conf change is noticed")

	before = notices.count()
	c.heal()
	require.Eventually(t, func() bool {
		info, ok := c.stores[c.leader()].LeaderRegion(ctx, c.region.GetId())
		return ok && len(info.PendingPeers) == 0
	}, 10*time.Second, testTick, "the new peer caught up")
	require.Eventually(t, func() bool { return notices.count() > before }, 5*time.Second, testTick, "the catch-up is noticed")

	lostBefore := notices.losses()
	leader = c.leader()
	next := leader%3 + 1
	c.mustTransferLeader(&metapb.Peer{Id: next, StoreId: next})
	require.Eventually(t, func() bool { return notices.losses() > lostBefore }, 5*time.Second, testTick, "the loss of leadership is noticed")
}

// TestClearBootstrappedRegion: a store that lost the bootstrap race
// removes the region it prepared and starts with none.
func TestClearBootstrappedRegion(t *testing.T) {
	kv, raftDB := openTestEngine(t, "kv"), openTestEngine(t, "raft")
	region := &metapb.Region{Id: 7, RegionEpoch: &metapb.RegionEpoch{Version: 1, ConfVer: 1}, Peers: []*metapb.Peer{{Id: 8, StoreId: 1}}}
	require.NoError(t, BootstrapRegion(kv, raftDB, region))
	regions, err := LocalRegions(kv)
	require.NoError(t, err)
	require.Equal(t, []*metapb.Region{region}, regions)

	require.NoError(t, ClearBootstrappedRegion(kv, raftDB, 7))
	regions, err = LocalRegions(kv)
	require.NoError(t, err)
	require.Empty(t, regions)
	_, err = raftDB.Get(engine.CfDefault, raftStateKey(7))
	require.ErrorIs(t, err, engine.ErrNotFound)
}

// TestDownPeers: a peer the leader has not heard from for
// MaxPeerDownDuration is reported down, with how long; once it is heard
// from again it is not.
func TestDownPeers(t *testing.T) {
	c := newCluster(t, 3, nil, nil, func(cfg *Config) { cfg.MaxPeerDownDuration = 3 * electionTimeout })
	c.mustPut("k", "v")
	leader := c.leader()
	cutOff := leader%3 + 1
	ctx := context.Background()
	info, ok := c.stores[leader].LeaderRegion(ctx, c.region.GetId())
	require.True(t, ok)
	require.Empty(t, info.DownPeers)

	var others []uint64
	for _, id := range c.ids {
		if id != cutOff {
			others = append(others, id)
		}
	}
	c.partition(others, []uint64{cutOff})
	require.Eventually(t, func() bool {
		info, ok := c.stores[leader].LeaderRegion(ctx, c.region.GetId())
		return ok && len(info.DownPeers) == 1 && info.DownPeers[0].GetPeer().GetStoreId() == cutOff
	}, 10*electionTimeout, testTick, "the cut-off peer is reported down")
	c.heal()
	require.Eventually(t, func() bool {
		info, ok := c.stores[leader].LeaderRegion(ctx, c.region.GetId())
		return ok && len(info.DownPeers) == 0
	}, 10*electionTimeout, testTick, "the peer is back")
}
