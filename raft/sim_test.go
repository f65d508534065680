package raft

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// The simulation runs clusters of RawNodes over a simulated network that
// drops, delays, duplicates and reorders messages, partitions nodes and
// restarts them (keeping only what they persisted to their MemoryStorage).
// After every step it checks the safety properties, among them that reads
// served under RawNode.LeaseValid (with check-quorum) and through
// ReadIndex are not stale; after healing the network it checks liveness. Every run is determined by its seed, which
// is printed on failure.

type simNode struct {
	id      uint64
	storage *MemoryStorage
	rn      *RawNode // nil while crashed
	// The state machine: the proposal IDs of applied normal entries. It is
	// volatile and rebuilt from the storage snapshot on restart.
	applied      []uint64
	appliedIndex uint64
}

type simMsg struct {
	at uint64 // step at which it is delivered
	m  eraftpb.Message
}

type simEntry struct {
	term uint64
	typ  eraftpb.EntryType
	data string
}

type sim struct {
	t     *testing.T
	seed  uint64
	rand  *rand.Rand
	cfg   func(*Config)
	nodes []*simNode
	net   []simMsg
	now   uint64
	// partition assigns each node to a side; nodes on different sides
	// cannot talk.
	partition map[uint64]int
	dropRate  float64

	// committed records every entry applied by any node, by index.
	committed map[uint64]simEntry
	// leaders records the leader of each term seen so far.
	leaders    map[uint64]uint64
	nextPropID uint64
	// membership enables random membership changes; only nodes 1-3 are
	// voters initially, the others start empty and may be added.
	membership bool
	// reads are pending ReadIndex requests: context -> the highest index
	// applied anywhere when the read was issued.
	reads map[string]uint64
	// leaseReads counts reads served locally under RawNode.LeaseValid.
	leaseReads int
}

func newSim(t *testing.T, seed uint64, n int, membership bool) *sim {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	preVote, checkQuorum := r.IntN(2) == 0, r.IntN(2) == 0
	if membership && !preVote && !checkQuorum {
		// Without either, a removed server that never learns of its
		// removal disrupts the cluster forever with ever higher terms
		// (Raft thesis 4.2.3); real deployments also shut such servers
		// down.
		preVote = true
	}
	s := &sim{
		t: t, seed: seed, rand: r,
		committed:  map[uint64]simEntry{},
		leaders:    map[uint64]uint64{},
		partition:  map[uint64]int{},
		reads:      map[string]uint64{},
		dropRate:   []float64{0, 0.05, 0.2}[r.IntN(3)],
		membership: membership,
	}
	// Flow control and batching limits vary per seed, from one entry per
	// message and one message in flight to no limits.
	maxMsg := []uint64{0, 64, noLimit}[r.IntN(3)]
	inflight := []int{1, 4, 256}[r.IntN(3)]
	inflightBytes := []uint64{0, 100}[r.IntN(2)]
	maxCommitted := []uint64{0, 50}[r.IntN(2)]
	// With check-quorum, leaders serve lease reads (checkLeaseReads) with
	// a lease of 1 to ElectionTick-1 ticks.
	leaseTicks := 1 + r.IntN(4)
	s.cfg = func(c *Config) {
		c.PreVote = preVote
		c.CheckQuorum = checkQuorum
		if checkQuorum {
			c.LeaseTicks = leaseTicks
		}
		c.MaxSizePerMsg = maxMsg
		c.MaxInflightMsgs = inflight
		c.MaxInflightBytes = inflightBytes
		c.MaxCommittedSizePerReady = maxCommitted
		c.ElectionTick = 5
		c.Rand = rand.NewPCG(seed, c.ID)
	}
	voters := ids(n)
	if membership {
		voters = ids(3)
	}
	for _, id := range ids(n) {
		storage := NewMemoryStorage()
		if id <= uint64(len(voters)) {
			storage = bootstrapStorage(t, voters, nil)
		}
		node := &simNode{id: id, storage: storage}
		s.nodes = append(s.nodes, node)
		s.start(node)
	}
	return s
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d step %d: %s", s.seed, s.now, fmt.Sprintf(format, args...))
}

