package pdsvc

import (
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	pdhttp "github.com/tikv/pd/client/http"
)

// report is a region heartbeat of region 7 (leader peer 70 on store 1,
// follower 71 on store 2) with the flows of a 10-second interval.
func report(writtenBytes, readBytes uint64) *regionInfo {
	peers := []*metapb.Peer{{Id: 70, StoreId: 1}, {Id: 71, StoreId: 2}}
	return &regionInfo{
		meta:   &metapb.Region{Id: 7, StartKey: []byte("a"), EndKey: []byte("b"), Peers: peers},
		leader: peers[0], writtenBytes: writtenBytes, writtenKeys: 10, readBytes: readBytes, readKeys: 10,
		interval: &pdpb.TimeInterval{StartTimestamp: 100, EndTimestamp: 110},
	}
}

func degrees(c *hotCache, kind hotKind) map[uint64]int {
	out := map[uint64]int{}
	for store, st := range c.hotPeers(kind).AsPeer {
		for _, p := range st.Stats {
			out[store] = p.HotDegree
		}
	}
	return out
}

// TestHotCacheDegrees: a peer is hot at PD's minimum thresholds (write 1
// KiB/s, read 8 KiB/s); consecutive hot reports raise its degree, and it
// survives hotAntiCount cold reports. Writes count on every peer, reads on
// the leader.
func TestHotCacheDegrees(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newHotCache(func() time.Time { return now }, time.Hour, 7)
	c.observe(report(10*1023, 10*(8<<10-1)))
	if d := degrees(c, hotWrite); len(d) != 0 {
		t.Fatalf("below the threshold: %v", d)
	}
	for range 3 {
		c.observe(report(10<<10, 10*8<<10))
	}
	if d := degrees(c, hotWrite); d[1] != 3 || d[2] != 3 {
		t.Fatalf("write degrees after 3 hot reports: %v", d)
	}
	if d := degrees(c, hotRead); d[1] != 3 || len(d) != 1 {
		t.Fatalf("read degrees (leader only): %v", d)
	}
	leaders := c.hotPeers(hotWrite).AsLeader
	if leaders[1].Count != 1 || leaders[2].Count != 0 || leaders[1].TotalBytesRate != 1<<10 {
		t.Fatalf("as leader: store 1 %+v, store 2 %+v", leaders[1], leaders[2])
	}
	c.observe(report(0, 0))
	if d := degrees(c, hotWrite); d[1] != 2 {
		t.Fatalf("after one cold report: %v", d)
	}
	c.observe(report(0, 0))
	if d := degrees(c, hotWrite); len(d) != 0 {
		t.Fatalf("after %d cold reports the peer should be gone: %v", hotAntiCount, d)
	}
	c.observe(&regionInfo{meta: report(1<<20, 0).meta, writtenBytes: 1 << 20})
	if d := degrees(c, hotWrite); len(d) != 0 {
		t.Fatalf("a report without an interval counted: %v", d)
	}
}

// TestHotCacheHistory: the hot peers are recorded every write interval,
// selected by the request's filters, and dropped after the reserved days.
func TestHotCacheHistory(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newHotCache(func() time.Time { return now }, 10*time.Minute, 1)
	c.observe(report(10<<10, 0))
	if h := c.historyMatching(&pdhttp.HistoryHotRegionsRequest{}); len(h) != 0 {
		t.Fatalf("recorded before the interval passed: %d", len(h))
	}
	now = now.Add(10 * time.Minute)
	c.observe(report(10<<10, 0))
	all := c.historyMatching(&pdhttp.HistoryHotRegionsRequest{})
	if len(all) != 2 || all[0].HotRegionType != "write" || all[0].StartKey != "61" || all[0].EndKey != "62" ||
		all[0].UpdateTime != now.UnixMilli() || all[0].HotDegree != 2 {
		t.Fatalf("history: %+v", all)
	}
	if h := c.historyMatching(&pdhttp.HistoryHotRegionsRequest{StoreIDs: []uint64{2}, IsLeaders: []bool{false}}); len(h) != 1 || h[0].PeerID != 71 {
		t.Fatalf("store 2 followers: %+v", h)
	}
	if h := c.historyMatching(&pdhttp.HistoryHotRegionsRequest{HotRegionTypes: []string{"read"}}); len(h) != 0 {
		t.Fatalf("read history: %+v", h)
	}
	if h := c.historyMatching(&pdhttp.HistoryHotRegionsRequest{EndTime: now.UnixMilli() - 1}); len(h) != 0 {
		t.Fatalf("before end time: %+v", h)
	}
	now = now.Add(25 * time.Hour)
	c.observe(report(0, 0))
	if h := c.historyMatching(&pdhttp.HistoryHotRegionsRequest{}); len(h) != 2 || h[0].UpdateTime != now.UnixMilli() {
		t.Fatalf("after a day only the new records should stay: %+v", h)
	}
}
