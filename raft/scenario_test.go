package raft

// Scenarios of the TinyKV course raft tests (projects 2AA, 2AB, 2C and 3A;
// see the course catalogue) that the rest of the suite does not cover.
// Each cites the Raft paper ("In Search of an Understandable Consensus
// Algorithm", extended version) or the Raft thesis section it checks.

import (
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/stretchr/testify/require"
)

// --- 2AA: leader election ---

// Paper 5.2: a candidate becomes leader only with votes from a quorum;
// black holes never answer.
func TestLeaderElectionNeedsQuorum(t *testing.T) {
	for i, tt := range []struct {
		peers []*raft
		state StateType
	}{
		{[]*raft{nil, nil, nil}, StateLeader},
		{[]*raft{nil, nil, blackHole}, StateLeader},
		{[]*raft{nil, blackHole, blackHole}, StateCandidate},
		{[]*raft{nil, blackHole, blackHole, nil}, StateCandidate},
		{[]*raft{nil, blackHole, blackHole, nil, nil}, StateLeader},
	} {
		nw := newNetwork(t, nil, tt.peers...)
		nw.campaign(1)
		require.Equal(t, tt.state, nw.peers[1].state, "case %d", i)
		require.Equal(t, uint64(1), nw.peers[1].Term, "case %d", i)
	}
}

// Paper 5.2: every node of a cluster can become leader in turn, the
// others following it.
func TestLeaderCycle(t *testing.T) {
	for _, preVote := range []bool{false, true} {
		nw := newNetwork(t, func(c *Config) { c.PreVote = preVote }, nil, nil, nil)
		for _, id := range []uint64{1, 2, 3} {
			nw.campaign(id)
			for _, p := range nw.peers {
				want := StateFollower
				if p.id == id {
					want = StateLeader
				}
				require.Equal(t, want, p.state, "preVote %t: campaign of %d, node %d", preVote, id, p.id)
			}
		}
	}
}

// Paper 5.1 and 5.2: in any state, a vote request of a higher term with an
// up-to-date log is granted, and the receiver follows the new term.
func TestVoteFromAnyState(t *testing.T) {
	for _, st := range []StateType{StateFollower, StateCandidate, StatePreCandidate, StateLeader} {
		r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(3)))
		r.Term = 1
		switch st {
		case StateCandidate:
			r.becomeCandidate()
		case StatePreCandidate:
			r.becomePreCandidate()
		case StateLeader:
			r.becomeCandidate()
			r.becomeLeader()
		}
		readMessages(r)
		term := r.Term + 1
		require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: term, MsgType: msgVote, Index: 42, LogTerm: term}))
		msgs := readMessages(r)
		require.Len(t, msgs, 1, "%s", st)
		require.Equal(t, msgVoteResp, msgs[0].MsgType, "%s", st)
		require.False(t, msgs[0].Reject, "%s", st)
		require.Equal(t, StateFollower, r.state, "%s", st)
		require.Equal(t, term, r.Term, "%s", st)
		require.Equal(t, uint64(2), r.Vote, "%s", st)
	}
}

// Paper 5.2: a candidate cut off while the others moved on becomes a
// follower of the current leader on its heartbeat or append.
func TestCandidateResetTermOnLeaderMessage(t *testing.T) {
	for _, typ := range []eraftpb.MessageType{msgHeartbeat, msgApp} {
		nw := newNetwork(t, nil, nil, nil, nil)
		nw.campaign(1)
		nw.isolate(3)
		nw.campaign(2)
		nw.campaign(1)
		require.Equal(t, StateLeader, nw.peers[1].state)
		require.Equal(t, uint64(3), nw.peers[1].Term)
		r3 := nw.peers[3]
		setRandomizedElectionTimeout(r3, r3.electionTimeout)
		for range r3.electionTimeout {
			r3.tick()
		}
		readMessages(r3)
		require.Equal(t, StateCandidate, r3.state)
		require.Equal(t, uint64(2), r3.Term)
		nw.recover()
		nw.send(eraftpb.Message{From: 1, To: 3, Term: nw.peers[1].Term, MsgType: typ})
		require.Equal(t, StateFollower, r3.state, "%s", typ)
		require.Equal(t, uint64(3), r3.Term, "%s", typ)
		require.Equal(t, uint64(1), r3.lead, "%s", typ)
	}
}

