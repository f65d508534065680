package tikvsvc

import (
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

type boundCase struct {
	what           string
	status         *kvrpcpb.TxnStatus
	wantTS         uint64
	wantBounds     bool
	generationZero bool
}

// TestTxnStatusCacheBounds follows one transaction (start_ts 100) through
// the statuses clients broadcast, checking how far its locks hold the
// resolved ts after each.
func TestTxnStatusCacheBounds(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTxnStatusCache(func() time.Time { return now })
	steps := []boundCase{
		{what: "unknown: start_ts", wantTS: 100, wantBounds: true},
		{what: "ongoing", status: &kvrpcpb.TxnStatus{StartTs: 100, MinCommitTs: 150}, wantTS: 150, wantBounds: true},
		{what: "a lower min_commit_ts never lowers it", status: &kvrpcpb.TxnStatus{StartTs: 100, MinCommitTs: 120}, wantTS: 150, wantBounds: true},
		{what: "a non-pipelined lock ignores the cache", wantTS: 100, wantBounds: true, generationZero: true},
		{what: "committed", status: &kvrpcpb.TxnStatus{StartTs: 100, MinCommitTs: 150, CommitTs: 160}},
		{what: "a late ongoing status does not revive it", status: &kvrpcpb.TxnStatus{StartTs: 100, MinCommitTs: 170}},
		{what: "completed: forgotten", status: &kvrpcpb.TxnStatus{StartTs: 100, CommitTs: 160, IsCompleted: true}, wantTS: 100, wantBounds: true},
		{what: "rolled back", status: &kvrpcpb.TxnStatus{StartTs: 100, RolledBack: true}},
	}
	for _, st := range steps {
		if st.status != nil {
			c.update(st.status)
		}
		generation := uint64(1)
		if st.generationZero {
			generation = 0
		}
		ts, bounds := c.lockBound(100, generation)
		if ts != st.wantTS || bounds != st.wantBounds {
			t.Fatalf("%s: lockBound = (%d, %v), want (%d, %v)", st.what, ts, bounds, st.wantTS, st.wantBounds)
		}
	}
}

// TestTxnStatusCacheEviction: a full cache first drops entries not
// refreshed for txnStatusKeepTime, then the least recently refreshed one;
// it never grows past its capacity.
func TestTxnStatusCacheEviction(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTxnStatusCache(func() time.Time { return now })
	for ts := uint64(1); ts <= txnStatusCapacity; ts++ {
		c.update(&kvrpcpb.TxnStatus{StartTs: ts, MinCommitTs: ts + 1})
		now = now.Add(time.Microsecond)
		if ts == 10 {
			now = now.Add(txnStatusKeepTime)
		}
	}
	c.update(&kvrpcpb.TxnStatus{StartTs: txnStatusCapacity + 1, MinCommitTs: txnStatusCapacity + 2})
	if n := len(c.entries); n != txnStatusCapacity-9 {
		t.Fatalf("after evicting the 10 stale entries the cache holds %d, want %d", n, txnStatusCapacity-9)
	}
	if _, known := c.entries[5]; known {
		t.Fatalf("a stale entry survived")
	}
	for ts := uint64(txnStatusCapacity + 2); len(c.entries) < txnStatusCapacity; ts++ {
		now = now.Add(time.Microsecond)
		c.update(&kvrpcpb.TxnStatus{StartTs: ts, MinCommitTs: ts + 1})
	}
	c.update(&kvrpcpb.TxnStatus{StartTs: 1 << 40, MinCommitTs: 1<<40 + 1})
	if n := len(c.entries); n != txnStatusCapacity {
		t.Fatalf("cache holds %d, want its capacity %d", n, txnStatusCapacity)
	}
	if _, known := c.entries[11]; known {
		t.Fatalf("the least recently refreshed entry (11) was kept")
	}
}
