package raft

import (
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/stretchr/testify/require"
)

func withPreVote(c *Config)     { c.PreVote = true }
func withCheckQuorum(c *Config) { c.CheckQuorum = true }

// A partitioned node with pre-vote does not bump its term, so it does not
// disrupt the leader when it rejoins.
func TestPreVotePartitionedNodeKeepsTerm(t *testing.T) {
	nw := newNetwork(t, withPreVote, nil, nil, nil)
	nw.campaign(1)
	require.Equal(t, StateLeader, nw.peers[1].state)
	require.Equal(t, uint64(1), nw.peers[1].Term)

	nw.isolate(3)
	nw.tickN(3, 50)
	r3 := nw.peers[3]
	require.Equal(t, StatePreCandidate, r3.state)
	require.Equal(t, uint64(1), r3.Term)

	nw.recover()
	nw.tickN(1, 1) // heartbeat
	require.Equal(t, StateFollower, r3.state)
	require.Equal(t, uint64(1), nw.peers[1].Term)
	require.Equal(t, StateLeader, nw.peers[1].state)
}

// A pre-candidate that gets a quorum of pre-votes runs a real election.
func TestPreVoteWinsThenVotes(t *testing.T) {
	nw := newNetwork(t, withPreVote, nil, nil, nil)
	var types []eraftpb.MessageType
	nw.msgHook = func(m eraftpb.Message) bool { types = append(types, m.MsgType); return true }
	nw.campaign(1)
	require.Equal(t, StateLeader, nw.peers[1].state)
	require.Equal(t, []eraftpb.MessageType{msgPreVote, msgPreVote, msgPreVoteRes, msgPreVoteRes, msgVote, msgVote, msgVoteResp}, types[:7])
}

// A pre-vote is rejected by a node with a more up-to-date log, and the
// rejection does not change anybody's term.
func TestPreVoteRejectedByUpToDateLog(t *testing.T) {
	nw := newNetwork(t, withPreVote, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(3)
	nw.propose(1, "x")
	nw.recover()
	nw.isolate(1)
	// 3 lacks "x": 2 rejects its pre-vote and 3 stays at term 1.
	nw.campaign(3)
	require.Equal(t, uint64(1), nw.peers[3].Term)
	require.Equal(t, StatePreCandidate, nw.peers[3].state)
	require.Equal(t, uint64(1), nw.peers[2].Term)
}

// Check-quorum: a leader that has not heard from a quorum for an election
// timeout steps down.
func TestCheckQuorumLeaderStepsDown(t *testing.T) {
	nw := newNetwork(t, withCheckQuorum, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(1)
	r := nw.peers[1]
	for range r.electionTimeout {
		r.tick()
	}
	require.Equal(t, StateLeader, r.state, "first round: followers were active")
	for range r.electionTimeout {
		r.tick()
	}
	require.Equal(t, StateFollower, r.state)
	require.Equal(t, uint64(1), r.Term)
}

// Check-quorum keeps a leader in place while followers answer.
func TestCheckQuorumLeaderStaysWithQuorum(t *testing.T) {
	nw := newNetwork(t, withCheckQuorum, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(3)
	nw.tickN(1, 5*nw.peers[1].electionTimeout)
	require.Equal(t, StateLeader, nw.peers[1].state)
}

// Leader lease: with check-quorum, nodes that heard from the leader within
// an election timeout ignore vote requests from a disruptive node.
func TestLeaderLeaseIgnoresDisruptiveVote(t *testing.T) {
	nw := newNetwork(t, withCheckQuorum, nil, nil, nil)
	nw.campaign(1)
	nw.campaign(3)
	require.Equal(t, StateLeader, nw.peers[1].state)
	require.Equal(t, uint64(1), nw.peers[1].Term)
	require.Equal(t, uint64(1), nw.peers[2].Term)
	require.Equal(t, uint64(1), nw.peers[2].lead)
	require.Equal(t, StateCandidate, nw.peers[3].state)

	// Once the lease expired (no leader heard for an election timeout), the
	// vote is considered.
	for range nw.peers[2].electionTimeout {
		nw.peers[2].tickElection()
		readMessages(nw.peers[2])
		nw.peers[2].electionElapsed = min(nw.peers[2].electionElapsed, nw.peers[2].electionTimeout)
	}
	nw.peers[2].becomeFollower(1, None)
	nw.peers[2].electionElapsed = nw.peers[2].electionTimeout
	nw.campaign(3)
	require.Equal(t, uint64(3), nw.peers[2].Vote)
}

// Without check-quorum there is no lease: a higher-term vote request
// always makes the receiver update its term.
func TestNoLeaseWithoutCheckQuorum(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	nw.campaign(3)
	require.Equal(t, uint64(2), nw.peers[1].Term)
}

// A stale leader (partitioned away while the others elected a new one)
// steps down when it hears a higher term in a response.
func TestStaleLeaderStepsDown(t *testing.T) {
	nw := newNetwork(t, withPreVote, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(1)
	nw.campaign(2)
	require.Equal(t, StateLeader, nw.peers[2].state)
	nw.recover()
	nw.tickN(1, 1) // 1 heartbeats with term 1; 3 answers with term 2
	require.Equal(t, StateFollower, nw.peers[1].state)
	require.Equal(t, uint64(2), nw.peers[1].Term)
}

// A follower in probe state gets one append per round trip; a successful
// response switches it to replicate state.
func TestProgressProbeToReplicate(t *testing.T) {
	r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(2)))
	r.becomeCandidate()
	r.becomeLeader()
	r.bcastAppend()
	pr := r.trk.progress.get(2)
	require.Equal(t, ProgressStateProbe, pr.State)
	require.Len(t, readMessages(r), 1)
	require.True(t, pr.isPaused())
	require.NoError(t, step(t, r, propMsg(1, "a")))
	require.Empty(t, readMessages(r), "probe is paused until the follower answers")
	require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: 1, MsgType: msgAppResp, Index: 1}))
	require.Equal(t, ProgressStateReplicate, pr.State)
	msgs := readMessages(r)
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"a"}, entryData(msgs[0].Entries))
	// Heartbeat responses unpause a probe.
	pr.becomeProbe()
	pr.ProbeSent = true
	require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: 1, MsgType: msgHbResp}))
	require.False(t, pr.ProbeSent && pr.State == ProgressStateProbe && len(r.msgs) == 0)
}