// Raft thesis 6.2 and 9.6: with check-quorum, a node that campaigned while
// cut off answers the leader's stale-term heartbeat with its higher term,
// and the leader steps down.
func TestDisruptiveFollower(t *testing.T) {
	nw := newNetwork(t, withCheckQuorum, nil, nil, nil)
	nw.campaign(1)
	lead, r3 := nw.peers[1], nw.peers[3]
	nw.isolate(3)
	setRandomizedElectionTimeout(r3, r3.electionTimeout)
	for range r3.electionTimeout {
		r3.tick()
	}
	readMessages(r3)
	require.Equal(t, StateCandidate, r3.state)
	require.Equal(t, uint64(2), r3.Term)
	nw.recover()
	nw.send(eraftpb.Message{From: 1, To: 3, Term: lead.Term, MsgType: msgHeartbeat})
	require.Equal(t, StateFollower, lead.state)
	require.Equal(t, uint64(2), lead.Term)
}

// Paper 5.2: MsgBeat makes a leader send heartbeats; other states ignore
// it.
func TestRecvMsgBeat(t *testing.T) {
	for st, want := range map[StateType]int{StateFollower: 0, StateCandidate: 0, StateLeader: 2} {
		r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(3)))
		switch st {
		case StateCandidate:
			r.becomeCandidate()
		case StateLeader:
			r.becomeCandidate()
			r.becomeLeader()
		}
		readMessages(r)
		require.NoError(t, step(t, r, eraftpb.Message{From: 1, To: 1, MsgType: msgBeat}))
		msgs := readMessages(r)
		require.Len(t, msgs, want, "%s", st)
		for _, m := range msgs {
			require.Equal(t, msgHeartbeat, m.MsgType)
		}
	}
}

// Paper 5.2: campaigning again as leader changes nothing.
func TestCampaignWhileLeader(t *testing.T) {
	for _, preVote := range []bool{false, true} {
		c := newTestConfig(1, 10, 1, newTestMemoryStorage(ids(1)))
		c.PreVote = preVote
		r := mustNewRaft(t, c)
		require.NoError(t, step(t, r, eraftpb.Message{From: 1, To: 1, MsgType: msgHup}))
		require.Equal(t, StateLeader, r.state)
		term := r.Term
		require.NoError(t, step(t, r, eraftpb.Message{From: 1, To: 1, MsgType: msgHup}))
		require.Equal(t, StateLeader, r.state)
		require.Equal(t, term, r.Term)
	}
}

// Paper 5.2: two candidates of the same term split the vote and neither
// wins; a later election at a higher term does.
func TestSplitVote(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(1)
	nw.send(eraftpb.Message{From: 2, To: 2, MsgType: msgHup}, eraftpb.Message{From: 3, To: 3, MsgType: msgHup})
	for _, id := range []uint64{2, 3} {
		require.Equal(t, StateCandidate, nw.peers[id].state)
		require.Equal(t, uint64(2), nw.peers[id].Term)
	}
	nw.campaign(2)
	require.Equal(t, StateLeader, nw.peers[2].state)
	require.Equal(t, uint64(3), nw.peers[2].Term)
	require.Equal(t, StateFollower, nw.peers[3].state)
	require.Equal(t, uint64(3), nw.peers[3].Term)
}

// Paper 5.2: randomized timeouts make it rare that several followers (or
// candidates) time out on the same tick. Deterministic: every node's
// randomness is seeded by its ID.
func TestElectionTimeoutNonconflict(t *testing.T) {
	for _, candidates := range []bool{false, true} {
		var rs []*raft
		for _, id := range ids(5) {
			rs = append(rs, newTestRaft(t, id, 10, 1, newTestMemoryStorage(ids(5))))
		}
		conflicts := 0
		const rounds = 1000
		for range rounds {
			for _, r := range rs {
				if candidates {
					r.becomeCandidate()
				} else {
					r.becomeFollower(r.Term+1, None)
				}
				readMessages(r)
			}
			for timedOut := 0; timedOut == 0; {
				for _, r := range rs {
					term := r.Term
					r.tick()
					readMessages(r)
					if r.Term > term {
						timedOut++
					}
				}
				if timedOut > 1 {
					conflicts++
				}
			}
		}
		require.LessOrEqual(t, float64(conflicts)/rounds, 0.3, "candidates %t", candidates)
	}
}

