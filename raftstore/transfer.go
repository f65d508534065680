package raftstore

import (
	"fmt"

	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
)

// Leader transfer is not replicated: the leader checks the command and,
// when the transferee is close enough to take over, hands leadership to it
// through raft (which catches it up and sends MsgTimeoutNow). It answers
// at once, as TiKV does; whether the transfer happened shows in who leads.

// leaderTransferMaxLogLag is how far behind the leader's last index a
// transferee may be (TiKV's leader-transfer-max-log-lag).
const leaderTransferMaxLogLag = 128

func (p *peer) transferLeader(cmd *raft_cmdpb.RaftCmdRequest) *raft_cmdpb.RaftCmdResponse {
	if err := checkRegion(cmd.GetHeader(), p.region, true); err != nil {
		return errorResponse(err, p.term())
	}
	target := cmd.GetAdminRequest().GetTransferLeader().GetPeer()
	member := peerByID(p.region, target.GetId())
	if member == nil || member.GetStoreId() != target.GetStoreId() || member.GetRole() != metapb.PeerRole_Voter {
		return errorResponse(&errorpb.Error{Message: fmt.Sprintf("raftstore: transfer leader to %v: not a voter of region %d",
			target, p.regionID())}, p.term())
	}
	if reason := p.transferRefusal(target.GetId()); reason != "" {
		p.log.Info("leader transfer ignored", "transferee", target.GetId(), "reason", reason)
	} else if target.GetId() != p.meta.GetId() {
		p.log.Info("transfer leader", "transferee", target.GetId())
		p.rn.TransferLeader(target.GetId())
	}
	return &raft_cmdpb.RaftCmdResponse{
		Header: &raft_cmdpb.RaftResponseHeader{CurrentTerm: p.term()},
		AdminResponse: &raft_cmdpb.AdminResponse{CmdType: raft_cmdpb.AdminCmdType_TransferLeader,
			TransferLeader: &raft_cmdpb.TransferLeaderResponse{}},
	}
}

// transferRefusal says why leadership cannot go to the transferee now (a
// membership change not yet applied, or the transferee too far behind),
// or "" when it can (TiKV's ready_to_transfer_leader).
func (p *peer) transferRefusal(transferee uint64) string {
	if p.rn.HasPendingConfChange() {
		return "a conf change is not applied yet"
	}
	pr, ok := p.rn.Status().Progress[transferee]
	if !ok {
		return "no progress for the transferee"
	}
	if last := p.rn.LastIndex(); pr.Match+leaderTransferMaxLogLag < last {
		return fmt.Sprintf("the transferee matched %d of %d", pr.Match, last)
	}
	return ""
}
