package raftstore

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/stretchr/testify/require"
)

func TestRegionRanges(t *testing.T) {
	r := func(id uint64, start, end string) *metapb.Region {
		return &metapb.Region{Id: id, StartKey: []byte(start), EndKey: []byte(end)}
	}
	var rr regionRanges
	rr.set(r(2, "m", ""))
	rr.set(r(1, "", "f"))
	rr.set(r(3, "f", "m"))
	require.Equal(t, uint64(1), rr.find([]byte("")).GetId())
	require.Equal(t, uint64(3), rr.find([]byte("f")).GetId())
	require.Equal(t, uint64(3), rr.find([]byte("lz")).GetId())
	require.Equal(t, uint64(2), rr.find([]byte("zzz")).GetId())
	require.Equal(t, uint64(3), rr.endingAt([]byte("m")).GetId())
	require.Nil(t, rr.endingAt(nil), "no region ends at the unbounded end")

	require.Equal(t, uint64(3), rr.overlap([]byte("g"), []byte("h"), 0).GetId())
	require.Nil(t, rr.overlap([]byte("g"), []byte("h"), 3), "a region does not overlap itself")
	require.Equal(t, uint64(2), rr.overlap([]byte("x"), nil, 0).GetId())

	// Region 3 splits: it keeps [h, m), a new region 4 takes [f, h).
	rr.set(r(3, "h", "m"))
	require.Nil(t, rr.find([]byte("g")))
	require.Nil(t, rr.overlap([]byte("f"), []byte("h"), 4))
	rr.set(r(4, "f", "h"))
	require.Equal(t, uint64(4), rr.find([]byte("g")).GetId())
	rr.remove(1)
	require.Nil(t, rr.find([]byte("a")))
	require.Len(t, rr.regions, 3)
	for i := 1; i < len(rr.regions); i++ {
		require.Equal(t, rr.regions[i-1].GetEndKey(), rr.regions[i].GetStartKey(), "sorted by start key")
	}
}