// start (re)creates a node from its storage; the state machine restarts
// from the storage snapshot.
func (s *sim) start(n *simNode) {
	snap, err := n.storage.Snapshot()
	if err != nil {
		s.fatalf("snapshot: %v", err)
	}
	n.applied = decodeIDs(snap.Data)
	n.appliedIndex = snap.GetMetadata().GetIndex()
	cfg := newTestConfig(n.id, 10, 1, n.storage)
	s.cfg(cfg)
	cfg.Applied = n.appliedIndex
	rn, err := NewRawNode(cfg)
	if err != nil {
		s.fatalf("restart %d: %v", n.id, err)
	}
	n.rn = rn
}

func encodeIDs(ids []uint64) []byte {
	b := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	return b
}

func decodeIDs(b []byte) []uint64 {
	out := make([]uint64, 0, len(b)/8)
	for ; len(b) >= 8; b = b[8:] {
		out = append(out, binary.BigEndian.Uint64(b))
	}
	return out
}

func (s *sim) node(id uint64) *simNode { return s.nodes[id-1] }

// process drains a node's Ready loop, following the persist-before-send
// contract.
func (s *sim) process(n *simNode) {
	for n.rn != nil && n.rn.HasReady() {
		rd := n.rn.Ready()
		if rd.Snapshot != nil {
			if err := n.storage.ApplySnapshot(*rd.Snapshot); err != nil {
				s.fatalf("node %d apply snapshot: %v", n.id, err)
			}
			s.restoreSM(n, rd.Snapshot)
		}
		if err := n.storage.Append(rd.Entries); err != nil {
			s.fatalf("node %d append: %v", n.id, err)
		}
		if !IsEmptyHardState(rd.HardState) {
			_ = n.storage.SetHardState(rd.HardState)
		}
		for _, m := range rd.Messages {
			s.send(n, m)
		}
		for _, e := range rd.CommittedEntries {
			s.apply(n, e)
		}
		for _, rs := range rd.ReadStates {
			s.checkRead(n, rs)
		}
		n.rn.Advance()
		s.checkLeaders()
		s.checkLeaseReads()
	}
}

// checkLeaseReads serves a read at every node holding the lease, at its
// commit index, and checks that it covers everything applied anywhere.
func (s *sim) checkLeaseReads() {
	floor := s.maxApplied()
	for _, n := range s.nodes {
		if n.rn == nil || !n.rn.LeaseValid() {
			continue
		}
		s.leaseReads++
		if c := n.rn.raft.raftLog.committed; c < floor {
			s.fatalf("node %d holds the lease at term %d and reads at index %d, but %d was already applied",
				n.id, n.rn.raft.Term, c, floor)
		}
	}
}

func (s *sim) restoreSM(n *simNode, snap *eraftpb.Snapshot) {
	idx := snap.Metadata.Index
	got := decodeIDs(snap.Data)
	if want := s.canonical(idx); !slices.Equal(got, want) {
		s.fatalf("node %d snapshot at %d holds %v, committed log says %v", n.id, idx, got, want)
	}
	n.applied, n.appliedIndex = got, idx
}

// canonical returns the proposal IDs committed up to index, from the
// global record.
func (s *sim) canonical(index uint64) []uint64 {
	var out []uint64
	for i := uint64(2); i <= index; i++ {
		e, ok := s.committed[i]
		if !ok {
			s.fatalf("no record of committed index %d", i)
		}
		if e.typ == eraftpb.EntryType_EntryNormal && e.data != "" {
			out = append(out, decodeIDs([]byte(e.data))...)
		}
	}
	return out
}

