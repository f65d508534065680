package raftstore

import (
	"bytes"
	"fmt"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tinykv/tinykv/engine"
)

// RegionSnapshot is a consistent view of one region's data: it sees every
// write acknowledged before the read that produced it, and only keys inside
// the region.
type RegionSnapshot struct {
	region *metapb.Region
	snap   *engine.Snapshot
}

func newRegionSnapshot(region *metapb.Region, snap *engine.Snapshot) *RegionSnapshot {
	return &RegionSnapshot{region: region, snap: snap}
}

// Region returns the region as of the snapshot. It must not be modified.
func (s *RegionSnapshot) Region() *metapb.Region { return s.region }

// Get returns the value of key in cf, or engine.ErrNotFound. A key outside
// the region is an error.
func (s *RegionSnapshot) Get(cf engine.CF, key []byte) ([]byte, error) {
	if !keyInRegion(key, s.region) {
		return nil, fmt.Errorf("raftstore: get %q: %w", key, regionErr(errKeyNotInRegion(key, s.region)))
	}
	return s.snap.Get(cf, key)
}

// NewIterator returns an iterator over cf within opts' bounds intersected
// with the region's range.
func (s *RegionSnapshot) NewIterator(cf engine.CF, opts engine.IterOptions) *engine.Iterator {
	if start := s.region.GetStartKey(); bytes.Compare(opts.LowerBound, start) < 0 {
		opts.LowerBound = start
	}
	if end := s.region.GetEndKey(); len(end) > 0 && (len(opts.UpperBound) == 0 || bytes.Compare(opts.UpperBound, end) > 0) {
		opts.UpperBound = end
	}
	return s.snap.NewIterator(cf, opts)
}

// Close releases the snapshot.
func (s *RegionSnapshot) Close() { s.snap.Close() }
