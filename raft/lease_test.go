package raft

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/stretchr/testify/require"
)

const testLeaseTicks = 8 // with ElectionTick 10 and HeartbeatTick 1

func withLease(c *Config) {
	c.CheckQuorum = true
	c.LeaseTicks = testLeaseTicks
}

// newLeaseNetwork returns three nodes with a lease, whose clocks are moved
// past the vote refusal they keep after starting, with node 1 elected and
// its lease established by one heartbeat round.
func newLeaseNetwork(t *testing.T) *network {
	nw := newNetwork(t, withLease, nil, nil, nil)
	for _, p := range nw.peers {
		p.ticks = uint64(p.electionTimeout)
	}
	nw.campaign(1)
	require.Equal(t, StateLeader, nw.peers[1].state)
	require.False(t, nw.peers[1].leaseValid(), "no heartbeat round acknowledged yet")
	nw.tickN(1, 1)
	require.True(t, nw.peers[1].leaseValid())
	return nw
}

// Raft thesis section 6.4.1: the lease lasts LeaseTicks ticks from the
// sending of the last heartbeat round a quorum acknowledged, and no longer
// once the quorum stops answering.
func TestLeaseExpiresWithoutAcks(t *testing.T) {
	nw := newLeaseNetwork(t)
	lead := nw.peers[1]
	sent := lead.ticks // the round just acknowledged was sent now
	nw.isolate(1)
	for lead.ticks < sent+testLeaseTicks-1 {
		nw.tickN(1, 1)
		require.True(t, lead.leaseValid(), "tick %d", lead.ticks-sent)
	}
	nw.tickN(1, 1)
	require.Equal(t, StateLeader, lead.state)
	require.False(t, lead.leaseValid(), "tick %d", lead.ticks-sent)

	// Acknowledgements of a later round renew it.
	nw.recover()
	nw.tickN(1, 1)
	require.True(t, lead.leaseValid())
}

// Raft thesis section 6.4.1: a deposed leader's lease ends before any other
// node can be elected. Node 1 is cut off; all nodes tick in step until 2 or
// 3 is elected. Node 1's lease must have ended first.
func TestLeaseEndsBeforeNewLeaderElected(t *testing.T) {
	nw := newLeaseNetwork(t)
	old := nw.peers[1]
	nw.isolate(1)
	leaseTicks, newLeader := 0, None
	for tick := 0; newLeader == None; tick++ {
		require.Less(t, tick, 10*old.electionTimeout, "no new leader elected")
		for _, id := range sortedIDs(nw.peers) {
			nw.tickN(id, 1)
		}
		for _, id := range []uint64{2, 3} {
			if nw.peers[id].state == StateLeader {
				newLeader = id
			}
		}
		if old.leaseValid() {
			require.Equal(t, None, newLeader, "node %d elected while node 1 holds the lease", newLeader)
			leaseTicks++
		}
	}
	require.Equal(t, testLeaseTicks-1, leaseTicks, "lease ticks left after the cut")
	require.Equal(t, StateLeader, old.state, "the old leader did not learn of it yet")
}

// A step-down ends the lease at once.
func TestLeaseEndsOnStepDown(t *testing.T) {
	nw := newLeaseNetwork(t)
	lead := nw.peers[1]
	require.NoError(t, step(t, lead, eraftpb.Message{From: 2, To: 1, Term: lead.Term + 1, MsgType: msgAppResp}))
	require.Equal(t, StateFollower, lead.state)
	require.False(t, lead.leaseValid())
}

// No lease before the leader committed an entry of its term (its commit
// index may be stale until then; Raft thesis section 6.4).
func TestLeaseNeedsCommitInCurrentTerm(t *testing.T) {
	nw := newNetwork(t, withLease, nil, nil, nil)
	for _, p := range nw.peers {
		p.ticks = uint64(p.electionTimeout)
	}
	nw.ignore(msgAppResp)
	nw.campaign(1)
	lead := nw.peers[1]
	nw.tickN(1, 1)
	require.Equal(t, uint64(0), lead.raftLog.committed)
	require.False(t, lead.leaseValid())
	nw.recover()
	nw.tickN(1, 1)
	require.Equal(t, uint64(1), lead.raftLog.committed)
	require.True(t, lead.leaseValid())
}

// During a leader transfer there is no lease, and once MsgTimeoutNow was
// sent there is none for the rest of the term: its receiver may be elected
// at once, without waiting for the other nodes' vote refusal to end.
func TestLeaseEndsWithLeaderTransfer(t *testing.T) {
	nw := newLeaseNetwork(t)
	lead := nw.peers[1]

	// 3 lags: the leader first catches it up and the lease is suspended.
	nw.isolate(3)
	nw.propose(1, "x")
	nw.send(eraftpb.Message{From: 3, To: 1, MsgType: msgTransfer})
	require.Equal(t, uint64(3), lead.leadTransferee)
	require.False(t, lead.leaseValid())
	nw.tickN(1, lead.electionTimeout) // the transfer is aborted
	require.Equal(t, None, lead.leadTransferee)
	require.True(t, lead.leaseValid())

	// 2 is up to date: MsgTimeoutNow goes out at once, and is lost.
	nw.ignore(msgTimeoutNow)
	nw.send(eraftpb.Message{From: 2, To: 1, MsgType: msgTransfer})
	require.True(t, lead.timeoutNowSent)
	nw.tickN(1, lead.electionTimeout)
	require.Equal(t, None, lead.leadTransferee)
	require.Equal(t, StateLeader, lead.state)
	require.False(t, lead.leaseValid())
}

