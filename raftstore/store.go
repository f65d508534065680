package raftstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/raft"
)

type (
	peerBox  = mailbox[*peer, peerMsg]
	applyBox = mailbox[*applier, applyTask]
)

// Store is the multi-Raft store: one peer per region this store holds,
// driven by two batch systems — the peers (raft steps, proposals, log
// writes, messages) and the appliers (committed commands into the KV
// engine) — and a ticker.
type Store struct {
	cfg Config
	log *slog.Logger

	peerSys  *batchSystem[*peer, peerMsg]
	applySys *batchSystem[*applier, applyTask]

	mu sync.RWMutex
	// peers and appliers route by region id. Invariant: they hold the same
	// regions.
	peers    map[uint64]*peerBox
	appliers map[uint64]*applyBox
	// ranges holds the ranges of the initialized regions routed.
	ranges regionRanges
	// pendingVotes keeps votes for regions a split here has not created
	// yet (see keepPendingVote).
	pendingVotes map[uint64][]*raft_serverpb.RaftMessage
	stopped      bool
	// ctx ends when the store closes, for background work that waits on
	// others (PD).
	ctx    context.Context
	cancel context.CancelFunc

	stopTicker chan struct{}
	tickerDone chan struct{}

	// snapshotSlots bounds the snapshots being built.
	snapshotSlots chan struct{}
	// logGC queues raft log deletions for the log GC worker.
	logGC     chan logGCTask
	stopLogGC chan struct{}
	// background counts the snapshot builders and the log GC worker.
	background sync.WaitGroup
	stats      storeStats
}

// storeStats counts what the store did since Start.
type storeStats struct {
	leaseReads, readIndexReads, replicaReads atomic.Uint64
}

// ReadStats counts the reads asked of this store since Start by how they
// are confirmed: by the leader lease, by a ReadIndex round on the leader,
// or as replica reads on a follower (by the leader's read index).
type ReadStats struct{ Lease, ReadIndex, Replica uint64 }

// ReadStats returns the store's read counts.
func (s *Store) ReadStats() ReadStats {
	return ReadStats{Lease: s.stats.leaseReads.Load(), ReadIndex: s.stats.readIndexReads.Load(), Replica: s.stats.replicaReads.Load()}
}

// logGCTask deletes the entries [from, to) of a region's log.
type logGCTask struct{ regionID, from, to uint64 }

// logGCQueue is how many log deletions may wait; when it is full a deletion
// is skipped, and its entries stay until the next one of the region (which
// starts where the peer's log then starts) or a restart.
const logGCQueue = 4096

// BootstrapRegion writes the initial state of a region that this store
// holds a peer of: an empty log at (5, 5), everything up to it applied. The
// region state is written last, so a crash part way leaves no region.
func BootstrapRegion(kv, raftDB *engine.Engine, region *metapb.Region) error {
	raftWB := engine.NewWriteBatch()
	raftState := &raft_serverpb.RaftLocalState{
		HardState: &eraftpb.HardState{Term: initLogTerm, Commit: initLogIndex},
		LastIndex: initLogIndex,
	}
	if err := putProto(raftWB, engine.CfDefault, raftStateKey(region.GetId()), raftState); err != nil {
		return err
	}
	if err := raftDB.Write(raftWB); err != nil {
		return fmt.Errorf("raftstore: bootstrap region %d: %w", region.GetId(), err)
	}
	kvWB := engine.NewWriteBatch()
	applyState := &raft_serverpb.RaftApplyState{
		AppliedIndex:   initLogIndex,
		TruncatedState: &raft_serverpb.RaftTruncatedState{Index: initLogIndex, Term: initLogTerm},
	}
	if err := putProto(kvWB, engine.CfRaft, applyStateKey(region.GetId()), applyState); err != nil {
		return err
	}
	regionState := &raft_serverpb.RegionLocalState{State: raft_serverpb.PeerState_Normal, Region: region}
	if err := putProto(kvWB, engine.CfRaft, regionStateKey(region.GetId()), regionState); err != nil {
		return err
	}
	if err := kv.Write(kvWB); err != nil {
		return fmt.Errorf("raftstore: bootstrap region %d: %w", region.GetId(), err)
	}
	if err := kv.Sync(); err != nil {
		return fmt.Errorf("raftstore: bootstrap region %d: %w", region.GetId(), err)
	}
	return nil
}