// --- 2AB: log replication ---

// Paper 5.2: of two candidates whose link is cut, the one reaching a
// quorum wins; the other then loses on log freshness (5.4.1) and everyone
// ends as follower of the new term.
func TestDuelingCandidates(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.cut(1, 3)
	nw.campaign(1)
	nw.campaign(3)
	require.Equal(t, StateLeader, nw.peers[1].state)
	require.Equal(t, StateCandidate, nw.peers[3].state)
	nw.recover()
	nw.campaign(3) // term 2; 3 lacks the leader's no-op, so it loses
	for _, tt := range []struct {
		id        uint64
		committed uint64
		entries   int
	}{{1, 1, 1}, {2, 1, 1}, {3, 0, 0}} {
		r := nw.peers[tt.id]
		require.Equal(t, StateFollower, r.state, "node %d", tt.id)
		require.Equal(t, uint64(2), r.Term, "node %d", tt.id)
		require.Equal(t, tt.committed, r.raftLog.committed, "node %d", tt.id)
		require.Len(t, allEntries(r.raftLog), tt.entries, "node %d", tt.id)
	}
}

// Paper 5.2: a cut-off candidate concedes to the leader elected meanwhile
// in its term once it hears from it, and takes its log.
func TestCandidateConcede(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.isolate(1)
	nw.campaign(1)
	nw.campaign(3)
	nw.recover()
	nw.send(eraftpb.Message{From: 3, To: 3, MsgType: msgBeat})
	nw.propose(3, "force follower")
	nw.send(eraftpb.Message{From: 3, To: 3, MsgType: msgBeat})
	require.Equal(t, StateFollower, nw.peers[1].state)
	require.Equal(t, uint64(1), nw.peers[1].Term)
	for _, p := range nw.peers {
		require.Equal(t, uint64(2), p.raftLog.committed, "node %d", p.id)
		require.Equal(t, []string{"", "force follower"}, entryData(allEntries(p.raftLog)), "node %d", p.id)
	}
}

// Paper 5.1: an append of an old term is ignored.
func TestOldMessages(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	nw.campaign(2)
	nw.campaign(1) // leader at term 3
	nw.send(eraftpb.Message{From: 2, To: 1, Term: 2, MsgType: msgApp, Entries: []*eraftpb.Entry{{Index: 3, Term: 2}}})
	nw.propose(1, "somedata")
	for _, p := range nw.peers {
		require.Equal(t, uint64(4), p.raftLog.committed, "node %d", p.id)
		require.Equal(t, []uint64{1, 2, 3, 3}, termsOf(allEntries(p.raftLog)), "node %d", p.id)
		require.Equal(t, "somedata", string(entryAt(t, p, 4).Data))
	}
}

// Paper 5.3: a proposal commits iff a quorum is alive; without a leader it
// is dropped.
func TestProposal(t *testing.T) {
	for i, tt := range []struct {
		peers   []*raft
		success bool
	}{
		{[]*raft{nil, nil, nil}, true},
		{[]*raft{nil, nil, blackHole}, true},
		{[]*raft{nil, blackHole, blackHole}, false},
		{[]*raft{nil, blackHole, blackHole, nil}, false},
		{[]*raft{nil, blackHole, blackHole, nil, nil}, true},
	} {
		nw := newNetwork(t, nil, tt.peers...)
		nw.campaign(1)
		nw.propose(1, "somedata")
		for _, p := range nw.peers {
			if p == nil {
				continue
			}
			if tt.success {
				require.Equal(t, uint64(2), p.raftLog.committed, "case %d node %d", i, p.id)
				require.Equal(t, []string{"", "somedata"}, entryData(allEntries(p.raftLog)), "case %d node %d", i, p.id)
			} else {
				require.Empty(t, allEntries(p.raftLog), "case %d node %d", i, p.id)
			}
		}
		require.Equal(t, uint64(1), nw.peers[1].Term, "case %d", i)
	}
}

// Paper 5.3: a single node commits its proposals alone.
func TestSingleNodeCommit(t *testing.T) {
	nw := newNetwork(t, nil, nil)
	nw.campaign(1)
	nw.propose(1, "a")
	nw.propose(1, "b")
	require.Equal(t, uint64(3), nw.peers[1].raftLog.committed)
}