// A rejection in replicate state falls back to probe.
func TestProgressReplicateToProbeOnReject(t *testing.T) {
	r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(2)))
	r.becomeCandidate()
	r.becomeLeader()
	commitNoopEntry(t, r)
	pr := r.trk.progress.get(2)
	require.Equal(t, ProgressStateReplicate, pr.State)
	require.NoError(t, step(t, r, propMsg(1, "a")))
	readMessages(r)
	require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: 1, MsgType: msgAppResp, Index: 2, Reject: true, RejectHint: 1, LogTerm: 1}))
	require.Equal(t, ProgressStateProbe, pr.State)
	require.Equal(t, uint64(2), pr.Next)
	require.Len(t, readMessages(r), 1)
}

// The inflight window bounds unacknowledged appends in replicate state;
// acknowledgements and heartbeat responses open it again.
func TestInflightWindow(t *testing.T) {
	c := newTestConfig(1, 10, 1, newTestMemoryStorage(ids(2)))
	c.MaxInflightMsgs = 3
	c.MaxSizePerMsg = 0 // one entry per message
	r := mustNewRaft(t, c)
	r.becomeCandidate()
	r.becomeLeader()
	commitNoopEntry(t, r)
	pr := r.trk.progress.get(2)
	for i := range 10 {
		require.NoError(t, step(t, r, propMsg(1, fmt.Sprint(i))))
	}
	require.Len(t, readMessages(r), 3)
	require.True(t, pr.isPaused())
	require.Equal(t, 3, pr.Inflight())

	// Acknowledging the first two frees two slots.
	require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: 1, MsgType: msgAppResp, Index: 3}))
	msgs := readMessages(r)
	require.Len(t, msgs, 2)
	require.Equal(t, []string{"3"}, entryData(msgs[0].Entries))

	// A heartbeat response frees one slot of a full window.
	require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: 1, MsgType: msgHbResp}))
	msgs = readMessages(r)
	require.Len(t, msgs, 1)
	require.Equal(t, msgApp, msgs[0].MsgType)
}

// The inflight byte limit also pauses replication.
func TestInflightBytesLimit(t *testing.T) {
	c := newTestConfig(1, 10, 1, newTestMemoryStorage(ids(2)))
	c.MaxInflightBytes = 10
	c.MaxSizePerMsg = 0
	r := mustNewRaft(t, c)
	r.becomeCandidate()
	r.becomeLeader()
	commitNoopEntry(t, r)
	for range 5 {
		require.NoError(t, step(t, r, propMsg(1, "12345")))
	}
	require.Len(t, readMessages(r), 2)
}

