package raftstore

import (
	"bytes"
	"sort"

	"github.com/pingcap/kvproto/pkg/metapb"
)

// regionRanges indexes the initialized regions a store holds by key range.
// It guards peer creation and snapshots against overlapping a live region
// (the split-versus-snapshot race), finds a region's sibling for
// EpochNotMatch, and finds the region of a key.
//
// Invariant: regions are sorted by start key and their ranges do not
// overlap; each id appears once.
type regionRanges struct {
	regions []*metapb.Region
}

// set records region, replacing the entry with its id. The caller makes
// sure it overlaps no other entry.
func (rr *regionRanges) set(region *metapb.Region) {
	rr.remove(region.GetId())
	i := sort.Search(len(rr.regions), func(i int) bool {
		return bytes.Compare(rr.regions[i].GetStartKey(), region.GetStartKey()) >= 0
	})
	rr.regions = append(rr.regions, nil)
	copy(rr.regions[i+1:], rr.regions[i:])
	rr.regions[i] = region
}

func (rr *regionRanges) remove(id uint64) {
	for i, r := range rr.regions {
		if r.GetId() == id {
			rr.regions = append(rr.regions[:i], rr.regions[i+1:]...)
			return
		}
	}
}

// byID returns the region with id, or nil.
func (rr *regionRanges) byID(id uint64) *metapb.Region {
	for _, r := range rr.regions {
		if r.GetId() == id {
			return r
		}
	}
	return nil
}

// overlap returns a region other than except whose range meets [start,
// end) (an empty end is unbounded), or nil.
func (rr *regionRanges) overlap(start, end []byte, except uint64) *metapb.Region {
	for _, r := range rr.regions {
		if r.GetId() != except && rangesMeet(start, end, r.GetStartKey(), r.GetEndKey()) {
			return r
		}
	}
	return nil
}

// find returns the region holding key, or nil.
func (rr *regionRanges) find(key []byte) *metapb.Region {
	i := sort.Search(len(rr.regions), func(i int) bool {
		return bytes.Compare(rr.regions[i].GetStartKey(), key) > 0
	})
	if i == 0 {
		return nil
	}
	if r := rr.regions[i-1]; keyInRegion(key, r) {
		return r
	}
	return nil
}

// endingAt returns the region whose range ends at key, or nil.
func (rr *regionRanges) endingAt(key []byte) *metapb.Region {
	if len(key) == 0 {
		return nil
	}
	for _, r := range rr.regions {
		if bytes.Equal(r.GetEndKey(), key) {
			return r
		}
	}
	return nil
}

// rangesMeet reports whether [s1, e1) and [s2, e2) share a key; empty ends
// are unbounded.
func rangesMeet(s1, e1, s2, e2 []byte) bool {
	return (len(e2) == 0 || bytes.Compare(s1, e2) < 0) && (len(e1) == 0 || bytes.Compare(s2, e1) < 0)
}