// Start loads every region the store holds a peer of and starts serving
// them.
func Start(c Config) (*Store, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:      cfg,
		log:      cfg.Logger.With("store-id", cfg.StoreID),
		peers:    make(map[uint64]*peerBox),
		appliers: make(map[uint64]*applyBox),

		pendingVotes: make(map[uint64][]*raft_serverpb.RaftMessage),
		stopTicker:   make(chan struct{}),
		tickerDone:   make(chan struct{}),

		snapshotSlots: make(chan struct{}, cfg.SnapshotWorkers),
		logGC:         make(chan logGCTask, logGCQueue),
		stopLogGC:     make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.peerSys = newBatchSystem(cfg.Pollers, cfg.MaxBatch, s.peerRound)
	s.applySys = newBatchSystem(cfg.ApplyPollers, cfg.MaxBatch, s.applyRound)
	if err := s.loadRegions(); err != nil {
		s.peerSys.stop()
		s.applySys.stop()
		return nil, err
	}
	go s.runTicker()
	s.background.Go(s.runLogGC)
	return s, nil
}

// loadRegions creates a peer and an applier for every live region state.
func (s *Store) loadRegions() error {
	regions, err := LocalRegions(s.cfg.KV)
	if err != nil {
		return err
	}
	for _, region := range regions {
		if err := s.loadRegion(region); err != nil {
			return err
		}
	}
	return nil
}

// LocalRegions returns the regions whose state kv keeps, tombstones left
// out: the regions a store started on kv serves.
func LocalRegions(kv *engine.Engine) ([]*metapb.Region, error) {
	lower, upper := regionStateRange()
	var regions []*metapb.Region
	var decodeErr error
	err := kv.Scan(engine.CfRaft, engine.IterOptions{LowerBound: lower, UpperBound: upper}, func(key, value []byte) bool {
		if _, decodeErr = regionIDOfStateKey(key); decodeErr != nil {
			return false
		}
		state := &raft_serverpb.RegionLocalState{}
		if decodeErr = state.Unmarshal(value); decodeErr != nil {
			return false
		}
		if state.GetState() != raft_serverpb.PeerState_Tombstone {
			regions = append(regions, state.GetRegion())
		}
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: load region states: %w", err)
	}
	return regions, nil
}

// ClearBootstrappedRegion removes what BootstrapRegion wrote, for a store
// that lost the race to bootstrap the cluster (TiKV's
// clear_prepare_bootstrap). The region state goes first, so a crash part
// way leaves no region.
func ClearBootstrappedRegion(kv, raftDB *engine.Engine, regionID uint64) error {
	kvWB := engine.NewWriteBatch()
	kvWB.Delete(engine.CfRaft, regionStateKey(regionID))
	kvWB.Delete(engine.CfRaft, applyStateKey(regionID))
	if err := kv.Write(kvWB); err != nil {
		return fmt.Errorf("raftstore: clear bootstrapped region %d: %w", regionID, err)
	}
	if err := kv.Sync(); err != nil {
		return fmt.Errorf("raftstore: clear bootstrapped region %d: %w", regionID, err)
	}
	raftWB := engine.NewWriteBatch()
	raftWB.Delete(engine.CfDefault, raftStateKey(regionID))
	if err := raftDB.Write(raftWB); err != nil {
		return fmt.Errorf("raftstore: clear bootstrapped region %d: %w", regionID, err)
	}
	return nil
}

func (s *Store) loadRegion(region *metapb.Region) error {
	var meta *metapb.Peer
	for _, p := range region.GetPeers() {
		if p.GetStoreId() == s.cfg.StoreID {
			meta = p
		}
	}
	if meta == nil {
		return fmt.Errorf("raftstore: region %d has no peer on store %d", region.GetId(), s.cfg.StoreID)
	}
	apply := &raft_serverpb.RaftApplyState{}
	found, err := loadProto(s.cfg.KV, engine.CfRaft, applyStateKey(region.GetId()), apply)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("raftstore: region %d has no apply state", region.GetId())
	}
	if apply.GetAppliedIndex() == initLogIndex {
		// A split region whose raft state a crash kept from being written.
		if err := ensureSplitRaftState(s.cfg.Raft, region.GetId()); err != nil {
			return err
		}
	}
	p, err := newPeer(s, region, meta, apply)
	if err != nil {
		return fmt.Errorf("raftstore: region %d: %w", region.GetId(), err)
	}
	// Deletions of compacted entries may not have finished before a stop.
	s.collectLog(region.GetId(), 0, p.ps.firstIndex())
	a := &applier{store: s, regionID: region.GetId(), peerID: meta.GetId(), region: region, state: apply, appliedTerm: p.applied.appliedTerm}
	s.mu.Lock()
	s.addPeerLocked(p, a)
	s.mu.Unlock()
	return nil
}