// MaxSizePerMsg batches several entries per append, bounded by size.
func TestMaxSizePerMsgBatching(t *testing.T) {
	for _, tt := range []struct {
		size uint64
		want []int
	}{
		{noLimit, []int{5}},
		{0, []int{1, 1, 1, 1, 1}},
		{40, []int{2, 2, 1}},
	} {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			c := newTestConfig(1, 10, 1, newTestMemoryStorage(ids(2)))
			c.MaxSizePerMsg = tt.size
			r := mustNewRaft(t, c)
			r.becomeCandidate()
			r.becomeLeader()
			commitNoopEntry(t, r)
			// Pause the follower so entries accumulate, then resume.
			pr := r.trk.progress.get(2)
			pr.becomeProbe()
			pr.ProbeSent = true
			for range 5 {
				require.NoError(t, step(t, r, propMsg(1, "0123456789")))
			}
			pr.becomeReplicate()
			for r.maybeSendAppend(2, false) {
			}
			var got []int
			for _, m := range readMessages(r) {
				got = append(got, len(m.Entries))
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// Rejection hints let the leader skip whole terms of a divergent follower
// log instead of backing up one entry per round trip.
func TestFastLogBacktracking(t *testing.T) {
	ls := newTestMemoryStorage(ids(3))
	require.NoError(t, ls.Append(ents(1, 1, 1, 4, 4, 5, 5, 6, 6, 6)))
	lead := newTestRaft(t, 1, 10, 1, ls)
	lead.loadState(eraftpb.HardState{Term: 8, Commit: 3})
	fs := newTestMemoryStorage(ids(3))
	require.NoError(t, fs.Append(ents(1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3)))
	follower := newTestRaft(t, 2, 10, 1, fs)
	follower.loadState(eraftpb.HardState{Term: 7, Commit: 3})
	nw := newNetwork(t, nil, lead, follower, blackHole)
	rejects := 0
	nw.msgHook = func(m eraftpb.Message) bool {
		if m.MsgType == msgAppResp && m.Reject {
			rejects++
		}
		return true
	}
	nw.campaign(1)
	nw.send(eraftpb.Message{From: 3, To: 1, Term: lead.Term, MsgType: msgVoteResp})
	require.Equal(t, StateLeader, lead.state)
	require.Equal(t, termsOf(allEntries(lead.raftLog)), termsOf(allEntries(follower.raftLog)))
	require.LessOrEqual(t, rejects, 2, "one entry per round trip would take 8 rejections")
}

// bootstrapSnapshotLeader returns a leader whose log starts after a
// snapshot at index 10 and a follower with an empty log.
func bootstrapSnapshotLeader(t *testing.T) (*network, *raft, *raft) {
	s1 := NewMemoryStorage()
	require.NoError(t, s1.ApplySnapshot(eraftpb.Snapshot{Data: []byte("snap"), Metadata: &eraftpb.SnapshotMetadata{
		Index: 10, Term: 1, ConfState: &eraftpb.ConfState{Voters: []uint64{1, 2}},
	}}))
	require.NoError(t, s1.SetHardState(eraftpb.HardState{Term: 1, Commit: 10}))
	lead := newTestRaft(t, 1, 10, 1, s1)
	follower := newTestRaft(t, 2, 10, 1, newTestMemoryStorage(ids(2)))
	nw := newNetwork(t, nil, lead, follower)
	return nw, lead, follower
}

// A follower behind the compacted log gets a snapshot, restores it and
// then replicates normally.
func TestSnapshotSendAndRestore(t *testing.T) {
	nw, lead, follower := bootstrapSnapshotLeader(t)
	var snaps int
	nw.msgHook = func(m eraftpb.Message) bool {
		if m.MsgType == msgSnap {
			snaps++
		}
		return true
	}
	nw.campaign(1)
	require.Equal(t, StateLeader, lead.state)
	require.Equal(t, 1, snaps)
	require.NotNil(t, follower.raftLog.unstable.snapshot)
	require.Equal(t, "snap", string(follower.raftLog.unstable.snapshot.Data))
	require.Equal(t, uint64(11), follower.raftLog.committed)
	require.Equal(t, ProgressStateReplicate, lead.trk.progress.get(2).State)
	nw.propose(1, "x")
	require.Equal(t, uint64(12), follower.raftLog.committed)
	require.Equal(t, []string{"", "x"}, entryData(allEntries(follower.raftLog)))
}

// While a snapshot is in flight replication is paused; ReportSnapshot
// resumes it (after the snapshot on success, from match on failure).
func TestReportSnapshot(t *testing.T) {
	for _, failure := range []bool{false, true} {
		t.Run(fmt.Sprint(failure), func(t *testing.T) {
			nw, lead, _ := bootstrapSnapshotLeader(t)
			nw.ignore(msgSnap)
			nw.campaign(1)
			pr := lead.trk.progress.get(2)
			require.Equal(t, ProgressStateSnapshot, pr.State)
			require.Equal(t, uint64(10), pr.PendingSnapshot)
			require.True(t, pr.isPaused())
			require.NoError(t, step(t, lead, eraftpb.Message{From: 2, To: 1, MsgType: msgSnapStatus, Reject: failure}))
			require.Equal(t, ProgressStateProbe, pr.State)
			require.True(t, pr.ProbeSent)
			if failure {
				require.Equal(t, uint64(1), pr.Next)
			} else {
				require.Equal(t, uint64(11), pr.Next)
			}
		})
	}
}

// Snapshots that are old, or whose last entry the log already has, are
// not installed; snapshots that do not include the node are ignored.
func TestRestoreRules(t *testing.T) {
	s := newTestMemoryStorage(ids(3))
	require.NoError(t, s.Append(ents(1, 1, 1)))
	r := newTestRaft(t, 1, 10, 1, s)
	r.loadState(eraftpb.HardState{Term: 1, Commit: 2})
	snap := func(i, term uint64, voters ...uint64) *eraftpb.Snapshot {
		return &eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{Index: i, Term: term, ConfState: &eraftpb.ConfState{Voters: voters}}}
	}
	require.False(t, r.restore(snap(2, 1, 1, 2, 3)), "older than commit")
	require.False(t, r.restore(snap(5, 2, 2, 3)), "does not include us")
	require.False(t, r.restore(snap(3, 1, 1, 2, 3)), "fast-forward")
	require.Equal(t, uint64(3), r.raftLog.committed)
	require.True(t, r.restore(snap(5, 2, 1, 2)))
	require.Equal(t, uint64(5), r.raftLog.lastIndex())
	require.Equal(t, []uint64{1, 2}, r.trk.confState().Voters)
}

// Learners receive entries but neither vote, campaign nor count towards
// the commit quorum.
func TestLearner(t *testing.T) {
	mk := func(id uint64) *raft {
		return newTestRaft(t, id, 10, 1, newTestMemoryStorage([]uint64{1, 2}, 3))
	}
	nw := newNetwork(t, nil, mk(1), mk(2), mk(3))
	learner := nw.peers[3]
	require.True(t, isLearner(learner))
	for range 100 {
		learner.tick()
	}
	require.Equal(t, StateFollower, learner.state)
	require.Empty(t, readMessages(learner))

	var voteTargets []uint64
	nw.msgHook = func(m eraftpb.Message) bool {
		if m.MsgType == msgVote {
			voteTargets = append(voteTargets, m.To)
		}
		return true
	}
	nw.campaign(1)
	require.Equal(t, []uint64{2}, voteTargets)
	nw.propose(1, "x")
	require.Equal(t, uint64(2), learner.raftLog.committed)

	nw.isolate(2)
	nw.propose(1, "y")
	require.Equal(t, uint64(3), learner.raftLog.lastIndex())
	require.Equal(t, uint64(2), nw.peers[1].raftLog.committed, "a learner's ack does not commit")
}

// Leader transfer to an up-to-date follower: MsgTimeoutNow makes it
// campaign at once, bypassing pre-vote and the leader lease.
func TestLeaderTransfer(t *testing.T) {
	nw := newNetwork(t, func(c *Config) { c.PreVote = true; c.CheckQuorum = true }, nil, nil, nil)
	nw.campaign(1)
	nw.send(eraftpb.Message{From: 2, To: 1, MsgType: msgTransfer})
	require.Equal(t, StateLeader, nw.peers[2].state)
	require.Equal(t, StateFollower, nw.peers[1].state)
	require.Equal(t, uint64(2), nw.peers[1].lead)
	require.Equal(t, uint64(2), nw.peers[2].Term)
}

// Leader transfer to a lagging follower first catches it up.
func TestLeaderTransferToLaggingFollower(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(3)
	nw.propose(1, "x")
	nw.recover()
	nw.send(eraftpb.Message{From: 3, To: 1, MsgType: msgTransfer})
	require.Equal(t, StateLeader, nw.peers[3].state)
	require.Equal(t, uint64(3), nw.peers[3].raftLog.committed)
	require.Equal(t, "x", string(entryAt(t, nw.peers[3], 2).Data))
}

// While a transfer is pending proposals are dropped; the transfer aborts
// after an election timeout and proposals are accepted again.
func TestLeaderTransferAbortAndProposalsDropped(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(3)
	lead := nw.peers[1]
	nw.send(eraftpb.Message{From: 3, To: 1, MsgType: msgTransfer})
	require.Equal(t, uint64(3), lead.leadTransferee)
	require.ErrorIs(t, step(t, lead, propMsg(1, "x")), ErrProposalDropped)
	for range lead.electionTimeout {
		lead.tick()
	}
	require.Equal(t, None, lead.leadTransferee)
	require.Equal(t, StateLeader, lead.state)
	require.NoError(t, step(t, lead, propMsg(1, "x")))
}

// Transfers to self, unknown nodes or learners are ignored; a second
// transfer to another node replaces the first.
func TestLeaderTransferIgnored(t *testing.T) {
	mk := func(id uint64) *raft { return newTestRaft(t, id, 10, 1, newTestMemoryStorage([]uint64{1, 2, 3}, 4)) }
	nw := newNetwork(t, nil, mk(1), mk(2), mk(3), mk(4))
	nw.campaign(1)
	lead := nw.peers[1]
	for _, id := range []uint64{1, 4, 9} {
		nw.send(eraftpb.Message{From: id, To: 1, MsgType: msgTransfer})
		require.Equal(t, None, lead.leadTransferee, "transferee %d", id)
		require.Equal(t, StateLeader, lead.state)
	}
	nw.isolate(3)
	nw.isolate(2)
	nw.send(eraftpb.Message{From: 3, To: 1, MsgType: msgTransfer})
	require.Equal(t, uint64(3), lead.leadTransferee)
	nw.send(eraftpb.Message{From: 2, To: 1, MsgType: msgTransfer})
	require.Equal(t, uint64(2), lead.leadTransferee)
}

// Safe ReadIndex: the leader answers once a quorum acknowledged a heartbeat
// carrying the request context; followers' requests are forwarded.
func TestReadIndexSafe(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	nw.propose(1, "x")
	lead := nw.peers[1]
	nw.send(eraftpb.Message{From: 1, To: 1, MsgType: msgReadIndex, Entries: []*eraftpb.Entry{{Data: []byte("ctx1")}}})
	require.Equal(t, []ReadState{{Index: 2, RequestCtx: []byte("ctx1")}}, lead.readStates)

	nw.send(eraftpb.Message{From: 2, To: 2, MsgType: msgReadIndex, Entries: []*eraftpb.Entry{{Data: []byte("ctx2")}}})
	require.Equal(t, []ReadState{{Index: 2, RequestCtx: []byte("ctx2")}}, nw.peers[2].readStates)

	// Without a quorum there is no answer.
	lead.readStates = nil
	nw.isolate(1)
	nw.send(eraftpb.Message{From: 1, To: 1, MsgType: msgReadIndex, Entries: []*eraftpb.Entry{{Data: []byte("ctx3")}}})
	require.Empty(t, lead.readStates)
	// Once heartbeats get through, the pending request is confirmed.
	nw.recover()
	nw.tickN(1, 1)
	require.Equal(t, []ReadState{{Index: 2, RequestCtx: []byte("ctx3")}}, lead.readStates)
}

// Lease-based ReadIndex answers immediately, without a heartbeat round.
func TestReadIndexLeaseBased(t *testing.T) {
	nw := newNetwork(t, func(c *Config) { c.CheckQuorum = true; c.ReadOnlyOption = ReadOnlyLeaseBased }, nil, nil, nil)
	nw.campaign(1)
	nw.isolate(1)
	lead := nw.peers[1]
	nw.send(eraftpb.Message{From: 1, To: 1, MsgType: msgReadIndex, Entries: []*eraftpb.Entry{{Data: []byte("c")}}})
	require.Equal(t, []ReadState{{Index: 1, RequestCtx: []byte("c")}}, lead.readStates)
}

// ReadIndex requests that reach a new leader before it committed an entry
// of its term are held back until it has.
func TestReadIndexWaitsForCurrentTermCommit(t *testing.T) {
	r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(3)))
	r.becomeCandidate()
	r.becomeLeader()
	require.NoError(t, step(t, r, eraftpb.Message{From: 1, To: 1, MsgType: msgReadIndex, Entries: []*eraftpb.Entry{{Data: []byte("c")}}}))
	require.Len(t, r.pendingReadIndexMessages, 1)
	commitNoopEntry(t, r)
	require.Empty(t, r.pendingReadIndexMessages)
	require.Empty(t, r.readStates)
	// The next heartbeat round confirms it once a follower echoes it.
	require.NoError(t, step(t, r, eraftpb.Message{From: 1, To: 1, MsgType: msgBeat}))
	hb := readMessages(r)[0]
	require.Equal(t, msgHeartbeat, hb.MsgType)
	require.NoError(t, step(t, r, eraftpb.Message{From: hb.To, To: 1, Term: 1, MsgType: msgHbResp, Context: hb.Context}))
	require.Equal(t, []ReadState{{Index: 1, RequestCtx: []byte("c")}}, r.readStates)
}

