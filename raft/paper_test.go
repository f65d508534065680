package raft

// Tests of the rules of the Raft paper ("In Search of an Understandable
// Consensus Algorithm", extended version). Each test cites the section it
// checks.

import (
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/stretchr/testify/require"
)

// Reference: section 5.1. A server that sees a larger term updates its term
// and reverts to follower.
func TestUpdateTermFromMessage(t *testing.T) {
	for _, st := range []StateType{StateFollower, StateCandidate, StateLeader} {
		t.Run(st.String(), func(t *testing.T) {
			r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(3)))
			switch st {
			case StateCandidate:
				r.becomeCandidate()
			case StateLeader:
				r.becomeCandidate()
				r.becomeLeader()
			}
			require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, MsgType: msgApp, Term: 2}))
			require.Equal(t, uint64(2), r.Term)
			require.Equal(t, StateFollower, r.state)
			require.Equal(t, uint64(2), r.lead)
		})
	}
}

// Reference: section 5.1. A request with a stale term is rejected (ignored).
func TestRejectStaleTermMessage(t *testing.T) {
	r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(3)))
	r.loadState(eraftpb.HardState{Term: 2})
	require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, MsgType: msgApp, Term: 1, Entries: ents(1)}))
	require.Empty(t, allEntries(r.raftLog))
	require.Empty(t, readMessages(r))
}

// Reference: section 5.2. Servers start as followers.
func TestStartAsFollower(t *testing.T) {
	r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(3)))
	require.Equal(t, StateFollower, r.state)
}

// Reference: section 5.2. The leader sends heartbeats to all followers
// every heartbeat interval.
func TestLeaderBcastBeat(t *testing.T) {
	hi := 2
	r := newTestRaft(t, 1, 10, hi, newTestMemoryStorage(ids(3)))
	r.becomeCandidate()
	r.becomeLeader()
	for i := range 10 {
		r.appendEntry(&eraftpb.Entry{Index: uint64(i) + 1})
	}
	readMessages(r)
	for range hi {
		r.tick()
	}
	msgs := readMessages(r)
	require.Len(t, msgs, 2)
	for i, m := range msgs {
		require.Equal(t, msgHeartbeat, m.MsgType)
		require.Equal(t, uint64(i+2), m.To)
		require.Equal(t, uint64(1), m.Term)
		// Followers have matched nothing yet: commit is capped at match.
		require.Zero(t, m.Commit)
	}
}

// Reference: section 5.2. A follower (or candidate) that times out starts
// an election: increments its term, votes for itself and requests votes.
func TestStartElectionOnTimeout(t *testing.T) {
	for _, st := range []StateType{StateFollower, StateCandidate} {
		t.Run(st.String(), func(t *testing.T) {
			r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(3)))
			if st == StateCandidate {
				r.becomeCandidate()
			}
			term := r.Term
			for range 2 * r.electionTimeout {
				r.tick()
			}
			require.Equal(t, term+1, r.Term)
			require.Equal(t, StateCandidate, r.state)
			require.Equal(t, uint64(1), r.Vote)
			msgs := readMessages(r)
			require.Len(t, msgs, 2)
			for i, m := range msgs {
				require.Equal(t, msgVote, m.MsgType)
				require.Equal(t, uint64(i+2), m.To)
				require.Equal(t, term+1, m.Term)
			}
		})
	}
}

// Reference: section 5.2. A candidate wins with votes from a majority,
// loses when a majority rejects, and otherwise stays candidate.
func TestLeaderElectionInOneRound(t *testing.T) {
	tests := []struct {
		size  int
		votes map[uint64]bool
		state StateType
	}{
		{1, map[uint64]bool{}, StateLeader},
		{3, map[uint64]bool{2: true, 3: true}, StateLeader},
		{3, map[uint64]bool{2: true}, StateLeader},
		{5, map[uint64]bool{2: true, 3: true, 4: true, 5: true}, StateLeader},
		{5, map[uint64]bool{2: true, 3: true, 4: true}, StateLeader},
		{5, map[uint64]bool{2: true, 3: true}, StateLeader},
		{3, map[uint64]bool{2: false, 3: false}, StateFollower},
		{5, map[uint64]bool{2: false, 3: false, 4: false, 5: false}, StateFollower},
		{5, map[uint64]bool{2: true, 3: false, 4: false, 5: false}, StateFollower},
		{3, map[uint64]bool{}, StateCandidate},
		{5, map[uint64]bool{2: true}, StateCandidate},
		{5, map[uint64]bool{2: false, 3: false}, StateCandidate},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(tt.size)))
			require.NoError(t, step(t, r, eraftpb.Message{From: 1, To: 1, MsgType: msgHup}))
			for id, vote := range tt.votes {
				require.NoError(t, step(t, r, eraftpb.Message{From: id, To: 1, Term: r.Term, MsgType: msgVoteResp, Reject: !vote}))
			}
			require.Equal(t, tt.state, r.state)
			require.Equal(t, uint64(1), r.Term)
		})
	}
}

