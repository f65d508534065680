package pdsvc_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	pd "github.com/tikv/pd/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// splitCluster bootstraps PD and reports regions split at the given keys,
// all led by the bootstrap store. It returns the regions in key order.
func splitCluster(t *testing.T, p *testPD, splitKeys ...string) (*metapb.Store, []*metapb.Region) {
	t.Helper()
	store, first := p.bootstrap("127.0.0.1:20160")
	bounds := append([]string{""}, splitKeys...)
	bounds = append(bounds, "")
	regions := make([]*metapb.Region, len(bounds)-1)
	h := p.heartbeater()
	for i := range regions {
		id := first.Id
		peers := first.Peers
		if i < len(regions)-1 {
			id = p.allocID()
			peers = []*metapb.Peer{{Id: p.allocID(), StoreId: store.Id}}
		}
		regions[i] = &metapb.Region{
			Id:          id,
			StartKey:    []byte(bounds[i]),
			EndKey:      []byte(bounds[i+1]),
			RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: uint64(1 + len(splitKeys))},
			Peers:       peers,
		}
		h.send(regions[i], peers[0])
	}
	for _, r := range regions {
		p.waitRegion(r.Id, func(resp *pdpb.GetRegionResponse) bool {
			return resp.GetRegion().GetRegionEpoch().GetVersion() == r.RegionEpoch.Version && resp.GetLeader() != nil
		})
	}
	return store, regions
}

func TestRegionsThroughStockClient(t *testing.T) {
	p := startPD(t)
	store, regions := splitCluster(t, p, "b", "d", "f")
	check := func(cli pd.Client) {
		t.Helper()
		for _, tc := range []struct {
			key  string
			want int
		}{{"", 0}, {"a", 0}, {"b", 1}, {"c", 1}, {"d", 2}, {"e\xff", 2}, {"f", 3}, {"zzz", 3}} {
			r, err := cli.GetRegion(ctxT(t), []byte(tc.key))
			if err != nil {
				t.Fatalf("GetRegion(%q): %v", tc.key, err)
			}
			if r.Meta.GetId() != regions[tc.want].Id || r.Leader.GetStoreId() != store.Id {
				t.Fatalf("GetRegion(%q) = %v leader %v, want region %d", tc.key, r.Meta, r.Leader, regions[tc.want].Id)
			}
		}
		prev, err := cli.GetPrevRegion(ctxT(t), []byte("e"))
		if err != nil || prev.Meta.GetId() != regions[1].Id {
			t.Fatalf("GetPrevRegion(e) = %v, %v; want region %d", prev, err, regions[1].Id)
		}
		if prev, err := cli.GetPrevRegion(ctxT(t), []byte("a")); err != nil || prev != nil {
			t.Fatalf("GetPrevRegion(a) = %v, %v; want none", prev, err)
		}
		byID, err := cli.GetRegionByID(ctxT(t), regions[2].Id)
		if err != nil || !bytes.Equal(byID.Meta.GetStartKey(), []byte("d")) {
			t.Fatalf("GetRegionByID = %v, %v", byID, err)
		}
		scanned, err := cli.ScanRegions(ctxT(t), []byte("c"), []byte("e"), 10)
		if err != nil || len(scanned) != 2 || scanned[0].Meta.GetId() != regions[1].Id || scanned[1].Meta.GetId() != regions[2].Id {
			t.Fatalf("ScanRegions(c, e) = %v, %v", scanned, err)
		}
		all, err := cli.ScanRegions(ctxT(t), nil, nil, 0)
		if err != nil || len(all) != len(regions) {
			t.Fatalf("ScanRegions(all) = %d regions, %v", len(all), err)
		}
		for i := 1; i < len(all); i++ {
			if !bytes.Equal(all[i-1].Meta.GetEndKey(), all[i].Meta.GetStartKey()) || all[i].Leader == nil {
				t.Fatalf("ScanRegions not contiguous at %d: %v", i, all)
			}
		}
		limited, err := cli.ScanRegions(ctxT(t), nil, nil, 2)
		if err != nil || len(limited) != 2 {
			t.Fatalf("ScanRegions(limit 2) = %d regions, %v", len(limited), err)
		}
		batch, err := cli.BatchScanRegions(ctxT(t), []pd.KeyRange{
			*pd.NewKeyRange([]byte("a"), []byte("b")), *pd.NewKeyRange([]byte("e"), []byte("g")),
		}, 10)
		if err != nil || len(batch) != 3 {
			t.Fatalf("BatchScanRegions = %d regions, %v", len(batch), err)
		}
	}
	check(p.stockClient())
	p.restart()
	check(p.stockClient())
}