// Proposals at a follower are forwarded to the leader, or dropped without
// a leader or with forwarding disabled; candidates drop them.
func TestProposalRouting(t *testing.T) {
	r := newTestRaft(t, 2, 10, 1, newTestMemoryStorage(ids(3)))
	require.ErrorIs(t, step(t, r, propMsg(2, "x")), ErrProposalDropped)
	r.becomeFollower(1, 1)
	require.NoError(t, step(t, r, propMsg(2, "x")))
	msgs := readMessages(r)
	require.Len(t, msgs, 1)
	require.Equal(t, uint64(1), msgs[0].To)
	require.Equal(t, msgProp, msgs[0].MsgType)
	r.disableProposalForwarding = true
	require.ErrorIs(t, step(t, r, propMsg(2, "x")), ErrProposalDropped)
	r.becomeCandidate()
	require.ErrorIs(t, step(t, r, propMsg(2, "x")), ErrProposalDropped)
}

// stateSetups put a fresh node into each state.
var stateSetups = map[StateType]func(r *raft){
	StateFollower:     func(r *raft) { r.becomeFollower(2, 2) },
	StatePreCandidate: func(r *raft) { r.loadState(eraftpb.HardState{Term: 2}); r.becomePreCandidate() },
	StateCandidate:    func(r *raft) { r.loadState(eraftpb.HardState{Term: 1}); r.becomeCandidate() },
	StateLeader: func(r *raft) {
		r.loadState(eraftpb.HardState{Term: 1})
		r.becomeCandidate()
		r.becomeLeader()
	},
}

