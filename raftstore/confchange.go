package raftstore

import (
	"fmt"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/tinykv/tinykv/engine"
)

// Membership changes: ChangePeer (one peer at a time: add a voter, add a
// learner, promote a learner, remove a peer) is proposed as a raft
// ConfChange whose context is the command, and takes effect when applied:
// the applier bumps conf_ver and writes the new region, then the peer
// applies the change to raft. A store that gets a message for a region it
// has no peer of creates an uninitialized peer, which the leader fills with
// a snapshot; a peer that applies its own removal destroys itself and
// leaves a Tombstone region state, against which late messages are judged.

// confChangeResult is a membership change the applier applied.
type confChangeResult struct {
	change eraftpb.ConfChange
	region *metapb.Region
}

// checkChangePeer refuses, at propose time, changes TiKV refuses: removing
// the leader, adding a voter that is one, removing a peer that is not
// there, a peer on a store that has one already.
func checkChangePeer(region *metapb.Region, leaderID uint64, cp *raft_cmdpb.ChangePeerRequest) *errorpb.Error {
	target := cp.GetPeer()
	existing := peerByID(region, target.GetId())
	switch cp.GetChangeType() {
	case eraftpb.ConfChangeType_RemoveNode:
		if existing == nil {
			return &errorpb.Error{Message: fmt.Sprintf("raftstore: remove peer %d: not a peer of region %d", target.GetId(), region.GetId())}
		}
		if target.GetId() == leaderID {
			return &errorpb.Error{Message: fmt.Sprintf("raftstore: remove peer %d: it is the leader; transfer leadership first", target.GetId())}
		}
	case eraftpb.ConfChangeType_AddNode, eraftpb.ConfChangeType_AddLearnerNode:
		if existing != nil && (existing.GetRole() != metapb.PeerRole_Learner || cp.GetChangeType() == eraftpb.ConfChangeType_AddLearnerNode) {
			return &errorpb.Error{Message: fmt.Sprintf("raftstore: add peer %d: already a %s of region %d", target.GetId(), existing.GetRole(), region.GetId())}
		}
		for _, p := range region.GetPeers() {
			if p.GetStoreId() == target.GetStoreId() && p.GetId() != target.GetId() {
				return &errorpb.Error{Message: fmt.Sprintf("raftstore: add peer %d: store %d has peer %d of region %d already",
					target.GetId(), target.GetStoreId(), p.GetId(), region.GetId())}
			}
		}
	default:
		return &errorpb.Error{Message: fmt.Sprintf("raftstore: unknown conf change type %d", cp.GetChangeType())}
	}
	return nil
}

// changedRegion returns the region after a ChangePeer, conf_ver bumped.
func changedRegion(region *metapb.Region, cp *raft_cmdpb.ChangePeerRequest) (*metapb.Region, *errorpb.Error) {
	if err := checkChangePeer(region, 0, cp); err != nil {
		return nil, err
	}
	next := cloneRegion(region)
	target := cp.GetPeer()
	switch cp.GetChangeType() {
	case eraftpb.ConfChangeType_RemoveNode:
		kept := next.Peers[:0]
		for _, p := range next.Peers {
			if p.GetId() != target.GetId() {
				kept = append(kept, p)
			}
		}
		next.Peers = kept
	case eraftpb.ConfChangeType_AddNode:
		if p := peerByID(next, target.GetId()); p != nil {
			p.Role = metapb.PeerRole_Voter
		} else {
			next.Peers = append(next.Peers, &metapb.Peer{Id: target.GetId(), StoreId: target.GetStoreId()})
		}
	case eraftpb.ConfChangeType_AddLearnerNode:
		next.Peers = append(next.Peers, &metapb.Peer{Id: target.GetId(), StoreId: target.GetStoreId(), Role: metapb.PeerRole_Learner})
	}
	next.RegionEpoch.ConfVer++
	return next, nil
}

