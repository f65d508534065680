package raftstore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/tinykv/tinykv/engine"
)

// Split. A leader whose region took enough writes since its last check
// measures the region in the background; past RegionMaxSize or
// RegionMaxKeys it picks split keys every RegionSplitSize / RegionSplitKeys,
// asks PD for the new ids and proposes a BatchSplit. Every replica applies
// it: the region keeps the rightmost range (TiKV's right_derive), new
// regions take the ranges to its left, all at version + the number of new
// regions, with peers on the same stores; the new regions' states are
// written in the same batch, and each store starts their peers at once,
// initialized at (5, 5) — no snapshot and no message needed. The parent's
// leader makes them campaign.
//
// The race with snapshots (a new region's leader may reach a store before
// that store applies the split): no peer is created from a message, and no
// snapshot is accepted, whose range overlaps a live region here
// (regionRanges); a new region whose state exists already at apply (it was
// filled by a snapshot) is left as it is.

// PDClient is what the store asks of PD.
type PDClient interface {
	// AskBatchSplit allocates a new region id and peer ids (one per peer
	// of region) for each of count new regions.
	AskBatchSplit(ctx context.Context, region *metapb.Region, count int) ([]*pdpb.SplitID, error)
}

// batchSplitLimit bounds the split keys one check proposes (TiKV's
// batch-split-limit).
const batchSplitLimit = 10

// splitResult is a split the applier applied.
type splitResult struct {
	derived *metapb.Region
	// regions are the new regions whose states the split wrote.
	regions []*metapb.Region
}

// splitRegions computes the regions a BatchSplit makes of region, the
// derived one (keeping region's id) last; it refuses keys out of order or
// out of the region and id counts that do not match the peers.
func splitRegions(region *metapb.Region, req *raft_cmdpb.BatchSplitRequest) (derived *metapb.Region, created []*metapb.Region, err *errorpb.Error) {
	splits := req.GetRequests()
	if len(splits) == 0 {
		return nil, nil, &errorpb.Error{Message: "raftstore: batch split without split keys"}
	}
	prev := region.GetStartKey()
	for _, sp := range splits {
		key := sp.GetSplitKey()
		if len(key) == 0 || bytes.Compare(key, prev) <= 0 || !keyInRegion(key, region) {
			return nil, nil, &errorpb.Error{Message: fmt.Sprintf("raftstore: split key %q is not after %q within region %d",
				key, prev, region.GetId()), KeyNotInRegion: keyNotInRegion(key, region)}
		}
		if len(sp.GetNewPeerIds()) != len(region.GetPeers()) {
			return nil, nil, &errorpb.Error{Message: fmt.Sprintf("raftstore: split of region %d: %d new peer ids for %d peers",
				region.GetId(), len(sp.GetNewPeerIds()), len(region.GetPeers()))}
		}
		prev = key
	}
	derived = cloneRegion(region)
	derived.RegionEpoch.Version += uint64(len(splits))
	bounds := make([][]byte, 0, len(splits)+2)
	bounds = append(bounds, region.GetStartKey())
	for _, sp := range splits {
		bounds = append(bounds, sp.GetSplitKey())
	}
	bounds = append(bounds, region.GetEndKey())
	// With right_derive the new regions take the first ranges; otherwise
	// the derived region keeps the first and the new ones the rest.
	first := 0
	if !req.GetRightDerive() {
		first = 1
	}
	for i, sp := range splits {
		r := &metapb.Region{
			Id:          sp.GetNewRegionId(),
			StartKey:    bounds[first+i],
			EndKey:      bounds[first+i+1],
			RegionEpoch: proto.Clone(derived.GetRegionEpoch()).(*metapb.RegionEpoch),
		}
		for j, p := range derived.GetPeers() {
			r.Peers = append(r.Peers, &metapb.Peer{Id: sp.GetNewPeerIds()[j], StoreId: p.GetStoreId(), Role: p.GetRole()})
		}
		created = append(created, r)
	}
	if req.GetRightDerive() {
		derived.StartKey = bounds[len(bounds)-2]
	} else {
		derived.EndKey = bounds[1]
	}
	return derived, created, nil
}

func keyNotInRegion(key []byte, region *metapb.Region) *errorpb.KeyNotInRegion {
	if keyInRegion(key, region) {
		return nil
	}
	return errKeyNotInRegion(key, region).GetKeyNotInRegion()
}