// addPeerLocked routes a region to its peer and applier; s.mu is held.
func (s *Store) addPeerLocked(p *peer, a *applier) {
	s.peers[p.regionID()] = s.peerSys.newMailbox(p)
	s.appliers[p.regionID()] = s.applySys.newMailbox(a)
	if p.initialized() {
		s.ranges.set(p.region)
	}
}

// RegionForKey returns (a copy of) the initialized region on this store
// that holds key, or nil. It may lag the region's leader.
func (s *Store) RegionForKey(key []byte) *metapb.Region {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r := s.ranges.find(key); r != nil {
		return cloneRegion(r)
	}
	return nil
}

// overlap returns a region routed here, other than region itself, whose
// range meets region's, or nil.
func (s *Store) overlap(region *metapb.Region) *metapb.Region {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ranges.overlap(region.GetStartKey(), region.GetEndKey(), region.GetId())
}

// addSibling adds to an EpochNotMatch the region a split made left of
// region (TiKV's find_sibling_region), so that the client learns both.
func (s *Store) addSibling(err *errorpb.Error, region *metapb.Region) {
	if err.GetEpochNotMatch() == nil {
		return
	}
	s.mu.RLock()
	sibling := s.ranges.endingAt(region.GetStartKey())
	s.mu.RUnlock()
	if sibling != nil {
		err.EpochNotMatch.CurrentRegions = append(err.EpochNotMatch.CurrentRegions, cloneRegion(sibling))
	}
}

func (s *Store) peerBox(regionID uint64) *peerBox {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.peers[regionID]
}

// sendPeer routes m to a region's peer; it reports false when there is no
// such peer or the store is stopping.
func (s *Store) sendPeer(regionID uint64, m peerMsg) bool {
	mb := s.peerBox(regionID)
	return mb != nil && mb.send(m)
}

func (s *Store) sendApply(regionID uint64, task applyTask) bool {
	s.mu.RLock()
	mb := s.appliers[regionID]
	s.mu.RUnlock()
	return mb != nil && mb.send(task)
}

// buildSnapshot builds a snapshot of a region in the background and sends
// it to the region's peer.
func (s *Store) buildSnapshot(regionID uint64) {
	s.background.Go(func() {
		s.snapshotSlots <- struct{}{}
		defer func() { <-s.snapshotSlots }()
		snap, err := generateSnapshot(s.cfg.KV, s.cfg.Raft, regionID)
		if err != nil {
			s.log.Warn("build a snapshot", "region-id", regionID, "err", err)
			snap = nil
		}
		s.sendPeer(regionID, peerMsg{kind: msgSnapshotGenerated, snapshot: snap})
	})
}

// collectLog queues the deletion of a region's compacted entries [from,
// to).
func (s *Store) collectLog(regionID, from, to uint64) {
	select {
	case s.logGC <- logGCTask{regionID: regionID, from: from, to: to}:
	default:
		s.log.Debug("log GC queue full, skip a deletion", "region-id", regionID, "from", from, "to", to)
	}
}

// runLogGC deletes compacted raft log entries. The KV engine is synced
// first: the entries are gone for good afterwards, so the data and apply
// state they produced must be durable.
func (s *Store) runLogGC() {
	for {
		var tasks []logGCTask
		select {
		case <-s.stopLogGC:
			return
		case t := <-s.logGC:
			tasks = append(tasks, t)
		}
		for len(s.logGC) > 0 {
			tasks = append(tasks, <-s.logGC)
		}
		if err := s.cfg.KV.Sync(); err != nil {
			s.log.Warn("log GC: sync the kv engine", "err", err)
			continue
		}
		for _, t := range tasks {
			err := s.cfg.Raft.DeleteRange(engine.CfDefault, raftLogKey(t.regionID, t.from), raftLogKey(t.regionID, t.to))
			if err != nil {
				s.log.Warn("log GC: delete entries", "region-id", t.regionID, "from", t.from, "to", t.to, "err", err)
			}
		}
	}
}