func TestHeartbeatEpochRules(t *testing.T) {
	p := startPD(t)
	store, regions := splitCluster(t, p, "m")
	left := regions[0]
	h := p.heartbeater()

	stale := clone(left)
	stale.RegionEpoch = &metapb.RegionEpoch{ConfVer: 1, Version: 1}
	stale.EndKey = nil
	h.send(stale, left.Peers[0])
	if resp := h.nextError(); !strings.Contains(resp.GetHeader().GetError().GetMessage(), "stale") {
		t.Fatalf("stale heartbeat answered %v", resp.GetHeader())
	}
	staleConf := clone(left)
	staleConf.RegionEpoch = &metapb.RegionEpoch{ConfVer: 0, Version: left.RegionEpoch.Version}
	h.send(staleConf, left.Peers[0])
	h.nextError()

	newPeer := &metapb.Peer{Id: p.allocID(), StoreId: store.Id}
	moved := clone(left)
	moved.Peers = append(moved.Peers, newPeer)
	moved.RegionEpoch = &metapb.RegionEpoch{ConfVer: 2, Version: left.RegionEpoch.Version}
	h.send(moved, newPeer)
	got := p.waitRegion(left.Id, func(r *pdpb.GetRegionResponse) bool { return r.GetLeader().GetId() == newPeer.Id })
	if len(got.GetRegion().GetPeers()) != 2 || !bytes.Equal(got.GetRegion().GetEndKey(), []byte("m")) {
		t.Fatalf("region after conf change: %v", got.GetRegion())
	}

	for name, req := range map[string]*pdpb.RegionHeartbeatRequest{
		"no leader":     {Header: p.header(), Region: left},
		"no peers":      {Header: p.header(), Region: &metapb.Region{Id: left.Id}, Leader: left.Peers[0]},
		"no region id":  {Header: p.header(), Region: &metapb.Region{Peers: left.Peers}, Leader: left.Peers[0]},
		"reversed keys": {Header: p.header(), Region: &metapb.Region{Id: 99, StartKey: []byte("z"), EndKey: []byte("a"), Peers: left.Peers}, Leader: left.Peers[0]},
		"unknown store": {Header: p.header(), Region: left, Leader: &metapb.Peer{Id: 5, StoreId: 12345}},
	} {
		if err := h.stream.Send(req); err != nil {
			t.Fatal(err)
		}
		if resp := h.nextError(); resp.GetHeader().GetError() == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	p.restart()
	after := p.waitRegion(left.Id, func(*pdpb.GetRegionResponse) bool { return true })
	if after.GetRegion().GetRegionEpoch().GetConfVer() != 2 || after.GetLeader().GetId() != newPeer.Id {
		t.Fatalf("after restart: %v leader %v", after.GetRegion(), after.GetLeader())
	}
}

func clone(r *metapb.Region) *metapb.Region {
	c := *r
	c.Peers = append([]*metapb.Peer(nil), r.Peers...)
	return &c
}

func TestStoresThroughStockClient(t *testing.T) {
	p := startPD(t)
	cli := p.stockClient()
	if _, err := cli.GetStore(ctxT(t), 1); err == nil {
		t.Fatalf("GetStore before bootstrap succeeded")
	}
	resp, err := p.raw.GetStore(ctxT(t), &pdpb.GetStoreRequest{Header: p.header(), StoreId: 1})
	if err != nil || resp.GetHeader().GetError().GetType() != pdpb.ErrorType_NOT_BOOTSTRAPPED {
		t.Fatalf("GetStore before bootstrap: %v %v", resp, err)
	}
	store, _ := p.bootstrap("127.0.0.1:20160")
	second := &metapb.Store{Id: p.allocID(), Address: "127.0.0.1:20161", Version: "8.5.4",
		Labels: []*metapb.StoreLabel{{Key: "zone", Value: "z1"}}}
	if h := p.putStore(second); h.GetError() != nil {
		t.Fatalf("put store: %v", h.GetError())
	}
	dup := &metapb.Store{Id: p.allocID(), Address: second.Address}
	if h := p.putStore(dup); h.GetError() == nil {
		t.Fatalf("duplicate address accepted")
	}
	if h := p.putStore(&metapb.Store{Address: "x:1"}); h.GetError() == nil {
		t.Fatalf("store id 0 accepted")
	}
	check := func(cli pd.Client) {
		t.Helper()
		got, err := cli.GetStore(ctxT(t), second.Id)
		if err != nil || got.GetAddress() != second.Address || got.GetLabels()[0].GetValue() != "z1" {
			t.Fatalf("GetStore = %v, %v", got, err)
		}
		all, err := cli.GetAllStores(ctxT(t), pd.WithExcludeTombstone())
		if err != nil || len(all) != 2 || all[0].GetId() != store.Id {
			t.Fatalf("GetAllStores = %v, %v", all, err)
		}
		_, err = cli.GetStore(ctxT(t), 424242)
		if err == nil || !strings.Contains(err.Error(), "invalid store ID") || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("unknown store: %v", err)
		}
	}
	check(cli)
	hb, err := p.raw.StoreHeartbeat(ctxT(t), &pdpb.StoreHeartbeatRequest{Header: p.header(), Stats: &pdpb.StoreStats{StoreId: store.Id, Capacity: 1 << 30}})
	if err != nil || hb.GetHeader().GetError() != nil {
		t.Fatalf("store heartbeat: %v %v", hb, err)
	}
	hb, err = p.raw.StoreHeartbeat(ctxT(t), &pdpb.StoreHeartbeatRequest{Header: p.header(), Stats: &pdpb.StoreStats{StoreId: 9999}})
	if err != nil || hb.GetHeader().GetError() == nil {
		t.Fatalf("heartbeat of unknown store: %v %v", hb, err)
	}
	p.restart()
	check(p.stockClient())
}

