package raft

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// StateType is the role of a node.
type StateType uint8

const (
	StateFollower StateType = iota
	StateCandidate
	StateLeader
	StatePreCandidate
)

func (st StateType) String() string {
	switch st {
	case StateFollower:
		return "StateFollower"
	case StateCandidate:
		return "StateCandidate"
	case StateLeader:
		return "StateLeader"
	case StatePreCandidate:
		return "StatePreCandidate"
	}
	return fmt.Sprintf("StateType(%d)", uint8(st))
}

type campaignType uint8

const (
	// campaignPreElection runs the pre-vote phase first.
	campaignPreElection campaignType = iota
	// campaignElection is a normal election.
	campaignElection
	// campaignTransfer is an election requested by the leader through
	// MsgTimeoutNow; it bypasses pre-vote and the leader lease.
	campaignTransfer
)

// campaignTransferCtx marks vote requests of a leader transfer.
var campaignTransferCtx = []byte("CampaignTransfer")

// ErrProposalDropped is returned when a proposal is ignored: there is no
// known leader, a leader transfer is in progress, this node is not a
// member, or the leader's uncommitted log is full
// (Config.MaxUncommittedEntriesSize). The caller may retry.
var ErrProposalDropped = errors.New("raft: proposal dropped")

// raft is the protocol state machine. It has no goroutines, clocks or IO:
// time advances through tick, input arrives through Step, and output is
// collected from msgs, readStates and the log by RawNode.
type raft struct {
	id uint64

	// Term and Vote are persisted in HardState.
	// Invariant: Vote is None or the node this node voted for in Term.
	Term uint64
	Vote uint64

	readStates []ReadState
	raftLog    *raftLog

	maxMsgSize uint64
	trk        tracker

	state StateType

	// msgs are outgoing messages, sent after the next Ready is persisted.
	msgs []eraftpb.Message

	// lead is the known leader of Term, or None.
	lead uint64
	// leadTransferee is the target of an ongoing leader transfer, or None.
	leadTransferee uint64
	// timeoutNowSent is set once this leader sent MsgTimeoutNow in its
	// term: the receiver may be elected at once, so the lease is over.
	timeoutNowSent bool
	// pendingConfIndex is the index of the latest conf change proposed by
	// this leader (or the last index at election time). A new conf change
	// is only accepted once applied >= pendingConfIndex, so at most one is
	// pending at any time.
	pendingConfIndex uint64

	readOnly *readOnly
	// rounds numbers this leader's heartbeat rounds and their
	// acknowledgements, for ReadIndex and the lease (lease.go).
	rounds heartbeatRounds
	// pendingReadIndexMessages are ReadIndex requests received before the
	// leader committed an entry of its term.
	pendingReadIndexMessages []eraftpb.Message

	// electionElapsed counts ticks since the last election timeout reset
	// (for a leader: since the last check-quorum round).
	electionElapsed int
	// heartbeatElapsed counts ticks since the last heartbeat (leader only).
	heartbeatElapsed int
	// ticks is the logical clock: the number of tick calls since this node
	// was created (plus ElectionTick for a FreshGroup node). It is never
	// reset.
	ticks uint64
	// leaderContactTick is ticks when this node last heard from the leader
	// of its term, or when it was created. It never decreases; with
	// leaseTicks > 0, votes are refused for an election timeout after it
	// (voteRefusalActive).
	leaderContactTick uint64
	// leaseTicks is Config.LeaseTicks; 0 means no lease.
	leaseTicks uint64

	// maxUncommittedSize is Config.MaxUncommittedEntriesSize (noLimit for
	// 0). uncommittedSize is the payload of the entries this leader
	// accepted in its term and has not yet handed out as committed; it may
	// underestimate (entries of earlier terms are subtracted too,
	// saturating at 0) but never overestimates.
	maxUncommittedSize uint64
	uncommittedSize    uint64

	checkQuorum               bool
	preVote                   bool
	disableProposalForwarding bool

	heartbeatTimeout int
	electionTimeout  int
	// randomizedElectionTimeout is in [electionTimeout, 2*electionTimeout).
	randomizedElectionTimeout int

	logger *slog.Logger
	rand   *rand.Rand
}