// Every message type, in every state, from known and unknown nodes, with
// lower, equal and higher terms and with odd payloads, is handled without
// panicking, and stale messages never change the term.
func TestStepAllMessagesAllStates(t *testing.T) {
	payloads := map[string]func(m *eraftpb.Message){
		"empty": func(*eraftpb.Message) {},
		"entries": func(m *eraftpb.Message) {
			m.Index = 3
			m.LogTerm = 2
			m.Entries = []*eraftpb.Entry{{Index: 4, Term: 2}}
		},
		"bogus": func(m *eraftpb.Message) {
			m.Index, m.Commit, m.LogTerm, m.RejectHint = 1000, 1000, 1000, 1000
			m.Entries = []*eraftpb.Entry{nil, {Index: 7}}
			m.Snapshot = &eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{Index: 1000}}
			m.Context = []byte("ctx")
		},
		"reject": func(m *eraftpb.Message) { m.Reject = true; m.Index = 3; m.RejectHint = 1 },
	}
	for st, setup := range stateSetups {
		for typ := range eraftpb.MessageType_name {
			for _, from := range []uint64{2, 99} {
				for _, dterm := range []int{-100, -1, 0, 1} {
					for pname, payload := range payloads {
						name := fmt.Sprintf("%s/%s/from%d/dterm%d/%s", st, eraftpb.MessageType(typ), from, dterm, pname)
						s := newTestMemoryStorage(ids(3))
						require.NoError(t, s.Append(ents(1, 1, 2)))
						r := newTestRaft(t, 1, 10, 1, s)
						setup(r)
						readMessages(r)
						term := r.Term
						m := eraftpb.Message{MsgType: eraftpb.MessageType(typ), From: from, To: 1, Term: uint64(max(int(term)+dterm, 0))}
						payload(&m)
						require.NotPanics(t, func() { _ = r.Step(&m) }, name)
						if dterm < 0 && typ != int32(msgHup) && typ != int32(msgTimeoutNow) {
							require.Equal(t, term, r.Term, name)
						}
						require.LessOrEqual(t, r.raftLog.committed, r.raftLog.lastIndex(), name)
					}
				}
			}
		}
	}
}

