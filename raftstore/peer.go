package raftstore

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/raft"
)

type peerMsgKind uint8

const (
	// msgRaft carries a RaftMessage from another store.
	msgRaft peerMsgKind = iota
	// msgTick moves the peer's logical clock.
	msgTick
	// msgPropose carries a write command.
	msgPropose
	// msgRead asks for a consistent snapshot of the region.
	msgRead
	// msgApplied reports the applier's progress.
	msgApplied
	// msgInspect runs a function on the peer's goroutine.
	msgInspect
	// msgSnapshotGenerated carries a snapshot built in the background (nil
	// when building failed).
	msgSnapshotGenerated
	// msgCampaign makes a split region's new peer campaign at once.
	msgCampaign
	// msgSplitCheckDone ends a split check.
	msgSplitCheckDone
)

// peerMsg is a message to a peer FSM; kind says which fields are set.
type peerMsg struct {
	kind     peerMsgKind
	raft     *raft_serverpb.RaftMessage
	cmd      *raft_cmdpb.RaftCmdRequest
	done     func(*raft_cmdpb.RaftCmdResponse)
	read     *readRequest
	applied  applyResult
	inspect  func(*peer)
	snapshot *eraftpb.Snapshot
}

// readRequest asks for a snapshot that sees every write acknowledged before
// it was sent.
type readRequest struct {
	header *raft_cmdpb.RaftRequestHeader
	// done is called once, with a snapshot or a region error.
	done func(*RegionSnapshot, *errorpb.Error)
}

// pendingRead is one ReadIndex round and the reads it serves.
type pendingRead struct {
	// ctx identifies the round in raft's ReadStates.
	ctx []byte
	// index is the read index once raft confirmed it, 0 before.
	index uint64
	// askedAt is the peer's tick count when the round started.
	askedAt int
	reads   []*readRequest
}

// peer is one region's replica on this store: the raft node, its log, the
// proposals it made as leader and the reads it serves. It is driven by the
// peer batch system, one poller at a time.
type peer struct {
	store *Store
	log   *slog.Logger
	meta  *metapb.Peer
	// region is the region as of the last applied result the peer saw. A
	// region value is never modified once shared, only replaced.
	region *metapb.Region
	rn     *raft.RawNode
	ps     *peerStorage
	// proposals are this peer's proposals not yet handed to the applier,
	// by ascending index.
	proposals []proposal
	// newReads arrived in the current round; they share one ReadIndex.
	newReads []*readRequest
	// pendingReads are ReadIndex rounds in the order they were asked.
	pendingReads []*pendingRead
	// readSeq numbers the ReadIndex rounds.
	readSeq uint64
	// applied is the applier's last reported progress.
	applied applyResult
	// ticks counts msgTick, the peer's logical clock.
	ticks int
	// snapReady is a Ready holding a received snapshot, set aside while the
	// applier writes the snapshot's data; snapApplied tells that it did.
	// Until then the peer takes no other Ready.
	snapReady   *raft.Ready
	snapApplied bool
	// peers caches the peers messages came from, so that an uninitialized
	// peer (whose region lists none) can answer them.
	peers map[uint64]*metapb.Peer
	// destroying is set once the peer learned it is stale and asked its
	// applier to stop; it answers requests with RegionNotFound and takes
	// no Ready until the applier reports and destroyed is set.
	destroying bool
	// destroyed is set once the peer's data and state are deleted; it does
	// nothing more.
	destroyed bool
	// sizeDiffHint counts the bytes written since the last split check;
	// splitChecking is set while one runs.
	sizeDiffHint  uint64
	splitChecking bool
	// pendingSplit is the index of this leader's last split proposal: no
	// lease read is served until it is applied, since the new regions may
	// elect leaders that take writes in the ranges split off.
	pendingSplit uint64
	// noticedLeader, noticedRegion and noticedPending are the leadership,
	// region and count of pending peers Config.OnLeaderChange last heard
	// of (see noticeLeadership).
	noticedLeader  bool
	noticedRegion  *metapb.Region
	noticedPending int
	// heardAt is the tick count at which each peer was last heard from (or
	// this peer became the leader), for the down peers PD hears of.
	heardAt map[uint64]int
}