// fatal stops the process on a failure after which the store's state on
// disk can no longer be trusted (a raft or KV engine write failed), as TiKV
// does: carrying on could acknowledge writes that are not durable.
func (s *Store) fatal(what string, err error, regionID uint64) {
	s.log.Error("raftstore: fatal", "what", what, "region-id", regionID, "err", err)
	panic(fmt.Sprintf("raftstore: store %d, region %d: %s: %v", s.cfg.StoreID, regionID, what, err))
}

// Propose proposes a write command to its region's leader on this store and
// waits until it is applied there. A region problem is returned as a
// *storage.RegionError; a context error means the command may or may not apply.
func (s *Store) Propose(ctx context.Context, cmd *raft_cmdpb.RaftCmdRequest) (*raft_cmdpb.RaftCmdResponse, error) {
	if err := s.checkStore(cmd.GetHeader()); err != nil {
		return nil, regionErr(err)
	}
	ch := make(chan *raft_cmdpb.RaftCmdResponse, 1)
	done := func(resp *raft_cmdpb.RaftCmdResponse) { ch <- resp }
	if !s.sendPeer(cmd.GetHeader().GetRegionId(), peerMsg{kind: msgPropose, cmd: cmd, done: done}) {
		return nil, regionErr(s.missingRegion(cmd.GetHeader().GetRegionId()))
	}
	select {
	case resp := <-ch:
		if err := resp.GetHeader().GetError(); err != nil {
			return nil, regionErr(err)
		}
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readResult is the answer to a read: a snapshot or a region error.
type readResult struct {
	snap *RegionSnapshot
	err  *errorpb.Error
}

// Snapshot returns a snapshot of the region header names that sees every
// write acknowledged before the call, after confirming with a quorum that
// this peer still leads the region. A region problem is returned as a
// *storage.RegionError. The snapshot must be closed.
func (s *Store) Snapshot(ctx context.Context, header *raft_cmdpb.RaftRequestHeader) (*RegionSnapshot, error) {
	if err := s.checkStore(header); err != nil {
		return nil, regionErr(err)
	}
	ch := make(chan readResult, 1)
	read := &readRequest{header: header, done: func(snap *RegionSnapshot, err *errorpb.Error) { ch <- readResult{snap, err} }}
	if !s.sendPeer(header.GetRegionId(), peerMsg{kind: msgRead, read: read}) {
		return nil, regionErr(s.missingRegion(header.GetRegionId()))
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, regionErr(r.err)
		}
		return r.snap, nil
	case <-ctx.Done():
		go closeLateSnapshot(ch)
		return nil, ctx.Err()
	}
}

// closeLateSnapshot releases a snapshot that arrives after its reader gave
// up. Every read is answered (a stopping store answers all it holds), so
// this returns.
func closeLateSnapshot(ch <-chan readResult) {
	if r := <-ch; r.snap != nil {
		r.snap.Close()
	}
}

func (s *Store) checkStore(header *raft_cmdpb.RaftRequestHeader) *errorpb.Error {
	if id := header.GetPeer().GetStoreId(); id != 0 && id != s.cfg.StoreID {
		return errStoreNotMatch(id, s.cfg.StoreID)
	}
	return nil
}

func (s *Store) missingRegion(regionID uint64) *errorpb.Error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.stopped {
		return errStoreStopping(regionID)
	}
	return errRegionNotFound(regionID)
}