// Reference: section 5.2. Each server votes for at most one candidate per
// term, first-come-first-served.
func TestFollowerVote(t *testing.T) {
	tests := []struct {
		vote, nvote uint64
		reject      bool
	}{
		{None, 1, false},
		{None, 2, false},
		{1, 1, false},
		{2, 2, false},
		{1, 2, true},
		{2, 1, true},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(3)))
			r.loadState(eraftpb.HardState{Term: 1, Vote: tt.vote})
			require.NoError(t, step(t, r, eraftpb.Message{From: tt.nvote, To: 1, Term: 1, MsgType: msgVote}))
			msgs := readMessages(r)
			require.Len(t, msgs, 1)
			require.Equal(t, msgVoteResp, msgs[0].MsgType)
			require.Equal(t, tt.reject, msgs[0].Reject)
		})
	}
}

// Reference: section 5.2. A candidate that hears from a leader of its own
// (or a newer) term becomes follower.
func TestCandidateFallback(t *testing.T) {
	for _, term := range []uint64{1, 2} {
		r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(3)))
		require.NoError(t, step(t, r, eraftpb.Message{From: 1, To: 1, MsgType: msgHup}))
		require.Equal(t, StateCandidate, r.state)
		require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: term, MsgType: msgApp}))
		require.Equal(t, StateFollower, r.state)
		require.Equal(t, term, r.Term)
	}
}

// Reference: section 5.2. Election timeouts are randomized in
// [electionTimeout, 2*electionTimeout).
func TestElectionTimeoutRandomized(t *testing.T) {
	et := 10
	r := newTestRaft(t, 1, et, 1, newTestMemoryStorage(ids(3)))
	seen := map[int]bool{}
	for range 50 * et {
		r.becomeFollower(r.Term+1, None)
		timeout := 0
		for r.state == StateFollower {
			r.tick()
			timeout++
		}
		require.GreaterOrEqual(t, timeout, et)
		require.Less(t, timeout, 2*et)
		seen[timeout] = true
	}
	require.Greater(t, len(seen), et/2, "timeouts are not randomized")
}

// Reference: section 5.2. Election safety: at most one leader per term,
// even with competing candidates.
func TestElectionSafetySplitVote(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil, nil, nil)
	// 1 and 2 campaign in the same term; 1 reaches 3 first, 2 reaches
	// 4 and 5 first... only one can win term 1.
	nw.peers[1].becomeCandidate()
	nw.peers[2].becomeCandidate()
	for _, id := range []uint64{1, 2} {
		r := nw.peers[id]
		r.poll(r.id, true)
	}
	nw.send(
		eraftpb.Message{From: 1, To: 3, Term: 1, MsgType: msgVote},
		eraftpb.Message{From: 2, To: 3, Term: 1, MsgType: msgVote},
		eraftpb.Message{From: 2, To: 4, Term: 1, MsgType: msgVote},
		eraftpb.Message{From: 1, To: 4, Term: 1, MsgType: msgVote},
		eraftpb.Message{From: 1, To: 5, Term: 1, MsgType: msgVote},
		eraftpb.Message{From: 2, To: 5, Term: 1, MsgType: msgVote},
	)
	leaders := 0
	for _, r := range nw.peers {
		if r.state == StateLeader && r.Term == 1 {
			leaders++
		}
	}
	require.Equal(t, 1, leaders)
	require.Equal(t, StateLeader, nw.peers[1].state)
}