// Paper 5.4.2: entries a leader could not commit in its term are committed
// by the next leader's own no-op.
func TestCommitWithoutNewTermEntry(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil, nil, nil)
	nw.campaign(1)
	for _, id := range []uint64{3, 4, 5} {
		nw.cut(1, id)
	}
	nw.propose(1, "a")
	nw.propose(1, "b")
	require.Equal(t, uint64(1), nw.peers[1].raftLog.committed)
	nw.recover()
	nw.campaign(2) // 2 has the entries, so it wins; its no-op commits them
	require.Equal(t, StateLeader, nw.peers[2].state)
	require.Equal(t, uint64(4), nw.peers[1].raftLog.committed)
}

// Paper 5.3: a heartbeat answer showing the follower behind makes the
// leader send it the missing entries, with the commit index.
func TestCommitWithHeartbeat(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(5)
	nw.propose(1, "a")
	nw.propose(1, "b")
	require.Equal(t, uint64(3), nw.peers[1].raftLog.committed)
	require.Equal(t, uint64(1), nw.peers[5].raftLog.committed)
	nw.recover()
	nw.send(eraftpb.Message{From: 1, To: 1, MsgType: msgBeat})
	require.Equal(t, uint64(3), nw.peers[5].raftLog.committed)
}

// Paper 5.3 and 5.4.2: a heartbeat never commits entries beyond what the
// follower is known to match. The old leader holds uncommitted entries of
// its own at the indexes the new leader committed.
func TestHeartbeatUpdateCommit(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(1)
	nw.propose(1, "lost a")
	nw.propose(1, "lost b")
	nw.campaign(2)
	for i := range 3 {
		nw.propose(2, fmt.Sprint(i))
	}
	require.Equal(t, uint64(5), nw.peers[2].raftLog.committed) // noops of 1 and 2, and 3 proposals
	nw.recover()
	nw.ignore(msgApp)
	nw.ignore(msgAppResp)
	nw.send(eraftpb.Message{From: 2, To: 2, MsgType: msgBeat})
	old := nw.peers[1]
	require.Equal(t, StateFollower, old.state)
	require.Equal(t, uint64(1), old.raftLog.committed)
	require.Equal(t, []string{"", "lost a", "lost b"}, entryData(allEntries(old.raftLog)))
}

// Paper 5.3: in replicate state the leader sends new entries optimistically
// and moves Next past them; in probe state it waits for an answer first.
func TestLeaderIncreaseNext(t *testing.T) {
	for _, tt := range []struct {
		state ProgressState
		next  uint64
	}{
		{ProgressStateReplicate, 6}, // 3 old entries, the no-op and the proposal
		{ProgressStateProbe, 4},
	} {
		s := newTestMemoryStorage(ids(2))
		require.NoError(t, s.Append(ents(1, 1, 1)))
		r := newTestRaft(t, 1, 10, 1, s)
		r.becomeCandidate()
		r.becomeLeader()
		pr := r.trk.progress.get(2)
		pr.State = tt.state
		pr.Next = 4
		require.NoError(t, step(t, r, propMsg(1, "somedata")))
		require.Equal(t, tt.next, pr.Next, "%s", tt.state)
	}
}

// Paper 5.4.2: a new leader commits entries of earlier terms together with
// an entry of its own term, and hands them out in order.
func TestLeaderCommitPrecedingEntries(t *testing.T) {
	for _, prior := range [][]*eraftpb.Entry{{}, ents(2), ents(1, 1), ents(1, 2)} {
		s := newTestMemoryStorage(ids(3))
		require.NoError(t, s.Append(prior))
		r := newTestRaft(t, 1, 10, 1, s)
		r.loadState(eraftpb.HardState{Term: 2})
		r.becomeCandidate()
		r.becomeLeader()
		require.NoError(t, step(t, r, propMsg(1, "some data")))
		for _, m := range readMessages(r) {
			require.NoError(t, step(t, r, eraftpb.Message{From: m.To, To: 1, Term: r.Term, MsgType: msgAppResp, Index: r.raftLog.lastIndex()}))
		}
		li := uint64(len(prior))
		require.Equal(t, li+2, r.raftLog.committed)
		got := r.raftLog.nextCommittedEnts()
		require.Equal(t, append(termsOf(prior), 3, 3), termsOf(got))
		require.Equal(t, "some data", string(got[li+1].Data))
	}
}

