package raftstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/stretchr/testify/require"
)

// TestBasicReplication: a write acknowledged by the leader is applied on
// every store, reads through the leader see it, and deletes replicate too.
func TestBasicReplication(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	c.mustPut("k1", "v1")
	c.mustGet("k1", "v1")
	for _, id := range c.ids {
		c.mustEngineEqual(id, "k1", "v1")
	}
	require.NoError(t, c.write(deleteReq("k1"), putReq("k2", "v2")))
	_, found, err := c.get("k1")
	require.NoError(t, err)
	require.False(t, found)
	for _, id := range c.ids {
		c.mustEngineEqual(id, "k2", "v2")
		require.Eventually(t, func() bool { _, ok := c.engineValue(id, "k1"); return !ok }, 5*time.Second, testTick)
	}
}

// TestSingleStore: a one-peer region elects itself and serves alone.
func TestSingleStore(t *testing.T) {
	c := newCluster(t, 1, nil, nil)
	c.mustPut("a", "1")
	c.mustGet("a", "1")
}

// TestRegionErrors checks the region errors a request gets, each in the
// errorpb field client-go reads.
func TestRegionErrors(t *testing.T) {
	c := newCluster(t, 3, []byte("b"), []byte("m"))
	c.mustPut("c", "1")
	leader := c.leader()
	follower := c.ids[0]
	if follower == leader {
		follower = c.ids[1]
	}
	ctx := context.Background()
	propose := func(storeID uint64, header *raft_cmdpb.RaftCmdRequest) error {
		_, err := c.stores[storeID].Propose(ctx, header)
		return err
	}
	cmd := func(header *raft_cmdpb.RaftRequestHeader, reqs ...*raft_cmdpb.Request) *raft_cmdpb.RaftCmdRequest {
		return &raft_cmdpb.RaftCmdRequest{Header: header, Requests: reqs}
	}

	t.Run("not leader names the leader", func(t *testing.T) {
		rerr := regionErrorOf(t, propose(follower, cmd(c.header(follower), putReq("c", "2"))))
		require.Equal(t, uint64(1), rerr.GetNotLeader().GetRegionId())
		require.Equal(t, leader, rerr.GetNotLeader().GetLeader().GetStoreId())
		_, err := c.stores[follower].Snapshot(ctx, c.header(follower))
		require.NotNil(t, regionErrorOf(t, err).GetNotLeader())
	})
	t.Run("stale version gets the current region", func(t *testing.T) {
		h := c.header(leader)
		h.RegionEpoch = &metapb.RegionEpoch{Version: 2, ConfVer: 1}
		rerr := regionErrorOf(t, propose(leader, cmd(h, putReq("c", "2"))))
		require.Len(t, rerr.GetEpochNotMatch().GetCurrentRegions(), 1)
		require.Equal(t, c.region.GetRegionEpoch(), rerr.GetEpochNotMatch().GetCurrentRegions()[0].GetRegionEpoch())
		_, err := c.stores[leader].Snapshot(ctx, h)
		require.NotNil(t, regionErrorOf(t, err).GetEpochNotMatch())
	})
	t.Run("an older conf version is served", func(t *testing.T) {
		h := c.header(leader)
		h.RegionEpoch = &metapb.RegionEpoch{Version: 1, ConfVer: 0}
		require.NoError(t, propose(leader, cmd(h, putReq("c", "3"))))
	})
	t.Run("another store", func(t *testing.T) {
		h := c.header(leader)
		h.Peer = &metapb.Peer{Id: leader, StoreId: 99}
		rerr := regionErrorOf(t, propose(leader, cmd(h, putReq("c", "2"))))
		require.Equal(t, uint64(99), rerr.GetStoreNotMatch().GetRequestStoreId())
		require.Equal(t, leader, rerr.GetStoreNotMatch().GetActualStoreId())
	})
	t.Run("another peer id", func(t *testing.T) {
		h := c.header(leader)
		h.Peer = &metapb.Peer{Id: 42, StoreId: leader}
		rerr := regionErrorOf(t, propose(leader, cmd(h, putReq("c", "2"))))
		require.Equal(t, uint64(42), rerr.GetMismatchPeerId().GetRequestPeerId())
	})
	t.Run("unknown region", func(t *testing.T) {
		h := c.header(leader)
		h.RegionId = 7
		rerr := regionErrorOf(t, propose(leader, cmd(h, putReq("c", "2"))))
		require.Equal(t, uint64(7), rerr.GetRegionNotFound().GetRegionId())
	})
	t.Run("key outside the region, nothing of the command applies", func(t *testing.T) {
		rerr := regionErrorOf(t, propose(leader, cmd(c.header(leader), putReq("d", "x"), putReq("z", "2"))))
		require.Equal(t, []byte("z"), rerr.GetKeyNotInRegion().GetKey())
		_, found, err := c.get("d")
		require.NoError(t, err)
		require.False(t, found)
		err = c.read(nil, func(snap *RegionSnapshot) error {
			_, err := snap.Get(0, []byte("a"))
			return err
		})
		require.NotNil(t, regionErrorOf(t, err).GetKeyNotInRegion())
	})
	t.Run("entry too large", func(t *testing.T) {
		big := strings.Repeat("x", 9<<20)
		rerr := regionErrorOf(t, propose(leader, cmd(c.header(leader), putReq("c", big))))
		require.Equal(t, uint64(1), rerr.GetRaftEntryTooLarge().GetRegionId())
	})
	t.Run("a read command is not a write", func(t *testing.T) {
		snapReq := &raft_cmdpb.Request{CmdType: raft_cmdpb.CmdType_Snap, Snap: &raft_cmdpb.SnapRequest{}}
		require.Error(t, propose(leader, cmd(c.header(leader), snapReq)))
	})
	t.Run("the raft CF is not addressable", func(t *testing.T) {
		req := putReq("c", "x")
		req.Put.Cf = "raft"
		require.Error(t, propose(leader, cmd(c.header(leader), req)))
	})
	c.mustGet("c", "3")
}