// applyBatchSplit applies a BatchSplit: the region shrinks, and the new
// regions' states are staged beside it (each at (5, 5)) unless this store
// has a state for one already.
func (a *applier) applyBatchSplit(header *raft_cmdpb.RaftRequestHeader, req *raft_cmdpb.BatchSplitRequest,
	wb *engine.WriteBatch, term uint64) *raft_cmdpb.RaftCmdResponse {
	if err := checkRegion(header, a.region, true); err != nil {
		return errorResponse(err, term)
	}
	s := a.store
	derived, created, rerr := splitRegions(a.region, req)
	if rerr != nil {
		return errorResponse(rerr, term)
	}
	result := &splitResult{derived: derived}
	for _, r := range created {
		exists, err := loadProto(s.cfg.KV, engine.CfRaft, regionStateKey(r.GetId()), &raft_serverpb.RegionLocalState{})
		if err != nil {
			s.fatal("read a new region's state", err, r.GetId())
		}
		if exists {
			continue
		}
		if err := putProto(wb, engine.CfRaft, regionStateKey(r.GetId()), &raft_serverpb.RegionLocalState{Region: r}); err != nil {
			s.fatal("encode a region state", err, r.GetId())
		}
		if err := putProto(wb, engine.CfRaft, applyStateKey(r.GetId()), initApplyState()); err != nil {
			s.fatal("encode an apply state", err, r.GetId())
		}
		result.regions = append(result.regions, r)
	}
	if err := putProto(wb, engine.CfRaft, regionStateKey(a.regionID), &raft_serverpb.RegionLocalState{Region: derived}); err != nil {
		s.fatal("encode a region state", err, a.regionID)
	}
	a.region = derived
	a.result.split = result
	regions := append([]*metapb.Region{}, created...)
	if req.GetRightDerive() {
		regions = append(regions, derived)
	} else {
		regions = append([]*metapb.Region{derived}, regions...)
	}
	resp := &raft_cmdpb.AdminResponse{CmdType: raft_cmdpb.AdminCmdType_BatchSplit, Splits: &raft_cmdpb.BatchSplitResponse{}}
	for _, r := range regions {
		resp.Splits.Regions = append(resp.Splits.Regions, cloneRegion(r))
	}
	return &raft_cmdpb.RaftCmdResponse{Header: &raft_cmdpb.RaftResponseHeader{CurrentTerm: term}, AdminResponse: resp}
}

func initApplyState() *raft_serverpb.RaftApplyState {
	return &raft_serverpb.RaftApplyState{
		AppliedIndex:   initLogIndex,
		TruncatedState: &raft_serverpb.RaftTruncatedState{Index: initLogIndex, Term: initLogTerm},
	}
}

// onSplit takes the applied split on the peer: its region shrinks and the
// new regions' peers start here — routed in the same step, so that no
// message finds their ranges unclaimed — campaigning at once if this peer
// leads.
func (p *peer) onSplit(res *splitResult) {
	p.region = res.derived
	p.ps.snap = nil
	p.sizeDiffHint = p.splitCheckDiff()
	s := p.store
	type started struct {
		p *peer
		a *applier
	}
	var news []started
	for _, r := range res.regions {
		np, a, err := s.newSplitPeer(r)
		if err != nil {
			s.fatal("start a split region's peer", err, r.GetId())
		}
		news = append(news, started{np, a})
	}
	s.mu.Lock()
	s.ranges.set(res.derived)
	var routed []uint64
	for _, n := range news {
		if s.stopped || s.peers[n.p.regionID()] != nil {
			s.log.Warn("split region is routed already, not started again", "region-id", n.p.regionID())
			continue
		}
		s.addPeerLocked(n.p, n.a)
		routed = append(routed, n.p.regionID())
	}
	s.mu.Unlock()
	for _, id := range routed {
		for _, vote := range s.takePendingVotes(id) {
			s.sendPeer(id, peerMsg{kind: msgRaft, raft: vote})
		}
	}
	if p.isLeader() {
		for _, id := range routed {
			s.sendPeer(id, peerMsg{kind: msgCampaign})
		}
	}
	p.log.Info("region split", "region", res.derived, "new-regions", len(routed))
}

// Bounds of the votes kept for regions a split here has not created yet.
const (
	pendingVotesPerRegion = 2
	pendingVoteRegions    = 1024
)

// keepPendingVote keeps a vote for a region that a split this store has
// not applied yet will create (TiKV's pending votes): the new region's
// leader campaigns as soon as it applied the split, usually before the
// followers did, and without the vote replayed they would wait an election
// timeout to elect anyone.
func (s *Store) keepPendingVote(msg *raft_serverpb.RaftMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	votes, ok := s.pendingVotes[msg.GetRegionId()]
	if !ok && len(s.pendingVotes) >= pendingVoteRegions {
		return
	}
	if len(votes) >= pendingVotesPerRegion {
		votes = votes[1:]
	}
	s.pendingVotes[msg.GetRegionId()] = append(votes, msg)
}