// apply applies a committed entry and checks state machine safety: every
// node applies the same entry at each index, in order.
func (s *sim) apply(n *simNode, e *eraftpb.Entry) {
	if e.Index != n.appliedIndex+1 {
		s.fatalf("node %d applies index %d after %d", n.id, e.Index, n.appliedIndex)
	}
	got := simEntry{term: e.Term, typ: e.EntryType, data: string(e.Data)}
	if rec, ok := s.committed[e.Index]; ok && rec != got {
		s.fatalf("node %d applies %+v at %d, another node applied %+v", n.id, got, e.Index, rec)
	}
	s.committed[e.Index] = got
	n.appliedIndex = e.Index
	if e.EntryType == eraftpb.EntryType_EntryNormal {
		n.applied = append(n.applied, decodeIDs(e.Data)...)
		return
	}
	cc, err := decodeConfChange(e)
	if err != nil {
		s.fatalf("node %d: bad conf change at %d: %v", n.id, e.Index, err)
	}
	cs, err := n.rn.ApplyConfChange(cc)
	if err != nil {
		return // rejected alike on every node
	}
	// Like a real state machine, snapshot the new membership so that new
	// members can be caught up.
	if _, err := n.storage.CreateSnapshot(e.Index, cs, encodeIDs(n.applied)); err != nil {
		s.fatalf("node %d: snapshot at %d: %v", n.id, e.Index, err)
	}
}

func (s *sim) maxApplied() uint64 {
	var m uint64
	for i := range s.committed {
		m = max(m, i)
	}
	return m
}

// checkRead checks linearizability of ReadIndex: the read index covers
// everything applied anywhere before the read was issued.
func (s *sim) checkRead(n *simNode, rs ReadState) {
	floor, ok := s.reads[string(rs.RequestCtx)]
	if !ok {
		s.fatalf("node %d got unknown read %q", n.id, rs.RequestCtx)
	}
	if rs.Index < floor {
		s.fatalf("node %d read %q at index %d, but %d was already committed", n.id, rs.RequestCtx, rs.Index, floor)
	}
}

// checkLeaders checks election safety: at most one leader per term.
func (s *sim) checkLeaders() {
	for _, n := range s.nodes {
		if n.rn == nil || n.rn.raft.state != StateLeader {
			continue
		}
		term := n.rn.raft.Term
		if l, ok := s.leaders[term]; ok && l != n.id {
			s.fatalf("two leaders in term %d: %d and %d", term, l, n.id)
		}
		s.leaders[term] = n.id
	}
}

func (s *sim) connected(a, b uint64) bool { return s.partition[a] == s.partition[b] }

func (s *sim) send(from *simNode, m eraftpb.Message) {
	lost := !s.connected(m.From, m.To) || s.rand.Float64() < s.dropRate
	if m.MsgType == msgSnap {
		status := SnapshotFinish
		if lost {
			status = SnapshotFailure
		}
		from.rn.ReportSnapshot(m.To, status)
	}
	if lost {
		if s.rand.IntN(4) == 0 {
			from.rn.ReportUnreachable(m.To)
		}
		return
	}
	copies := 1
	if s.rand.IntN(20) == 0 {
		copies = 2 // duplicate
	}
	for range copies {
		s.net = append(s.net, simMsg{at: s.now + uint64(s.rand.IntN(4)), m: s.wire(m)})
	}
}

// wire round-trips m through its encoding, as a real network would, so
// nodes never share memory.
func (s *sim) wire(m eraftpb.Message) eraftpb.Message {
	b, err := m.Marshal()
	if err != nil {
		s.fatalf("marshal: %v", err)
	}
	var out eraftpb.Message
	if err := out.Unmarshal(b); err != nil {
		s.fatalf("unmarshal: %v", err)
	}
	return out
}

// deliver delivers, in random order, the messages due now.
func (s *sim) deliver() {
	var due, later []simMsg
	for _, sm := range s.net {
		if sm.at <= s.now {
			due = append(due, sm)
		} else {
			later = append(later, sm)
		}
	}
	s.net = later
	s.rand.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	for _, sm := range due {
		to := s.node(sm.m.To)
		if to.rn == nil || !s.connected(sm.m.From, sm.m.To) {
			continue
		}
		_ = to.rn.Step(sm.m)
		s.process(to)
	}
}

func (s *sim) leader() *simNode {
	for _, n := range s.nodes {
		if n.rn != nil && n.rn.raft.state == StateLeader {
			return n
		}
	}
	return nil
}

