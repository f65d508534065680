package pdsvc_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/pdpb"
	pd "github.com/tikv/pd/client"
	"github.com/tinykv/tinykv/pdsvc"
)

// settleUntil carries out PD's commands until done yields, and returns
// what it yielded.
func settleUntil[T any](t *testing.T, f *fakeStores, done <-chan T) T {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case v := <-done:
			f.settle()
			return v
		case <-deadline:
			t.Fatal("call did not return")
		default:
			f.settle()
			time.Sleep(5 * time.Millisecond)
		}
	}
}

type splitResult struct {
	resp *pdpb.SplitRegionsResponse
	err  error
}

// TestSplitRegions: the stock client's SplitRegions becomes split operators
// sent to the leaders of the regions holding the keys, and returns once
// the heartbeats show a region starting at every key, reporting those
// regions.
func TestSplitRegions(t *testing.T) {
	f := newFakeStores(t, 3, nil)
	ids := f.createRegions(2, 3, func(i int) int { return i }) // ["", "k001") led by store 0, ["k001", "") by store 1
	f.settle()                                                 // PD has seen the reports
	var splits []*pdpb.SplitRegion
	f.onCommand = func(store uint64, resp *pdpb.RegionHeartbeatResponse) bool {
		if resp.GetSplitRegion() != nil {
			splits = append(splits, resp.GetSplitRegion())
		}
		return true
	}
	cli := f.c.p.stockClient()
	keys := [][]byte{[]byte("c"), []byte("k001"), []byte("m"), []byte("a")}
	done := make(chan splitResult, 1)
	go func() {
		resp, err := cli.SplitRegions(context.Background(), keys)
		done <- splitResult{resp, err}
	}()
	res := settleUntil(t, f, done)
	if res.err != nil || res.resp.GetHeader().GetError() != nil {
		t.Fatalf("SplitRegions: %v %v", res.err, res.resp.GetHeader().GetError())
	}
	if len(splits) != 2 {
		t.Fatalf("split commands %v, want one per region", splits)
	}
	slices.SortFunc(splits, func(a, b *pdpb.SplitRegion) int { return strings.Compare(string(a.Keys[0]), string(b.Keys[0])) })
	if got := keyStrings(splits[0].Keys); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("first region split at %q, want [a c]", got)
	}
	if got := keyStrings(splits[1].Keys); !slices.Equal(got, []string{"m"}) {
		t.Fatalf("second region split at %q, want [m]", got)
	}
	var want []uint64
	for id, r := range f.regions {
		if slices.Contains([]string{"a", "c", "k001", "m"}, string(r.meta.StartKey)) {
			want = append(want, id)
		}
	}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(res.resp.GetRegionsId()))
	if res.resp.GetFinishedPercentage() != 100 || !slices.Equal(got, want) {
		t.Fatalf("finished %d%% regions %v, want 100%% %v", res.resp.GetFinishedPercentage(), got, want)
	}
	f.c.expectOperator(ids[0], "region-splitter", pdpb.OperatorStatus_SUCCESS)
	f.c.expectOperator(ids[1], "region-splitter", pdpb.OperatorStatus_SUCCESS)
	if len(f.regions) != 5 {
		t.Fatalf("%d regions after the split, want 5", len(f.regions))
	}
}

func keyStrings(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out
}

// TestSplitRegionsTimesOut: a store that never splits leaves the keys
// unprocessed, and SplitRegions answers once split-wait-time has passed.
func TestSplitRegionsTimesOut(t *testing.T) {
	f := newFakeStores(t, 3, func(cfg *pdsvc.Config) { cfg.Schedule.SplitWaitTime = 300 * time.Millisecond })
	f.createRegions(2, 3, func(i int) int { return i })
	f.settle()
	sent := 0
	f.onCommand = func(_ uint64, resp *pdpb.RegionHeartbeatResponse) bool {
		if resp.GetSplitRegion() != nil {
			sent++
			return false // the store ignores it
		}
		return true
	}
	done := make(chan splitResult, 1)
	go func() {
		resp, err := f.c.p.raw.SplitRegions(ctxT(t), &pdpb.SplitRegionsRequest{Header: f.c.p.header(),
			SplitKeys: [][]byte{[]byte("m"), []byte("k001")}})
		done <- splitResult{resp, err}
	}()
	start := time.Now()
	res := settleUntil(t, f, done)
	if res.err != nil || res.resp.GetHeader().GetError() != nil {
		t.Fatalf("SplitRegions: %v %v", res.err, res.resp.GetHeader().GetError())
	}
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Fatalf("answered %v after %s, before split-wait-time (%d split commands)", res.resp, elapsed, sent)
	}
	// "k001" already starts a region: done; "m" never split: 50 %.
	if res.resp.GetFinishedPercentage() != 50 || len(res.resp.GetRegionsId()) != 1 || sent != 1 {
		t.Fatalf("finished %d%% regions %v after %d split commands", res.resp.GetFinishedPercentage(), res.resp.GetRegionsId(), sent)
	}
	resp, err := f.c.p.raw.SplitRegions(ctxT(t), &pdpb.SplitRegionsRequest{Header: f.c.p.header()})
	if err != nil || resp.GetFinishedPercentage() != 0 {
		t.Fatalf("no keys: %v %v", resp, err)
	}
}