// applyConfChange applies a ChangePeer entry: the region changes (and is
// written), and the change goes back to the peer for raft. A change that
// fails its checks changes nothing.
func (a *applier) applyConfChange(e *eraftpb.Entry, wb *engine.WriteBatch) *raft_cmdpb.RaftCmdResponse {
	var cc eraftpb.ConfChange
	if err := cc.Unmarshal(e.Data); err != nil {
		return errorResponse(&errorpb.Error{Message: fmt.Sprintf("raftstore: entry %d is not a conf change: %v", e.Index, err)}, e.Term)
	}
	req := &raft_cmdpb.RaftCmdRequest{}
	if err := req.Unmarshal(cc.Context); err != nil {
		return errorResponse(&errorpb.Error{Message: fmt.Sprintf("raftstore: conf change %d has no command: %v", e.Index, err)}, e.Term)
	}
	if err := checkRegion(req.GetHeader(), a.region, true); err != nil {
		return errorResponse(err, e.Term)
	}
	cp := req.GetAdminRequest().GetChangePeer()
	region, rerr := changedRegion(a.region, cp)
	if rerr != nil {
		return errorResponse(rerr, e.Term)
	}
	state := raft_serverpb.PeerState_Normal
	if cp.GetChangeType() == eraftpb.ConfChangeType_RemoveNode && cp.GetPeer().GetId() == a.peerID {
		state = raft_serverpb.PeerState_Tombstone
	}
	if err := putProto(wb, engine.CfRaft, regionStateKey(a.regionID), &raft_serverpb.RegionLocalState{State: state, Region: region}); err != nil {
		return errorResponse(&errorpb.Error{Message: err.Error()}, e.Term)
	}
	a.region = region
	a.result.confChanges = append(a.result.confChanges, confChangeResult{change: cc, region: region})
	return &raft_cmdpb.RaftCmdResponse{
		Header: &raft_cmdpb.RaftResponseHeader{CurrentTerm: e.Term},
		AdminResponse: &raft_cmdpb.AdminResponse{CmdType: raft_cmdpb.AdminCmdType_ChangePeer,
			ChangePeer: &raft_cmdpb.ChangePeerResponse{Region: cloneRegion(region)}},
	}
}

// proposeChangePeer proposes a ChangePeer command as a raft conf change.
func (p *peer) proposeChangePeer(cmd *raft_cmdpb.RaftCmdRequest, data []byte) *errorpb.Error {
	if err := checkRegion(cmd.GetHeader(), p.region, true); err != nil {
		return err
	}
	cp := cmd.GetAdminRequest().GetChangePeer()
	if err := checkChangePeer(p.region, p.meta.GetId(), cp); err != nil {
		return err
	}
	cc := &eraftpb.ConfChange{ChangeType: cp.GetChangeType(), NodeId: cp.GetPeer().GetId(), Context: data}
	if err := p.rn.ProposeConfChange(cc); err != nil {
		return errNotLeader(p.regionID(), p.leader())
	}
	return nil
}

// onConfChanges applies to raft the changes the applier applied; a peer
// that was removed destroys itself.
func (p *peer) onConfChanges(changes []confChangeResult) {
	for _, ch := range changes {
		cc := ch.change
		if _, err := p.rn.ApplyConfChange(&cc); err != nil {
			p.log.Warn("raft refused an applied conf change", "change", cc.String(), "err", err)
		}
		p.region = ch.region
		// A snapshot built before the change would not list a new peer.
		p.ps.snap = nil
		p.log.Info("conf change applied", "change-type", cc.ChangeType, "peer-id", cc.NodeId,
			"conf-ver", ch.region.GetRegionEpoch().GetConfVer())
		if cc.ChangeType == eraftpb.ConfChangeType_RemoveNode && cc.NodeId == p.meta.GetId() {
			p.store.destroyPeer(p)
			return
		}
	}
}

// initialized reports whether the peer holds its region's data (it was
// bootstrapped, split off or filled by a snapshot).
func (p *peer) initialized() bool { return len(p.region.GetPeers()) > 0 }

func errRegionNotInitialized(regionID uint64) *errorpb.Error {
	return &errorpb.Error{
		Message:              fmt.Sprintf("region %d is not initialized", regionID),
		RegionNotInitialized: &errorpb.RegionNotInitialized{RegionId: regionID},
	}
}