// step performs one random action and delivers due messages.
func (s *sim) step() {
	s.now++
	n := s.nodes[s.rand.IntN(len(s.nodes))]
	switch p := s.rand.IntN(100); {
	case p < 40:
		for _, m := range s.nodes {
			if m.rn != nil {
				m.rn.Tick()
				s.process(m)
			}
		}
	case p < 65:
		if l := s.leader(); l != nil && s.rand.IntN(3) > 0 {
			n = l
		}
		if n.rn != nil {
			s.nextPropID++
			_ = n.rn.Propose(encodeIDs([]uint64{s.nextPropID}))
		}
	case p < 70:
		if n.rn != nil {
			ctx := fmt.Sprintf("read-%d", s.now)
			s.reads[ctx] = s.maxApplied()
			n.rn.ReadIndex([]byte(ctx))
		}
	case p < 73:
		s.compact(n)
	case p < 76:
		if n.rn != nil {
			n.rn = nil // crash: volatile state is lost
		} else {
			s.start(n)
		}
	case p < 78:
		for _, m := range s.nodes {
			s.partition[m.id] = s.rand.IntN(2)
		}
	case p < 81:
		clear(s.partition)
	case p < 84:
		if l := s.leader(); l != nil && s.membership {
			_ = l.rn.ProposeConfChange(s.randomConfChange(l))
		}
	case p < 85:
		if l := s.leader(); l != nil {
			l.rn.TransferLeader(uint64(1 + s.rand.IntN(len(s.nodes))))
			n = l
		}
	}
	s.process(n)
	s.deliver()
	if s.now%10 == 0 {
		s.checkLogMatching()
	}
}

// checkLogMatching checks the Log Matching property (Raft paper 5.3): if
// two logs have an entry with the same index and term, they are identical
// up to that index.
func (s *sim) checkLogMatching() {
	for i, a := range s.nodes {
		for _, b := range s.nodes[i+1:] {
			if a.rn == nil || b.rn == nil {
				continue
			}
			la, lb := a.rn.raft.raftLog, b.rn.raft.raftLog
			lo, hi := max(la.firstIndex(), lb.firstIndex()), min(la.lastIndex(), lb.lastIndex())
			if lo > hi {
				continue
			}
			ea, errA := la.slice(lo, hi+1, noLimit)
			eb, errB := lb.slice(lo, hi+1, noLimit)
			if errA != nil || errB != nil {
				s.fatalf("reading logs: %v, %v", errA, errB)
			}
			matched := false
			for k := len(ea) - 1; k >= 0; k-- {
				matched = matched || ea[k].Term == eb[k].Term
				if matched && (ea[k].Term != eb[k].Term || ea[k].EntryType != eb[k].EntryType || string(ea[k].Data) != string(eb[k].Data)) {
					s.fatalf("log matching violated between %d and %d at index %d", a.id, b.id, ea[k].Index)
				}
			}
		}
	}
}

// randomConfChange returns a random (possibly refused) membership change.
func (s *sim) randomConfChange(l *simNode) ConfChangeI {
	single := func() *eraftpb.ConfChangeSingle {
		typ := []eraftpb.ConfChangeType{add, learner, remove}[s.rand.IntN(3)]
		return &eraftpb.ConfChangeSingle{ChangeType: typ, NodeId: uint64(1 + s.rand.IntN(len(s.nodes)))}
	}
	cfg := l.rn.raft.trk.config
	switch p := s.rand.IntN(10); {
	case cfg.joint() && !cfg.autoLeave:
		return &eraftpb.ConfChangeV2{}
	case p < 5:
		c := single()
		return &eraftpb.ConfChange{ChangeType: c.ChangeType, NodeId: c.NodeId}
	case p < 8:
		return &eraftpb.ConfChangeV2{Changes: []*eraftpb.ConfChangeSingle{single(), single()}}
	default:
		return &eraftpb.ConfChangeV2{Transition: eraftpb.ConfChangeTransition_Explicit, Changes: []*eraftpb.ConfChangeSingle{single()}}
	}
}

