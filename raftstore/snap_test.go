package raftstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
)

func gcCountLimit(limit uint64) func(*Config) {
	return func(cfg *Config) { cfg.RaftLogGCCountLimit = limit }
}

func putCFReq(cf, key, value string) *raft_cmdpb.Request {
	req := putReq(key, value)
	req.Put.Cf = cf
	return req
}

func deleteCFReq(cf, key string) *raft_cmdpb.Request {
	req := deleteReq(key)
	req.Delete.Cf = cf
	return req
}

// TestOneSnapshot is the course's TestOneSnapshot2C: a store cut off while
// the leader compacts its log catches up by snapshot — data in every CF,
// deletes included — keeps it across a restart, and log GC keeps every
// log short.
func TestOneSnapshot(t *testing.T) {
	const limit = 10
	c := newCluster(t, 3, nil, nil, gcCountLimit(limit))
	require.NoError(t, c.write(putCFReq("lock", "k1", "v1"), putCFReq("lock", "k2", "v2")))
	for _, id := range c.ids {
		require.Equal(t, uint64(initLogIndex), c.applyState(id).GetTruncatedState().GetIndex())
	}
	leader := c.leader()
	lagging := c.ids[0]
	if lagging == leader {
		lagging = c.ids[1]
	}
	var rest []uint64
	for _, id := range c.ids {
		if id != lagging {
			rest = append(rest, id)
		}
	}
	c.partition([]uint64{lagging}, rest)
	c.setHint(c.region.GetId(), leader)
	for i := 100; i < 115; i++ {
		c.mustPut(fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	require.NoError(t, c.write(deleteCFReq("lock", "k2")))
	time.Sleep(5 * electionTimeout)
	_, ok := c.engineValue(lagging, "k100")
	require.False(t, ok, "the cut-off store applied k100")
	require.Eventually(t, func() bool {
		return c.applyState(leader).GetTruncatedState().GetIndex() > initLogIndex
	}, 5*time.Second, testTick, "the leader never compacted its log")

	c.heal()
	c.mustEngineEqual(lagging, "k100", "v100")
	require.Positive(t, c.snapshotsTo(lagging), "the store caught up without a snapshot")
	got, err := c.kv[lagging].Get(engine.CfLock, []byte("k1"))
	require.NoError(t, err)
	require.Equal(t, "v1", string(got))
	_, err = c.kv[lagging].Get(engine.CfLock, []byte("k2"))
	require.ErrorIs(t, err, engine.ErrNotFound, "a key deleted before the snapshot survived it")

	c.stop(lagging)
	c.start(lagging)
	got, err = c.kv[lagging].Get(engine.CfLock, []byte("k1"))
	require.NoError(t, err)
	require.Equal(t, "v1", string(got))
	c.mustPut("after", "restart")
	c.mustEngineEqual(lagging, "after", "restart")
	time.Sleep(5 * electionTimeout)
	c.mustLogBounded(limit)
}

// TestLogGCDeletesEntries: compacted entries leave the raft engine.
func TestLogGCDeletesEntries(t *testing.T) {
	c := newCluster(t, 3, nil, nil, gcCountLimit(10))
	for i := range 60 {
		c.mustPut(fmt.Sprintf("k%02d", i), "v")
	}
	leader := c.leader()
	require.Eventually(t, func() bool {
		truncated := c.applyState(leader).GetTruncatedState().GetIndex()
		if truncated <= initLogIndex+10 {
			return false
		}
		stored := 0
		err := c.raftDB[leader].Scan(engine.CfDefault, engine.IterOptions{
			LowerBound: raftLogKey(1, 0), UpperBound: raftLogKey(1, truncated+1), KeyOnly: true,
		}, func(_, _ []byte) bool { stored++; return true })
		require.NoError(t, err)
		return stored == 0
	}, 5*time.Second, testTick)
}

func TestSnapshotRecover2C(t *testing.T) {
	runGeneric(t, genericOpts{clients: 1, crash: true, maxRaftLog: 100})
}
func TestSnapshotUnreliableRecover2C(t *testing.T) {
	runGeneric(t, genericOpts{clients: 5, unreliable: true, crash: true, maxRaftLog: 100})
}
func TestSnapshotUnreliableRecoverConcurrentPartition2C(t *testing.T) {
	runGeneric(t, genericOpts{clients: 5, unreliable: true, crash: true, partitions: true, maxRaftLog: 100})
}

// TestBadRaftMessagesAreDropped: malformed messages and snapshots (garbage
// data, another region, another range, keys outside the region, a stale
// epoch) are refused or dropped without harm to the peer.
func TestBadRaftMessagesAreDropped(t *testing.T) {
	c := newCluster(t, 3, []byte("b"), []byte("m"))
	c.mustPut("c", "1")
	leader := c.leader()
	target := c.ids[0]
	if target == leader {
		target = c.ids[1]
	}
	snapMsg := func(data []byte) *raft_serverpb.RaftMessage {
		return &raft_serverpb.RaftMessage{
			RegionId:    1,
			FromPeer:    &metapb.Peer{Id: leader, StoreId: leader},
			ToPeer:      &metapb.Peer{Id: target, StoreId: target},
			RegionEpoch: c.region.GetRegionEpoch(),
			Message: &eraftpb.Message{MsgType: eraftpb.MessageType_MsgSnapshot, From: leader, To: target, Term: 1000,
				Snapshot: &eraftpb.Snapshot{Data: data, Metadata: &eraftpb.SnapshotMetadata{Index: 1000, Term: 1000,
					ConfState: &eraftpb.ConfState{Voters: []uint64{1, 2, 3}}}}},
		}
	}
	payload := func(mutate func(*raft_serverpb.RaftSnapshotData)) []byte {
		data := &raft_serverpb.RaftSnapshotData{Region: cloneRegion(c.region), Version: snapshotVersion,
			Data: []*raft_serverpb.KeyValue{{Key: append([]byte{byte(engine.CfDefault)}, "c"...), Value: []byte("evil")}}}
		mutate(data)
		raw, err := data.Marshal()
		require.NoError(t, err)
		return raw
	}
	bad := map[string][]byte{
		"garbage":        []byte("\xff\xff not a snapshot"),
		"another region": payload(func(d *raft_serverpb.RaftSnapshotData) { d.Region.Id = 9 }),
		"another range":  payload(func(d *raft_serverpb.RaftSnapshotData) { d.Region.EndKey = []byte("z") }),
		"stale epoch":    payload(func(d *raft_serverpb.RaftSnapshotData) { d.Region.RegionEpoch = &metapb.RegionEpoch{} }),
		"key outside": payload(func(d *raft_serverpb.RaftSnapshotData) {
			d.Data[0].Key = append([]byte{byte(engine.CfDefault)}, "x"...)
		}),
		"raft CF": payload(func(d *raft_serverpb.RaftSnapshotData) {
			d.Data[0].Key = append([]byte{byte(engine.CfRaft)}, "c"...)
		}),
		"old version": payload(func(d *raft_serverpb.RaftSnapshotData) { d.Version = 0 }),
	}
	for name, data := range bad {
		require.NoError(t, c.stores[target].HandleRaftMessage(snapMsg(data)), name)
	}
	wrongStore := snapMsg(bad["garbage"])
	wrongStore.ToPeer.StoreId = 99
	require.NotNil(t, regionErrorOf(t, c.stores[target].HandleRaftMessage(wrongStore)).GetStoreNotMatch())
	require.NoError(t, c.stores[target].HandleRaftMessage(&raft_serverpb.RaftMessage{
		RegionId: 1, ToPeer: &metapb.Peer{Id: target, StoreId: target}}))
	unknown := snapMsg(bad["garbage"])
	unknown.RegionId = 42
	require.NoError(t, c.stores[target].HandleRaftMessage(unknown))

	c.mustPut("c", "2")
	c.mustEngineEqual(target, "c", "2")
	st, ok := c.stores[target].Status(context.Background(), 1)
	require.True(t, ok)
	require.Less(t, st.Term, uint64(1000), "a dropped snapshot moved the peer's term")
}