// Expected reactions of each state to the main message types.
func TestStepTable(t *testing.T) {
	tests := []struct {
		state     StateType
		msg       eraftpb.Message
		wantState StateType
		wantTerm  uint64
		wantSent  []eraftpb.MessageType
	}{
		{StateFollower, eraftpb.Message{From: 2, MsgType: msgHeartbeat, Term: 2}, StateFollower, 2, []eraftpb.MessageType{msgHbResp}},
		{StateFollower, eraftpb.Message{From: 3, MsgType: msgVote, Term: 3, Index: 3, LogTerm: 2}, StateFollower, 3, []eraftpb.MessageType{msgVoteResp}},
		{StateFollower, eraftpb.Message{From: 3, MsgType: msgPreVote, Term: 3, Index: 3, LogTerm: 2}, StateFollower, 2, []eraftpb.MessageType{msgPreVoteRes}},
		{StateFollower, eraftpb.Message{From: 2, MsgType: msgTimeoutNow, Term: 2}, StateCandidate, 3, []eraftpb.MessageType{msgVote, msgVote}},
		{StateFollower, eraftpb.Message{From: 2, MsgType: msgApp, Term: 2, Index: 3, LogTerm: 2}, StateFollower, 2, []eraftpb.MessageType{msgAppResp}},
		{StateFollower, eraftpb.Message{From: 2, MsgType: msgApp, Term: 1}, StateFollower, 2, nil},
		{StateCandidate, eraftpb.Message{From: 2, MsgType: msgVoteResp, Term: 2}, StateLeader, 2, []eraftpb.MessageType{msgApp, msgApp}},
		{StateCandidate, eraftpb.Message{From: 2, MsgType: msgHeartbeat, Term: 2}, StateFollower, 2, []eraftpb.MessageType{msgHbResp}},
		{StateCandidate, eraftpb.Message{From: 2, MsgType: msgVoteResp, Term: 3, Reject: true}, StateFollower, 3, nil},
		{StatePreCandidate, eraftpb.Message{From: 2, MsgType: msgPreVoteRes, Term: 3}, StateCandidate, 3, []eraftpb.MessageType{msgVote, msgVote}},
		{StatePreCandidate, eraftpb.Message{From: 2, MsgType: msgApp, Term: 2, Index: 3, LogTerm: 2}, StateFollower, 2, []eraftpb.MessageType{msgAppResp}},
		{StateLeader, eraftpb.Message{From: 2, MsgType: msgHbResp, Term: 2}, StateLeader, 2, []eraftpb.MessageType{msgApp}},
		{StateLeader, eraftpb.Message{From: 2, MsgType: msgApp, Term: 3}, StateFollower, 3, []eraftpb.MessageType{msgAppResp}},
		{StateLeader, eraftpb.Message{From: 1, MsgType: msgBeat}, StateLeader, 2, []eraftpb.MessageType{msgHeartbeat, msgHeartbeat}},
		{StateLeader, eraftpb.Message{From: 3, MsgType: msgVote, Term: 3, Index: 9, LogTerm: 9}, StateFollower, 3, []eraftpb.MessageType{msgVoteResp}},
		{StateLeader, eraftpb.Message{From: 2, MsgType: msgTransfer, Term: 2}, StateLeader, 2, []eraftpb.MessageType{msgApp}},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s/%s", i, tt.state, tt.msg.MsgType), func(t *testing.T) {
			s := newTestMemoryStorage(ids(3))
			require.NoError(t, s.Append(ents(1, 1, 2)))
			r := newTestRaft(t, 1, 10, 1, s)
			switch tt.state {
			case StateFollower:
				r.becomeFollower(2, 2)
			case StatePreCandidate:
				r.loadState(eraftpb.HardState{Term: 2})
				r.becomePreCandidate()
				r.poll(1, true)
			case StateCandidate:
				r.loadState(eraftpb.HardState{Term: 1})
				r.becomeCandidate()
				r.poll(1, true)
			case StateLeader:
				r.loadState(eraftpb.HardState{Term: 1})
				r.becomeCandidate()
				r.becomeLeader()
			}
			readMessages(r)
			m := tt.msg
			m.To = 1
			require.NoError(t, r.Step(&m))
			require.Equal(t, tt.wantState, r.state)
			require.Equal(t, tt.wantTerm, r.Term)
			var sent []eraftpb.MessageType
			for _, m := range readMessages(r) {
				sent = append(sent, m.MsgType)
			}
			require.Equal(t, tt.wantSent, sent)
		})
	}
}