// Reference: section 5.3. The leader appends a proposal to its log and
// sends it to followers in parallel.
func TestLeaderStartReplication(t *testing.T) {
	r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(3)))
	r.becomeCandidate()
	r.becomeLeader()
	commitNoopEntry(t, r)
	li := r.raftLog.lastIndex()
	require.NoError(t, step(t, r, propMsg(1, "some data")))
	require.Equal(t, li+1, r.raftLog.lastIndex())
	require.Equal(t, li, r.raftLog.committed)
	msgs := readMessages(r)
	require.Len(t, msgs, 2)
	for i, m := range msgs {
		require.Equal(t, msgApp, m.MsgType)
		require.Equal(t, uint64(i+2), m.To)
		require.Equal(t, li, m.Index)
		require.Equal(t, uint64(1), m.LogTerm)
		require.Equal(t, li, m.Commit)
		require.Equal(t, []string{"some data"}, entryData(m.Entries))
	}
}

// commitNoopEntry makes a fresh leader commit its empty entry by acking it
// from every follower.
func commitNoopEntry(t *testing.T, r *raft) {
	t.Helper()
	require.Equal(t, StateLeader, r.state)
	r.bcastAppend()
	for _, m := range readMessages(r) {
		require.Equal(t, msgApp, m.MsgType)
		require.NoError(t, step(t, r, eraftpb.Message{From: m.To, To: 1, Term: r.Term, MsgType: msgAppResp, Index: m.Index + uint64(len(m.Entries))}))
	}
	readMessages(r)
	require.Equal(t, r.raftLog.lastIndex(), r.raftLog.committed)
}

// Reference: section 5.3. An entry is committed once the leader replicated
// it on a majority; the commit index then goes out with the next messages.
func TestLeaderCommitEntry(t *testing.T) {
	nw := newNetwork(t, nil, nil, nil, nil)
	nw.campaign(1)
	nw.propose(1, "x")
	for _, id := range ids(3) {
		r := nw.peers[id]
		require.Equal(t, uint64(2), r.raftLog.committed, "node %d", id)
		require.Equal(t, []string{"", "x"}, entryData(allEntries(r.raftLog)))
	}
}

// Reference: section 5.3. The leader commits after acknowledgements from a
// majority (including itself), not before.
func TestLeaderAcknowledgeCommit(t *testing.T) {
	tests := []struct {
		size int
		acks []uint64
		want bool
	}{
		{1, nil, true},
		{3, nil, false},
		{3, []uint64{2}, true},
		{3, []uint64{2, 3}, true},
		{5, nil, false},
		{5, []uint64{2}, false},
		{5, []uint64{2, 3}, true},
		{5, []uint64{2, 3, 4, 5}, true},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(tt.size)))
			r.becomeCandidate()
			r.becomeLeader()
			commitNoopEntry(t, r)
			li := r.raftLog.lastIndex()
			require.NoError(t, step(t, r, propMsg(1, "x")))
			readMessages(r)
			for _, id := range tt.acks {
				require.NoError(t, step(t, r, eraftpb.Message{From: id, To: 1, Term: 1, MsgType: msgAppResp, Index: li + 1}))
			}
			require.Equal(t, tt.want, r.raftLog.committed > li)
		})
	}
}

// Reference: section 5.3. A follower learns the commit index from the
// leader and commits up to min(leaderCommit, index of last new entry).
func TestFollowerCommitEntry(t *testing.T) {
	tests := []struct {
		ents   []*eraftpb.Entry
		commit uint64
		want   uint64
	}{
		{ents(1), 1, 1},
		{ents(1, 1), 1, 1},
		{ents(1, 1), 2, 2},
		{ents(1, 1), 5, 2},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			r := newTestRaft(t, 1, 10, 1, newTestMemoryStorage(ids(3)))
			r.becomeFollower(1, 2)
			require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, MsgType: msgApp, Term: 1, Entries: tt.ents, Commit: tt.commit}))
			require.Equal(t, tt.want, r.raftLog.committed)
		})
	}
}

// Reference: section 5.3 (log matching). A follower rejects an append
// whose preceding entry does not match, with a hint for backtracking.
func TestFollowerCheckMsgApp(t *testing.T) {
	tests := []struct {
		term, index uint64
		reject      bool
		wIndex      uint64
		wHint       uint64
		wLogTerm    uint64
	}{
		{0, 0, false, 1, 0, 0}, // older than commit: answer with commit
		{1, 1, false, 1, 0, 0},
		{2, 2, false, 2, 0, 0},
		{1, 2, true, 2, 1, 1}, // term mismatch at 2: hint 1
		{3, 3, true, 3, 2, 2}, // index beyond last: hint last
		{3, 10, true, 10, 2, 2},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s := newTestMemoryStorage(ids(3))
			require.NoError(t, s.Append(ents(1, 2)))
			r := newTestRaft(t, 1, 10, 1, s)
			r.loadState(eraftpb.HardState{Commit: 1})
			r.becomeFollower(2, 2)
			require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, MsgType: msgApp, Term: 2, LogTerm: tt.term, Index: tt.index}))
			msgs := readMessages(r)
			require.Len(t, msgs, 1)
			m := msgs[0]
			require.Equal(t, tt.reject, m.Reject)
			require.Equal(t, tt.wIndex, m.Index)
			if tt.reject {
				require.Equal(t, tt.wHint, m.RejectHint)
				require.Equal(t, tt.wLogTerm, m.LogTerm)
			}
		})
	}
}

