package raftstore

import (
	"context"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"github.com/tinykv/tinykv/raft"
)

// CheckContext checks a client's request context against this store's view
// of the region it addresses, before the request takes latches: the store,
// the region (initialized here) and the epoch's version, as TiKV checks them
// for reads and writes. It returns a copy of the region, or the region error
// to answer (EpochNotMatch lists the region and its left sibling). The peer
// checks leadership and the epoch again when the request reaches it.
func (s *Store) CheckContext(req *kvrpcpb.Context) (*metapb.Region, *errorpb.Error) {
	if id := req.GetPeer().GetStoreId(); id != 0 && id != s.cfg.StoreID {
		return nil, errStoreNotMatch(id, s.cfg.StoreID)
	}
	s.mu.RLock()
	region := s.ranges.byID(req.GetRegionId())
	s.mu.RUnlock()
	if region == nil {
		return nil, s.missingRegion(req.GetRegionId())
	}
	got := req.GetRegionEpoch()
	if got == nil || got.GetVersion() != region.GetRegionEpoch().GetVersion() {
		err := errEpochNotMatch(region, got)
		s.addSibling(err, region)
		return nil, err
	}
	return cloneRegion(region), nil
}

// RegionInfo is what PD hears of a region in a region heartbeat, as its
// leader on this store sees it.
type RegionInfo struct {
	Region *metapb.Region
	Leader *metapb.Peer
	Term   uint64
	// PendingPeers are the peers that lag behind the log this leader keeps
	// (they wait for a snapshot), as TiKV reports them.
	PendingPeers []*metapb.Peer
	// DownPeers are the peers this leader has not heard from for
	// Config.MaxPeerDownDuration, with how long.
	DownPeers []*pdpb.PeerStats
}

// LeaderRegions returns the regions this store's peers lead, for the
// region heartbeats; a peer that does not answer before ctx ends is left
// out.
func (s *Store) LeaderRegions(ctx context.Context) []RegionInfo {
	s.mu.RLock()
	ids := make([]uint64, 0, len(s.peers))
	for id := range s.peers {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	var infos []RegionInfo
	for _, id := range ids {
		if info, ok := s.LeaderRegion(ctx, id); ok {
			infos = append(infos, info)
		}
	}
	return infos
}

// LeaderRegion returns what PD hears of one region; false when this store
// does not lead it (or ctx ends first).
func (s *Store) LeaderRegion(ctx context.Context, regionID uint64) (RegionInfo, bool) {
	ch := make(chan RegionInfo, 1)
	inspect := func(p *peer) {
		if !p.isLeader() || !p.initialized() || p.destroying {
			ch <- RegionInfo{}
			return
		}
		ch <- p.regionInfo()
	}
	if !s.sendPeer(regionID, peerMsg{kind: msgInspect, inspect: inspect}) {
		return RegionInfo{}, false
	}
	select {
	case info := <-ch:
		return info, info.Region != nil
	case <-ctx.Done():
		return RegionInfo{}, false
	}
}

// regionInfo describes the region as this leader sees it.
func (p *peer) regionInfo() RegionInfo {
	info := RegionInfo{Region: cloneRegion(p.region), Leader: proto.Clone(p.meta).(*metapb.Peer), Term: p.term(), DownPeers: p.downPeers()}
	first := p.ps.firstIndex()
	for id, pr := range p.rn.Status().Progress {
		if id == p.meta.GetId() {
			continue
		}
		if pr.State == raft.ProgressStateSnapshot || pr.Match < first {
			if peer := peerByID(p.region, id); peer != nil {
				info.PendingPeers = append(info.PendingPeers, proto.Clone(peer).(*metapb.Peer))
			}
		}
	}
	return info
}

// downPeers lists the region's peers this leader has not heard from for
// MaxPeerDownDuration (TiKV's max-peer-down-duration).
func (p *peer) downPeers() []*pdpb.PeerStats {
	var down []*pdpb.PeerStats
	for _, peer := range p.region.GetPeers() {
		if peer.GetId() == p.meta.GetId() {
			continue
		}
		silent := time.Duration(p.ticks-p.heardAt[peer.GetId()]) * p.store.cfg.TickInterval
		if silent >= p.store.cfg.MaxPeerDownDuration {
			down = append(down, &pdpb.PeerStats{Peer: proto.Clone(peer).(*metapb.Peer), DownSeconds: uint64(silent / time.Second)})
		}
	}
	return down
}

// noticeLeadership calls Config.OnLeaderChange when this peer became the
// leader or, leading, its region changed (a conf change, a split) or a
// pending peer caught up (TiKV's any_new_peer_catch_up), so that PD hears of
// it at once rather than at the next periodic heartbeat; and when it lost
// the leadership.
func (p *peer) noticeLeadership() {
	leader := p.isLeader() && p.initialized()
	if leader && !p.noticedLeader {
		// A new leader counts its peers' silence from now, as TiKV does.
		for _, peer := range p.region.GetPeers() {
			p.heardAt[peer.GetId()] = p.ticks
		}
	}
	notify := leader != p.noticedLeader || (leader && p.noticedRegion != p.region)
	if leader && (notify || p.noticedPending > 0) {
		// Only a leader that has pending peers pays for counting them.
		pending := len(p.regionInfo().PendingPeers)
		notify = notify || pending < p.noticedPending
		p.noticedPending = pending
	}
	if notify && p.store.cfg.OnLeaderChange != nil {
		p.store.cfg.OnLeaderChange(p.regionID(), leader)
	}
	p.noticedLeader, p.noticedRegion = leader, p.region
}