func newPeer(s *Store, region *metapb.Region, meta *metapb.Peer, apply *raft_serverpb.RaftApplyState) (*peer, error) {
	ps, err := loadPeerStorage(s.cfg.Raft, region, apply)
	if err != nil {
		return nil, err
	}
	return startPeer(s, region, meta, ps, apply.GetAppliedIndex())
}

func startPeer(s *Store, region *metapb.Region, meta *metapb.Peer, ps *peerStorage, applied uint64) (*peer, error) {
	return startPeerWith(s, region, meta, ps, applied, false)
}

// newUninitializedPeer creates a peer for a region this store learns of by
// a message; it waits for the leader's snapshot.
func newUninitializedPeer(s *Store, region *metapb.Region, meta *metapb.Peer) (*peer, error) {
	return startPeer(s, region, meta, newEmptyPeerStorage(s.cfg.Raft, region.GetId()), 0)
}

// startPeerWith starts a peer over its storage; fresh marks the peer of a
// region a split just created (raft.Config.FreshGroup).
func startPeerWith(s *Store, region *metapb.Region, meta *metapb.Peer, ps *peerStorage, applied uint64, fresh bool) (*peer, error) {
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              meta.GetId(),
		ElectionTick:    s.cfg.ElectionTicks,
		HeartbeatTick:   s.cfg.HeartbeatTicks,
		Storage:         ps,
		Applied:         applied,
		MaxSizePerMsg:   s.cfg.MaxSizePerMsg,
		MaxInflightMsgs: s.cfg.MaxInflightMsgs,
		CheckQuorum:     true,
		PreVote:         true,
		LeaseTicks:      s.cfg.LeaseTicks,
		FreshGroup:      fresh,
		Rand:            rand.NewPCG(s.cfg.Seed, meta.GetId()),
		Logger:          s.log.With("region-id", region.GetId(), "peer-id", meta.GetId()),
	})
	if err != nil {
		return nil, err
	}
	appliedTerm, err := ps.Term(applied)
	if err != nil {
		return nil, err
	}
	p := &peer{
		store:   s,
		log:     s.log.With("region-id", region.GetId(), "peer-id", meta.GetId()),
		meta:    meta,
		region:  region,
		rn:      rn,
		ps:      ps,
		applied: applyResult{appliedIndex: applied, appliedTerm: appliedTerm},
		peers:   map[uint64]*metapb.Peer{},
		heardAt: map[uint64]int{},
	}
	ps.generate = func() { s.buildSnapshot(region.GetId()) }
	if soleVoter(region, meta) {
		// Nobody else could elect it: lead at once, as TiKV does.
		if err := rn.Campaign(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// soleVoter reports whether meta is the region's only peer.
func soleVoter(region *metapb.Region, meta *metapb.Peer) bool {
	peers := region.GetPeers()
	return len(peers) == 1 && peers[0].GetId() == meta.GetId()
}

func (p *peer) regionID() uint64 { return p.region.GetId() }

func (p *peer) isLeader() bool { return p.rn.BasicStatus().SoftState.RaftState == raft.StateLeader }

func (p *peer) term() uint64 { return p.rn.BasicStatus().HardState.Term }

// leader is the peer this one believes leads the region, or nil.
func (p *peer) leader() *metapb.Peer {
	return peerByID(p.region, p.rn.BasicStatus().SoftState.Lead)
}

func peerByID(region *metapb.Region, id uint64) *metapb.Peer {
	for _, peer := range region.GetPeers() {
		if peer.GetId() == id {
			return peer
		}
	}
	return nil
}

// handle runs one message.
func (p *peer) handle(m peerMsg) {
	if p.destroying && m.kind != msgApplied && m.kind != msgInspect {
		answerMsg(m, errRegionNotFound(p.regionID()))
		return
	}
	switch m.kind {
	case msgRaft:
		p.step(m.raft)
	case msgTick:
		p.tick()
	case msgPropose:
		p.propose(m.cmd, m.done)
	case msgRead:
		p.readLocal(m.read)
	case msgApplied:
		p.onApplied(m.applied)
	case msgInspect:
		m.inspect(p)
	case msgSnapshotGenerated:
		p.ps.snapshotGenerated(m.snapshot)
	case msgCampaign:
		if err := p.rn.Campaign(); err != nil {
			p.log.Info("campaign after split", "err", err)
		}
	case msgSplitCheckDone:
		p.splitChecking = false
	}
}

func (p *peer) step(m *raft_serverpb.RaftMessage) {
	if p.checkStale(m) {
		return
	}
	msg := m.GetMessage()
	if from := m.GetFromPeer(); from.GetId() != 0 && from.GetId() == msg.GetFrom() {
		p.peers[from.GetId()] = from
		p.heardAt[from.GetId()] = p.ticks
	}
	switch {
	case msg.GetMsgType() == eraftpb.MessageType_MsgSnapshot && !p.acceptSnapshot(msg.GetSnapshot()):
	default:
		if err := p.rn.Step(*msg); err != nil {
			p.log.Debug("drop a raft message", "type", msg.GetMsgType(), "from-peer", m.GetFromPeer(), "err", err)
		}
	}
}

// acceptSnapshot checks a received snapshot before raft sees it.
func (p *peer) acceptSnapshot(snap *eraftpb.Snapshot) bool {
	data, err := decodeSnapshot(snap, p.region)
	if err == nil && peerByID(data.GetRegion(), p.meta.GetId()) == nil {
		err = fmt.Errorf("%w: peer %d is not in its region %v", ErrBadSnapshot, p.meta.GetId(), data.GetRegion())
	}
	if err == nil {
		if other := p.store.overlap(data.GetRegion()); other != nil {
			err = fmt.Errorf("%w: region %v overlaps region %d on this store", ErrBadSnapshot, data.GetRegion(), other.GetId())
		}
	}
	if err != nil {
		p.log.Warn("drop a snapshot", "err", err)
		return false
	}
	return true
}

func (p *peer) tick() {
	p.ticks++
	p.rn.Tick()
	p.expireReads()
	if p.ticks%p.store.cfg.RaftLogGCTicks == 0 {
		p.maybeCompactLog()
	}
	if p.ticks%p.store.cfg.SplitCheckTicks == 0 {
		p.maybeCheckSplit()
	}
}

// maybeCompactLog proposes a CompactLog on the leader by TiKV's rules
// (raft_log_gc tick): compact what every peer has replicated once enough
// of it accumulated, or half the log past the count limit even if a slow
// follower then needs a snapshot. The compact index never passes what this
// leader applied.
func (p *peer) maybeCompactLog() {
	if !p.isLeader() {
		return
	}
	replicated := p.ps.lastIndex()
	for _, pr := range p.rn.Status().Progress {
		replicated = min(replicated, pr.Match)
	}
	first, last, applied := p.ps.firstIndex(), p.ps.lastIndex(), p.applied.appliedIndex
	var compact uint64
	switch cfg := p.store.cfg; {
	case applied > first && applied-first >= cfg.RaftLogGCCountLimit:
		compact = max(first+(last-first)/2, replicated)
	case replicated < first || last-first < 3 || replicated-first < cfg.RaftLogGCThreshold:
		return
	default:
		compact = replicated
	}
	compact = min(compact, applied)
	if compact < first {
		return
	}
	term, err := p.ps.Term(compact)
	if err != nil {
		p.log.Debug("skip log compaction", "index", compact, "err", err)
		return
	}
	cmd := &raft_cmdpb.RaftCmdRequest{
		Header: &raft_cmdpb.RaftRequestHeader{RegionId: p.regionID(), Peer: p.meta, RegionEpoch: p.region.GetRegionEpoch()},
		AdminRequest: &raft_cmdpb.AdminRequest{
			CmdType:    raft_cmdpb.AdminCmdType_CompactLog,
			CompactLog: &raft_cmdpb.CompactLogRequest{CompactIndex: compact, CompactTerm: term},
		},
	}
	p.propose(cmd, func(*raft_cmdpb.RaftCmdResponse) {})
}

// checkRequest runs the checks a request meets before the peer proposes or
// reads for it, in TiKV's order: peer id, leadership, region and epoch,
// term.
func (p *peer) checkRequest(header *raft_cmdpb.RaftRequestHeader) *errorpb.Error {
	if id := header.GetPeer().GetId(); id != 0 && id != p.meta.GetId() {
		return errMismatchPeerID(id, p.meta.GetId())
	}
	if !p.isLeader() {
		return errNotLeader(p.regionID(), p.leader())
	}
	if !p.initialized() {
		return errRegionNotInitialized(p.regionID())
	}
	if err := checkRegion(header, p.region, false); err != nil {
		p.store.addSibling(err, p.region)
		return err
	}
	if t := header.GetTerm(); t != 0 && p.term() > t+1 {
		return errStaleCommand()
	}
	return nil
}

// checkRegion checks that a command addresses region at its current epoch:
// the version only, or with confVer the conf version too (TiKV's
// check_region_epoch). A newer epoch in the request fails too, so a peer
// that has not applied a split never serves the range it lost.
func checkRegion(header *raft_cmdpb.RaftRequestHeader, region *metapb.Region, confVer bool) *errorpb.Error {
	if header.GetRegionId() != region.GetId() {
		return errRegionNotFound(header.GetRegionId())
	}
	want, got := region.GetRegionEpoch(), header.GetRegionEpoch()
	if got == nil {
		return &errorpb.Error{Message: "missing epoch", EpochNotMatch: &errorpb.EpochNotMatch{}}
	}
	if got.GetVersion() != want.GetVersion() || (confVer && got.GetConfVer() != want.GetConfVer()) {
		return errEpochNotMatch(region, got)
	}
	return nil
}

func (p *peer) propose(cmd *raft_cmdpb.RaftCmdRequest, done func(*raft_cmdpb.RaftCmdResponse)) {
	if err := p.checkRequest(cmd.GetHeader()); err != nil {
		done(errorResponse(err, p.term()))
		return
	}
	if cmd.GetAdminRequest().GetCmdType() == raft_cmdpb.AdminCmdType_TransferLeader {
		done(p.transferLeader(cmd))
		return
	}
	data, err := cmd.Marshal()
	if err != nil {
		done(errorResponse(&errorpb.Error{Message: "raftstore: encode command: " + err.Error()}, p.term()))
		return
	}
	if uint64(len(data)) > p.store.cfg.RaftEntryMaxSize {
		done(errorResponse(errRaftEntryTooLarge(p.regionID(), uint64(len(data))), p.term()))
		return
	}
	if rerr := p.proposeData(cmd, data); rerr != nil {
		done(errorResponse(rerr, p.term()))
		return
	}
	index, term := p.rn.LastIndex(), p.term()
	p.dropOverwritten(index, term)
	if cmd.GetAdminRequest().GetCmdType() == raft_cmdpb.AdminCmdType_BatchSplit {
		p.pendingSplit = index
	}
	p.proposals = append(p.proposals, proposal{index: index, term: term, done: done})
}

// proposeData hands a checked command to raft: writes and CompactLog as
// entries, ChangePeer as a conf change.
func (p *peer) proposeData(cmd *raft_cmdpb.RaftCmdRequest, data []byte) *errorpb.Error {
	switch admin := cmd.GetAdminRequest(); {
	case admin == nil || admin.GetCmdType() == raft_cmdpb.AdminCmdType_CompactLog ||
		admin.GetCmdType() == raft_cmdpb.AdminCmdType_BatchSplit:
	case admin.GetCmdType() == raft_cmdpb.AdminCmdType_ChangePeer:
		return p.proposeChangePeer(cmd, data)
	default:
		return &errorpb.Error{Message: fmt.Sprintf("raftstore: admin command %s is not supported yet", admin.GetCmdType())}
	}
	if err := p.rn.Propose(data); err != nil {
		return errNotLeader(p.regionID(), p.leader())
	}
	return nil
}

// dropOverwritten answers stale_command for the proposals at or after
// index: the log holds another entry there now, so they can never apply.
func (p *peer) dropOverwritten(index, term uint64) {
	for len(p.proposals) > 0 && p.proposals[len(p.proposals)-1].index >= index {
		last := p.proposals[len(p.proposals)-1]
		p.proposals = p.proposals[:len(p.proposals)-1]
		last.done(errorResponse(errStaleCommand(), term))
	}
}

// readLocal serves a read at once while the leader lease holds and an
// entry of the current term is applied (so every write acknowledged by an
// earlier leader is applied here too), and otherwise queues it for the next
// ReadIndex round (TiKV's read policy, without replica and stale reads).
func (p *peer) readLocal(r *readRequest) {
	if r.header.GetReplicaRead() && !p.isLeader() {
		p.replicaRead(r)
		return
	}
	if err := p.checkRequest(r.header); err != nil {
		r.done(nil, err)
		return
	}
	if !r.header.GetReadQuorum() && p.applied.appliedTerm == p.term() && p.applied.appliedIndex >= p.pendingSplit && p.rn.LeaseValid() {
		p.store.stats.leaseReads.Add(1)
		r.done(newRegionSnapshot(p.region, p.store.cfg.KV.Snapshot()), nil)
		return
	}
	p.store.stats.readIndexReads.Add(1)
	p.newReads = append(p.newReads, r)
}

// replicaRead queues a follower read (Context.replica_read): the next
// read round asks the leader for its read index, and the read is served
// once this follower has applied up to it, so it sees every write
// acknowledged before it was sent. A follower that knows no leader answers
// at once, so that the client tries another replica.
func (p *peer) replicaRead(r *readRequest) {
	if err := p.checkReplicaRead(r.header); err != nil {
		r.done(nil, err)
		return
	}
	p.store.stats.replicaReads.Add(1)
	p.newReads = append(p.newReads, r)
}

// checkReplicaRead checks a follower read as checkRequest checks a leader
// request, leadership aside: peer id, a known leader, initialization and
// the epoch.
func (p *peer) checkReplicaRead(header *raft_cmdpb.RaftRequestHeader) *errorpb.Error {
	if id := header.GetPeer().GetId(); id != 0 && id != p.meta.GetId() {
		return errMismatchPeerID(id, p.meta.GetId())
	}
	if p.rn.BasicStatus().SoftState.Lead == raft.None {
		return errReadIndexNotReady(p.regionID(), "no leader known to ask for a read index")
	}
	if !p.initialized() {
		return errRegionNotInitialized(p.regionID())
	}
	if err := checkRegion(header, p.region, false); err != nil {
		p.store.addSibling(err, p.region)
		return err
	}
	return nil
}

// startReadRound asks raft to confirm leadership for the reads that arrived
// in this round, all with one ReadIndex.
func (p *peer) startReadRound() {
	if len(p.newReads) == 0 {
		return
	}
	p.readSeq++
	ctx := binary.BigEndian.AppendUint64(nil, p.readSeq)
	p.pendingReads = append(p.pendingReads, &pendingRead{ctx: ctx, askedAt: p.ticks, reads: p.newReads})
	p.newReads = nil
	p.rn.ReadIndex(ctx)
}

// onReadStates records the read indexes raft confirmed.
func (p *peer) onReadStates(states []raft.ReadState) {
	for _, rs := range states {
		for _, pr := range p.pendingReads {
			if string(pr.ctx) == string(rs.RequestCtx) {
				pr.index = rs.Index
			}
		}
	}
}

// serveReads answers the reads whose read index is applied, each with its
// own snapshot of the KV engine (which holds every applied write).
func (p *peer) serveReads() {
	kept := p.pendingReads[:0]
	for _, pr := range p.pendingReads {
		if pr.index == 0 || pr.index > p.applied.appliedIndex {
			kept = append(kept, pr)
			continue
		}
		for _, r := range pr.reads {
			// A split may have applied since the read was checked.
			if err := checkRegion(r.header, p.region, false); err != nil {
				p.store.addSibling(err, p.region)
				r.done(nil, err)
				continue
			}
			r.done(newRegionSnapshot(p.region, p.store.cfg.KV.Snapshot()), nil)
		}
	}
	clear(p.pendingReads[len(kept):])
	p.pendingReads = kept
}

// expireReads fails rounds raft has not confirmed within two election
// timeouts (the leader lost its quorum, or raft dropped the request).
func (p *peer) expireReads() {
	kept := p.pendingReads[:0]
	for _, pr := range p.pendingReads {
		if pr.index == 0 && p.ticks-pr.askedAt > 2*p.store.cfg.ElectionTicks {
			failReads(pr.reads, errReadIndexNotReady(p.regionID(), "read index not confirmed in time"))
			continue
		}
		kept = append(kept, pr)
	}
	clear(p.pendingReads[len(kept):])
	p.pendingReads = kept
}

// failUnconfirmedReads answers NotLeader to the reads raft no longer
// tracks after the peer stepped down.
func (p *peer) failUnconfirmedReads() {
	err := errNotLeader(p.regionID(), p.leader())
	kept := p.pendingReads[:0]
	for _, pr := range p.pendingReads {
		if pr.index == 0 {
			failReads(pr.reads, err)
			continue
		}
		kept = append(kept, pr)
	}
	clear(p.pendingReads[len(kept):])
	p.pendingReads = kept
}

func failReads(reads []*readRequest, err *errorpb.Error) {
	for _, r := range reads {
		r.done(nil, err)
	}
}

func (p *peer) onApplied(res applyResult) {
	p.applied = res
	p.sizeDiffHint += res.writtenBytes
	if res.snapshotRegion != nil {
		p.region = res.snapshotRegion
		p.snapApplied = true
		p.store.mu.Lock()
		p.store.ranges.set(res.snapshotRegion)
		p.store.mu.Unlock()
	}
	if res.split != nil {
		p.onSplit(res.split)
	}
	if res.destroyed {
		p.store.destroyPeer(p)
		return
	}
	if p.onConfChanges(res.confChanges); p.destroyed {
		return
	}
	if res.truncated != nil {
		from := p.ps.firstIndex()
		if p.ps.compactTo(res.truncated) {
			p.store.collectLog(p.regionID(), from, p.ps.firstIndex())
		}
	}
	p.ps.trimCache(res.appliedIndex)
	p.serveReads()
}

// nextReady returns the Ready the round should persist: the set-aside
// snapshot Ready once its data is applied, or a new Ready. A new Ready
// with a snapshot is handed to the applier and set aside instead.
func (p *peer) nextReady() (raft.Ready, bool) {
	if p.snapReady != nil {
		if !p.snapApplied {
			return raft.Ready{}, false
		}
		rd := *p.snapReady
		p.snapReady, p.snapApplied = nil, false
		return rd, true
	}
	if !p.rn.HasReady() {
		return raft.Ready{}, false
	}
	rd := p.rn.Ready()
	if rd.Snapshot == nil {
		return rd, true
	}
	data, err := decodeSnapshot(rd.Snapshot, p.region)
	if err != nil {
		// acceptSnapshot checked it before raft took it.
		p.store.fatal("decode an accepted snapshot", err, p.regionID())
	}
	p.snapReady = &rd
	if !p.store.sendApply(p.regionID(), applyTask{snapshot: rd.Snapshot, snapshotData: data}) {
		p.log.Info("snapshot not applied: the store is stopping")
	}
	return raft.Ready{}, false
}

// persist stages a Ready's log entries and raft state into wb, the raft
// engine batch of the round.
func (p *peer) persist(rd *raft.Ready, wb *engine.WriteBatch) {
	if rd.Snapshot != nil {
		p.ps.applySnapshot(rd.Snapshot, wb)
	}
	if err := p.ps.append(rd.Entries, wb); err != nil {
		p.store.fatal("append raft log", err, p.regionID())
	}
	if rd.Snapshot != nil || len(rd.Entries) > 0 || !raft.IsEmptyHardState(rd.HardState) {
		if err := p.ps.saveRaftState(rd.HardState, wb); err != nil {
			p.store.fatal("save raft state", err, p.regionID())
		}
	}
}

// afterPersist finishes a Ready once its state is durable: send the
// messages, hand committed entries to the applier, note read indexes, and
// advance.
func (p *peer) afterPersist(rd *raft.Ready) {
	if rd.SoftState != nil && rd.SoftState.RaftState != raft.StateLeader {
		p.failUnconfirmedReads()
	}
	p.send(rd.Messages)
	if n := len(rd.CommittedEntries); n > 0 {
		p.dispatch(rd.CommittedEntries)
	}
	p.onReadStates(rd.ReadStates)
	p.rn.Advance()
	p.serveReads()
}

// dispatch sends committed entries to the applier with the proposals they
// resolve.
func (p *peer) dispatch(entries []*eraftpb.Entry) {
	last := entries[len(entries)-1].Index
	n := 0
	for n < len(p.proposals) && p.proposals[n].index <= last {
		n++
	}
	task := applyTask{entries: entries, proposals: p.proposals[:n:n]}
	p.proposals = p.proposals[n:]
	if !p.store.sendApply(p.regionID(), task) {
		answerStopping(task.proposals, p.regionID())
	}
}

func answerStopping(props []proposal, regionID uint64) {
	for _, pr := range props {
		pr.done(errorResponse(errStoreStopping(regionID), 0))
	}
}

func (p *peer) send(msgs []eraftpb.Message) {
	for i := range msgs {
		m := &msgs[i]
		to := peerByID(p.region, m.To)
		if to == nil {
			to = p.peers[m.To]
		}
		if to == nil {
			p.log.Debug("drop a message to a peer not in the region", "to", m.To, "type", m.MsgType)
			continue
		}
		rm := &raft_serverpb.RaftMessage{
			RegionId:    p.regionID(),
			FromPeer:    p.meta,
			ToPeer:      to,
			Message:     m,
			RegionEpoch: p.region.GetRegionEpoch(),
		}
		if isInitialMsg(m) {
			rm.StartKey, rm.EndKey = p.region.GetStartKey(), p.region.GetEndKey()
		}
		err := p.store.cfg.Transport.Send(rm)
		if err != nil {
			p.rn.ReportUnreachable(m.To)
		}
		if m.MsgType == eraftpb.MessageType_MsgSnapshot {
			p.reportSnapshot(m.To, err)
		}
	}
}

func (p *peer) reportSnapshot(to uint64, err error) {
	status := raft.SnapshotFinish
	if err != nil {
		status = raft.SnapshotFailure
	}
	p.rn.ReportSnapshot(to, status)
}

// isInitialMsg reports whether m may be the first message a new peer gets:
// a vote, or a heartbeat from a leader that knows nothing of it (TiKV's
// is_initial_msg).
func isInitialMsg(m *eraftpb.Message) bool {
	switch {
	case m == nil:
		return false
	case isVoteMsg(m):
		return true
	case m.MsgType == eraftpb.MessageType_MsgHeartbeat:
		return m.Commit == 0
	}
	return false
}

// stop answers everything the peer still holds: the store is closing.
func (p *peer) stop() { p.failHeld(errStoreStopping(p.regionID())) }

// failHeld answers the proposals and reads the peer holds with err.
func (p *peer) failHeld(err *errorpb.Error) {
	for _, pr := range p.proposals {
		pr.done(errorResponse(err, 0))
	}
	p.proposals = nil
	for _, pr := range p.pendingReads {
		failReads(pr.reads, err)
	}
	p.pendingReads = nil
	failReads(p.newReads, err)
	p.newReads = nil
}
