package pdsvc_test

import (
	"sync"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/pdpb"
)

// fakeClock is a settable clock shared by the server and the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// getTS asks for count timestamps on one stream and returns the largest.
func (p *testPD) getTS(count uint32) *pdpb.Timestamp {
	p.t.Helper()
	stream, err := p.raw.Tso(ctxT(p.t))
	if err != nil {
		p.t.Fatal(err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&pdpb.TsoRequest{Header: p.header(), Count: count}); err != nil {
		p.t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.GetTimestamp()
}

func tsValue(ts *pdpb.Timestamp) uint64 { return composeTS(ts.GetPhysical(), ts.GetLogical()) }

func TestTSOTracksClockButNeverGoesBack(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start}
	p := startPDWithClock(t, clock.Now)

	first := p.getTS(1)
	if first.GetPhysical() != start.UnixMilli() {
		t.Fatalf("physical %d, want the clock %d", first.GetPhysical(), start.UnixMilli())
	}
	clock.Set(start.Add(-10 * time.Second))
	back := p.getTS(1)
	if tsValue(back) <= tsValue(first) {
		t.Fatalf("clock went back and so did TSO: %v after %v", back, first)
	}
	clock.Set(start.Add(time.Minute))
	ahead := p.getTS(1)
	if ahead.GetPhysical() != start.Add(time.Minute).UnixMilli() || ahead.GetLogical() != 1 {
		t.Fatalf("after the clock moved on: %v", ahead)
	}
}

func TestTSOLogicalOverflowAdvancesPhysical(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start}
	p := startPDWithClock(t, clock.Now)
	const batch = 200_000 // more than half of the 2^18 logical values
	a := p.getTS(batch)
	b := p.getTS(batch)
	if a.GetPhysical() != start.UnixMilli() || b.GetPhysical() != start.UnixMilli()+1 {
		t.Fatalf("batches at physical %d and %d, want %d and +1", a.GetPhysical(), b.GetPhysical(), start.UnixMilli())
	}
	if b.GetLogical() != batch || b.GetLogical()-batch+1 <= 0 {
		t.Fatalf("second batch logical range ends at %d", b.GetLogical())
	}
	// Keep the clock frozen and exhaust the persisted window: the allocator
	// must extend it rather than hand out timestamps beyond it.
	var last uint64
	for range 4000 {
		ts := tsValue(p.getTS(batch))
		if ts <= last {
			t.Fatalf("timestamp %d after %d", ts, last)
		}
		last = ts
	}
	if got := int64(last >> 18); got <= start.UnixMilli()+3000 {
		t.Fatalf("physical %d did not run past the first 3 s window", got)
	}
	p.restart()
	if after := tsValue(p.getTS(1)); after <= last {
		t.Fatalf("after restart %d <= %d: the extended window was not persisted", after, last)
	}
}

func TestTSORestartWithClockBehind(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start}
	p := startPDWithClock(t, clock.Now)
	before := tsValue(p.getTS(10))
	clock.Set(start.Add(-time.Hour))
	p.restart()
	after := tsValue(p.getTS(1))
	if after <= before {
		t.Fatalf("after restart with the clock an hour behind: %d <= %d", after, before)
	}
}
