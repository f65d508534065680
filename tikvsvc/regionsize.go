package tikvsvc

import (
	"sync"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tinykv/tinykv/engine"
)

// sizeRecheckBytes is the least that must be written to a region before its
// approximate size is measured again (TiKV re-checks a region's size once
// region-split-check-diff, 1/16 of the 96 MiB split size, is written).
const sizeRecheckBytes = 6 << 20

// sizeRecheckShare is the fraction (1/sizeRecheckShare) of a region's last
// measured size that must be written before a larger region is measured
// again. A measure reads every key of the region, where TiKV reads SST
// properties, so a fixed threshold would make loading a large region
// quadratic; with this one, measures read at most about sizeRecheckShare
// bytes per byte written.
const sizeRecheckShare = 8

// regionSizes estimates the approximate size and keys of the regions the
// store reports to PD: each is measured (a scan) in the background on the
// first heartbeat and again once enough has been written to it, and
// between measures it is the last measure plus what was written since (new
// MVCC versions add to a region until GC removes them). A heartbeat never
// waits for a measure: until a region's first one completes its estimate is
// what was written since the store started, as TiKV reports no size before
// its first split check.
type regionSizes struct {
	// measure reads the size of a key range from a consistent snapshot.
	measure func(start, end []byte) engine.RangeStats
	// inflight counts the measures running, for Close to wait on.
	inflight *sync.WaitGroup

	mu      sync.Mutex
	regions map[uint64]*regionSizeEstimate
}

// regionSizeEstimate is one region's estimate. Writes counted while a
// measure runs may be in its snapshot or not; they are counted on top of
// the measure, so the estimate errs on the large side.
type regionSizeEstimate struct {
	measured engine.RangeStats
	// since is what was written after the last measure started.
	since engine.RangeStats
	// beforeMeasure is what was written between the last completed measure
	// and the start of the running one; it is part of the estimate until
	// the running one completes.
	beforeMeasure engine.RangeStats
	measuring     bool
	everMeasured  bool
}

func newRegionSizes(measure func(start, end []byte) engine.RangeStats, inflight *sync.WaitGroup) *regionSizes {
	return &regionSizes{measure: measure, inflight: inflight, regions: make(map[uint64]*regionSizeEstimate)}
}

// estimate adds what flow wrote to region's estimate and returns it,
// starting a measure when one is due.
func (s *regionSizes) estimate(region *metapb.Region, flow flowCounts) engine.RangeStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	est, known := s.regions[region.GetId()]
	if !known {
		est = &regionSizeEstimate{}
		s.regions[region.GetId()] = est
	}
	est.since.Bytes += flow.writtenBytes
	est.since.Keys += flow.writtenKeys
	if est.due() {
		s.startMeasure(region, est)
	}
	return est.total()
}

// due reports whether est needs a new measure.
func (est *regionSizeEstimate) due() bool {
	if est.measuring {
		return false
	}
	if !est.everMeasured {
		return true
	}
	return est.since.Bytes >= max(sizeRecheckBytes, est.measured.Bytes/sizeRecheckShare)
}

func (est *regionSizeEstimate) total() engine.RangeStats {
	return engine.RangeStats{
		Bytes: est.measured.Bytes + est.beforeMeasure.Bytes + est.since.Bytes,
		Keys:  est.measured.Keys + est.beforeMeasure.Keys + est.since.Keys,
	}
}

// startMeasure measures region in the background. s.mu must be held.
func (s *regionSizes) startMeasure(region *metapb.Region, est *regionSizeEstimate) {
	est.measuring = true
	est.beforeMeasure, est.since = est.since, engine.RangeStats{}
	start, end := region.GetStartKey(), region.GetEndKey()
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		measured := s.measure(start, end)
		s.mu.Lock()
		defer s.mu.Unlock()
		est.measured, est.beforeMeasure = measured, engine.RangeStats{}
		est.measuring, est.everMeasured = false, true
	}()
}
