package raftstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
)

// tinyRegions makes regions split past maxSize bytes every splitSize, and
// checks often (the course: 100 ms).
func tinyRegions(maxSize, splitSize uint64) func(*Config) {
	return func(cfg *Config) {
		cfg.RegionMaxSize, cfg.RegionSplitSize = maxSize, splitSize
		cfg.SplitCheckTicks = 10
	}
}

func TestSplitRegions(t *testing.T) {
	region := &metapb.Region{Id: 1, StartKey: []byte("a"), EndKey: []byte("z"),
		RegionEpoch: &metapb.RegionEpoch{Version: 3, ConfVer: 7},
		Peers:       []*metapb.Peer{{Id: 1, StoreId: 1}, {Id: 2, StoreId: 2, Role: metapb.PeerRole_Learner}}}
	split := func(rightDerive bool, keys ...string) *raft_cmdpb.BatchSplitRequest {
		req := &raft_cmdpb.BatchSplitRequest{RightDerive: rightDerive}
		for i, k := range keys {
			id := uint64(10 * (i + 1))
			req.Requests = append(req.Requests, &raft_cmdpb.SplitRequest{SplitKey: []byte(k), NewRegionId: id, NewPeerIds: []uint64{id + 1, id + 2}})
		}
		return req
	}
	rng := func(r *metapb.Region) string {
		return fmt.Sprintf("%d[%s,%s)", r.GetId(), r.GetStartKey(), r.GetEndKey())
	}

	derived, created, err := splitRegions(region, split(true, "f", "m"))
	require.Nil(t, err)
	require.Equal(t, "1[m,z)", rng(derived))
	require.Equal(t, "10[a,f)", rng(created[0]))
	require.Equal(t, "20[f,m)", rng(created[1]))
	for _, r := range append(created, derived) {
		require.Equal(t, &metapb.RegionEpoch{Version: 5, ConfVer: 7}, r.GetRegionEpoch())
	}
	require.Equal(t, []*metapb.Peer{{Id: 21, StoreId: 1}, {Id: 22, StoreId: 2, Role: metapb.PeerRole_Learner}}, created[1].GetPeers())
	require.Equal(t, "1[a,z)", rng(region), "the input is not modified")

	derived, created, err = splitRegions(region, split(false, "f", "m"))
	require.Nil(t, err)
	require.Equal(t, "1[a,f)", rng(derived))
	require.Equal(t, "10[f,m)", rng(created[0]))
	require.Equal(t, "20[m,z)", rng(created[1]))

	for name, req := range map[string]*raft_cmdpb.BatchSplitRequest{
		"no keys":          split(true),
		"at the start":     split(true, "a"),
		"before the start": split(true, "0"),
		"at the end":       split(true, "z"),
		"out of order":     split(true, "m", "f"),
		"twice":            split(true, "f", "f"),
		"empty key":        split(true, ""),
	} {
		_, _, err := splitRegions(region, req)
		require.NotNil(t, err, name)
	}
	bad := split(true, "f")
	bad.Requests[0].NewPeerIds = []uint64{11}
	_, _, err = splitRegions(region, bad)
	require.NotNil(t, err, "peer ids do not match the peers")
}