// A removed leader whose log is ahead of the remaining voters does not
// just step down (they may need its vote and it can no longer campaign):
// it refuses requests, catches a voter up and hands leadership to it.
func TestRemovedLeaderHandsOff(t *testing.T) {
	nw := newNetwork(t, withCheckQuorum, nil, nil, nil)
	nw.campaign(1)
	lead := nw.peers[1]
	nw.isolate(2)
	nw.isolate(3)
	nw.propose(1, "x")
	_, err := lead.applyConfChange(&eraftpb.ConfChangeV2{Changes: []*eraftpb.ConfChangeSingle{{ChangeType: remove, NodeId: 1}}})
	require.NoError(t, err)
	require.Equal(t, StateLeader, lead.state)
	require.Equal(t, uint64(2), lead.leadTransferee)
	require.ErrorIs(t, step(t, lead, propMsg(1, "y")), ErrProposalDropped)
	// Check-quorum does not make it give up while partitioned.
	for range 3 * lead.electionTimeout {
		lead.tick()
	}
	readMessages(lead)
	require.Equal(t, StateLeader, lead.state)

	nw.recover()
	nw.tickN(1, 1)
	require.Equal(t, StateFollower, lead.state)
	require.Equal(t, StateLeader, nw.peers[2].state)
	require.Equal(t, "x", string(entryAt(t, nw.peers[2], 2).Data))
}

// A demoted node with a longer log, whose vote a less up-to-date voter
// still needs (it has not applied the demotion), campaigns to unblock the
// election and then hands leadership back to a voter.
func TestNonVoterRescueCampaign(t *testing.T) {
	s2 := newTestMemoryStorage([]uint64{2, 3})
	require.NoError(t, s2.Append(ents(1, 1)))
	s3 := newTestMemoryStorage([]uint64{2}, 3)
	require.NoError(t, s3.Append(ents(1, 1, 1)))
	n2 := newTestRaft(t, 2, 10, 1, s2)
	n3 := newTestRaft(t, 3, 10, 1, s3)
	require.True(t, isLearner(n3))
	nw := newNetwork(t, nil, blackHole, n2, n3)
	nw.campaign(2)
	require.Equal(t, StateLeader, n2.state)
	require.Equal(t, StateFollower, n3.state)
	require.Equal(t, uint64(2), n3.lead)
	require.Equal(t, termsOf(allEntries(n3.raftLog)), termsOf(allEntries(n2.raftLog)))
	// node 3's entries, its no-op as rescuing leader, node 2's no-op.
	require.Equal(t, []uint64{1, 1, 1, 2, 3}, termsOf(allEntries(n2.raftLog)))
}

// Heartbeats carry min(match, committed): a follower whose log diverges
// after its match index must not commit its own (wrong) entries there.
func TestHeartbeatCommitCappedAtMatch(t *testing.T) {
	r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(2)))
	r.becomeCandidate()
	r.becomeLeader()
	commitNoopEntry(t, r)
	require.NoError(t, step(t, r, propMsg(1, "a")))
	require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: 1, MsgType: msgAppResp, Index: 2}))
	readMessages(r)
	require.Equal(t, uint64(2), r.raftLog.committed)
	r.trk.progress.get(2).Match = 1 // the follower is only known to match up to 1
	require.NoError(t, step(t, r, eraftpb.Message{From: 1, To: 1, MsgType: msgBeat}))
	msgs := readMessages(r)
	require.Len(t, msgs, 1)
	require.Equal(t, uint64(1), msgs[0].Commit)

	f := newTestRaft(t, 2, 10, 1, newTestMemoryStorage(ids(2)))
	f.becomeFollower(1, 1)
	f.raftLog.append(&eraftpb.Entry{Index: 1, Term: 1}, &eraftpb.Entry{Index: 2, Term: 0})
	require.NoError(t, f.Step(&msgs[0]))
	require.Equal(t, uint64(1), f.raftLog.committed)
}

type snapUnavailableStorage struct{ *MemoryStorage }

func (snapUnavailableStorage) Snapshot() (eraftpb.Snapshot, error) {
	return eraftpb.Snapshot{}, ErrSnapshotTemporarilyUnavailable
}

