package pdsvc_test

import (
	"sync"
	"testing"

	"github.com/pingcap/kvproto/pkg/pdpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func composeTS(physical, logical int64) uint64 { return uint64(physical)<<18 | uint64(logical) }

// TestStockClientTSO: 100k timestamps from 16 goroutines through the stock
// client are unique and increase within each caller; after a restart every
// new timestamp is above every earlier one.
func TestStockClientTSO(t *testing.T) {
	p := startPD(t)
	cli := p.stockClient()
	if got := cli.GetClusterID(ctxT(t)); got != p.cluster {
		t.Fatalf("cluster id %d, want %d", got, p.cluster)
	}
	const callers, perCaller = 16, 100_000 / 16
	results := make([][]uint64, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perCaller {
				physical, logical, err := cli.GetTS(ctxT(t))
				if err != nil {
					t.Errorf("GetTS: %v", err)
					return
				}
				results[c] = append(results[c], composeTS(physical, logical))
			}
		}()
	}
	wg.Wait()
	seen := make(map[uint64]bool, callers*perCaller)
	var maxTS uint64
	for c, tss := range results {
		for i, ts := range tss {
			if seen[ts] {
				t.Fatalf("duplicate timestamp %d", ts)
			}
			seen[ts] = true
			if i > 0 && ts <= tss[i-1] {
				t.Fatalf("caller %d: timestamp %d after %d", c, ts, tss[i-1])
			}
			maxTS = max(maxTS, ts)
		}
	}
	if len(seen) != callers*perCaller {
		t.Fatalf("got %d timestamps, want %d", len(seen), callers*perCaller)
	}

	p.restart()
	cli2 := p.stockClient()
	physical, logical, err := cli2.GetTS(ctxT(t))
	if err != nil {
		t.Fatalf("GetTS after restart: %v", err)
	}
	if ts := composeTS(physical, logical); ts <= maxTS {
		t.Fatalf("timestamp after restart %d <= earlier max %d", ts, maxTS)
	}
}

// TestTSORawStream checks the per-request contract of the Tso stream:
// count echoed, timestamp is the largest of the batch, batches disjoint, bad
// counts and foreign cluster IDs end the stream with an error.
func TestTSORawStream(t *testing.T) {
	p := startPD(t)
	stream, err := p.raw.Tso(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, count := range []uint32{1, 10, 10000, 3} {
		if err := stream.Send(&pdpb.TsoRequest{Header: p.header(), Count: count, DcLocation: "global"}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetCount() != count {
			t.Fatalf("count %d, want %d", resp.GetCount(), count)
		}
		largest := composeTS(resp.GetTimestamp().GetPhysical(), resp.GetTimestamp().GetLogical())
		smallest := largest - uint64(count) + 1
		if resp.GetTimestamp().GetLogical() < int64(count) || smallest <= last {
			t.Fatalf("batch of %d ends at %v; overlaps previous %d", count, resp.GetTimestamp(), last)
		}
		last = largest
	}

	for name, req := range map[string]*pdpb.TsoRequest{
		"zero count":    {Header: p.header(), Count: 0},
		"huge count":    {Header: p.header(), Count: 1 << 18},
		"wrong cluster": {Header: &pdpb.RequestHeader{ClusterId: p.cluster + 1}, Count: 1},
	} {
		stream, err := p.raw.Tso(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err == nil {
			t.Errorf("%s: stream answered", name)
		} else if name == "wrong cluster" && status.Code(err) != codes.FailedPrecondition {
			t.Errorf("%s: got %v, want FailedPrecondition", name, err)
		}
	}
}
