package raftstore

import (
	"context"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/stretchr/testify/require"
)

// transferLeader asks the current leader to hand leadership to target.
func (c *cluster) transferLeader(target *metapb.Peer) (*raft_cmdpb.RaftCmdResponse, error) {
	leader := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), tryTimeout)
	defer cancel()
	return c.stores[leader].Propose(ctx, &raft_cmdpb.RaftCmdRequest{
		Header: c.currentHeader(leader),
		AdminRequest: &raft_cmdpb.AdminRequest{CmdType: raft_cmdpb.AdminCmdType_TransferLeader,
			TransferLeader: &raft_cmdpb.TransferLeaderRequest{Peer: target}},
	})
}

// mustTransferLeader transfers leadership to target and waits (5 s, as
// the course's MustTransferLeader) until it leads.
func (c *cluster) mustTransferLeader(target *metapb.Peer) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		if leader, _, ok := c.findLeader(time.Second); ok && leader == target.GetStoreId() {
			return true
		}
		// Refusals and ignored transfers are retried until the deadline.
		_, _ = c.transferLeader(target)
		return false
	}, 5*time.Second, 5*testTick, "leadership did not move to %v", target)
}

// TestTransferLeader3B follows the course: leadership moves to each peer
// in turn, and the new leader serves writes and reads.
func TestTransferLeader3B(t *testing.T) {
	c := newCluster(t, 5, nil, nil)
	for id := uint64(1); id <= 5; id++ {
		c.mustTransferLeader(&metapb.Peer{Id: id, StoreId: id})
		c.mustPut("k", string(rune('a'+id)))
		c.mustGet("k", string(rune('a'+id)))
	}
}

// TestTransferLeaderRefusals: a transfer to a peer that is not a voter of
// the region, or at an old conf_ver, is refused; the leader stays.
func TestTransferLeaderRefusals(t *testing.T) {
	c := newPartialCluster(t, 4, 3, nil, nil)
	c.mustPut("k", "v")
	leader := c.leader()
	_, err := c.transferLeader(&metapb.Peer{Id: 4, StoreId: 4})
	require.ErrorContains(t, err, "not a voter")

	h := c.currentHeader(leader)
	h.RegionEpoch = &metapb.RegionEpoch{Version: 1, ConfVer: 0}
	other := leader%3 + 1
	_, err = c.stores[leader].Propose(context.Background(), &raft_cmdpb.RaftCmdRequest{Header: h,
		AdminRequest: &raft_cmdpb.AdminRequest{CmdType: raft_cmdpb.AdminCmdType_TransferLeader,
			TransferLeader: &raft_cmdpb.TransferLeaderRequest{Peer: &metapb.Peer{Id: other, StoreId: other}}}})
	require.NotNil(t, regionErrorOf(t, err).GetEpochNotMatch())
	time.Sleep(3 * electionTimeout)
	require.Equal(t, leader, c.leader())
}