// While Storage cannot produce a snapshot, the follower stays in probe
// state and no snapshot is sent.
func TestSnapshotTemporarilyUnavailable(t *testing.T) {
	s1 := NewMemoryStorage()
	require.NoError(t, s1.ApplySnapshot(eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{
		Index: 10, Term: 1, ConfState: &eraftpb.ConfState{Voters: []uint64{1, 2}},
	}}))
	lead := newTestRaft(t, 1, 10, 1, snapUnavailableStorage{s1})
	follower := newTestRaft(t, 2, 10, 1, newTestMemoryStorage(ids(2)))
	nw := newNetwork(t, nil, lead, follower)
	snaps := 0
	nw.msgHook = func(m eraftpb.Message) bool {
		if m.MsgType == msgSnap {
			snaps++
		}
		return true
	}
	nw.campaign(1)
	require.Equal(t, StateLeader, lead.state)
	require.Zero(t, snaps)
	require.Equal(t, ProgressStateProbe, lead.trk.progress.get(2).State)
}

// MaxCommittedSizePerReady splits committed entries over several Readys.
func TestRawNodeMaxCommittedSizePerReady(t *testing.T) {
	c := newRNCluster(t, []uint64{1}, nil, func(c *Config) { c.MaxCommittedSizePerReady = 1 })
	n := c.nodes[1]
	c.elect(1)
	for i := range 3 {
		require.NoError(t, n.rn.Propose([]byte(fmt.Sprint(i))))
	}
	var sizes []int
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		sizes = append(sizes, len(rd.CommittedEntries))
		require.NoError(t, n.storage.Append(rd.Entries))
		n.rn.Advance()
	}
	require.Equal(t, []int{1, 1, 1}, sizes)
}

// Only voters of the node's own configuration can trigger a rescue
// campaign; a removed node asking for votes cannot.
func TestNoRescueForNonMembers(t *testing.T) {
	s3 := newTestMemoryStorage([]uint64{2}, 3)
	require.NoError(t, s3.Append(ents(1, 1, 1)))
	n3 := newTestRaft(t, 3, 10, 1, s3)
	require.NoError(t, step(t, n3, eraftpb.Message{From: 1, To: 3, Term: 5, MsgType: msgVote, Index: 1, LogTerm: 1}))
	require.Equal(t, StateFollower, n3.state)
	msgs := readMessages(n3)
	require.Len(t, msgs, 1)
	require.True(t, msgs[0].Reject)

	require.NoError(t, step(t, n3, eraftpb.Message{From: 2, To: 3, Term: 6, MsgType: msgVote, Index: 1, LogTerm: 1}))
	require.Equal(t, StateCandidate, n3.state, "a voter of its config needs it: rescue")
}

// Raft thesis section 6.4: a read is answered at the commit index of its
// arrival. A retry with the context of a pending request arrives later and
// supersedes it, so it is answered once, at an index that covers the
// write committed in between.
func TestReadIndexRetrySupersedesPendingRequest(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	lead := nw.peers[1]
	read := eraftpb.Message{From: 1, To: 1, MsgType: msgReadIndex, Entries: []*eraftpb.Entry{{Data: []byte("r")}}}
	nw.ignore(msgHeartbeat)
	nw.send(read)
	require.Empty(t, lead.readStates)
	nw.propose(1, "x")
	require.Equal(t, uint64(2), lead.raftLog.committed)
	nw.recover()
	read.Entries = []*eraftpb.Entry{{Data: []byte("r")}}
	nw.send(read)
	require.Equal(t, []ReadState{{Index: 2, RequestCtx: []byte("r")}}, lead.readStates)
	nw.tickN(1, 1)
	require.Len(t, lead.readStates, 1, "the superseded request is never answered")
}

// A follower whose inflight window was full when the leader committed learns
// the commit index from the leader's answer to its ack, not at the next
// heartbeat.
func TestCommitSentOnAckFromFullWindow(t *testing.T) {
	c := newTestConfig(1, 10, 1, newTestMemoryStorage(ids(3)))
	c.MaxInflightMsgs = 1
	r := mustNewRaft(t, c)
	r.becomeCandidate()
	r.becomeLeader()
	commitNoopEntry(t, r)
	require.NoError(t, step(t, r, propMsg(1, "a")))
	readMessages(r)
	require.True(t, r.trk.progress.get(2).inflights.full())
	// 3's ack commits index 2; 2's window is full, so 2 is not told.
	require.NoError(t, step(t, r, eraftpb.Message{From: 3, To: 1, Term: 1, MsgType: msgAppResp, Index: 2}))
	require.Equal(t, uint64(2), r.raftLog.committed)
	for _, m := range readMessages(r) {
		require.NotEqual(t, uint64(2), m.To)
	}
	require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: 1, MsgType: msgAppResp, Index: 2}))
	msgs := readMessages(r)
	require.Len(t, msgs, 1)
	require.Equal(t, msgApp, msgs[0].MsgType)
	require.Equal(t, uint64(2), msgs[0].To)
	require.Equal(t, uint64(2), msgs[0].Commit)
	require.Empty(t, msgs[0].Entries)
	// Once told, further acks send nothing.
	require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: 1, MsgType: msgAppResp, Index: 2}))
	require.Empty(t, readMessages(r))
}
