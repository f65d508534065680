package tikvsvc

import (
	"sync"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
)

// blockingMeasure is a measure function that reports each call and returns
// what the test sends it, so a test decides when a measure completes.
type blockingMeasure struct {
	calls   chan struct{}
	results chan engine.RangeStats
}

func newBlockingMeasure() *blockingMeasure {
	return &blockingMeasure{calls: make(chan struct{}, 16), results: make(chan engine.RangeStats)}
}

func (m *blockingMeasure) measure(_, _ []byte) engine.RangeStats {
	m.calls <- struct{}{}
	return <-m.results
}

func (m *blockingMeasure) requireCalled(t *testing.T) {
	t.Helper()
	select {
	case <-m.calls:
	case <-time.After(5 * time.Second):
		t.Fatal("no measure started")
	}
}

func (m *blockingMeasure) requireNotCalled(t *testing.T) {
	t.Helper()
	select {
	case <-m.calls:
		t.Fatal("a measure started")
	default:
	}
}

func written(bytes, keys uint64) flowCounts {
	return flowCounts{writtenBytes: bytes, writtenKeys: keys}
}

// waitEstimate polls until region's estimate (with nothing more written)
// is want.
func waitEstimate(t *testing.T, s *regionSizes, region *metapb.Region, want engine.RangeStats) {
	t.Helper()
	require.Eventually(t, func() bool { return s.estimate(region, flowCounts{}) == want },
		5*time.Second, time.Millisecond)
}

// TestRegionSizesNeverWaitForAMeasure: the first heartbeat starts a measure
// and reports what was written so far without waiting for it; writes made
// while it runs are added to its result.
func TestRegionSizesNeverWaitForAMeasure(t *testing.T) {
	m := newBlockingMeasure()
	var inflight sync.WaitGroup
	s := newRegionSizes(m.measure, &inflight)
	region := &metapb.Region{Id: 7}

	require.Equal(t, engine.RangeStats{Bytes: 100, Keys: 2}, s.estimate(region, written(100, 2)))
	m.requireCalled(t)
	require.Equal(t, engine.RangeStats{Bytes: 150, Keys: 3}, s.estimate(region, written(50, 1)))
	m.requireNotCalled(t)

	m.results <- engine.RangeStats{Bytes: 1000, Keys: 20}
	waitEstimate(t, s, region, engine.RangeStats{Bytes: 1050, Keys: 21})
	inflight.Wait()
}

// TestRegionSizesRecheckInProportion: a region is measured again after
// sizeRecheckBytes are written, or for a large region after an eighth of
// its size, so that measures read a bounded amount per byte written.
func TestRegionSizesRecheckInProportion(t *testing.T) {
	m := newBlockingMeasure()
	var inflight sync.WaitGroup
	s := newRegionSizes(m.measure, &inflight)
	small, large := &metapb.Region{Id: 1}, &metapb.Region{Id: 2}

	for region, size := range map[*metapb.Region]uint64{small: 1 << 20, large: 800 << 20} {
		s.estimate(region, flowCounts{})
		m.requireCalled(t)
		m.results <- engine.RangeStats{Bytes: size, Keys: 1}
		waitEstimate(t, s, region, engine.RangeStats{Bytes: size, Keys: 1})
	}

	s.estimate(small, written(sizeRecheckBytes-1, 1))
	m.requireNotCalled(t)
	s.estimate(small, written(1, 0))
	m.requireCalled(t)
	m.results <- engine.RangeStats{Bytes: 7 << 20, Keys: 2}
	waitEstimate(t, s, small, engine.RangeStats{Bytes: 7 << 20, Keys: 2})

	s.estimate(large, written(99<<20, 1))
	m.requireNotCalled(t)
	require.Equal(t, engine.RangeStats{Bytes: 900 << 20, Keys: 3}, s.estimate(large, written(1<<20, 1)))
	m.requireCalled(t)
	m.results <- engine.RangeStats{Bytes: 900 << 20, Keys: 3}
	waitEstimate(t, s, large, engine.RangeStats{Bytes: 900 << 20, Keys: 3})
	inflight.Wait()
}
