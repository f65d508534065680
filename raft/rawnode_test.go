package raft

import (
	"fmt"
	"slices"
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/stretchr/testify/require"
)

// rnNode is a RawNode with its storage and a trivial state machine that
// records applied normal entries.
type rnNode struct {
	rn      *RawNode
	storage *MemoryStorage
	applied []string
	confs   []eraftpb.ConfState
}

// rnCluster drives RawNodes through the full Ready loop, honouring the
// persist-before-send contract, and delivers messages in memory.
type rnCluster struct {
	t     *testing.T
	nodes map[uint64]*rnNode
	// drop, if set, discards matching messages.
	drop func(m eraftpb.Message) bool
	// discardApplied makes handleReady record no applied data, so that
	// the harness keeps no entry payload alive.
	discardApplied bool
}

func newRNCluster(t *testing.T, voters, learners []uint64, cfgFn func(*Config)) *rnCluster {
	c := &rnCluster{t: t, nodes: map[uint64]*rnNode{}}
	for _, id := range append(slices.Clone(voters), learners...) {
		c.addNode(id, bootstrapStorage(t, voters, learners), cfgFn)
	}
	return c
}

// bootstrapStorage bootstraps a member the recommended way: a snapshot at
// index 1 holding the initial configuration. Nodes added later start empty
// and receive that snapshot.
func bootstrapStorage(t *testing.T, voters, learners []uint64) *MemoryStorage {
	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{
		Index: 1, Term: 1, ConfState: &eraftpb.ConfState{Voters: voters, Learners: learners},
	}}))
	require.NoError(t, s.SetHardState(eraftpb.HardState{Term: 1, Commit: 1}))
	return s
}

func (c *rnCluster) addNode(id uint64, s *MemoryStorage, cfgFn func(*Config)) *rnNode {
	cfg := newTestConfig(id, 10, 1, s)
	if cfgFn != nil {
		cfgFn(cfg)
	}
	rn, err := NewRawNode(cfg)
	require.NoError(c.t, err)
	n := &rnNode{rn: rn, storage: s}
	c.nodes[id] = n
	return n
}

// handleReady processes one Ready of node id and returns its messages.
func (c *rnCluster) handleReady(id uint64) []eraftpb.Message {
	n := c.nodes[id]
	rd := n.rn.Ready()
	if rd.Snapshot != nil {
		require.NoError(c.t, n.storage.ApplySnapshot(*rd.Snapshot))
		n.applied = []string{fmt.Sprintf("snap@%d", rd.Snapshot.Metadata.Index)}
	}
	require.NoError(c.t, n.storage.Append(rd.Entries))
	if !IsEmptyHardState(rd.HardState) {
		require.NoError(c.t, n.storage.SetHardState(rd.HardState))
	}
	for _, e := range rd.CommittedEntries {
		switch e.EntryType {
		case eraftpb.EntryType_EntryNormal:
			if len(e.Data) > 0 && !c.discardApplied {
				n.applied = append(n.applied, string(e.Data))
			}
		default:
			cc, err := decodeConfChange(e)
			require.NoError(c.t, err)
			cs, err := n.rn.ApplyConfChange(cc)
			if err == nil {
				n.confs = append(n.confs, *cs)
				// Like a real state machine, snapshot the new membership so
				// that new members can be caught up.
				_, err = n.storage.CreateSnapshot(e.Index, cs, nil)
				require.NoError(c.t, err)
			}
		}
	}
	n.rn.Advance()
	return rd.Messages
}

// stabilize runs Ready loops and delivers messages until nothing is left.
func (c *rnCluster) stabilize() {
	for range 1000 {
		var msgs []eraftpb.Message
		for _, id := range sortedKeys(c.nodes) {
			for c.nodes[id].rn.HasReady() {
				msgs = append(msgs, c.handleReady(id)...)
			}
		}
		if len(msgs) == 0 {
			return
		}
		c.deliver(msgs)
	}
	c.t.Fatal("cluster did not stabilize")
}