// TestSnapshotBounds: iterators of a region snapshot stop at the region's
// bounds whatever bounds the caller asks.
func TestSnapshotBounds(t *testing.T) {
	c := newCluster(t, 1, []byte("b"), []byte("d"))
	require.NoError(t, c.write(putReq("b", "1"), putReq("c", "2")))
	values, err := c.scan("", "")
	require.NoError(t, err)
	require.Equal(t, []string{"1", "2"}, values)
	values, err = c.scan("a", "c")
	require.NoError(t, err)
	require.Equal(t, []string{"1"}, values)
}

// TestOnePartition is the course's TestOnePartition2B: a write in the
// majority does not reach the minority; with the old leader in a minority
// the majority elects another and keeps serving, while the old leader's
// side keeps the old value; after healing everyone converges.
func TestOnePartition(t *testing.T) {
	c := newCluster(t, 5, nil, nil)
	c.mustPut("k0", "v0")
	leader := c.leader()
	var others []uint64
	for _, id := range c.ids {
		if id != leader {
			others = append(others, id)
		}
	}
	majority := []uint64{leader, others[0], others[1]}
	minority := []uint64{others[2], others[3]}
	c.partition(majority, minority)
	c.setHint(c.region.GetId(), leader)
	c.mustPut("k1", "v1")
	c.mustGet("k1", "v1")
	for _, id := range majority {
		c.mustEngineEqual(id, "k1", "v1")
	}
	time.Sleep(electionTimeout)
	for _, id := range minority {
		_, ok := c.engineValue(id, "k1")
		require.False(t, ok, "store %d in the minority applied k1", id)
	}

	// The old leader with one follower in a minority; the rest elect.
	oldSide := []uint64{leader, others[2]}
	newSide := []uint64{others[0], others[1], others[3]}
	c.partition(oldSide, newSide)
	c.setHint(c.region.GetId(), others[0])
	c.mustPut("k1", "changed")
	c.mustGet("k1", "changed")
	for _, id := range oldSide {
		got, _ := c.engineValue(id, "k1")
		require.NotEqual(t, "changed", got, "store %d", id)
	}

	c.heal()
	c.mustPut("k2", "v2")
	for _, id := range c.ids {
		c.mustEngineEqual(id, "k2", "v2")
		c.mustEngineEqual(id, "k1", "changed")
	}
}