func newRaft(c *Config) (*raft, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	hs, cs, err := c.Storage.InitialState()
	if err != nil {
		return nil, err
	}
	r := &raft{
		id:                        c.ID,
		lead:                      None,
		raftLog:                   newLog(c.Storage, committedLimit(c.MaxCommittedSizePerReady)),
		maxMsgSize:                c.MaxSizePerMsg,
		trk:                       newTracker(c.MaxInflightMsgs, c.MaxInflightBytes),
		electionTimeout:           c.ElectionTick,
		heartbeatTimeout:          c.HeartbeatTick,
		checkQuorum:               c.CheckQuorum,
		preVote:                   c.PreVote,
		readOnly:                  newReadOnly(c.ReadOnlyOption),
		rounds:                    heartbeatRounds{acks: map[uint64]roundAck{}},
		leaseTicks:                uint64(c.LeaseTicks),
		maxUncommittedSize:        committedLimit(c.MaxUncommittedEntriesSize),
		disableProposalForwarding: c.DisableProposalForwarding,
		logger:                    c.logger(),
		rand:                      c.rand(),
	}
	cfg, prs, err := restoreConfig(&r.trk, &cs, r.raftLog.lastIndex())
	if err != nil {
		return nil, err
	}
	r.switchToConfig(cfg, prs)
	if !IsEmptyHardState(hs) {
		if err := r.loadState(hs); err != nil {
			return nil, err
		}
	}
	if c.Applied > 0 {
		if c.Applied > r.raftLog.committed {
			return nil, fmt.Errorf("raft: applied(%d) is beyond committed(%d)", c.Applied, r.raftLog.committed)
		}
		r.raftLog.appliedTo(max(c.Applied, r.raftLog.applied))
	}
	if c.FreshGroup {
		// Start the clock past the startup refusal (voteRefusalActive).
		r.ticks = uint64(r.electionTimeout)
	}
	r.becomeFollower(r.Term, None)
	r.logger.Info("raft: new node", "id", r.id, "term", r.Term, "commit", r.raftLog.committed,
		"applied", r.raftLog.applied, "lastindex", r.raftLog.lastIndex(), "config", r.trk.config.String())
	return r, nil
}

func committedLimit(v uint64) uint64 {
	if v == 0 {
		return noLimit
	}
	return v
}

func (r *raft) loadState(hs eraftpb.HardState) error {
	if hs.Commit < r.raftLog.committed || hs.Commit > r.raftLog.lastIndex() {
		return fmt.Errorf("raft: %d state.commit %d is out of range [%d, %d]",
			r.id, hs.Commit, r.raftLog.committed, r.raftLog.lastIndex())
	}
	r.raftLog.committed = hs.Commit
	r.Term = hs.Term
	r.Vote = hs.Vote
	return nil
}

func (r *raft) softState() SoftState { return SoftState{Lead: r.lead, RaftState: r.state} }

func (r *raft) hardState() eraftpb.HardState {
	return eraftpb.HardState{Term: r.Term, Vote: r.Vote, Commit: r.raftLog.committed}
}

// send queues m, filling in From and (for non-local, non-vote messages) the
// current term.
func (r *raft) send(m eraftpb.Message) {
	if m.From == None {
		m.From = r.id
	}
	switch m.MsgType {
	case eraftpb.MessageType_MsgRequestVote, eraftpb.MessageType_MsgRequestVoteResponse,
		eraftpb.MessageType_MsgRequestPreVote, eraftpb.MessageType_MsgRequestPreVoteResponse:
		// Vote messages carry the term they are about, which is not
		// necessarily the current term (pre-vote, rejections).
		if m.Term == 0 {
			panic(fmt.Sprintf("raft: term should be set when sending %s", m.MsgType))
		}
	case eraftpb.MessageType_MsgPropose, eraftpb.MessageType_MsgReadIndex:
		// Forwarded requests keep term 0: they are local to the cluster
		// and must not be rejected for their term.
	default:
		m.Term = r.Term
	}
	if r.msgs == nil {
		// Most Readys carry one broadcast: room for a message per member.
		r.msgs = make([]eraftpb.Message, 0, max(len(r.trk.progress.ids), 1))
	}
	r.msgs = append(r.msgs, m)
}

// takeMessages hands out the queued messages and forgets them, so that
// the node does not keep their entries alive once the application is done
// with them.
func (r *raft) takeMessages() []eraftpb.Message {
	msgs := r.msgs
	r.msgs = nil
	return msgs
}