// takePendingVotes returns and forgets the votes kept for a region.
func (s *Store) takePendingVotes(regionID uint64) []*raft_serverpb.RaftMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	votes := s.pendingVotes[regionID]
	delete(s.pendingVotes, regionID)
	return votes
}

// newSplitPeer makes this store's peer and applier of a region a split
// created, not yet routed.
func (s *Store) newSplitPeer(region *metapb.Region) (*peer, *applier, error) {
	meta := peerOnStore(region, s.cfg.StoreID)
	if meta == nil {
		return nil, nil, fmt.Errorf("raftstore: split region %d has no peer on store %d", region.GetId(), s.cfg.StoreID)
	}
	if err := ensureSplitRaftState(s.cfg.Raft, region.GetId()); err != nil {
		return nil, nil, err
	}
	ps, err := loadPeerStorage(s.cfg.Raft, region, initApplyState())
	if err != nil {
		return nil, nil, err
	}
	np, err := startPeerWith(s, region, meta, ps, initLogIndex, true)
	if err != nil {
		return nil, nil, err
	}
	np.sizeDiffHint = np.splitCheckDiff()
	a := &applier{store: s, regionID: region.GetId(), peerID: meta.GetId(), region: region, state: initApplyState(), appliedTerm: initLogTerm}
	return np, a, nil
}

// ensureSplitRaftState writes the raft state of a split region's peer: an
// empty log at (5, 5). A state left by a vote this store cast for the
// region keeps its term and vote (so no vote is cast twice in a term).
func ensureSplitRaftState(raftDB *engine.Engine, regionID uint64) error {
	state := &raft_serverpb.RaftLocalState{}
	if _, err := loadProto(raftDB, engine.CfDefault, raftStateKey(regionID), state); err != nil {
		return err
	}
	if state.GetLastIndex() >= initLogIndex {
		return nil
	}
	hs := state.GetHardState()
	next := &raft_serverpb.RaftLocalState{
		HardState: &eraftpb.HardState{Term: max(hs.GetTerm(), initLogTerm), Vote: hs.GetVote(), Commit: max(hs.GetCommit(), initLogIndex)},
		LastIndex: initLogIndex,
	}
	wb := engine.NewWriteBatch()
	if err := putProto(wb, engine.CfDefault, raftStateKey(regionID), next); err != nil {
		return err
	}
	return raftDB.Write(wb)
}

// splitCheckDiff is how many bytes written since the last check make the
// leader check its size again (TiKV's region-split-check-diff, a
// sixteenth of the split size).
func (p *peer) splitCheckDiff() uint64 { return max(p.store.cfg.RegionSplitSize/16, 1) }

// maybeCheckSplit starts a split check when this peer leads, PD can hand
// out ids, no check is running and enough was written since the last.
func (p *peer) maybeCheckSplit() {
	if p.store.cfg.PD == nil || p.splitChecking || !p.isLeader() || p.sizeDiffHint < p.splitCheckDiff() {
		return
	}
	p.splitChecking = true
	p.sizeDiffHint = 0
	p.store.checkSplit(cloneRegion(p.region), proto.Clone(p.meta).(*metapb.Peer))
}

// checkSplit measures a region in the background and proposes the split it
// calls for; the peer hears back when it is done.
func (s *Store) checkSplit(region *metapb.Region, self *metapb.Peer) {
	s.background.Go(func() {
		defer s.sendPeer(region.GetId(), peerMsg{kind: msgSplitCheckDone})
		keys := s.splitKeys(region)
		if len(keys) == 0 {
			return
		}
		if _, err := s.split(s.ctx, region, self, keys); err != nil {
			s.log.Info("split not done", "region-id", region.GetId(), "err", err)
		}
	})
}

// SplitRegion splits a region at the given keys (in order, within the
// region) and returns the regions it became, as the SplitRegion RPC and
// PD's split operators ask. The header addresses the region's leader at
// its current epoch; region problems come back as *storage.RegionError.
func (s *Store) SplitRegion(ctx context.Context, header *raft_cmdpb.RaftRequestHeader, keys [][]byte) ([]*metapb.Region, error) {
	st, ok := s.Status(ctx, header.GetRegionId())
	if !ok {
		return nil, regionErr(s.missingRegion(header.GetRegionId()))
	}
	if header.GetRegionEpoch() != nil {
		if err := checkRegion(header, st.Region, false); err != nil {
			s.addSibling(err, st.Region)
			return nil, regionErr(err)
		}
	}
	return s.split(ctx, st.Region, header.GetPeer(), keys)
}

