package raft

import (
	"errors"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// ErrStepLocalMsg is returned when a local-only message is passed to
// RawNode.Step.
var ErrStepLocalMsg = errors.New("raft: cannot step raft local message")

// ErrStepPeerNotFound is returned when a response comes from a node that is
// not a member.
var ErrStepPeerNotFound = errors.New("raft: cannot step as peer not found")

// SoftState is volatile state that need not be persisted.
type SoftState struct {
	Lead      uint64
	RaftState StateType
}

// Ready is a batch of work for the application. See the package
// documentation for the order in which its parts must be handled.
type Ready struct {
	// SoftState is non-nil when the leader or role changed.
	SoftState *SoftState

	// HardState must be persisted before sending Messages. It is the zero
	// value when unchanged.
	HardState eraftpb.HardState

	// ReadStates answer ReadIndex requests. A read is served once the
	// application applied up to ReadState.Index.
	ReadStates []ReadState

	// Entries must be appended to stable storage before sending Messages.
	Entries []*eraftpb.Entry

	// Snapshot, if not nil, must be applied to stable storage (and the
	// state machine) before sending Messages.
	Snapshot *eraftpb.Snapshot

	// CommittedEntries must be applied to the state machine, in order,
	// after Entries and HardState are persisted. They may overlap Entries.
	CommittedEntries []*eraftpb.Entry

	// Messages are to be sent after everything above is persisted.
	// Snapshot messages must be followed by RawNode.ReportSnapshot.
	Messages []eraftpb.Message

	// MustSync tells whether HardState and Entries must be synced to disk
	// (fsync) rather than merely written.
	MustSync bool
}

// readyMarks remembers what the last Ready handed out, to acknowledge it in
// Advance.
type readyMarks struct {
	lastEntIndex, lastEntTerm uint64
	snapIndex                 uint64
	appliedIndex              uint64
}

// RawNode is the application-facing, thread-unsafe Raft node. The
// application drives it: Tick for time, Step for received messages,
// Propose & co. for requests, and the HasReady/Ready/Advance loop for
// output. See the package documentation.
type RawNode struct {
	raft       *raft
	prevSoftSt SoftState
	prevHardSt eraftpb.HardState
	marks      readyMarks
}

// NewRawNode creates a node from cfg. The initial state (HardState,
// ConfState, log) is read from cfg.Storage.
func NewRawNode(cfg *Config) (*RawNode, error) {
	r, err := newRaft(cfg)
	if err != nil {
		return nil, err
	}
	return &RawNode{raft: r, prevSoftSt: r.softState(), prevHardSt: r.hardState()}, nil
}

// Tick advances the logical clock by one tick.
func (rn *RawNode) Tick() { rn.raft.tick() }

// Campaign makes this node start an election (subject to pre-vote).
func (rn *RawNode) Campaign() error {
	return rn.raft.Step(&eraftpb.Message{MsgType: eraftpb.MessageType_MsgHup})
}

// proposal co-allocates a proposed entry and the one-element slice pointing
// to it.
type proposal struct {
	entry eraftpb.Entry
	ents  [1]*eraftpb.Entry
}

// Propose proposes data to be appended to the log. It returns
// ErrProposalDropped if the proposal cannot be accepted now; success does
// not mean the entry will commit.
func (rn *RawNode) Propose(data []byte) error {
	p := &proposal{entry: eraftpb.Entry{Data: data}}
	p.ents[0] = &p.entry
	return rn.raft.Step(&eraftpb.Message{
		MsgType: eraftpb.MessageType_MsgPropose,
		From:    rn.raft.id,
		Entries: p.ents[:],
	})
}

// ProposeConfChange proposes a membership change (*eraftpb.ConfChange or
// *eraftpb.ConfChangeV2). The leader replaces a change it must refuse
// (another change pending, invalid change, ...) with an empty entry.
func (rn *RawNode) ProposeConfChange(cc ConfChangeI) error {
	_, typ, err := confChangeToV2(cc)
	if err != nil {
		return err
	}
	data, err := cc.Marshal()
	if err != nil {
		return err
	}
	return rn.raft.Step(&eraftpb.Message{
		MsgType: eraftpb.MessageType_MsgPropose,
		From:    rn.raft.id,
		Entries: []*eraftpb.Entry{{EntryType: typ, Data: data}},
	})
}

// ApplyConfChange applies a committed conf change; the application calls it
// when it applies the conf change entry. It returns the resulting
// ConfState, which the application should persist with its state. An
// invalid change is rejected identically on every node: the configuration
// stays unchanged and an error is returned.
func (rn *RawNode) ApplyConfChange(cc ConfChangeI) (*eraftpb.ConfState, error) {
	v2, _, err := confChangeToV2(cc)
	if err != nil {
		return nil, err
	}
	cs, err := rn.raft.applyConfChange(v2)
	return &cs, err
}

// Step feeds a message received from the network. The node takes
// ownership of m's entries (it may modify and retain them), so a message
// must be stepped at most once.
func (rn *RawNode) Step(m eraftpb.Message) error {
	if IsLocalMsg(m.MsgType) {
		return ErrStepLocalMsg
	}
	if IsResponseMsg(m.MsgType) && rn.raft.trk.progress.get(m.From) == nil {
		return ErrStepPeerNotFound
	}
	return rn.raft.Step(&m)
}

// TransferLeader asks the leader to hand leadership to transferee. While
// the transfer is in progress, proposals are dropped; it is aborted after
// an election timeout.
func (rn *RawNode) TransferLeader(transferee uint64) {
	_ = rn.raft.Step(&eraftpb.Message{MsgType: eraftpb.MessageType_MsgTransferLeader, From: transferee})
}

// ReadIndex requests a linearizable read. The answer arrives in
// Ready.ReadStates with the same rctx, which should be unique.
func (rn *RawNode) ReadIndex(rctx []byte) {
	_ = rn.raft.Step(&eraftpb.Message{
		MsgType: eraftpb.MessageType_MsgReadIndex,
		Entries: []*eraftpb.Entry{{Data: rctx}},
	})
}

// LeaseValid reports whether this node holds the leader lease
// (Config.LeaseTicks), so that it may serve a read locally at its commit
// index, once applied, without a ReadIndex round. It is true only while
// this node is the leader, has committed an entry of its term, is not
// transferring leadership (and has not sent MsgTimeoutNow in its term),
// and fewer than LeaseTicks ticks have passed since it sent a heartbeat
// round that a quorum has acknowledged. Always false with LeaseTicks 0.
// The argument for its safety is at the top of lease.go; it assumes that
// ticks run at about the same rate on every member and that Campaign is
// not called on a member that may be following a live leader.
func (rn *RawNode) LeaseValid() bool { return rn.raft.leaseValid() }

// ReportUnreachable reports that a message to id could not be delivered.
func (rn *RawNode) ReportUnreachable(id uint64) {
	_ = rn.raft.Step(&eraftpb.Message{MsgType: eraftpb.MessageType_MsgUnreachable, From: id})
}

// SnapshotStatus is the outcome of sending a snapshot.
type SnapshotStatus int

const (
	SnapshotFinish SnapshotStatus = 1 + iota
	SnapshotFailure
)

// ReportSnapshot reports the outcome of sending a snapshot to id. It must
// be called for every MsgSnapshot sent, or replication to id stalls.
func (rn *RawNode) ReportSnapshot(id uint64, status SnapshotStatus) {
	_ = rn.raft.Step(&eraftpb.Message{
		MsgType: eraftpb.MessageType_MsgSnapStatus,
		From:    id,
		Reject:  status == SnapshotFailure,
	})
}

// HasReady reports whether Ready would return something to do. It must not
// be called between Ready and Advance.
func (rn *RawNode) HasReady() bool {
	r := rn.raft
	if r.softState() != rn.prevSoftSt {
		return true
	}
	if hs := r.hardState(); !IsEmptyHardState(hs) && !isHardStateEqual(hs, rn.prevHardSt) {
		return true
	}
	return r.raftLog.hasPendingSnapshot() || len(r.msgs) > 0 || len(r.raftLog.unstableEntries()) > 0 ||
		r.raftLog.hasNextCommittedEnts() || len(r.readStates) > 0
}

// Ready returns the pending work. The caller must handle it and call
// Advance before calling Ready or HasReady again.
func (rn *RawNode) Ready() Ready {
	r := rn.raft
	rd := Ready{
		Entries:          r.raftLog.unstableEntries(),
		CommittedEntries: r.raftLog.nextCommittedEnts(),
		Messages:         r.takeMessages(),
		ReadStates:       r.readStates,
		Snapshot:         r.raftLog.unstable.snapshot,
	}
	if ss := r.softState(); ss != rn.prevSoftSt {
		rn.prevSoftSt = ss
		changed := ss
		rd.SoftState = &changed
	}
	if hs := r.hardState(); !isHardStateEqual(hs, rn.prevHardSt) {
		rd.MustSync = hs.Term != rn.prevHardSt.Term || hs.Vote != rn.prevHardSt.Vote
		rn.prevHardSt = hs
		rd.HardState = hs
	}
	rd.MustSync = rd.MustSync || len(rd.Entries) > 0

	rn.marks = readyMarks{}
	if n := len(rd.Entries); n > 0 {
		rn.marks.lastEntIndex, rn.marks.lastEntTerm = rd.Entries[n-1].Index, rd.Entries[n-1].Term
	}
	if rd.Snapshot != nil {
		rn.marks.snapIndex = rd.Snapshot.Metadata.Index
	}
	if n := len(rd.CommittedEntries); n > 0 {
		rn.marks.appliedIndex = rd.CommittedEntries[n-1].Index
		r.raftLog.acceptApplying(rn.marks.appliedIndex)
		r.reduceUncommittedSize(rd.CommittedEntries)
	}
	r.readStates = nil
	return rd
}

// Advance acknowledges that the last Ready was fully handled: entries and
// snapshot persisted, committed entries applied, messages sent.
func (rn *RawNode) Advance() {
	r := rn.raft
	if rn.marks.lastEntIndex != 0 {
		r.raftLog.stableTo(rn.marks.lastEntIndex, rn.marks.lastEntTerm)
	}
	if rn.marks.snapIndex != 0 {
		r.raftLog.stableSnapTo(rn.marks.snapIndex)
		r.appliedTo(rn.marks.snapIndex)
	}
	if rn.marks.appliedIndex != 0 {
		r.appliedTo(rn.marks.appliedIndex)
	}
	rn.marks = readyMarks{}
}