func (r *raft) reset(term uint64) {
	if r.Term != term {
		r.Term = term
		r.Vote = None
	}
	r.lead = None
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.resetRandomizedElectionTimeout()
	r.abortLeaderTransfer()
	r.trk.resetVotes()
	last := r.raftLog.lastIndex()
	for _, id := range r.trk.progress.ids {
		pr := r.trk.progress.get(id)
		pr.Match, pr.Next, pr.sentCommit = 0, last+1, 0
		pr.resetState(ProgressStateProbe)
		pr.RecentActive = false
		if id == r.id {
			pr.Match = last
		}
	}
	r.pendingConfIndex = 0
	r.timeoutNowSent = false
	r.uncommittedSize = 0
	r.readOnly = newReadOnly(r.readOnly.option)
	r.rounds.reset()
	r.pendingReadIndexMessages = nil
}

func (r *raft) tick() {
	r.ticks++
	if r.state == StateLeader {
		r.tickHeartbeat()
	} else {
		r.tickElection()
	}
}

func (r *raft) becomeFollower(term, lead uint64) {
	r.reset(term)
	r.lead = lead
	r.state = StateFollower
}

// Step advances the state machine with message m. It takes ownership of m
// and its entries.
func (r *raft) Step(m *eraftpb.Message) error {
	switch {
	case m.Term == 0:
		// Only local messages and requests that may be forwarded between
		// nodes (proposals, reads, transfers) have no term; anything else
		// without a term is malformed.
		if !termless(m.MsgType) {
			return nil
		}
	case m.Term > r.Term:
		if isVoteMsg(m.MsgType) && r.voteRefusalActive(m) {
			// We heard from a leader recently: ignore the disruptive
			// request without adopting its term.
			return nil
		}
		switch {
		case m.MsgType == eraftpb.MessageType_MsgRequestPreVote:
			// A pre-vote never changes our term.
		case m.MsgType == eraftpb.MessageType_MsgRequestPreVoteResponse && !m.Reject:
			// The term is bumped once the pre-vote is won.
		case m.MsgType == eraftpb.MessageType_MsgAppend, m.MsgType == eraftpb.MessageType_MsgHeartbeat,
			m.MsgType == eraftpb.MessageType_MsgSnapshot:
			r.becomeFollower(m.Term, m.From)
		default:
			r.becomeFollower(m.Term, None)
		}
	case m.Term < r.Term:
		r.stepStale(m)
		return nil
	}

	switch m.MsgType {
	case eraftpb.MessageType_MsgHup:
		if r.preVote {
			r.hup(campaignPreElection)
		} else {
			r.hup(campaignElection)
		}
	case eraftpb.MessageType_MsgRequestVote, eraftpb.MessageType_MsgRequestPreVote:
		r.handleVoteRequest(m)
	default:
		switch r.state {
		case StateLeader:
			return r.stepLeader(m)
		case StateCandidate, StatePreCandidate:
			return r.stepCandidate(m)
		default:
			return r.stepFollower(m)
		}
	}
	return nil
}

// termless reports whether messages of type t are legitimately sent
// without a term.
func termless(t eraftpb.MessageType) bool {
	switch t {
	case eraftpb.MessageType_MsgPropose, eraftpb.MessageType_MsgReadIndex, eraftpb.MessageType_MsgTransferLeader:
		return true
	}
	return IsLocalMsg(t)
}

// stepStale handles a message from an older term.
func (r *raft) stepStale(m *eraftpb.Message) {
	switch {
	case (r.checkQuorum || r.preVote) &&
		(m.MsgType == eraftpb.MessageType_MsgHeartbeat || m.MsgType == eraftpb.MessageType_MsgAppend):
		// A stale leader (e.g. partitioned, whose followers moved on
		// without it because of check-quorum or pre-vote) would never
		// learn of the new term otherwise. Tell it.
		r.send(eraftpb.Message{To: m.From, MsgType: eraftpb.MessageType_MsgAppendResponse})
	case m.MsgType == eraftpb.MessageType_MsgRequestPreVote:
		// Reject so that the pre-candidate learns our term.
		r.send(eraftpb.Message{To: m.From, Term: r.Term, MsgType: eraftpb.MessageType_MsgRequestPreVoteResponse, Reject: true})
	}
}
