package tikvsvc

import (
	"context"
	"fmt"
	"time"

	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/tinykv/tinykv/internal/pdclient"
	"github.com/tinykv/tinykv/raftstore"
)

// operatorTimeout bounds carrying out one PD operator; PD sends it again on
// a later heartbeat if it did not take.
const operatorTimeout = 10 * time.Second

// pdResolver finds other stores' addresses through PD, for the raft
// transport. A tombstone store, or one PD has no address for, is an error.
type pdResolver struct{ pd *pdclient.Client }

func (r pdResolver) StoreAddr(ctx context.Context, storeID uint64) (string, error) {
	store, err := r.pd.GetStore(ctx, storeID)
	if err != nil {
		return "", err
	}
	if store.GetAddress() == "" {
		return "", fmt.Errorf("pd knows no address of store %d", storeID)
	}
	return store.GetAddress(), nil
}

// raftRegions is the service's view of the regions of a raftstore.
type raftRegions struct{ store *raftstore.Store }

func (r raftRegions) Check(req *kvrpcpb.Context) (*metapb.Region, *errorpb.Error) {
	return r.store.CheckContext(req)
}

func (r raftRegions) Led(ctx context.Context) []*metapb.Region {
	infos := r.store.LeaderRegions(ctx)
	regions := make([]*metapb.Region, len(infos))
	for i, info := range infos {
		regions[i] = info.Region
	}
	return regions
}

// SplitRegion splits the region req addresses at keys (encoded, sorted,
// inside the region) through its leader.
func (r raftRegions) SplitRegion(ctx context.Context, req *kvrpcpb.Context, keys [][]byte) ([]*metapb.Region, error) {
	header := &raft_cmdpb.RaftRequestHeader{RegionId: req.GetRegionId(), Peer: req.GetPeer(), RegionEpoch: req.GetRegionEpoch()}
	return r.store.SplitRegion(ctx, header, keys)
}

// runOperator carries out what PD asked of a region this store leads: a
// membership change, a leader transfer or a split. A refusal (the region
// moved on, this store no longer leads) is logged; PD decides again from
// the next heartbeat.
func (n *Node) runOperator(ctx context.Context, resp *pdpb.RegionHeartbeatResponse) {
	ctx, cancel := context.WithTimeout(ctx, operatorTimeout)
	defer cancel()
	header := &raft_cmdpb.RaftRequestHeader{RegionId: resp.GetRegionId(), Peer: resp.GetTargetPeer(), RegionEpoch: resp.GetRegionEpoch()}
	var admin *raft_cmdpb.AdminRequest
	switch {
	case resp.GetChangePeer() != nil:
		change := resp.GetChangePeer()
		admin = &raft_cmdpb.AdminRequest{CmdType: raft_cmdpb.AdminCmdType_ChangePeer,
			ChangePeer: &raft_cmdpb.ChangePeerRequest{ChangeType: change.GetChangeType(), Peer: change.GetPeer()}}
	case resp.GetTransferLeader() != nil:
		admin = &raft_cmdpb.AdminRequest{CmdType: raft_cmdpb.AdminCmdType_TransferLeader,
			TransferLeader: &raft_cmdpb.TransferLeaderRequest{Peer: resp.GetTransferLeader().GetPeer()}}
	case len(resp.GetSplitRegion().GetKeys()) > 0:
		_, err := n.store.SplitRegion(ctx, header, resp.GetSplitRegion().GetKeys())
		n.logOperator(resp, "split", err)
		return
	default:
		if resp.GetChangePeerV2() != nil || resp.GetMerge() != nil || resp.GetSplitRegion() != nil {
			n.log.Warn("pd operator not supported", "region-id", resp.GetRegionId(), "operator", resp.String())
		}
		return
	}
	_, err := n.store.Propose(ctx, &raft_cmdpb.RaftCmdRequest{Header: header, AdminRequest: admin})
	n.logOperator(resp, admin.GetCmdType().String(), err)
}

func (n *Node) logOperator(resp *pdpb.RegionHeartbeatResponse, what string, err error) {
	if err != nil {
		n.log.Info("pd operator refused", "region-id", resp.GetRegionId(), "operator", what, "err", err)
		return
	}
	n.log.Info("pd operator carried out", "region-id", resp.GetRegionId(), "operator", what)
}