// HandleRaftMessage routes a message from another store to its peer. A
// message for another store is refused with StoreNotMatch (the sender then
// resolves the store again); one for a region this store does not hold is
// dropped.
func (s *Store) HandleRaftMessage(msg *raft_serverpb.RaftMessage) error {
	if to := msg.GetToPeer().GetStoreId(); to != s.cfg.StoreID {
		return regionErr(errStoreNotMatch(to, s.cfg.StoreID))
	}
	if (msg.GetMessage() == nil && !msg.GetIsTombstone()) || msg.GetRegionEpoch() == nil {
		s.log.Debug("drop a raft message without message or epoch", "region-id", msg.GetRegionId())
		return nil
	}
	if !s.sendPeer(msg.GetRegionId(), peerMsg{kind: msgRaft, raft: msg}) && !s.maybeCreatePeer(msg) {
		s.log.Debug("drop a raft message for a region this store does not serve", "region-id", msg.GetRegionId())
	}
	return nil
}

func (s *Store) runTicker() {
	defer close(s.tickerDone)
	ticker := time.NewTicker(s.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stopTicker:
			return
		case <-ticker.C:
			s.mu.RLock()
			for _, mb := range s.peers {
				mb.send(peerMsg{kind: msgTick})
			}
			s.mu.RUnlock()
		}
	}
}

// readyPeer is a peer with a Ready being handled in a poll round.
type readyPeer struct {
	p  *peer
	rd raft.Ready
}

// peerRound handles a batch of peers: their messages, then one raft engine
// write for all their Readies, then what depends on it being durable.
func (s *Store) peerRound(batch []delivery[*peer, peerMsg]) {
	wb := engine.NewWriteBatch()
	var readies []readyPeer
	for _, d := range batch {
		p := d.fsm
		for _, m := range d.msgs {
			if !p.destroyed {
				p.handle(m)
			}
		}
		if p.destroyed || p.destroying {
			continue
		}
		p.startReadRound()
		if rd, ok := p.nextReady(); ok {
			p.persist(&rd, wb)
			readies = append(readies, readyPeer{p: p, rd: rd})
		}
	}
	if err := writeBatch(s.cfg.Raft, wb); err != nil {
		s.fatal("write raft log", err, 0)
	}
	for i := range readies {
		readies[i].p.afterPersist(&readies[i].rd)
	}
	for _, d := range batch {
		if p := d.fsm; !p.destroyed && !p.destroying {
			p.noticeLeadership()
		}
	}
}

// Close stops the store: the ticker, then the pollers after their current
// round; every request still held is answered with a region error.
func (s *Store) Close() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	close(s.stopTicker)
	<-s.tickerDone
	s.peerSys.stop()
	s.applySys.stop()
	close(s.stopLogGC)
	s.background.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, mb := range s.appliers {
		for _, task := range mb.close() {
			answerStopping(task.proposals, id)
		}
	}
	for id, mb := range s.peers {
		for _, m := range mb.close() {
			answerStoppingMsg(m, id)
		}
		mb.fsm.stop()
	}
}

func answerStoppingMsg(m peerMsg, regionID uint64) { answerMsg(m, errStoreStopping(regionID)) }

// answerMsg answers a request the peer will not serve with err.
func answerMsg(m peerMsg, err *errorpb.Error) {
	switch m.kind {
	case msgPropose:
		m.done(errorResponse(err, 0))
	case msgRead:
		m.read.done(nil, err)
	}
}

// RegionStatus is what the store knows of one of its peers, for tests and
// diagnostics.
type RegionStatus struct {
	Region       *metapb.Region
	Peer         *metapb.Peer
	Leader       bool
	Term         uint64
	AppliedIndex uint64
	// Raft is the peer's Raft status, with progress on a leader.
	Raft raft.Status
}

// Status returns the status of the store's peer of a region; false when
// the store holds no peer of it or ctx ends first.
func (s *Store) Status(ctx context.Context, regionID uint64) (RegionStatus, bool) {
	ch := make(chan RegionStatus, 1)
	inspect := func(p *peer) {
		ch <- RegionStatus{Region: cloneRegion(p.region), Peer: proto.Clone(p.meta).(*metapb.Peer),
			Leader: p.isLeader(), Term: p.term(), AppliedIndex: p.applied.appliedIndex, Raft: p.rn.Status()}
	}
	if !s.sendPeer(regionID, peerMsg{kind: msgInspect, inspect: inspect}) {
		return RegionStatus{}, false
	}
	select {
	case st := <-ch:
		return st, true
	case <-ctx.Done():
		return RegionStatus{}, false
	}
}
