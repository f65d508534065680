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
	"github.com/tinykv/tinykv/storage"
)

// replicaReadHeader addresses the region's peer on storeID for a follower
// read.
func replicaReadHeader(c *cluster, storeID uint64) *raft_cmdpb.RaftRequestHeader {
	h := c.header(storeID)
	h.ReplicaRead = true
	return h
}

// TestReplicaReadIsLinearizable: a follower serves Context.replica_read
// reads by the leader's read index, so each sees the write the leader
// acknowledged just before, even when the follower had not applied it yet;
// without replica_read the follower answers NotLeader; a follower cut off
// from the leader does not serve a stale value.
func TestReplicaReadIsLinearizable(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	leader := c.leader()
	follower := c.ids[0]
	if follower == leader {
		follower = c.ids[1]
	}
	ctx := context.Background()
	for i := range 20 {
		value := fmt.Sprintf("v%d", i)
		c.mustPut("k", value)
		snap, err := c.stores[follower].Snapshot(ctx, replicaReadHeader(c, follower))
		require.NoError(t, err)
		got, err := snap.Get(engine.CfDefault, []byte("k"))
		snap.Close()
		require.NoError(t, err)
		require.Equal(t, value, string(got), "replica read %d", i)
	}
	require.GreaterOrEqual(t, c.stores[follower].ReadStats().Replica, uint64(20))

	_, err := c.stores[follower].Snapshot(ctx, c.header(follower))
	require.NotNil(t, storage.AsRegionError(err).GetNotLeader(), "a plain read on a follower: %v", err)

	var others []uint64
	for _, id := range c.ids {
		if id != follower {
			others = append(others, id)
		}
	}
	c.partition([]uint64{follower}, others)
	c.mustPut("k", "after the partition")
	cut, cancel := context.WithTimeout(ctx, 3*electionTimeout)
	defer cancel()
	snap, err := c.stores[follower].Snapshot(cut, replicaReadHeader(c, follower))
	if err == nil {
		got, _ := snap.Get(engine.CfDefault, []byte("k"))
		snap.Close()
		t.Fatalf("a follower cut off from the leader served a replica read: %q", got)
	}
	c.heal()
	require.Eventually(t, func() bool {
		snap, err := c.stores[follower].Snapshot(ctx, replicaReadHeader(c, follower))
		if err != nil {
			return false
		}
		defer snap.Close()
		got, err := snap.Get(engine.CfDefault, []byte("k"))
		return err == nil && string(got) == "after the partition"
	}, 10*time.Second, testTick)
}

// TestReplicaReadChecksTheEpoch: a follower read at a stale epoch is
// refused with EpochNotMatch, and one for another peer id with
// MismatchPeerId.
func TestReplicaReadChecksTheEpoch(t *testing.T) {
	c := newCluster(t, 3, nil, nil)
	c.mustPut("k", "v")
	leader := c.leader()
	follower := leader%3 + 1
	// The follower serves once it has heard from the leader.
	require.Eventually(t, func() bool {
		snap, err := c.stores[follower].Snapshot(context.Background(), replicaReadHeader(c, follower))
		if err == nil {
			snap.Close()
		}
		return err == nil
	}, 5*time.Second, testTick)
	h := replicaReadHeader(c, follower)
	h.RegionEpoch = &metapb.RegionEpoch{Version: 9, ConfVer: 1}
	_, err := c.stores[follower].Snapshot(context.Background(), h)
	require.NotNil(t, storage.AsRegionError(err).GetEpochNotMatch(), "%v", err)
	h = replicaReadHeader(c, follower)
	h.Peer = &metapb.Peer{Id: 99, StoreId: follower}
	_, err = c.stores[follower].Snapshot(context.Background(), h)
	require.NotNil(t, storage.AsRegionError(err).GetMismatchPeerId(), "%v", err)
}