func (c *rnCluster) deliver(msgs []eraftpb.Message) {
	for _, m := range msgs {
		to := c.nodes[m.To]
		if to == nil || (c.drop != nil && c.drop(m)) {
			continue
		}
		if err := to.rn.Step(m); err != nil {
			c.t.Logf("step %s to %d: %v", m.MsgType, m.To, err)
		}
		if m.MsgType == msgSnap {
			c.nodes[m.From].rn.ReportSnapshot(m.To, SnapshotFinish)
		}
	}
}

func (c *rnCluster) tick(id uint64, n int) {
	for range n {
		c.nodes[id].rn.Tick()
		c.stabilize()
	}
}

func (c *rnCluster) leader() uint64 {
	for _, id := range sortedKeys(c.nodes) {
		if c.nodes[id].rn.raft.state == StateLeader {
			return id
		}
	}
	return None
}

func sortedKeys[V any](m map[uint64]V) []uint64 {
	out := make([]uint64, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (c *rnCluster) elect(id uint64) {
	require.NoError(c.t, c.nodes[id].rn.Campaign())
	c.stabilize()
	require.Equal(c.t, id, c.leader())
}

func TestRawNodeSingleNodeProposeBatch(t *testing.T) {
	c := newRNCluster(t, []uint64{1}, nil, nil)
	n := c.nodes[1]
	require.NoError(t, n.rn.Campaign())
	rd := n.rn.Ready()
	require.Equal(t, &SoftState{Lead: 1, RaftState: StateLeader}, rd.SoftState)
	require.True(t, rd.MustSync)
	require.Len(t, rd.Entries, 1)
	require.Len(t, rd.CommittedEntries, 1)
	require.NoError(t, n.storage.Append(rd.Entries))
	n.rn.Advance()

	for i := range 5 {
		require.NoError(t, n.rn.Propose([]byte(fmt.Sprint(i))))
	}
	rd = n.rn.Ready()
	require.Len(t, rd.Entries, 5, "several proposals per Ready")
	require.Len(t, rd.CommittedEntries, 5)
	require.Equal(t, uint64(7), rd.HardState.Commit)
	require.NoError(t, n.storage.Append(rd.Entries))
	n.rn.Advance()
	require.False(t, n.rn.HasReady())
	require.Equal(t, uint64(7), n.rn.BasicStatus().Applied)
}

// The Ready contract: a vote response is only emitted together with the
// HardState recording the vote, and append responses together with the
// entries they acknowledge.
func TestRawNodeReadyPersistBeforeSend(t *testing.T) {
	s := newTestMemoryStorage(ids(3))
	rn, err := NewRawNode(newTestConfig(2, 10, 1, s))
	require.NoError(t, err)
	require.NoError(t, rn.Step(eraftpb.Message{From: 1, To: 2, Term: 1, MsgType: msgVote}))
	rd := rn.Ready()
	require.Equal(t, eraftpb.HardState{Term: 1, Vote: 1}, rd.HardState)
	require.True(t, rd.MustSync)
	require.Len(t, rd.Messages, 1)
	require.Equal(t, msgVoteResp, rd.Messages[0].MsgType)
	rn.Advance()

	require.NoError(t, rn.Step(eraftpb.Message{From: 1, To: 2, Term: 1, MsgType: msgApp, Entries: []*eraftpb.Entry{{Index: 1, Term: 1}}, Commit: 1}))
	rd = rn.Ready()
	require.Len(t, rd.Entries, 1)
	require.Len(t, rd.CommittedEntries, 1)
	require.Equal(t, uint64(1), rd.Messages[0].Index)
	require.NoError(t, s.Append(rd.Entries))
	rn.Advance()
	require.False(t, rn.HasReady())
}

func TestRawNodeRestart(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	for i := range 3 {
		require.NoError(t, c.nodes[1].rn.Propose([]byte(fmt.Sprint(i))))
	}
	c.stabilize()
	n := c.nodes[2]
	cfg := newTestConfig(2, 10, 1, n.storage)
	cfg.Applied = 3
	rn, err := NewRawNode(cfg)
	require.NoError(t, err)
	st := rn.BasicStatus()
	require.Equal(t, uint64(2), st.HardState.Term)
	require.Equal(t, uint64(5), st.HardState.Commit)
	rd := rn.Ready()
	require.Equal(t, []string{"1", "2"}, entryData(rd.CommittedEntries))
}

func TestRawNodeStepRejectsLocalAndUnknown(t *testing.T) {
	rn, err := NewRawNode(newTestConfig(1, 10, 1, newTestMemoryStorage(ids(3))))
	require.NoError(t, err)
	require.ErrorIs(t, rn.Step(eraftpb.Message{MsgType: msgHup}), ErrStepLocalMsg)
	require.ErrorIs(t, rn.Step(eraftpb.Message{MsgType: msgAppResp, From: 9, Term: 1}), ErrStepPeerNotFound)
}

func TestConfigValidation(t *testing.T) {
	s := NewMemoryStorage()
	base := func() *Config { return newTestConfig(1, 10, 1, s) }
	for _, tt := range []struct {
		mod  func(*Config)
		want error
	}{
		{func(c *Config) { c.ID = 0 }, ErrInvalidID},
		{func(c *Config) { c.HeartbeatTick = 0 }, ErrInvalidHeartbeatTick},
		{func(c *Config) { c.ElectionTick = 1 }, ErrInvalidElectionTick},
		{func(c *Config) { c.Storage = nil }, ErrNoStorage},
		{func(c *Config) { c.MaxInflightMsgs = 0 }, ErrInvalidInflight},
		{func(c *Config) { c.ReadOnlyOption = ReadOnlyLeaseBased }, ErrLeaseNeedsQuorum},
		{func(c *Config) { c.CheckQuorum = true; c.LeaseTicks = -1 }, ErrInvalidLeaseTicks},
		{func(c *Config) { c.CheckQuorum = true; c.LeaseTicks = c.ElectionTick }, ErrInvalidLeaseTicks},
		{func(c *Config) { c.LeaseTicks = 1 }, ErrLeaseTicksNeedQuorum},
	} {
		c := base()
		tt.mod(c)
		_, err := NewRawNode(c)
		require.ErrorIs(t, err, tt.want)
	}
}

func TestRawNodeStatus(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	st := c.nodes[1].rn.Status()
	require.Equal(t, StateLeader, st.SoftState.RaftState)
	require.Len(t, st.Progress, 3)
	require.Equal(t, ProgressStateReplicate, st.Progress[2].State)
	require.Nil(t, c.nodes[2].rn.Status().Progress)
	require.Contains(t, st.String(), "voters=(1 2 3)")
}

func TestRawNodeReadIndex(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	c.nodes[2].rn.ReadIndex([]byte("r1"))
	var got []ReadState
	for range 3 {
		for _, id := range sortedKeys(c.nodes) {
			n := c.nodes[id]
			if !n.rn.HasReady() {
				continue
			}
			rd := n.rn.Ready()
			if id == 2 {
				got = append(got, rd.ReadStates...)
			}
			require.NoError(t, n.storage.Append(rd.Entries))
			n.rn.Advance()
			c.deliver(rd.Messages)
		}
	}
	require.Equal(t, []ReadState{{Index: 2, RequestCtx: []byte("r1")}}, got)
}

// Adding a learner, promoting it, and removing a voter, one step at a time.
func TestConfChangeSimple(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	c.addNode(4, NewMemoryStorage(), nil)
	lead := c.nodes[1].rn
	require.NoError(t, lead.ProposeConfChange(&eraftpb.ConfChange{ChangeType: eraftpb.ConfChangeType_AddLearnerNode, NodeId: 4}))
	c.stabilize()
	require.Equal(t, []uint64{4}, lastConf(c, 1).Learners)
	require.Equal(t, []uint64{4}, c.nodes[4].rn.raft.trk.confState().Learners, "the new node learned its config from a snapshot")
	require.True(t, isLearner(c.nodes[4].rn.raft))

	require.NoError(t, lead.ProposeConfChange(&eraftpb.ConfChange{ChangeType: eraftpb.ConfChangeType_AddNode, NodeId: 4}))
	c.stabilize()
	require.Equal(t, []uint64{1, 2, 3, 4}, lastConf(c, 1).Voters)
	require.False(t, isLearner(c.nodes[4].rn.raft))

	require.NoError(t, lead.ProposeConfChange(&eraftpb.ConfChange{ChangeType: eraftpb.ConfChangeType_RemoveNode, NodeId: 3}))
	c.stabilize()
	require.Equal(t, []uint64{1, 2, 4}, lastConf(c, 1).Voters)
	require.NoError(t, lead.Propose([]byte("after")))
	c.stabilize()
	require.Equal(t, []string{"snap@3", "after"}, c.nodes[4].applied)
}

func lastConf(c *rnCluster, id uint64) eraftpb.ConfState {
	confs := c.nodes[id].confs
	require.NotEmpty(c.t, confs)
	return confs[len(confs)-1]
}

// Joint consensus: a multi-change ConfChangeV2 enters a joint config which
// the leader leaves automatically once it is applied.
func TestConfChangeJointAutoLeave(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	c.addNode(4, NewMemoryStorage(), nil)
	c.addNode(5, NewMemoryStorage(), nil)
	cc := &eraftpb.ConfChangeV2{Changes: []*eraftpb.ConfChangeSingle{
		{ChangeType: eraftpb.ConfChangeType_AddNode, NodeId: 4},
		{ChangeType: eraftpb.ConfChangeType_AddNode, NodeId: 5},
		{ChangeType: eraftpb.ConfChangeType_RemoveNode, NodeId: 3},
	}}
	require.NoError(t, c.nodes[1].rn.ProposeConfChange(cc))
	c.stabilize()
	confs := c.nodes[1].confs
	require.Len(t, confs, 2)
	require.Equal(t, []uint64{1, 2, 4, 5}, confs[0].Voters)
	require.Equal(t, []uint64{1, 2, 3}, confs[0].VotersOutgoing)
	require.True(t, confs[0].AutoLeave)
	require.Equal(t, []uint64{1, 2, 4, 5}, confs[1].Voters)
	require.Empty(t, confs[1].VotersOutgoing)
	require.Equal(t, confs, c.nodes[2].confs)
	require.Equal(t, confs[1], c.nodes[4].rn.raft.trk.confState())
}

// Explicit joint consensus stays joint until an empty ConfChangeV2; a
// voter demoted to learner goes through learnersNext.
func TestConfChangeJointExplicit(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	cc := &eraftpb.ConfChangeV2{Transition: eraftpb.ConfChangeTransition_Explicit, Changes: []*eraftpb.ConfChangeSingle{
		{ChangeType: eraftpb.ConfChangeType_AddLearnerNode, NodeId: 3},
	}}
	lead := c.nodes[1].rn
	require.NoError(t, lead.ProposeConfChange(cc))
	c.stabilize()
	cs := lastConf(c, 1)
	require.Equal(t, []uint64{1, 2}, cs.Voters)
	require.Equal(t, []uint64{1, 2, 3}, cs.VotersOutgoing)
	require.Equal(t, []uint64{3}, cs.LearnersNext)
	require.False(t, cs.AutoLeave)
	require.Len(t, c.nodes[1].confs, 1, "explicit: no automatic leave")

	// Another change is refused while joint.
	require.NoError(t, lead.ProposeConfChange(&eraftpb.ConfChange{ChangeType: eraftpb.ConfChangeType_AddNode, NodeId: 7}))
	c.stabilize()
	require.Len(t, c.nodes[1].confs, 1)

	require.NoError(t, lead.ProposeConfChange(&eraftpb.ConfChangeV2{}))
	c.stabilize()
	cs = lastConf(c, 1)
	require.Equal(t, []uint64{1, 2}, cs.Voters)
	require.Empty(t, cs.VotersOutgoing)
	require.Equal(t, []uint64{3}, cs.Learners)
	require.True(t, isLearner(c.nodes[3].rn.raft))
}

// Only one conf change may be pending: a second one proposed before the
// first is applied is replaced by an empty entry.
func TestConfChangeOnlyOnePending(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	lead := c.nodes[1].rn
	require.NoError(t, lead.ProposeConfChange(&eraftpb.ConfChange{ChangeType: eraftpb.ConfChangeType_AddLearnerNode, NodeId: 4}))
	require.NoError(t, lead.ProposeConfChange(&eraftpb.ConfChange{ChangeType: eraftpb.ConfChangeType_AddLearnerNode, NodeId: 5}))
	c.stabilize()
	require.Len(t, c.nodes[1].confs, 1)
	require.Equal(t, []uint64{4}, lastConf(c, 1).Learners)
	// Once applied, the next change is accepted.
	require.NoError(t, lead.ProposeConfChange(&eraftpb.ConfChange{ChangeType: eraftpb.ConfChangeType_AddLearnerNode, NodeId: 5}))
	c.stabilize()
	require.Equal(t, []uint64{4, 5}, lastConf(c, 1).Learners)
}

// Invalid changes are refused by the leader, and rejected identically by
// ApplyConfChange.
func TestConfChangeInvalid(t *testing.T) {
	c := newRNCluster(t, []uint64{1}, nil, nil)
	c.elect(1)
	lead := c.nodes[1].rn
	require.NoError(t, lead.ProposeConfChange(&eraftpb.ConfChange{ChangeType: eraftpb.ConfChangeType_RemoveNode, NodeId: 1}))
	c.stabilize()
	require.Empty(t, c.nodes[1].confs)
	_, err := lead.ApplyConfChange(&eraftpb.ConfChange{ChangeType: eraftpb.ConfChangeType_RemoveNode, NodeId: 1})
	require.ErrorIs(t, err, errNoVoters)
	_, err = lead.ApplyConfChange(&eraftpb.ConfChangeV2{})
	require.ErrorIs(t, err, errNotJoint)
	_, err = lead.ApplyConfChange(&eraftpb.ConfChangeV2{Changes: []*eraftpb.ConfChangeSingle{
		{ChangeType: eraftpb.ConfChangeType_AddNode, NodeId: 2}, {ChangeType: eraftpb.ConfChangeType_AddNode, NodeId: 3},
	}, Transition: eraftpb.ConfChangeTransition_Auto})
	require.NoError(t, err, "two changes enter a joint config")
	_, err = lead.ApplyConfChange(&eraftpb.ConfChangeV2{Changes: []*eraftpb.ConfChangeSingle{{NodeId: 4}}})
	require.Error(t, err, "simple change while joint")
	_, err = lead.ApplyConfChange(&eraftpb.ConfChangeV2{Transition: eraftpb.ConfChangeTransition_Explicit})
	require.ErrorIs(t, err, errAlreadyJoint)
}

// A leader that removes itself steps down once the change is applied; the
// remaining nodes elect a new leader and carry on.
func TestConfChangeRemoveLeader(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	require.NoError(t, c.nodes[1].rn.ProposeConfChange(&eraftpb.ConfChange{ChangeType: eraftpb.ConfChangeType_RemoveNode, NodeId: 1}))
	c.stabilize()
	require.Equal(t, []uint64{2, 3}, lastConf(c, 1).Voters)
	require.Equal(t, StateFollower, c.nodes[1].rn.raft.state)
	// The removed node never campaigns again; the others elect a leader
	// (the hand-off may have done so already).
	c.tick(1, 50)
	require.Equal(t, StateFollower, c.nodes[1].rn.raft.state)
	for i := 0; c.leader() == None && i < 30; i++ {
		c.tick(2, 1)
	}
	lead := c.leader()
	require.Contains(t, []uint64{2, 3}, lead)
	require.NoError(t, c.nodes[lead].rn.Propose([]byte("x")))
	c.stabilize()
	require.Equal(t, []string{"x"}, c.nodes[2].applied)
	require.Equal(t, []string{"x"}, c.nodes[3].applied)
}

// A new node behind a compacted log catches up through a snapshot sent by
// the leader and applied via Ready.Snapshot.
func TestRawNodeSnapshotCatchUp(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	c.drop = func(m eraftpb.Message) bool { return m.To == 3 || m.From == 3 }
	for i := range 5 {
		require.NoError(t, c.nodes[1].rn.Propose([]byte(fmt.Sprint(i))))
	}
	c.stabilize()
	ls := c.nodes[1].storage
	cs := c.nodes[1].rn.raft.trk.confState()
	_, err := ls.CreateSnapshot(7, &cs, []byte("state"))
	require.NoError(t, err)
	require.NoError(t, ls.Compact(7))
	c.drop = nil
	c.tick(1, 1)
	require.Equal(t, []string{"snap@7"}, c.nodes[3].applied)
	require.NoError(t, c.nodes[1].rn.Propose([]byte("after")))
	c.stabilize()
	require.Equal(t, []string{"snap@7", "after"}, c.nodes[3].applied)
	require.Equal(t, uint64(8), c.nodes[3].rn.BasicStatus().Applied)
}

// Leader transfer through the RawNode API.
func TestRawNodeTransferLeader(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	c.nodes[1].rn.TransferLeader(3)
	c.stabilize()
	require.Equal(t, uint64(3), c.leader())
}

// ReportUnreachable moves a replicating follower back to probe. Once it
// answers a heartbeat the leader probes it, although it is caught up, and
// its answer moves it back to replicate.
func TestRawNodeReportUnreachable(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	pr := c.nodes[1].rn.raft.trk.progress.get(2)
	require.Equal(t, ProgressStateReplicate, pr.State)
	c.nodes[1].rn.ReportUnreachable(2)
	require.Equal(t, ProgressStateProbe, pr.State)
	c.tick(1, 1)
	require.Equal(t, ProgressStateReplicate, pr.State)
}

// MaxUncommittedEntriesSize: a leader that cannot commit drops proposals
// beyond the limit with ErrProposalDropped; empty entries are always
// accepted, and once entries commit proposals are accepted again.
func TestRawNodeMaxUncommittedEntriesSize(t *testing.T) {
	const limit, size = 1000, 100
	c := newRNCluster(t, ids(3), nil, func(c *Config) { c.MaxUncommittedEntriesSize = limit })
	c.elect(1)
	lead := c.nodes[1].rn
	c.drop = func(m eraftpb.Message) bool { return m.From == 1 }
	for range limit / size {
		require.NoError(t, lead.Propose(make([]byte, size)))
	}
	require.ErrorIs(t, lead.Propose(make([]byte, size)), ErrProposalDropped)
	require.NoError(t, lead.Propose(nil))
	c.stabilize()
	require.ErrorIs(t, lead.Propose(make([]byte, 1)), ErrProposalDropped)

	c.drop = nil
	c.tick(1, 1) // the heartbeat answers trigger the appends
	require.Equal(t, lead.raft.raftLog.lastIndex(), lead.BasicStatus().Applied)
	require.NoError(t, lead.Propose(make([]byte, size)))
	c.stabilize()
	// With nothing outstanding, even a proposal beyond the limit is taken.
	require.NoError(t, lead.Propose(make([]byte, 2*limit)))
	require.ErrorIs(t, lead.Propose(make([]byte, 1)), ErrProposalDropped)
}

// HasPendingConfChange holds from a conf change's proposal until it is
// applied, and on a new leader until the entries of its election are.
func TestHasPendingConfChange(t *testing.T) {
	c := newRNCluster(t, ids(3), nil, nil)
	c.elect(1)
	lead := c.nodes[1].rn
	c.stabilize()
	require.False(t, lead.HasPendingConfChange())
	require.NoError(t, lead.ProposeConfChange(&eraftpb.ConfChange{ChangeType: eraftpb.ConfChangeType_AddLearnerNode, NodeId: 4}))
	require.True(t, lead.HasPendingConfChange())
	c.addNode(4, NewMemoryStorage(), nil)
	c.stabilize()
	require.False(t, lead.HasPendingConfChange())
	require.False(t, c.nodes[2].rn.HasPendingConfChange(), "a follower has none")
}