// TestScatterRegions: three regions on the same three of six stores,
// scattered as one group, end up with every store holding one or two of
// their nine peers; the moves run as "scatter-region" operators, which
// client-go waits for through GetOperator.
func TestScatterRegions(t *testing.T) {
	f := newFakeStores(t, 6, nil)
	ids := f.createRegions(3, 3, func(int) int { return 0 })
	f.settle()
	resp, err := f.c.p.stockClient().ScatterRegions(ctxT(t), ids, pd.WithGroup("table-42"))
	if err != nil || resp.GetFinishedPercentage() != 100 {
		t.Fatalf("ScatterRegions: %v %v", resp, err)
	}
	running := 0
	for _, id := range ids {
		if op := f.c.operator(id); string(op.GetDesc()) == "scatter-region" && op.GetStatus() == pdpb.OperatorStatus_RUNNING {
			running++
		}
	}
	if running == 0 {
		t.Fatal("no scatter-region operator running")
	}
	if n := f.settle(); n == 0 {
		t.Fatal("scatter sent no commands")
	}
	peers, leaders := f.counts()
	t.Logf("peers %v leaders %v", peers, leaders)
	for store, n := range peers {
		if n < 1 || n > 2 {
			t.Fatalf("store %d holds %d of the 9 peers: %v", store, n, peers)
		}
	}
	for _, id := range ids {
		if op := f.c.operator(id); string(op.GetDesc()) == "scatter-region" && op.GetStatus() != pdpb.OperatorStatus_SUCCESS {
			t.Fatalf("region %d: scatter %v", id, op.GetStatus())
		}
	}

	// The deprecated single-region form, and the errors PD returns.
	legacy, err := f.c.p.raw.ScatterRegion(ctxT(t), &pdpb.ScatterRegionRequest{Header: f.c.p.header(), RegionId: ids[0]})
	if err != nil || legacy.GetFinishedPercentage() != 100 {
		t.Fatalf("legacy ScatterRegion: %v %v", legacy, err)
	}
	if _, err := f.c.p.raw.ScatterRegion(ctxT(t), &pdpb.ScatterRegionRequest{Header: f.c.p.header(), RegionsId: []uint64{999999}}); err == nil {
		t.Fatal("scattering an unknown region succeeded")
	}
	missing, err := f.c.p.raw.ScatterRegion(ctxT(t), &pdpb.ScatterRegionRequest{Header: f.c.p.header(), RegionId: 999999})
	if err != nil || missing.GetHeader().GetError().GetType() != pdpb.ErrorType_REGION_NOT_FOUND {
		t.Fatalf("legacy scatter of an unknown region: %v %v", missing, err)
	}
}

// TestScatterRegionsNotReplicated: a region with fewer peers than
// max-replicas is not scattered, and counts as not finished.
func TestScatterRegionsNotReplicated(t *testing.T) {
	f := newFakeStores(t, 3, nil)
	ids := f.createRegions(2, 1, func(int) int { return 0 }) // one peer each
	// The replica checker starts adding peers; cancel that, undone.
	f.onCommand = func(uint64, *pdpb.RegionHeartbeatResponse) bool { return false }
	f.settle()
	f.c.httpDo("DELETE", "http://"+f.c.p.client+"/pd/api/v1/operators", "", 200)
	resp, err := f.c.p.raw.ScatterRegion(ctxT(t), &pdpb.ScatterRegionRequest{Header: f.c.p.header(), RegionsId: ids})
	if err != nil || resp.GetFinishedPercentage() != 0 {
		t.Fatalf("scatter of unreplicated regions: %v %v", resp, err)
	}
	if _, ok := f.regions[ids[0]]; !ok || len(f.regions[ids[0]].meta.Peers) != 1 {
		t.Fatalf("region changed: %v", f.regions[ids[0]])
	}
	if n := f.settle(); n != 0 {
		t.Fatalf("%d commands after a refused scatter", n)
	}
}