// Reference: section 5.3. A follower deletes conflicting entries and all
// that follow, then appends the new ones.
func TestFollowerAppendEntries(t *testing.T) {
	tests := []struct {
		index, term uint64
		ents        []*eraftpb.Entry
		want        []uint64 // terms of the resulting log
	}{
		{2, 2, []*eraftpb.Entry{{Term: 3, Index: 3}}, []uint64{1, 2, 3}},
		{1, 1, []*eraftpb.Entry{{Term: 3, Index: 2}, {Term: 4, Index: 3}}, []uint64{1, 3, 4}},
		{0, 0, []*eraftpb.Entry{{Term: 1, Index: 1}}, []uint64{1, 2}},
		{0, 0, []*eraftpb.Entry{{Term: 3, Index: 1}}, []uint64{3}},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s := newTestMemoryStorage(ids(3))
			require.NoError(t, s.Append(ents(1, 2)))
			r := newTestRaft(t, 1, 10, 1, s)
			r.becomeFollower(2, 2)
			require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, MsgType: msgApp, Term: 2, LogTerm: tt.term, Index: tt.index, Entries: tt.ents}))
			var terms []uint64
			for _, e := range allEntries(r.raftLog) {
				terms = append(terms, e.Term)
			}
			require.Equal(t, tt.want, terms)
		})
	}
}

// Reference: section 5.3, figure 7. A new leader forces every follower's
// log, whatever its shape, to match its own.
func TestLeaderSyncFollowerLog(t *testing.T) {
	leaderTerms := []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6}
	followers := [][]uint64{
		{1, 1, 1, 4, 4, 5, 5, 6, 6},
		{1, 1, 1, 4},
		{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},
		{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},
		{1, 1, 1, 4, 4, 4, 4},
		{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},
	}
	for i, ft := range followers {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			ls := newTestMemoryStorage(ids(3))
			require.NoError(t, ls.Append(ents(leaderTerms...)))
			lead := newTestRaft(t, 1, 10, 1, ls)
			lead.loadState(eraftpb.HardState{Commit: uint64(len(leaderTerms)), Term: 8})
			fs := newTestMemoryStorage(ids(3))
			require.NoError(t, fs.Append(ents(ft...)))
			follower := newTestRaft(t, 2, 10, 1, fs)
			follower.loadState(eraftpb.HardState{Term: 7})
			// Node 3 votes for the leader so that it wins.
			nw := newNetwork(t, nil, lead, follower, blackHole)
			nw.send(eraftpb.Message{From: 1, To: 1, MsgType: msgHup})
			nw.send(eraftpb.Message{From: 3, To: 1, Term: lead.Term, MsgType: msgVoteResp})
			nw.propose(1, "")
			require.Equal(t, StateLeader, lead.state)
			require.Equal(t, termsOf(allEntries(lead.raftLog)), termsOf(allEntries(follower.raftLog)))
		})
	}
}

func termsOf(es []*eraftpb.Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Term
	}
	return out
}

// Reference: section 5.4.1. Vote requests carry the candidate's last log
// index and term.
func TestVoteRequest(t *testing.T) {
	s := newTestMemoryStorage(ids(3))
	require.NoError(t, s.Append(ents(1, 2)))
	r := newTestRaft(t, 1, 10, 1, s)
	r.loadState(eraftpb.HardState{Term: 2})
	for range 2 * r.electionTimeout {
		r.tick()
	}
	msgs := readMessages(r)
	require.Len(t, msgs, 2)
	for _, m := range msgs {
		require.Equal(t, msgVote, m.MsgType)
		require.Equal(t, uint64(2), m.Index)
		require.Equal(t, uint64(2), m.LogTerm)
		require.Equal(t, uint64(3), m.Term)
	}
}