// compact snapshots the state machine at its applied index and compacts
// the log, keeping a few entries.
func (s *sim) compact(n *simNode) {
	if n.rn == nil || n.appliedIndex < 2 {
		return
	}
	cs := n.rn.raft.trk.confState()
	if _, err := n.storage.CreateSnapshot(n.appliedIndex, &cs, encodeIDs(n.applied)); err != nil {
		return
	}
	if keep := uint64(s.rand.IntN(4)); n.appliedIndex > keep+1 {
		_ = n.storage.Compact(n.appliedIndex - keep)
	}
}

// heal restarts every node, removes partitions and drops, and runs until
// every node applied everything, including a final proposal (re-proposed
// if lost in a leader change, as an uncommitted proposal may be).
func (s *sim) heal() {
	clear(s.partition)
	s.dropRate = 0
	for _, n := range s.nodes {
		if n.rn == nil {
			s.start(n)
		}
	}
	s.nextPropID++
	final := s.nextPropID
	proposedAt := -1
	for round := range 2000 {
		s.now++
		for _, n := range s.nodes {
			n.rn.Tick()
			s.process(n)
		}
		s.deliver()
		if s.allApplied(final) {
			return
		}
		l := s.leader()
		if l == nil || !l.rn.raft.committedEntryInCurrentTerm() {
			continue
		}
		if cfg := l.rn.raft.trk.config; cfg.joint() && !cfg.autoLeave && l.rn.raft.pendingConfIndex <= l.rn.raft.raftLog.applied {
			_ = l.rn.ProposeConfChange(&eraftpb.ConfChangeV2{})
			s.process(l)
		}
		if proposedAt < 0 || round-proposedAt > 50 {
			if l.rn.Propose(encodeIDs([]uint64{final})) == nil {
				proposedAt = round
			}
			s.process(l)
		}
	}
	var states []string
	for _, n := range s.nodes {
		states = append(states, fmt.Sprintf("%d:%s term=%d applied=%d log=%s", n.id, n.rn.raft.state, n.rn.raft.Term, n.appliedIndex, n.rn.raft.raftLog))
	}
	s.fatalf("cluster did not converge after healing: %v", states)
}

// allApplied reports whether every member applied the same log, which
// contains every entry any node applied and the final proposal. Removed
// nodes are not expected to catch up.
func (s *sim) allApplied(final uint64) bool {
	l := s.leader()
	if l == nil {
		return false
	}
	cfg := l.rn.raft.trk.config
	if cfg.joint() {
		return false
	}
	var members []*simNode
	for _, n := range s.nodes {
		if _, learner := cfg.learners[n.id]; learner || cfg.voters.contains(n.id) {
			members = append(members, n)
		}
	}
	last := s.maxApplied()
	for _, n := range members {
		if n.appliedIndex != last || !slices.Contains(n.applied, final) {
			return false
		}
	}
	want := s.canonical(last)
	for _, n := range members {
		if !slices.Equal(n.applied, want) {
			s.fatalf("node %d applied %v, committed log is %v", n.id, n.applied, want)
		}
	}
	return true
}

// TestSimulation runs 200 seeds of 300 steps per cluster shape; with
// TINYKV_LONG=1, 3000 seeds of 3000 steps. TINYKV_SEED_OFFSET shifts the
// seed range to explore new schedules; a failure prints its seed.
func TestSimulation(t *testing.T) {
	seeds, steps := uint64(200), 300
	if os.Getenv("TINYKV_LONG") != "" {
		seeds, steps = 3000, 3000
	}
	var offset uint64
	if v := os.Getenv("TINYKV_SEED_OFFSET"); v != "" {
		var err error
		if offset, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("TINYKV_SEED_OFFSET: %v", err)
		}
	}
	for _, tc := range []struct {
		size       int
		membership bool
	}{{3, false}, {5, false}, {5, true}} {
		name := fmt.Sprintf("%dnodes", tc.size)
		if tc.membership {
			name += "-membership"
		}
		t.Run(name, func(t *testing.T) {
			leaseReads := 0
			for seed := offset; seed < offset+seeds; seed++ {
				s := newSim(t, seed, tc.size, tc.membership)
				for range steps {
					s.step()
				}
				s.heal()
				leaseReads += s.leaseReads
			}
			if leaseReads == 0 {
				t.Fatal("no lease read was served: the lease check is vacuous")
			}
		})
	}
}
