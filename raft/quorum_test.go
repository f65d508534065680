package raft

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func mc(ids ...uint64) majorityConfig {
	c := majorityConfig{}
	for _, id := range ids {
		c[id] = struct{}{}
	}
	return c
}

func TestMajorityCommittedIndex(t *testing.T) {
	tests := []struct {
		voters []uint64
		acked  map[uint64]uint64
		want   uint64
	}{
		{nil, nil, math.MaxUint64},
		{[]uint64{1}, map[uint64]uint64{1: 5}, 5},
		{[]uint64{1, 2}, map[uint64]uint64{1: 5, 2: 3}, 3},
		{[]uint64{1, 2, 3}, map[uint64]uint64{1: 5, 2: 3, 3: 1}, 3},
		{[]uint64{1, 2, 3}, map[uint64]uint64{1: 5}, 0},
		{[]uint64{1, 2, 3, 4}, map[uint64]uint64{1: 5, 2: 4, 3: 3, 4: 2}, 3},
		{[]uint64{1, 2, 3, 4, 5}, map[uint64]uint64{1: 9, 2: 8, 3: 1, 4: 7, 5: 2}, 7},
		{[]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, map[uint64]uint64{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9}, 5},
	}
	for i, tt := range tests {
		got := mc(tt.voters...).committedIndex(func(id uint64) uint64 { return tt.acked[id] })
		require.Equal(t, tt.want, got, "case %d", i)
	}
}

func TestJointCommittedIndex(t *testing.T) {
	acked := map[uint64]uint64{1: 10, 2: 9, 3: 2, 4: 1, 5: 8}
	f := func(id uint64) uint64 { return acked[id] }
	require.Equal(t, uint64(9), jointConfig{mc(1, 2, 3), nil}.committedIndex(f))
	// The outgoing half (3, 4, 5) only has a majority at 2.
	require.Equal(t, uint64(2), jointConfig{mc(1, 2, 3), mc(3, 4, 5)}.committedIndex(f))
	require.Equal(t, uint64(8), jointConfig{mc(1, 2, 5), mc(1, 5)}.committedIndex(f))
}

func TestVoteResult(t *testing.T) {
	tests := []struct {
		cfg   jointConfig
		votes map[uint64]bool
		want  voteOutcome
	}{
		{jointConfig{mc(), nil}, nil, voteWon},
		{jointConfig{mc(1, 2, 3), nil}, map[uint64]bool{1: true}, votePending},
		{jointConfig{mc(1, 2, 3), nil}, map[uint64]bool{1: true, 2: true}, voteWon},
		{jointConfig{mc(1, 2, 3), nil}, map[uint64]bool{1: true, 2: false, 3: false}, voteLost},
		{jointConfig{mc(1, 2), nil}, map[uint64]bool{1: true, 2: false}, voteLost},
		{jointConfig{mc(1, 2, 3), nil}, map[uint64]bool{1: true, 9: true}, votePending},
		{jointConfig{mc(1, 2, 3), mc(3, 4, 5)}, map[uint64]bool{1: true, 2: true}, votePending},
		{jointConfig{mc(1, 2, 3), mc(3, 4, 5)}, map[uint64]bool{1: true, 2: true, 3: true}, votePending},
		{jointConfig{mc(1, 2, 3), mc(3, 4, 5)}, map[uint64]bool{1: true, 3: true, 4: true}, voteWon},
		{jointConfig{mc(1, 2, 3), mc(3, 4, 5)}, map[uint64]bool{1: true, 2: true, 4: false, 5: false}, voteLost},
		{jointConfig{mc(1, 2, 3), mc(3, 4, 5)}, map[uint64]bool{1: false, 2: false, 4: true, 5: true}, voteLost},
	}
	for i, tt := range tests {
		require.Equal(t, tt.want, tt.cfg.voteResult(tt.votes), "case %d: %s %v", i, tt.cfg, tt.votes)
	}
}

func TestInflights(t *testing.T) {
	in := newInflights(4, 0)
	for i := uint64(1); i <= 4; i++ {
		require.False(t, in.full())
		in.add(i*10, 1)
	}
	require.True(t, in.full())
	require.Panics(t, func() { in.add(50, 1) })
	in.freeLE(5) // nothing below the first
	require.Equal(t, 4, in.count)
	in.freeLE(20)
	require.Equal(t, 2, in.count)
	in.add(50, 1)
	in.add(60, 1) // wraps around the ring
	require.True(t, in.full())
	in.freeFirstOne()
	require.Equal(t, 3, in.count)
	in.freeLE(60)
	require.Equal(t, 0, in.count)
	require.Equal(t, uint64(0), in.bytes)

	c := in.clone()
	c.add(1, 1)
	require.Equal(t, 0, in.count)
}

func TestInflightsBytes(t *testing.T) {
	in := newInflights(10, 100)
	in.add(1, 60)
	require.False(t, in.full())
	in.add(2, 40)
	require.True(t, in.full())
	in.freeLE(1)
	require.False(t, in.full())
	require.Equal(t, uint64(40), in.bytes)
}

func TestProgressMaybeDecrTo(t *testing.T) {
	tests := []struct {
		state          ProgressState
		match, next    uint64
		rejected, hint uint64
		wantOK         bool
		wantNext       uint64
	}{
		// Replicate: stale if rejected <= match, else back to match+1.
		{ProgressStateReplicate, 5, 10, 5, 5, false, 10},
		{ProgressStateReplicate, 5, 10, 4, 4, false, 10},
		{ProgressStateReplicate, 5, 10, 9, 9, true, 6},
		// Probe: only a rejection of next-1 counts.
		{ProgressStateProbe, 0, 10, 9, 9, true, 9},
		{ProgressStateProbe, 0, 10, 5, 5, false, 10},
		{ProgressStateProbe, 0, 10, 9, 3, true, 4},
		{ProgressStateProbe, 5, 10, 9, 0, true, 6}, // never below match+1
		{ProgressStateProbe, 0, 1, 0, 0, true, 1},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			pr := newProgress(tt.next, 10, 0, false)
			pr.Match = tt.match
			pr.State = tt.state
			pr.ProbeSent = true
			require.Equal(t, tt.wantOK, pr.maybeDecrTo(tt.rejected, tt.hint))
			require.Equal(t, tt.wantNext, pr.Next)
			if tt.wantOK && tt.state == ProgressStateProbe {
				require.False(t, pr.ProbeSent)
			}
		})
	}
}

func TestProgressStateTransitions(t *testing.T) {
	pr := newProgress(5, 10, 0, false)
	pr.Match = 4
	pr.becomeSnapshot(10)
	require.True(t, pr.isPaused())
	pr.becomeProbe()
	require.Equal(t, uint64(11), pr.Next, "after a snapshot, probe past it")
	pr.becomeReplicate()
	require.Equal(t, uint64(5), pr.Next)
	pr.sentEntries(2, 6, 10)
	require.Equal(t, uint64(7), pr.Next)
	require.Equal(t, 1, pr.Inflight())
	require.True(t, pr.maybeUpdate(6))
	require.False(t, pr.maybeUpdate(6))
	require.Equal(t, "StateReplicate", pr.State.String())
}