// maybeCreatePeer creates an uninitialized peer for a message to a region
// this store has no peer of, when the message may be a new peer's first
// (TiKV's maybe_create_peer) and no Tombstone says it is stale. It reports
// whether the message was routed.
func (s *Store) maybeCreatePeer(msg *raft_serverpb.RaftMessage) bool {
	if !isInitialMsg(msg.GetMessage()) {
		return false
	}
	regionID := msg.GetRegionId()
	state := &raft_serverpb.RegionLocalState{}
	found, err := loadProto(s.cfg.KV, engine.CfRaft, regionStateKey(regionID), state)
	if err != nil {
		s.log.Warn("read a region state", "region-id", regionID, "err", err)
		return false
	}
	if found && state.GetState() != raft_serverpb.PeerState_Tombstone {
		return false
	}
	if found && !isEpochStale(state.GetRegion().GetRegionEpoch(), msg.GetRegionEpoch()) {
		s.log.Debug("drop a message to a destroyed peer", "region-id", regionID, "to-peer", msg.GetToPeer())
		return false
	}
	if other := s.overlap(&metapb.Region{Id: regionID, StartKey: msg.GetStartKey(), EndKey: msg.GetEndKey()}); other != nil {
		// Most likely a split this store has not applied yet: it will
		// create the peer then, and hand it the votes kept meanwhile.
		s.log.Debug("no peer for a message overlapping a live region", "region-id", regionID, "overlaps", other.GetId())
		if isVoteMsg(msg.GetMessage()) && other.GetRegionEpoch().GetVersion() < msg.GetRegionEpoch().GetVersion() {
			s.keepPendingVote(msg)
		}
		return false
	}
	region := &metapb.Region{Id: regionID, RegionEpoch: &metapb.RegionEpoch{}}
	meta := proto.Clone(msg.GetToPeer()).(*metapb.Peer)
	p, err := newUninitializedPeer(s, region, meta)
	if err != nil {
		s.log.Warn("create a peer", "region-id", regionID, "err", err)
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.peers[regionID] != nil {
		return false
	}
	s.addPeerLocked(p, &applier{store: s, regionID: regionID, peerID: meta.GetId(), region: region, state: emptyApplyState()})
	s.log.Info("created an uninitialized peer", "region-id", regionID, "peer-id", meta.GetId(), "from-peer", msg.GetFromPeer())
	return s.peers[regionID].send(peerMsg{kind: msgRaft, raft: msg})
}

func emptyApplyState() *raft_serverpb.RaftApplyState {
	return &raft_serverpb.RaftApplyState{TruncatedState: &raft_serverpb.RaftTruncatedState{}}
}

// checkStale judges a message by the epochs and peer ids it carries
// (TiKV's check_msg) and reports whether it was consumed here:
//   - a GC message (is_tombstone) from a peer of a newer epoch destroys
//     this peer;
//   - a vote from a store the region no longer has, at an older epoch, is
//     answered with a GC message, so that a removed peer that missed its
//     removal destroys itself; other messages from such a store are
//     dropped;
//   - a message to an older peer id of this store is dropped; one to a
//     newer id means this peer was removed and a new one added here, so
//     this one destroys itself (the sender's next message creates the
//     new one).
func (p *peer) checkStale(m *raft_serverpb.RaftMessage) bool {
	epoch := p.region.GetRegionEpoch()
	if m.GetIsTombstone() {
		if m.GetToPeer().GetId() == p.meta.GetId() && isEpochStale(epoch, m.GetRegionEpoch()) {
			p.startDestroy("a GC message from a newer epoch", m.GetFromPeer())
		}
		return true
	}
	if p.initialized() && isEpochStale(m.GetRegionEpoch(), epoch) && peerOnStore(p.region, m.GetFromPeer().GetStoreId()) == nil {
		if isVoteMsg(m.GetMessage()) {
			p.sendGC(m)
		}
		return true
	}
	switch to := m.GetToPeer().GetId(); {
	case to < p.meta.GetId():
		p.log.Debug("drop a message to an older peer", "to-peer", m.GetToPeer())
		return true
	case to > p.meta.GetId():
		p.startDestroy("a message to a newer peer of this store", m.GetToPeer())
		return true
	}
	return false
}

func isVoteMsg(m *eraftpb.Message) bool {
	t := m.GetMsgType()
	return t == eraftpb.MessageType_MsgRequestVote || t == eraftpb.MessageType_MsgRequestPreVote
}

func peerOnStore(region *metapb.Region, storeID uint64) *metapb.Peer {
	for _, p := range region.GetPeers() {
		if p.GetStoreId() == storeID {
			return p
		}
	}
	return nil
}

// sendGC tells the sender of a stale message that it is not in the region
// any more.
func (p *peer) sendGC(m *raft_serverpb.RaftMessage) {
	gc := &raft_serverpb.RaftMessage{
		RegionId:    p.regionID(),
		FromPeer:    p.meta,
		ToPeer:      m.GetFromPeer(),
		RegionEpoch: p.region.GetRegionEpoch(),
		IsTombstone: true,
	}
	if err := p.store.cfg.Transport.Send(gc); err != nil {
		p.log.Debug("send a GC message", "to-peer", m.GetFromPeer(), "err", err)
	}
}

// startDestroy begins destroying a stale peer: requests held are answered
// RegionNotFound and the applier is asked to stop after what it was sent;
// its report finishes the destruction (destroyPeer).
func (p *peer) startDestroy(reason string, witness *metapb.Peer) {
	if p.destroying {
		return
	}
	p.log.Info("peer is stale, destroying it", "reason", reason, "witness", witness)
	p.destroying = true
	p.failHeld(errRegionNotFound(p.regionID()))
	if !p.store.sendApply(p.regionID(), applyTask{destroy: true}) {
		p.log.Info("stale peer kept: the store is stopping")
	}
}

// destroyPeer removes a peer that applied its own removal or was found
// stale: its mailboxes close, its data (if it has any) and raft state are
// deleted, and a Tombstone region state stays, against which late messages
// are judged. The applier has stopped writing by now.
func (s *Store) destroyPeer(p *peer) {
	regionID := p.regionID()
	p.destroyed = true
	s.mu.Lock()
	pmb, amb := s.peers[regionID], s.appliers[regionID]
	delete(s.peers, regionID)
	delete(s.appliers, regionID)
	s.ranges.remove(regionID)
	s.mu.Unlock()
	for _, m := range pmb.close() {
		answerMsg(m, errRegionNotFound(regionID))
	}
	for _, task := range amb.close() {
		for _, pr := range task.proposals {
			pr.done(errorResponse(errRegionNotFound(regionID), 0))
		}
	}
	p.failHeld(errRegionNotFound(regionID))
	region := p.region
	if p.initialized() {
		if err := s.cfg.KV.DeleteRangeAllCFs(region.GetStartKey(), region.GetEndKey()); err != nil {
			s.fatal("delete a destroyed peer's data", err, regionID)
		}
	}
	kvWB := engine.NewWriteBatch()
	kvWB.Delete(engine.CfRaft, applyStateKey(regionID))
	tombstone := &raft_serverpb.RegionLocalState{State: raft_serverpb.PeerState_Tombstone, Region: region}
	if err := putProto(kvWB, engine.CfRaft, regionStateKey(regionID), tombstone); err != nil {
		s.fatal("encode a tombstone", err, regionID)
	}
	raftWB := engine.NewWriteBatch()
	raftWB.Delete(engine.CfDefault, raftStateKey(regionID))
	if err := writeBatch(s.cfg.KV, kvWB); err != nil {
		s.fatal("delete a destroyed peer's apply state", err, regionID)
	}
	if err := writeBatch(s.cfg.Raft, raftWB); err != nil {
		s.fatal("delete a destroyed peer's raft state", err, regionID)
	}
	s.collectLog(regionID, 0, p.ps.lastIndex()+1)
	s.log.Info("peer destroyed", "region-id", regionID, "peer-id", p.meta.GetId())
}