func TestAskBatchSplitIDsAreUnique(t *testing.T) {
	p := startPD(t)
	_, regions := splitCluster(t, p)
	region := regions[0]
	seen := make(map[uint64]bool)
	for round := range 20 {
		resp, err := p.raw.AskBatchSplit(ctxT(t), &pdpb.AskBatchSplitRequest{Header: p.header(), Region: region, SplitCount: 5})
		if err != nil || resp.GetHeader().GetError() != nil {
			t.Fatalf("AskBatchSplit: %v %v", resp, err)
		}
		if len(resp.GetIds()) != 5 {
			t.Fatalf("got %d split ids", len(resp.GetIds()))
		}
		for _, ids := range resp.GetIds() {
			all := append([]uint64{ids.GetNewRegionId()}, ids.GetNewPeerIds()...)
			if len(ids.GetNewPeerIds()) != len(region.Peers) {
				t.Fatalf("peer ids %v for %d peers", ids.GetNewPeerIds(), len(region.Peers))
			}
			for _, id := range all {
				if seen[id] || id == 0 {
					t.Fatalf("round %d: id %d reused", round, id)
				}
				seen[id] = true
			}
		}
		if round == 10 {
			p.restart()
		}
	}
	one, err := p.raw.AskSplit(ctxT(t), &pdpb.AskSplitRequest{Header: p.header(), Region: region})
	if err != nil || one.GetHeader().GetError() != nil || seen[one.GetNewRegionId()] {
		t.Fatalf("AskSplit: %v %v", one, err)
	}
	stale := clone(region)
	stale.RegionEpoch = &metapb.RegionEpoch{}
	bad, err := p.raw.AskBatchSplit(ctxT(t), &pdpb.AskBatchSplitRequest{Header: p.header(), Region: stale, SplitCount: 1})
	if err != nil || bad.GetHeader().GetError() == nil {
		t.Fatalf("stale split accepted: %v %v", bad, err)
	}
	missing, err := p.raw.AskBatchSplit(ctxT(t), &pdpb.AskBatchSplitRequest{Header: p.header(), SplitCount: 1})
	if err != nil || missing.GetHeader().GetError().GetType() != pdpb.ErrorType_REGION_NOT_FOUND {
		t.Fatalf("split without region: %v %v", missing, err)
	}
	report, err := p.raw.ReportBatchSplit(ctxT(t), &pdpb.ReportBatchSplitRequest{Header: p.header(), Regions: []*metapb.Region{
		{Id: 1, EndKey: []byte("k")}, {Id: 2, StartKey: []byte("k")},
	}})
	if err != nil || report.GetHeader().GetError() != nil {
		t.Fatalf("valid split report rejected: %v %v", report, err)
	}
	report, err = p.raw.ReportBatchSplit(ctxT(t), &pdpb.ReportBatchSplitRequest{Header: p.header(), Regions: []*metapb.Region{
		{Id: 1, EndKey: []byte("k")}, {Id: 2, StartKey: []byte("j")},
	}})
	if err != nil || report.GetHeader().GetError() == nil {
		t.Fatalf("split report with a gap accepted: %v %v", report, err)
	}
}