// TestOneSplit3B follows the course: a region split while one store is
// cut off; the two halves cover the old range, a request for a key of the
// right half sent to the left region gets KeyNotInRegion, and the cut-off
// store catches up (applying the split itself or by snapshot).
func TestOneSplit3B(t *testing.T) {
	c := newCluster(t, 5, nil, nil, tinyRegions(800, 500))
	c.mustPut("k1", "v1")
	c.mustPut("k2", "v2")
	require.Equal(t, c.regionOf([]byte("k1")).GetId(), c.regionOf([]byte("k2")).GetId())
	c.partition([]uint64{1, 2, 3, 4}, []uint64{5})
	for i := 100; i < 200; i++ {
		c.mustPut(fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	time.Sleep(200 * time.Millisecond)
	c.heal()
	var left, right *metapb.Region
	require.Eventually(t, func() bool {
		left, right = c.regionOf([]byte("k1")), c.regionOf([]byte("k2"))
		return left.GetId() != right.GetId()
	}, 10*time.Second, testTick, "no split")
	require.Empty(t, left.GetStartKey())
	require.Equal(t, left.GetEndKey(), right.GetStartKey())
	require.Empty(t, right.GetEndKey())

	err := c.read([]byte("k1"), func(snap *RegionSnapshot) error {
		_, err := snap.Get(engine.CfDefault, []byte("k2"))
		return err
	})
	require.NotNil(t, regionErrorOf(t, err).GetKeyNotInRegion())
	c.mustEngineEqual(5, "k100", "v100")
	c.mustGet("k1", "v1")
	c.mustGet("k2", "v2")
}

// A write at the epoch before a split gets EpochNotMatch naming both the
// region and the one split off to its left, so a client can update its
// cache at once.
func TestSplitRegionAPI(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	c.mustPut("a", "1")
	c.mustPut("x", "2")
	before := c.currentRegion()
	leader := c.leader()
	regions, err := c.stores[leader].SplitRegion(context.Background(), c.currentHeader(leader), [][]byte{[]byte("m")})
	require.NoError(t, err)
	require.Len(t, regions, 2)
	require.Equal(t, []byte("m"), regions[0].GetEndKey())
	require.Equal(t, before.GetId(), regions[1].GetId(), "the region keeps the right half")

	h := c.currentHeader(leader)
	h.RegionEpoch = before.GetRegionEpoch()
	_, err = c.stores[leader].Propose(context.Background(), &raft_cmdpb.RaftCmdRequest{Header: h, Requests: []*raft_cmdpb.Request{putReq("y", "3")}})
	current := regionErrorOf(t, err).GetEpochNotMatch().GetCurrentRegions()
	require.Len(t, current, 2)
	require.Equal(t, regions[1].GetRegionEpoch(), current[0].GetRegionEpoch())
	require.Equal(t, regions[0].GetId(), current[1].GetId())

	_, err = c.stores[leader].SplitRegion(context.Background(), h, [][]byte{[]byte("c")})
	require.NotNil(t, regionErrorOf(t, err).GetEpochNotMatch(), "a split at the epoch before the split")

	_, err = c.stores[leader].SplitRegion(context.Background(), c.currentHeader(leader), [][]byte{[]byte("a")})
	require.Error(t, err, "a split key at the region's start")
	c.mustGet("a", "1")
	c.mustGet("x", "2")
	c.mustPut("b", "3")
	for id := uint64(1); id <= 3; id++ {
		c.mustEngineEqual(id, "b", "3")
	}
}

func TestSplitRecover3B(t *testing.T) {
	runGeneric(t, genericOpts{clients: 1, crash: true, split: true})
}
func TestSplitUnreliable3B(t *testing.T) {
	runGeneric(t, genericOpts{clients: 5, unreliable: true, split: true})
}
func TestSplitConfChangeSnapshotUnreliableRecoverConcurrentPartition3B(t *testing.T) {
	runGeneric(t, genericOpts{clients: 5, unreliable: true, crash: true, partitions: true, maxRaftLog: 100, confChange: true, split: true})
}

// TestSplitRegionsElectAtOnce: the new regions of a split get their leader
// from the parent leader's campaign, well before any election timeout,
// although the followers apply the split after the campaign's votes reach
// them (they keep the votes and replay them once the split created the
// peers).
func TestSplitRegionsElectAtOnce(t *testing.T) {
	const electionTicks = 200 // 2 s to 4 s of election timeout
	c := newCluster(t, 3, nil, nil, func(cfg *Config) { cfg.ElectionTicks, cfg.LeaseTicks = electionTicks, electionTicks-1 })
	c.mustPut("a", "1")
	c.mustPut("x", "2")
	leader := c.leader()
	for round, key := range []string{"m", "f", "t"} {
		region := c.stores[leader].RegionForKey([]byte(key))
		h := regionHeader(region, leader)
		h.Peer = peerOnStore(region, leader)
		began := time.Now()
		regions, err := c.stores[leader].SplitRegion(context.Background(), h, [][]byte{[]byte(key)})
		require.NoError(t, err)
		left := regions[0].GetId()
		elected := false
		for deadline := began.Add(electionTicks * testTick * 7 / 10); time.Now().Before(deadline) && !elected; time.Sleep(testTick) {
			for _, id := range c.ids {
				if st, ok := c.stores[id].Status(context.Background(), left); ok && st.Leader {
					elected = true
				}
			}
		}
		require.True(t, elected, "split %d: region %d has no leader within 0.7 of the shortest election timeout", round, left)
	}
}
