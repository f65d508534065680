package raft

import (
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/stretchr/testify/require"
)

func newTestLog(t *testing.T, stable []uint64, unstable ...uint64) *raftLog {
	s := NewMemoryStorage()
	require.NoError(t, s.Append(ents(stable...)))
	l := newLog(s, noLimit)
	if len(unstable) > 0 {
		es := ents(append(append([]uint64{}, stable...), unstable...)...)[len(stable):]
		l.append(es...)
	}
	return l
}

func TestLogFindConflict(t *testing.T) {
	l := newTestLog(t, []uint64{1, 2, 3})
	e := func(i, term uint64) *eraftpb.Entry { return &eraftpb.Entry{Index: i, Term: term} }
	tests := []struct {
		ents []*eraftpb.Entry
		want uint64
	}{
		{nil, 0},
		{[]*eraftpb.Entry{e(1, 1), e(2, 2), e(3, 3)}, 0},
		{[]*eraftpb.Entry{e(2, 2), e(3, 3), e(4, 4)}, 4},
		{[]*eraftpb.Entry{e(2, 1), e(3, 4)}, 2},
		{[]*eraftpb.Entry{e(3, 1)}, 3},
	}
	for i, tt := range tests {
		require.Equal(t, tt.want, l.findConflict(tt.ents), "case %d", i)
	}
}

func TestLogFindConflictByTerm(t *testing.T) {
	l := newTestLog(t, []uint64{1, 1, 3, 3, 5})
	tests := []struct{ index, term, wantIndex, wantTerm uint64 }{
		{5, 5, 5, 5},
		{5, 4, 4, 3},
		{5, 2, 2, 1},
		{5, 0, 0, 0},
		{3, 3, 3, 3},
		{9, 4, 9, 0}, // beyond the log: unknown term
	}
	for i, tt := range tests {
		idx, term := l.findConflictByTerm(tt.index, tt.term)
		require.Equal(t, tt.wantIndex, idx, "case %d", i)
		require.Equal(t, tt.wantTerm, term, "case %d", i)
	}
}

func TestLogMaybeAppend(t *testing.T) {
	e := func(i, term uint64) *eraftpb.Entry { return &eraftpb.Entry{Index: i, Term: term} }
	tests := []struct {
		index, logTerm, commit uint64
		ents                   []*eraftpb.Entry
		wantLast               uint64
		wantOK                 bool
		wantCommit             uint64
	}{
		{3, 2, 3, nil, 0, false, 1}, // term mismatch
		{4, 3, 3, nil, 0, false, 1}, // beyond last
		{3, 3, 3, nil, 3, true, 3},  // heartbeat-like
		{3, 3, 4, nil, 3, true, 3},  // commit capped at last new
		{3, 3, 4, []*eraftpb.Entry{e(4, 4)}, 4, true, 4},
		{1, 1, 2, []*eraftpb.Entry{e(2, 4)}, 2, true, 2}, // conflict truncates
		{0, 0, 1, []*eraftpb.Entry{e(1, 1)}, 1, true, 1},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			l := newTestLog(t, []uint64{1, 2, 3})
			l.commitTo(1)
			last, ok := l.maybeAppend(tt.index, tt.logTerm, tt.commit, tt.ents)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.wantLast, last)
			require.Equal(t, tt.wantCommit, l.committed)
		})
	}
}

func TestLogConflictWithCommittedPanics(t *testing.T) {
	l := newTestLog(t, []uint64{1, 2, 3})
	l.commitTo(2)
	require.Panics(t, func() { l.maybeAppend(1, 1, 3, []*eraftpb.Entry{{Index: 2, Term: 4}}) })
}

func TestLogUnstableStableTo(t *testing.T) {
	l := newTestLog(t, []uint64{1}, 2, 2, 3)
	require.Len(t, l.unstableEntries(), 3)
	l.stableTo(3, 1) // wrong term: ignored
	require.Len(t, l.unstableEntries(), 3)
	l.stableTo(3, 2)
	require.Len(t, l.unstableEntries(), 1)
	require.Equal(t, uint64(4), l.unstable.offset)
}