// TestDeposedLeaderServesNoRead: a leader cut off from its followers stops
// answering reads (its ReadIndex cannot be confirmed) instead of serving
// data the new leader has overwritten.
func TestDeposedLeaderServesNoRead(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	c.mustPut("k", "old")
	leader := c.leader()
	var rest []uint64
	for _, id := range c.ids {
		if id != leader {
			rest = append(rest, id)
		}
	}
	c.partition([]uint64{leader}, rest)
	c.setHint(c.region.GetId(), rest[0])
	c.mustPut("k", "new")

	ctx, cancel := context.WithTimeout(context.Background(), 5*electionTimeout)
	defer cancel()
	snap, err := c.stores[leader].Snapshot(ctx, c.header(leader))
	if err == nil {
		got, _ := snap.Get(0, []byte("k"))
		snap.Close()
		t.Fatalf("the isolated old leader served a read: k=%q", got)
	}
	c.heal()
	c.mustGet("k", "new")
}

// TestRestartRecovers: stores closed and reopened on the same directories
// recover their peers; acknowledged writes are there and nothing applies
// twice (the apply state moves on from where it was).
func TestRestartRecovers(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	for i := range 20 {
		c.mustPut("k"+string(rune('a'+i)), "v")
	}
	c.mustPut("last", "1")
	for _, id := range c.ids {
		c.mustEngineEqual(id, "last", "1")
	}
	before := map[uint64]uint64{}
	for _, id := range c.ids {
		before[id] = c.applyState(id).GetAppliedIndex()
		c.stop(id)
	}
	for _, id := range c.ids {
		c.start(id)
		require.GreaterOrEqual(t, c.applyState(id).GetAppliedIndex(), before[id])
	}
	c.mustGet("last", "1")
	c.mustPut("after", "2")
	c.mustGet("ka", "v")
	for _, id := range c.ids {
		c.mustEngineEqual(id, "after", "2")
	}
}

// TestCloseAnswersPending: closing a store answers the requests it holds
// instead of leaving them waiting.
func TestCloseAnswersPending(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	c.mustPut("k", "v")
	leader := c.leader()
	var rest []uint64
	for _, id := range c.ids {
		if id != leader {
			rest = append(rest, id)
		}
	}
	// Cut the leader off so that its proposal cannot commit.
	c.partition([]uint64{leader}, rest)
	errs := make(chan error, 1)
	go func() {
		_, err := c.stores[leader].Propose(context.Background(),
			&raft_cmdpb.RaftCmdRequest{Header: c.header(leader), Requests: []*raft_cmdpb.Request{putReq("k", "lost")}})
		errs <- err
	}()
	time.Sleep(5 * testTick)
	c.stop(leader)
	select {
	case err := <-errs:
		require.NotNil(t, regionErrorOf(t, err).GetRegionNotFound())
	case <-time.After(5 * time.Second):
		t.Fatal("a proposal held by a closed store was never answered")
	}
}

// TestLeaseReads: a leader in lease serves reads without a ReadIndex round;
// with lease reads off, or a read that asks for quorum, every read takes
// one.
func TestLeaseReads(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	c.mustPut("k", "v")
	leader := c.leader()
	c.setHint(c.region.GetId(), leader)
	before := c.stores[leader].ReadStats()
	for range 50 {
		c.mustGet("k", "v")
	}
	after := c.stores[leader].ReadStats()
	require.Greater(t, after.Lease-before.Lease, uint64(40), "reads served by the lease: %+v -> %+v", before, after)

	h := c.header(leader)
	h.ReadQuorum = true
	snap, err := c.stores[leader].Snapshot(context.Background(), h)
	require.NoError(t, err)
	snap.Close()
	require.Equal(t, after.ReadIndex+1, c.stores[leader].ReadStats().ReadIndex)
}

func TestReadIndexWithoutLease(t *testing.T) {
	c := newCluster(t, 3, nil, nil, func(cfg *Config) { cfg.LeaseTicks = -1 })
	c.mustPut("k", "v")
	for range 20 {
		c.mustGet("k", "v")
	}
	var stats ReadStats
	for _, id := range c.ids {
		st := c.stores[id].ReadStats()
		stats.Lease += st.Lease
		stats.ReadIndex += st.ReadIndex
	}
	require.Zero(t, stats.Lease)
	require.GreaterOrEqual(t, stats.ReadIndex, uint64(20))
}
