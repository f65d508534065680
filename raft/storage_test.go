package raft

import (
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/stretchr/testify/require"
)

// newStorageWith returns a storage whose dummy entry is (3, 3) and which
// holds entries 4 and 5 of terms 4 and 5.
func newStorageWith(t *testing.T) *MemoryStorage {
	ms := NewMemoryStorage()
	require.NoError(t, ms.ApplySnapshot(eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{Index: 3, Term: 3, ConfState: &eraftpb.ConfState{}}}))
	require.NoError(t, ms.Append([]*eraftpb.Entry{{Index: 4, Term: 4}, {Index: 5, Term: 5}}))
	return ms
}

func TestStorageTerm(t *testing.T) {
	tests := []struct {
		i    uint64
		err  error
		term uint64
	}{
		{2, ErrCompacted, 0},
		{3, nil, 3},
		{4, nil, 4},
		{5, nil, 5},
		{6, ErrUnavailable, 0},
	}
	for _, tt := range tests {
		term, err := newStorageWith(t).Term(tt.i)
		require.ErrorIs(t, err, tt.err)
		require.Equal(t, tt.term, term)
	}
}

func TestStorageEntries(t *testing.T) {
	size := uint64((&eraftpb.Entry{Index: 4, Term: 4}).Size())
	tests := []struct {
		lo, hi, max uint64
		err         error
		want        []uint64
	}{
		{2, 6, noLimit, ErrCompacted, nil},
		{3, 4, noLimit, ErrCompacted, nil},
		{4, 5, noLimit, nil, []uint64{4}},
		{4, 6, noLimit, nil, []uint64{4, 5}},
		{4, 6, 0, nil, []uint64{4}}, // at least one entry
		{4, 6, size, nil, []uint64{4}},
		{4, 6, 2 * size, nil, []uint64{4, 5}},
		{4, 7, noLimit, ErrUnavailable, nil},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			es, err := newStorageWith(t).Entries(tt.lo, tt.hi, tt.max)
			require.ErrorIs(t, err, tt.err)
			var got []uint64
			for _, e := range es {
				got = append(got, e.Index)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestStorageIndexes(t *testing.T) {
	ms := newStorageWith(t)
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	require.Equal(t, uint64(4), first)
	require.Equal(t, uint64(5), last)
	require.NoError(t, ms.Append([]*eraftpb.Entry{{Index: 6, Term: 5}}))
	last, _ = ms.LastIndex()
	require.Equal(t, uint64(6), last)
	require.NoError(t, ms.Compact(4))
	first, _ = ms.FirstIndex()
	require.Equal(t, uint64(5), first)
}

func TestStorageCompact(t *testing.T) {
	tests := []struct {
		i     uint64
		err   error
		first uint64
	}{
		{2, ErrCompacted, 4},
		{3, ErrCompacted, 4},
		{4, nil, 5},
		{5, nil, 6},
		{6, ErrUnavailable, 4},
	}
	for _, tt := range tests {
		ms := newStorageWith(t)
		require.ErrorIs(t, ms.Compact(tt.i), tt.err)
		first, _ := ms.FirstIndex()
		require.Equal(t, tt.first, first)
	}
}

func TestStorageCreateSnapshot(t *testing.T) {
	cs := &eraftpb.ConfState{Voters: []uint64{1, 2, 3}}
	ms := newStorageWith(t)
	snap, err := ms.CreateSnapshot(4, cs, []byte("data"))
	require.NoError(t, err)
	require.Equal(t, uint64(4), snap.Metadata.Index)
	require.Equal(t, uint64(4), snap.Metadata.Term)
	require.Equal(t, []uint64{1, 2, 3}, snap.Metadata.ConfState.Voters)
	_, err = ms.CreateSnapshot(4, cs, nil)
	require.ErrorIs(t, err, ErrSnapOutOfDate)
	_, err = ms.CreateSnapshot(9, cs, nil)
	require.ErrorIs(t, err, ErrUnavailable)
	_, gotCS, err := ms.InitialState()
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, gotCS.Voters)
}

func TestStorageAppend(t *testing.T) {
	e := func(i, term uint64) *eraftpb.Entry { return &eraftpb.Entry{Index: i, Term: term} }
	tests := []struct {
		ents []*eraftpb.Entry
		err  error
		want [][2]uint64 // (index, term) after the dummy entry
	}{
		{[]*eraftpb.Entry{e(4, 4), e(5, 5)}, nil, [][2]uint64{{4, 4}, {5, 5}}},
		{[]*eraftpb.Entry{e(4, 4), e(5, 6), e(6, 6)}, nil, [][2]uint64{{4, 4}, {5, 6}, {6, 6}}},
		{[]*eraftpb.Entry{e(2, 3), e(3, 3), e(4, 5)}, nil, [][2]uint64{{4, 5}}}, // truncate the compacted part
		{[]*eraftpb.Entry{e(6, 5)}, nil, [][2]uint64{{4, 4}, {5, 5}, {6, 5}}},
		{[]*eraftpb.Entry{e(1, 1)}, nil, [][2]uint64{{4, 4}, {5, 5}}}, // all compacted: ignored
		{[]*eraftpb.Entry{e(7, 5)}, ErrUnavailable, [][2]uint64{{4, 4}, {5, 5}}},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			ms := newStorageWith(t)
			require.ErrorIs(t, ms.Append(tt.ents), tt.err)
			var got [][2]uint64
			for _, e := range ms.ents[1:] {
				got = append(got, [2]uint64{e.Index, e.Term})
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestStorageApplySnapshot(t *testing.T) {
	ms := NewMemoryStorage()
	snap := func(i uint64) eraftpb.Snapshot {
		return eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{Index: i, Term: i, ConfState: &eraftpb.ConfState{Voters: []uint64{1}}}}
	}
	require.NoError(t, ms.ApplySnapshot(snap(4)))
	require.ErrorIs(t, ms.ApplySnapshot(snap(3)), ErrSnapOutOfDate)
	first, _ := ms.FirstIndex()
	require.Equal(t, uint64(5), first)
	term, err := ms.Term(4)
	require.NoError(t, err)
	require.Equal(t, uint64(4), term)
}