func (s *Store) split(ctx context.Context, region *metapb.Region, self *metapb.Peer, keys [][]byte) ([]*metapb.Region, error) {
	if s.cfg.PD == nil {
		return nil, fmt.Errorf("raftstore: split region %d: %w", region.GetId(), ErrNoPD)
	}
	ids, err := s.cfg.PD.AskBatchSplit(ctx, region, len(keys))
	if err != nil {
		return nil, fmt.Errorf("raftstore: ask PD to split region %d: %w", region.GetId(), err)
	}
	if len(ids) != len(keys) {
		return nil, fmt.Errorf("raftstore: PD gave %d ids for %d split keys", len(ids), len(keys))
	}
	req := &raft_cmdpb.BatchSplitRequest{RightDerive: true}
	for i, key := range keys {
		req.Requests = append(req.Requests, &raft_cmdpb.SplitRequest{
			SplitKey: key, NewRegionId: ids[i].GetNewRegionId(), NewPeerIds: ids[i].GetNewPeerIds(),
		})
	}
	resp, err := s.Propose(ctx, &raft_cmdpb.RaftCmdRequest{
		Header:       &raft_cmdpb.RaftRequestHeader{RegionId: region.GetId(), Peer: self, RegionEpoch: region.GetRegionEpoch()},
		AdminRequest: &raft_cmdpb.AdminRequest{CmdType: raft_cmdpb.AdminCmdType_BatchSplit, Splits: req},
	})
	if err != nil {
		return nil, err
	}
	return resp.GetAdminResponse().GetSplits().GetRegions(), nil
}

// splitKeys measures a region and returns where to split it: nothing
// while it is within RegionMaxSize and RegionMaxKeys, otherwise a key
// every RegionSplitSize bytes or RegionSplitKeys keys (TiKV's size and
// keys checkers), at most batchSplitLimit of them. Keys are walked in
// order across the CFs and mapped through Config.SplitKey.
func (s *Store) splitKeys(region *metapb.Region) [][]byte {
	snap := s.cfg.KV.Snapshot()
	defer snap.Close()
	walk := newMergedKeys(snap, region.GetStartKey(), region.GetEndKey())
	defer walk.close()
	var keys [][]byte
	var totalSize, totalKeys, size, count uint64
	for ; walk.valid(); walk.next() {
		n := walk.size()
		totalSize += n
		totalKeys++
		size += n
		count++
		if (size <= s.cfg.RegionSplitSize && count <= s.cfg.RegionSplitKeys) || len(keys) >= batchSplitLimit {
			continue
		}
		key := bytes.Clone(s.cfg.SplitKey(walk.key()))
		if bytes.Compare(key, region.GetStartKey()) <= 0 || !keyInRegion(key, region) ||
			(len(keys) > 0 && bytes.Compare(key, keys[len(keys)-1]) <= 0) {
			continue
		}
		keys = append(keys, key)
		size, count = 0, 0
	}
	if totalSize <= s.cfg.RegionMaxSize && totalKeys <= s.cfg.RegionMaxKeys {
		return nil
	}
	return keys
}

// mergedKeys walks the keys of a range over every data CF in key order
// (ties in CF order), keys only.
type mergedKeys struct {
	its []*engine.Iterator
	cur int
}

func newMergedKeys(snap *engine.Snapshot, start, end []byte) *mergedKeys {
	m := &mergedKeys{}
	for _, cf := range engine.AllCFs() {
		it := snap.NewIterator(cf, engine.IterOptions{LowerBound: start, UpperBound: end, KeyOnly: true})
		it.Rewind()
		m.its = append(m.its, it)
	}
	m.pick()
	return m
}

func (m *mergedKeys) pick() {
	m.cur = -1
	for i, it := range m.its {
		if it.Valid() && (m.cur < 0 || bytes.Compare(it.Key(), m.its[m.cur].Key()) < 0) {
			m.cur = i
		}
	}
}

func (m *mergedKeys) valid() bool { return m.cur >= 0 }
func (m *mergedKeys) key() []byte { return m.its[m.cur].Key() }
func (m *mergedKeys) size() uint64 {
	it := m.its[m.cur]
	return uint64(len(it.Key())) + uint64(it.ValueSize())
}
func (m *mergedKeys) next() {
	m.its[m.cur].Next()
	m.pick()
}
func (m *mergedKeys) close() {
	for _, it := range m.its {
		it.Close()
	}
}