// TestBadRequests: every malformed request gets PD's error and the server
// keeps serving.
func TestBadRequests(t *testing.T) {
	p := startPD(t)
	wrong := &pdpb.RequestHeader{ClusterId: p.cluster + 1}
	_, err := p.raw.GetStore(ctxT(t), &pdpb.GetStoreRequest{Header: wrong, StoreId: 1})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "mismatch cluster id") {
		t.Fatalf("wrong cluster id: %v", err)
	}
	_, err = p.raw.GetRegion(ctxT(t), &pdpb.GetRegionRequest{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("missing header: %v", err)
	}
	for name, call := range map[string]func() (*pdpb.ResponseHeader, error){
		"GetRegion": func() (*pdpb.ResponseHeader, error) {
			r, err := p.raw.GetRegion(ctxT(t), &pdpb.GetRegionRequest{Header: p.header(), RegionKey: []byte("k")})
			return r.GetHeader(), err
		},
		"ScanRegions": func() (*pdpb.ResponseHeader, error) {
			r, err := p.raw.ScanRegions(ctxT(t), &pdpb.ScanRegionsRequest{Header: p.header()})
			return r.GetHeader(), err
		},
		"PutStore": func() (*pdpb.ResponseHeader, error) {
			r, err := p.raw.PutStore(ctxT(t), &pdpb.PutStoreRequest{Header: p.header(), Store: &metapb.Store{Id: 1, Address: "a:1"}})
			return r.GetHeader(), err
		},
		"AskBatchSplit": func() (*pdpb.ResponseHeader, error) {
			r, err := p.raw.AskBatchSplit(ctxT(t), &pdpb.AskBatchSplitRequest{Header: p.header()})
			return r.GetHeader(), err
		},
		"UpdateGCSafePoint": func() (*pdpb.ResponseHeader, error) {
			r, err := p.raw.UpdateGCSafePoint(ctxT(t), &pdpb.UpdateGCSafePointRequest{Header: p.header(), SafePoint: 1})
			return r.GetHeader(), err
		},
	} {
		h, err := call()
		if err != nil || h.GetError().GetType() != pdpb.ErrorType_NOT_BOOTSTRAPPED {
			t.Errorf("%s before bootstrap: header %v, err %v", name, h, err)
		}
	}
	_, err = p.raw.GetDCLocationInfo(ctxT(t), &pdpb.GetDCLocationInfoRequest{Header: p.header()})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("unimplemented method: %v", err)
	}
	badBoot, err := p.raw.Bootstrap(ctxT(t), &pdpb.BootstrapRequest{Header: p.header(), Store: &metapb.Store{Id: 1}})
	if err != nil || badBoot.GetHeader().GetError() == nil {
		t.Fatalf("bootstrap without address/region accepted: %v %v", badBoot, err)
	}
	p.bootstrap("127.0.0.1:20160")
	again, err := p.raw.Bootstrap(ctxT(t), &pdpb.BootstrapRequest{Header: p.header(), Store: &metapb.Store{Id: 1}})
	if err != nil || again.GetHeader().GetError().GetType() != pdpb.ErrorType_ALREADY_BOOTSTRAPPED {
		t.Fatalf("second bootstrap: %v %v", again, err)
	}
	miss, err := p.raw.GetRegionByID(ctxT(t), &pdpb.GetRegionByIDRequest{Header: p.header(), RegionId: 987654})
	if err != nil || miss.GetHeader().GetError() != nil || miss.GetRegion() != nil {
		t.Fatalf("unknown region: %v %v", miss, err)
	}
	for _, key := range [][]byte{nil, {0xff, 0xff, 0xff}, bytes.Repeat([]byte{0}, 1<<20)} {
		r, err := p.raw.GetRegion(ctxT(t), &pdpb.GetRegionRequest{Header: p.header(), RegionKey: key})
		if err != nil || r.GetRegion() == nil {
			t.Fatalf("GetRegion(%d-byte key): %v %v", len(key), r, err)
		}
	}
	huge := &pdpb.PutStoreRequest{Header: p.header(), Store: &metapb.Store{Id: 77, Address: strings.Repeat("x", 200<<20)}}
	if _, err := p.raw.PutStore(ctxT(t), huge); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("200 MiB request: %v", err)
	}
	badRanges, err := p.raw.BatchScanRegions(ctxT(t), &pdpb.BatchScanRegionsRequest{Header: p.header(), Ranges: []*pdpb.KeyRange{
		{StartKey: []byte("z"), EndKey: []byte("a")},
	}})
	if err != nil || badRanges.GetHeader().GetError() == nil {
		t.Fatalf("reversed range accepted: %v %v", badRanges, err)
	}
	if id := p.allocID(); id == 0 {
		t.Fatalf("server stopped serving")
	}
}