// Reference: section 5.4.1. A voter denies its vote if its own log is more
// up-to-date than the candidate's.
func TestVoter(t *testing.T) {
	tests := []struct {
		ents    []uint64
		logterm uint64
		index   uint64
		reject  bool
	}{
		{[]uint64{1}, 1, 1, false},
		{[]uint64{1}, 1, 2, false},
		{[]uint64{1, 1}, 1, 1, true}, // same term, shorter log
		{[]uint64{1}, 2, 1, false},   // higher last term wins
		{[]uint64{1}, 2, 2, false},
		{[]uint64{1, 1}, 2, 1, false},
		{[]uint64{2}, 1, 1, true}, // lower last term loses
		{[]uint64{2}, 1, 2, true},
		{[]uint64{2, 1}, 1, 1, true},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s := newTestMemoryStorage(ids(2))
			require.NoError(t, s.Append(ents(tt.ents...)))
			r := newTestRaft(t, 1, 10, 1, s)
			require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, MsgType: msgVote, Term: 3, LogTerm: tt.logterm, Index: tt.index}))
			msgs := readMessages(r)
			require.Len(t, msgs, 1)
			require.Equal(t, tt.reject, msgs[0].Reject)
		})
	}
}

// Reference: section 5.4.2. A leader only commits entries of its current
// term by counting replicas; older entries commit indirectly.
func TestLeaderOnlyCommitsLogFromCurrentTerm(t *testing.T) {
	tests := []struct {
		index uint64
		want  uint64
	}{
		{1, 0}, // entry of term 1: not committed by counting
		{2, 0}, // entry of term 2: not committed by counting
		{3, 3}, // the new leader's own entry commits everything
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s := newTestMemoryStorage(ids(2))
			require.NoError(t, s.Append(ents(1, 2)))
			r := newTestRaft(t, 1, 10, 1, s)
			r.loadState(eraftpb.HardState{Term: 2})
			r.becomeCandidate()
			r.becomeLeader()
			readMessages(r)
			require.NoError(t, step(t, r, eraftpb.Message{From: 2, To: 1, Term: r.Term, MsgType: msgAppResp, Index: tt.index}))
			require.Equal(t, tt.want, r.raftLog.committed)
		})
	}
}

// Reference: section 5.4.2 (figure 8) and leader completeness (5.4.3). Once
// the leader commits an entry of its own term, the older entries before it
// are committed too, and no node lacking them can be elected any more.
func TestFigure8LeaderCompleteness(t *testing.T) {
	mk := func(id uint64, terms ...uint64) *raft {
		s := newTestMemoryStorage(ids(5))
		require.NoError(t, s.Append(ents(terms...)))
		require.NoError(t, s.SetHardState(eraftpb.HardState{Term: 2}))
		return newTestRaft(t, id, 10, 1, s)
	}
	// Index 2 holds a term-1 entry on S1..S3 (figure 8 (c)); S5 holds a
	// term-2 entry there.
	nw := newNetwork(t, nil, mk(1, 1, 1), mk(2, 1, 1), mk(3, 1, 1), mk(4, 1), mk(5, 1, 2))
	nw.isolate(4)
	nw.isolate(5)
	nw.campaign(1)
	r1 := nw.peers[1]
	require.Equal(t, StateLeader, r1.state)
	require.Equal(t, uint64(3), r1.Term)
	require.Equal(t, uint64(3), r1.raftLog.committed)

	// S1 crashes. S5 would overwrite index 2 if elected (figure 8 (d));
	// it cannot be, since S2 and S3 have a more up-to-date log.
	nw.recover()
	nw.isolate(1)
	for range 5 {
		nw.campaign(5)
		require.NotEqual(t, StateLeader, nw.peers[5].state)
	}
	for _, id := range []uint64{2, 3} {
		require.Equal(t, uint64(1), entryAt(t, nw.peers[id], 2).Term)
	}
	// Another node wins and keeps the committed entries (leader
	// completeness).
	nw.campaign(2)
	require.Equal(t, StateLeader, nw.peers[2].state)
	nw.propose(2, "x")
	for _, id := range []uint64{2, 3, 4, 5} {
		require.Equal(t, uint64(1), entryAt(t, nw.peers[id], 2).Term, "node %d", id)
	}
}

func entryAt(t *testing.T, r *raft, i uint64) *eraftpb.Entry {
	t.Helper()
	es, err := r.raftLog.slice(i, i+1, noLimit)
	require.NoError(t, err)
	require.Len(t, es, 1)
	return es[0]
}