// A single voter holds the lease as soon as it committed its entry.
func TestLeaseSingleVoter(t *testing.T) {
	r := mustNewRaft(t, func() *Config {
		c := newTestConfig(1, 10, 1, newTestMemoryStorage(ids(1)))
		withLease(c)
		return c
	}())
	require.NoError(t, step(t, r, eraftpb.Message{From: 1, To: 1, MsgType: msgHup}))
	require.Equal(t, StateLeader, r.state)
	require.True(t, r.leaseValid())
}

// The promise the lease relies on (Raft thesis sections 4.2.3 and 6.4.1):
// with a lease configured, a node grants no vote for an election timeout
// after it started, even at a new term.
func TestLeaseVoteRefusalAfterStart(t *testing.T) {
	r := newTestRaft(t, 2, 10, 1, newTestMemoryStorage(ids(3)))
	r.checkQuorum, r.leaseTicks = true, testLeaseTicks
	vote := eraftpb.Message{From: 3, To: 2, Term: 2, MsgType: msgVote}
	for range r.electionTimeout - 1 {
		r.tick()
	}
	require.NoError(t, step(t, r, vote))
	require.Empty(t, readMessages(r), "ignored while a restart may have forgotten a leader")
	require.Equal(t, uint64(0), r.Term)
	r.tick()
	require.NoError(t, step(t, r, vote))
	msgs := readMessages(r)
	require.Len(t, msgs, 1)
	require.False(t, msgs[0].Reject)
	require.Equal(t, uint64(3), r.Vote)
}

// A node of a fresh group (FreshGroup, the peers a split creates) grants
// a vote at once: no leader of its group can have existed.
func TestFreshGroupGrantsVotesFromStart(t *testing.T) {
	c := newTestConfig(2, 10, 1, newTestMemoryStorage(ids(3)))
	withLease(c)
	c.FreshGroup = true
	r := mustNewRaft(t, c)
	require.NoError(t, step(t, r, eraftpb.Message{From: 3, To: 2, Term: 2, MsgType: msgVote}))
	msgs := readMessages(r)
	require.Len(t, msgs, 1)
	require.False(t, msgs[0].Reject)
	require.Equal(t, uint64(3), r.Vote)
}

// The refusal lasts an election timeout from the last leader contact even
// when a message of a higher term made the follower forget its leader.
// Without it a node that acknowledged the leader's heartbeat could elect
// another leader within the lease.
func TestLeaseVoteRefusalSurvivesTermChange(t *testing.T) {
	for _, lease := range []bool{false, true} {
		r := newTestRaft(t, 2, 10, 1, newTestMemoryStorage(ids(3)))
		r.checkQuorum = true
		if lease {
			r.leaseTicks = testLeaseTicks
		}
		r.ticks = uint64(r.electionTimeout)
		require.NoError(t, step(t, r, eraftpb.Message{From: 1, To: 2, Term: 1, MsgType: msgHeartbeat}))
		// A late response to a heartbeat 2 sent as an earlier leader.
		require.NoError(t, step(t, r, eraftpb.Message{From: 3, To: 2, Term: 2, MsgType: msgHbResp}))
		require.Equal(t, uint64(2), r.Term)
		require.Equal(t, None, r.lead)
		readMessages(r)
		require.NoError(t, step(t, r, eraftpb.Message{From: 3, To: 2, Term: 2, MsgType: msgVote}))
		msgs := readMessages(r)
		require.Len(t, msgs, 1)
		require.Equal(t, lease, msgs[0].Reject, "lease %t", lease)
	}
}

// The vote refusal survives a restart (Raft thesis 6.4.1 needs the
// followers that acknowledged the leader to keep refusing votes). Node 2
// acknowledges node 1's round and restarts at once; node 3, cut off from 1
// all along, times out just then. Node 2 must not elect it while node 1
// still holds the lease.
func TestLeaseSurvivesFollowerRestart(t *testing.T) {
	nw := newLeaseNetwork(t)
	old, r3 := nw.peers[1], nw.peers[3]
	nw.cut(1, 3)
	nw.tickN(1, 1) // a round acknowledged by 2 alone
	require.True(t, old.leaseValid())
	nw.isolate(1)

	r2, s2 := nw.peers[2], nw.storage[2]
	require.NoError(t, s2.Append(allEntries(r2.raftLog)))
	require.NoError(t, s2.SetHardState(r2.hardState()))
	c := newTestConfig(2, 10, 1, s2)
	withLease(c)
	nw.peers[2] = mustNewRaft(t, c)

	r3.electionElapsed = r3.randomizedElectionTimeout - 1
	for tick := 0; r3.state != StateLeader; tick++ {
		require.Less(t, tick, 10*old.electionTimeout, "no new leader elected")
		for _, id := range sortedIDs(nw.peers) {
			nw.tickN(id, 1)
		}
		if old.leaseValid() {
			require.NotEqual(t, StateLeader, r3.state, "node 3 elected while node 1 holds the lease")
		}
	}
}