func TestLogUnstableTruncateDoesNotClobberHandedOutSlice(t *testing.T) {
	l := newTestLog(t, nil, 1, 1, 1)
	handedOut := l.unstableEntries()
	l.append(&eraftpb.Entry{Index: 2, Term: 2})
	require.Equal(t, uint64(1), handedOut[1].Term)
	require.Equal(t, []uint64{1, 2}, termsOf(l.unstableEntries()))
}

func TestLogSliceAcrossStableAndUnstable(t *testing.T) {
	l := newTestLog(t, []uint64{1, 1, 1}, 2, 2)
	size := uint64((&eraftpb.Entry{Index: 1, Term: 1}).Size())
	tests := []struct {
		lo, hi, max uint64
		want        []uint64
	}{
		{1, 6, noLimit, []uint64{1, 1, 1, 2, 2}},
		{2, 5, noLimit, []uint64{1, 1, 2}},
		{4, 6, noLimit, []uint64{2, 2}},
		{1, 6, 0, []uint64{1}},
		{1, 6, 4 * size, []uint64{1, 1, 1, 2}},
		{3, 6, size, []uint64{1}},
	}
	for i, tt := range tests {
		es, err := l.slice(tt.lo, tt.hi, tt.max)
		require.NoError(t, err)
		require.Equal(t, tt.want, termsOf(es), "case %d", i)
	}
	require.Panics(t, func() { _, _ = l.slice(1, 7, noLimit) })
}

func TestLogCompactedAccess(t *testing.T) {
	s := NewMemoryStorage()
	require.NoError(t, s.Append(ents(1, 1, 2, 2, 3)))
	require.NoError(t, s.Compact(3))
	l := newLog(s, noLimit)
	_, err := l.term(1)
	require.ErrorIs(t, err, ErrCompacted)
	term, err := l.term(3)
	require.NoError(t, err)
	require.Equal(t, uint64(2), term)
	_, err = l.entries(2, noLimit)
	require.ErrorIs(t, err, ErrCompacted)
	_, err = l.term(6)
	require.ErrorIs(t, err, ErrUnavailable)
}

func TestLogNextCommittedEntsLimit(t *testing.T) {
	s := NewMemoryStorage()
	require.NoError(t, s.Append(ents(1, 1, 1, 1)))
	size := uint64((&eraftpb.Entry{Index: 1, Term: 1}).Size())
	l := newLog(s, 2*size)
	l.commitTo(4)
	es := l.nextCommittedEnts()
	require.Len(t, es, 2)
	l.acceptApplying(2)
	es = l.nextCommittedEnts()
	require.Equal(t, uint64(3), es[0].Index)
	l.appliedTo(2)
	require.True(t, l.hasNextCommittedEnts())
	l.acceptApplying(4)
	require.False(t, l.hasNextCommittedEnts())
}

func TestLogIsUpToDate(t *testing.T) {
	l := newTestLog(t, []uint64{1, 2, 3})
	tests := []struct {
		index, term uint64
		want        bool
	}{
		{2, 4, true}, {3, 4, true}, {4, 4, true},
		{2, 2, false}, {3, 2, false}, {4, 2, false},
		{2, 3, false}, {3, 3, true}, {4, 3, true},
	}
	for i, tt := range tests {
		require.Equal(t, tt.want, l.isUpToDate(tt.index, tt.term), "case %d", i)
	}
}

func TestLogRestore(t *testing.T) {
	l := newTestLog(t, []uint64{1, 1})
	snap := &eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{Index: 10, Term: 3}}
	l.restore(snap)
	require.Equal(t, uint64(10), l.committed)
	require.Equal(t, uint64(11), l.firstIndex())
	require.Equal(t, uint64(10), l.lastIndex())
	require.Equal(t, uint64(3), l.lastTerm())
	require.True(t, l.hasPendingSnapshot())
	l.stableSnapTo(10)
	require.False(t, l.hasPendingSnapshot())
}