// Paper 5.4.1: with the log states after a leader change (node 1 replicated
// an entry of term 1 to node 2; node 3 wrote one of term 2 and voters 4 and
// 5 saw term 2), node 1's first campaign fails and only raises its term;
// the second wins, and its log overwrites node 3's entry everywhere.
func TestLeaderElectionOverwriteNewerLogs(t *testing.T) {
	mk := func(id uint64, hs eraftpb.HardState, terms ...uint64) *raft {
		s := newTestMemoryStorage(ids(5))
		require.NoError(t, s.Append(ents(terms...)))
		require.NoError(t, s.SetHardState(hs))
		return newTestRaft(t, id, 10, 1, s)
	}
	nw := newNetwork(t, nil,
		mk(1, eraftpb.HardState{Term: 1}, 1),
		mk(2, eraftpb.HardState{Term: 1}, 1),
		mk(3, eraftpb.HardState{Term: 2}, 2),
		mk(4, eraftpb.HardState{Term: 2, Vote: 3}),
		mk(5, eraftpb.HardState{Term: 2, Vote: 3}),
	)
	nw.campaign(1)
	require.Equal(t, StateFollower, nw.peers[1].state)
	require.Equal(t, uint64(2), nw.peers[1].Term)
	nw.campaign(1)
	require.Equal(t, StateLeader, nw.peers[1].state)
	require.Equal(t, uint64(3), nw.peers[1].Term)
	for _, p := range nw.peers {
		require.Equal(t, []uint64{1, 3}, termsOf(allEntries(p.raftLog)), "node %d", p.id)
	}
}

// --- 2C: snapshots ---

func snapMsg(from, to, term, index uint64, voters ...uint64) eraftpb.Message {
	return eraftpb.Message{From: from, To: to, Term: term, MsgType: msgSnap, Snapshot: &eraftpb.Snapshot{
		Metadata: &eraftpb.SnapshotMetadata{Index: index, Term: index, ConfState: &eraftpb.ConfState{Voters: voters}},
	}}
}

// Paper 7: a follower installing the leader's snapshot takes the
// snapshot's membership, even when it overlaps its own only in part, and
// follows the sender.
func TestRestoreFromSnapMsg(t *testing.T) {
	for _, voters := range [][]uint64{{1, 2}, {2, 3, 4}} {
		r := newTestRaft(t, 2, 10, 1, newTestMemoryStorage(ids(3)))
		require.NoError(t, step(t, r, snapMsg(1, 2, 2, 11, voters...)))
		require.Equal(t, uint64(1), r.lead)
		require.Equal(t, uint64(11), r.raftLog.lastIndex())
		require.Equal(t, voters, r.trk.confState().Voters)
	}
}

// persistAndApply plays the application for a node driven without
// RawNode: its unstable entries go to s and everything committed is
// applied.
func persistAndApply(t *testing.T, r *raft, s *MemoryStorage) {
	t.Helper()
	if ents := r.raftLog.unstableEntries(); len(ents) > 0 {
		require.NoError(t, s.Append(ents))
		last := ents[len(ents)-1]
		r.raftLog.stableTo(last.Index, last.Term)
	}
	r.appliedTo(r.raftLog.committed)
}

// compactAtApplied snapshots r at its applied index and compacts s there.
func compactAtApplied(t *testing.T, r *raft, s *MemoryStorage) {
	t.Helper()
	cs := r.trk.confState()
	_, err := s.CreateSnapshot(r.raftLog.applied, &cs, nil)
	require.NoError(t, err)
	require.NoError(t, s.Compact(r.raftLog.applied))
}

// Paper 7: a follower that missed entries the leader has since compacted
// catches up through a snapshot, then through appends.
func TestSlowNodeRestore(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(3)
	for i := range 101 {
		nw.propose(1, fmt.Sprint(i))
	}
	lead, s := nw.peers[1], nw.storage[1]
	persistAndApply(t, lead, s)
	compactAtApplied(t, lead, s)
	nw.recover()
	var snaps int
	nw.msgHook = func(m eraftpb.Message) bool {
		if m.MsgType == msgSnap {
			snaps++
		}
		return true
	}
	nw.send(eraftpb.Message{From: 1, To: 1, MsgType: msgBeat})
	require.Equal(t, 1, snaps)
	nw.propose(1, "after")
	require.Equal(t, lead.raftLog.committed, nw.peers[3].raftLog.committed)
}

