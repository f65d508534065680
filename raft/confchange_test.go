package raft

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/stretchr/testify/require"
)

func ccs(pairs ...any) []*eraftpb.ConfChangeSingle {
	var out []*eraftpb.ConfChangeSingle
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, &eraftpb.ConfChangeSingle{ChangeType: pairs[i].(eraftpb.ConfChangeType), NodeId: uint64(pairs[i+1].(int))})
	}
	return out
}

const (
	add     = eraftpb.ConfChangeType_AddNode
	learner = eraftpb.ConfChangeType_AddLearnerNode
	remove  = eraftpb.ConfChangeType_RemoveNode
)

func newTrackerFrom(t *testing.T, cs *eraftpb.ConfState) *tracker {
	tr := newTracker(10, 0)
	cfg, prs, err := restoreConfig(&tr, cs, 5)
	require.NoError(t, err)
	tr.config, tr.progress = cfg, prs
	return &tr
}

func applyCC(t *testing.T, tr *tracker, cc *eraftpb.ConfChangeV2) error {
	c := newChanger(tr, 5)
	if err := c.apply(cc); err != nil {
		return err
	}
	tr.config, tr.progress = c.config, c.progress
	return nil
}

func TestChangerSimple(t *testing.T) {
	tr := newTrackerFrom(t, &eraftpb.ConfState{Voters: []uint64{1}})
	require.NoError(t, applyCC(t, tr, &eraftpb.ConfChangeV2{Changes: ccs(add, 2)}))
	require.NoError(t, applyCC(t, tr, &eraftpb.ConfChangeV2{Changes: ccs(learner, 3)}))
	require.Equal(t, "voters=(1 2) learners=(3)", tr.config.String())
	// Promote the learner, demote a voter.
	require.NoError(t, applyCC(t, tr, &eraftpb.ConfChangeV2{Changes: ccs(add, 3)}))
	require.NoError(t, applyCC(t, tr, &eraftpb.ConfChangeV2{Changes: ccs(learner, 1)}))
	require.Equal(t, "voters=(2 3) learners=(1)", tr.config.String())
	require.True(t, tr.progress.get(1).IsLearner)
	// Removing a non-member is a no-op; two voter changes need joint
	// consensus; removing every voter is refused.
	require.NoError(t, applyCC(t, tr, &eraftpb.ConfChangeV2{Transition: eraftpb.ConfChangeTransition_Auto, Changes: ccs(remove, 9)}))
	c := newChanger(tr, 5)
	require.Error(t, c.simple(ccs(add, 4, add, 5)))
	require.ErrorIs(t, newChanger(tr, 5).simple(ccs(remove, 2, remove, 3)), errNoVoters)
	// Nothing changed after refusals.
	require.Equal(t, "voters=(2 3) learners=(1)", tr.config.String())
	require.Equal(t, []uint64{1, 2, 3}, tr.progress.ids)
}

func TestChangerJoint(t *testing.T) {
	tr := newTrackerFrom(t, &eraftpb.ConfState{Voters: []uint64{1, 2, 3}})
	require.NoError(t, applyCC(t, tr, &eraftpb.ConfChangeV2{Changes: ccs(add, 4, remove, 3, learner, 2)}))
	require.Equal(t, "voters=(1 4)&&(1 2 3) learners_next=(2) autoleave", tr.config.String())
	cs := tr.confState()
	require.Equal(t, []uint64{1, 4}, cs.Voters)
	require.Equal(t, []uint64{1, 2, 3}, cs.VotersOutgoing)
	require.Equal(t, []uint64{2}, cs.LearnersNext)
	require.NotNil(t, tr.progress.get(3), "outgoing voters keep their progress")

	// A restored tracker from this ConfState is identical.
	tr2 := newTrackerFrom(t, &cs)
	require.Equal(t, tr.config.String(), tr2.config.String())

	require.ErrorIs(t, applyCC(t, tr, &eraftpb.ConfChangeV2{Transition: eraftpb.ConfChangeTransition_Explicit, Changes: ccs(add, 5)}), errAlreadyJoint)
	require.NoError(t, applyCC(t, tr, &eraftpb.ConfChangeV2{}))
	require.Equal(t, "voters=(1 4) learners=(2)", tr.config.String())
	require.Nil(t, tr.progress.get(3), "removed when leaving the joint config")
	require.True(t, tr.progress.get(2).IsLearner)
	require.ErrorIs(t, applyCC(t, tr, &eraftpb.ConfChangeV2{}), errNotJoint)
}

func TestEntersJoint(t *testing.T) {
	tests := []struct {
		cc            *eraftpb.ConfChangeV2
		autoLeave, ok bool
	}{
		{&eraftpb.ConfChangeV2{Changes: ccs(add, 1)}, false, false},
		{&eraftpb.ConfChangeV2{Changes: ccs(add, 1, add, 2)}, true, true},
		{&eraftpb.ConfChangeV2{Transition: eraftpb.ConfChangeTransition_Implicit, Changes: ccs(add, 1)}, true, true},
		{&eraftpb.ConfChangeV2{Transition: eraftpb.ConfChangeTransition_Explicit, Changes: ccs(add, 1)}, false, true},
	}
	for i, tt := range tests {
		autoLeave, ok := entersJoint(tt.cc)
		require.Equal(t, tt.autoLeave, autoLeave, "case %d", i)
		require.Equal(t, tt.ok, ok, "case %d", i)
	}
	require.True(t, leavesJoint(&eraftpb.ConfChangeV2{Context: []byte("x")}))
	require.False(t, leavesJoint(&eraftpb.ConfChangeV2{Transition: eraftpb.ConfChangeTransition_Explicit}))
}

func TestRestoreConfigInvalid(t *testing.T) {
	tr := newTracker(10, 0)
	_, _, err := restoreConfig(&tr, &eraftpb.ConfState{Voters: []uint64{1}, Learners: []uint64{1}}, 0)
	require.Error(t, err)
	_, _, err = restoreConfig(&tr, &eraftpb.ConfState{Voters: []uint64{1}, AutoLeave: true}, 0)
	require.Error(t, err)
}

func TestDecodeConfChange(t *testing.T) {
	v1 := &eraftpb.ConfChange{ChangeType: learner, NodeId: 7, Context: []byte("c")}
	data, err := v1.Marshal()
	require.NoError(t, err)
	cc, err := decodeConfChange(&eraftpb.Entry{EntryType: eraftpb.EntryType_EntryConfChange, Data: data})
	require.NoError(t, err)
	require.Equal(t, uint64(7), cc.Changes[0].NodeId)
	require.Equal(t, []byte("c"), cc.Context)
	_, err = decodeConfChange(&eraftpb.Entry{EntryType: eraftpb.EntryType_EntryConfChangeV2, Data: []byte{0xff}})
	require.Error(t, err)
	_, err = decodeConfChange(&eraftpb.Entry{})
	require.Error(t, err)
}