// A node restarted from a snapshot followed by one committed entry hands
// out exactly that entry, and nothing else.
func TestRawNodeRestartFromSnapshot(t *testing.T) {
	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{
		Index: 2, Term: 1, ConfState: &eraftpb.ConfState{Voters: []uint64{1, 2}},
	}}))
	entry := &eraftpb.Entry{Term: 1, Index: 3, Data: []byte("foo")}
	require.NoError(t, s.Append([]*eraftpb.Entry{entry}))
	require.NoError(t, s.SetHardState(eraftpb.HardState{Term: 1, Commit: 3}))
	rn, err := NewRawNode(newTestConfig(1, 10, 1, s))
	require.NoError(t, err)
	require.Equal(t, Ready{CommittedEntries: []*eraftpb.Entry{entry}}, rn.Ready())
	rn.Advance()
	require.False(t, rn.HasReady())
}

// --- 3A: membership changes and leader transfer ---

func marshalCC(t *testing.T, cc *eraftpb.ConfChange) []byte {
	t.Helper()
	data, err := cc.Marshal()
	require.NoError(t, err)
	return data
}

// Raft thesis 4.1: once a leader applies the removal of a node, its quorum
// shrinks and entries the remaining node has commit.
func TestCommitAfterRemoveNode(t *testing.T) {
	r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(2)))
	r.becomeCandidate()
	r.becomeLeader()
	cc := &eraftpb.ConfChange{ChangeType: remove, NodeId: 2}
	require.NoError(t, step(t, r, eraftpb.Message{From: 1, To: 1, MsgType: msgProp, Entries: []*eraftpb.Entry{
		{EntryType: eraftpb.EntryType_EntryConfChange, Data: marshalCC(t, cc)},
	}}))
	require.NoError(t, step(t, r, propMsg(1, "hello")))
	// 2 acknowledges the no-op and the conf change, not "hello".
	require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: 1, MsgType: msgAppResp, Index: 2}))
	require.Equal(t, uint64(2), r.raftLog.committed)
	v2, _, err := confChangeToV2(cc)
	require.NoError(t, err)
	_, err = r.applyConfChange(v2)
	require.NoError(t, err)
	require.Equal(t, uint64(3), r.raftLog.committed)
	require.Equal(t, "hello", string(entryAt(t, r, 3).Data))
}

// Raft thesis 3.10: a transfer request may reach a follower, which hands
// it to the leader; leadership can be transferred there and back.
func TestLeaderTransferFromFollowerAndBack(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	nw.send(eraftpb.Message{From: 2, To: 2, MsgType: msgTransfer})
	require.Equal(t, StateLeader, nw.peers[2].state)
	require.Equal(t, StateFollower, nw.peers[1].state)
	require.Equal(t, uint64(2), nw.peers[1].lead)
	nw.propose(2, "x")
	nw.send(eraftpb.Message{From: 1, To: 1, MsgType: msgTransfer})
	require.Equal(t, StateLeader, nw.peers[1].state)
	require.Equal(t, uint64(1), nw.peers[2].lead)
	require.Equal(t, uint64(3), nw.peers[1].Term)
}

// Raft thesis 3.10: a transferee behind the compacted log is first caught
// up by a snapshot, then takes over.
func TestLeaderTransferAfterSnapshot(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	c.drop = func(m eraftpb.Message) bool { return m.To == 3 || m.From == 3 }
	require.NoError(t, c.nodes[1].rn.Propose([]byte("x")))
	c.stabilize()
	lead := c.nodes[1]
	cs := lead.rn.raft.trk.confState()
	applied := lead.rn.BasicStatus().Applied
	_, err := lead.storage.CreateSnapshot(applied, &cs, nil)
	require.NoError(t, err)
	require.NoError(t, lead.storage.Compact(applied))
	c.drop = nil
	lead.rn.TransferLeader(3)
	c.stabilize()
	require.Equal(t, uint64(3), c.leader())
	require.Equal(t, []string{fmt.Sprintf("snap@%d", applied)}, c.nodes[3].applied)
}

// Raft thesis 3.10: a transfer to a node being removed is aborted when
// the removal applies, and a transfer to a removed node is ignored.
func TestLeaderTransferToRemovedNode(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	lead := nw.peers[1]
	nw.ignore(msgTimeoutNow)
	nw.send(eraftpb.Message{From: 3, To: 1, MsgType: msgTransfer})
	require.Equal(t, uint64(3), lead.leadTransferee)
	v2, _, err := confChangeToV2(&eraftpb.ConfChange{ChangeType: remove, NodeId: 3})
	require.NoError(t, err)
	_, err = lead.applyConfChange(v2)
	require.NoError(t, err)
	require.Equal(t, None, lead.leadTransferee)
	nw.send(eraftpb.Message{From: 3, To: 1, MsgType: msgTransfer})
	require.Equal(t, None, lead.leadTransferee)
	require.Equal(t, StateLeader, lead.state)
}

// Raft thesis 3.10: a pending transfer is cancelled by a transfer back to
// the leader, and replaced by one to another node, which completes.
func TestLeaderTransferBackAndSecondTransfer(t *testing.T) {
	for _, second := range []uint64{1, 2} {
		nw := newNetwork(t, nil, nil, nil, nil)
		nw.campaign(1)
		nw.isolate(3)
		lead := nw.peers[1]
		nw.send(eraftpb.Message{From: 3, To: 1, MsgType: msgTransfer})
		require.Equal(t, uint64(3), lead.leadTransferee)
		nw.send(eraftpb.Message{From: second, To: 1, MsgType: msgTransfer})
		require.Equal(t, None, lead.leadTransferee)
		require.Equal(t, StateLeader, nw.peers[second].state, "transfer to %d", second)
		require.Equal(t, second, lead.lead)
	}
}

// Raft thesis 3.10: a pending transfer does not stop a regular election:
// the leader follows a candidate of a higher term.
func TestLeaderTransferReceiveHigherTermVote(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(3)
	lead := nw.peers[1]
	nw.send(eraftpb.Message{From: 3, To: 1, MsgType: msgTransfer})
	require.Equal(t, uint64(3), lead.leadTransferee)
	nw.campaign(2)
	require.Equal(t, StateFollower, lead.state)
	require.Equal(t, uint64(2), lead.lead)
	require.Equal(t, None, lead.leadTransferee)
}

// Raft thesis 4.2.3: a node that is not a member of its own configuration
// never campaigns, not even on MsgTimeoutNow, and stray votes do not make
// it leader.
func TestTransferNonMember(t *testing.T) {
	r := newTestRaft(t, 1, 5, 1, newTestMemoryStorage([]uint64{2, 3, 4}))
	require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: 1, MsgType: msgTimeoutNow}))
	require.Empty(t, readMessages(r))
	for _, id := range []uint64{2, 3} {
		require.NoError(t, step(t, r, eraftpb.Message{From: id, To: 1, Term: 1, MsgType: msgVoteResp}))
	}
	require.Equal(t, StateFollower, r.state)
}

// ProposeConfChange appends the marshaled change as a conf change entry
// after the proposals before it; re-adding a voter is accepted and does
// not block later changes once applied.
func TestRawNodeProposeAndConfChange(t *testing.T) {
	c := newRNCluster(t, ids(1), nil, nil)
	c.elect(1)
	n := c.nodes[1]
	require.NoError(t, n.rn.Propose([]byte("somedata")))
	add1 := &eraftpb.ConfChange{ChangeType: add, NodeId: 1}
	add2 := &eraftpb.ConfChange{ChangeType: add, NodeId: 2}
	for _, cc := range []*eraftpb.ConfChange{add1, add1, add2} {
		require.NoError(t, n.rn.ProposeConfChange(cc))
		c.stabilize()
	}
	last, err := n.storage.LastIndex()
	require.NoError(t, err)
	stored, err := n.storage.Entries(last-3, last+1, noLimit)
	require.NoError(t, err)
	require.Equal(t, "somedata", string(stored[0].Data))
	for i, cc := range []*eraftpb.ConfChange{add1, add1, add2} {
		require.Equal(t, eraftpb.EntryType_EntryConfChange, stored[i+1].EntryType)
		require.Equal(t, marshalCC(t, cc), stored[i+1].Data)
	}
	require.Equal(t, []uint64{1, 2}, lastConf(c, 1).Voters)
}
