package pdsvc_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	pdhttp "github.com/tikv/pd/client/http"
)

// TestHTTPAPI drives /pd/api/v1 through the stock PD HTTP client, which
// decodes PD's JSON shapes, and checks that unknown paths are 404.
func TestHTTPAPI(t *testing.T) {
	p := startPD(t)
	store, regions := splitCluster(t, p, "m")
	second := &metapb.Store{Id: p.allocID(), Address: "127.0.0.1:20161", StatusAddress: "127.0.0.1:20181", Version: "8.5.4"}
	if h := p.putStore(second); h.GetError() != nil {
		t.Fatal(h.GetError())
	}
	cli := pdhttp.NewClient("test", []string{"http://" + p.client})
	defer cli.Close()
	ctx := ctxT(t)

	status, err := cli.GetStatus(ctx)
	if err != nil || status.Version == "" || status.StartTimestamp == 0 {
		t.Fatalf("status: %+v %v", status, err)
	}
	stores, err := cli.GetStores(ctx)
	if err != nil || stores.Count != 2 || stores.Stores[0].Store.ID != int64(store.Id) || stores.Stores[0].Status.LeaderCount != 2 {
		t.Fatalf("stores: %+v %v", stores, err)
	}
	one, err := cli.GetStore(ctx, second.Id)
	if err != nil || one.Store.StatusAddress != second.StatusAddress || one.Store.StateName != "Up" {
		t.Fatalf("store: %+v %v", one, err)
	}
	all, err := cli.GetRegions(ctx)
	if err != nil || all.Count != 2 {
		t.Fatalf("regions: %+v %v", all, err)
	}
	byID, err := cli.GetRegionByID(ctx, regions[1].Id)
	if err != nil || byID.StartKey != "6D" || byID.Leader.StoreID != int64(store.Id) {
		t.Fatalf("region by id: %+v %v", byID, err)
	}
	byKey, err := cli.GetRegionByKey(ctx, []byte("a/b c"))
	if err != nil || byKey.ID != int64(regions[0].Id) {
		t.Fatalf("region by key: %+v %v", byKey, err)
	}
	members, err := cli.GetMembers(ctx)
	if err != nil || len(members.Members) != 1 || members.Leader.GetClientUrls()[0] != "http://"+p.client {
		t.Fatalf("members: %+v %v", members, err)
	}
	health, err := cli.GetHealthStatus(ctx)
	if err != nil || len(health) != 1 || !health[0].Health {
		t.Fatalf("health: %+v %v", health, err)
	}
	if v, err := cli.GetClusterVersion(ctx); err != nil || v == "" {
		t.Fatalf("cluster version: %q %v", v, err)
	}
	if _, _, err := cli.GetMinResolvedTSByStoresIDs(ctx, []uint64{store.Id}); err != nil {
		t.Fatalf("min resolved ts: %v", err)
	}
	cfg, err := cli.GetConfig(ctx)
	if err != nil || cfg["name"] != "pd-test" {
		t.Fatalf("config: %v %v", cfg, err)
	}

	base := "http://" + p.client
	for path, want := range map[string]int{
		"/pd/api/v1/cluster":                          http.StatusOK,
		"/pd/api/v1/version":                          http.StatusOK,
		"/pd/api/v1/region/id/424242":                 http.StatusOK,
		"/pd/api/v1/region/key/6d?format=hex":         http.StatusOK,
		"/pd/api/v1/region/id/notanumber":             http.StatusBadRequest,
		"/pd/api/v1/store/99999":                      http.StatusNotFound,
		"/pd/api/v1/config/placement-rule":            http.StatusNotFound,
		"/pd/api/v1/config/region-label/rules":        http.StatusOK,
		"/pd/api/v2/ms/members/tso":                   http.StatusNotFound,
		"/pd/api/v1/no-such-endpoint":                 http.StatusNotFound,
		"/pd/api/v1/min-resolved-ts?scope=cluster,x1": http.StatusBadRequest,
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var body any
		decodeErr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: status %d, want %d", path, resp.StatusCode, want)
		}
		if want == http.StatusOK && decodeErr != nil {
			t.Errorf("GET %s: body is not JSON: %v", path, decodeErr)
		}
	}
}

// TestHTTPRegionStatsAndHotRegions: the sizes and flows the leaders report
// come back through the stock client as PD's region statistics of a key
// range (TiDB's table_storage_stats and SHOW TABLE ... DISTRIBUTIONS), and
// a region written fast enough as a hot write peer (tidb_hot_regions).
func TestHTTPRegionStatsAndHotRegions(t *testing.T) {
	p := startPD(t)
	store, regions := splitCluster(t, p, "m")
	h := p.heartbeater()
	report := func(region *metapb.Region, size, written uint64) {
		h.sendRequest(&pdpb.RegionHeartbeatRequest{
			Region: region, Leader: region.Peers[0], Term: 1,
			ApproximateSize: size, ApproximateKeys: size / 100, BytesWritten: written, KeysWritten: written / 100,
			Interval: &pdpb.TimeInterval{StartTimestamp: 1000, EndTimestamp: 1010},
		})
	}
	report(regions[0], 300<<20, 100)
	report(regions[1], 1000, 64<<10)
	cli := pdhttp.NewClient("test", []string{"http://" + p.client})
	defer cli.Close()
	ctx := ctxT(t)
	var stats *pdhttp.RegionStats
	deadline := time.Now().Add(10 * time.Second)
	for stats == nil || stats.StorageSize != 301 {
		if time.Now().After(deadline) {
			t.Fatalf("stats of all regions never showed both reports: %+v", stats)
		}
		var err error
		stats, err = cli.GetRegionStatusByKeyRange(ctx, pdhttp.NewKeyRange(nil, nil), false)
		if err != nil {
			t.Fatalf("region stats: %v", err)
		}
	}
	if stats.Count != 2 || stats.EmptyCount != 1 || stats.StorageKeys != 3145728+10 ||
		stats.StoreLeaderCount[store.Id] != 2 || stats.StoreWriteBytes[store.Id] != 100+64<<10 {
		t.Fatalf("region stats: %+v", stats)
	}
	upper, err := cli.GetRegionStatusByKeyRange(ctx, pdhttp.NewKeyRange([]byte("n"), []byte("z")), false)
	if err != nil || upper.Count != 1 || upper.StorageSize != 1 {
		t.Fatalf("stats of [n, z): %+v %v", upper, err)
	}
	if only, err := cli.GetRegionStatusByKeyRange(ctx, pdhttp.NewKeyRange([]byte("a"), []byte("z")), true); err != nil || only.Count != 2 || only.StorageSize != 0 {
		t.Fatalf("count only: %+v %v", only, err)
	}
	dist, err := cli.GetRegionDistributionByKeyRange(ctx, pdhttp.NewKeyRange(nil, nil), "")
	if err != nil || len(dist.RegionDistributions) != 1 || dist.RegionDistributions[0].RegionLeaderCount != 2 ||
		dist.RegionDistributions[0].EngineType != "tikv" {
		t.Fatalf("distributions: %+v %v", dist, err)
	}

	hot, err := cli.GetHotWriteRegions(ctx)
	if err != nil {
		t.Fatalf("hot write regions: %v", err)
	}
	peers := hot.AsLeader[store.Id]
	if peers == nil || peers.Count != 1 || peers.Stats[0].RegionID != regions[1].Id || peers.Stats[0].ByteRate != float64(64<<10)/10 {
		t.Fatalf("hot write leaders: %+v", peers)
	}
	if read, err := cli.GetHotReadRegions(ctx); err != nil || read.AsLeader[store.Id].Count != 0 {
		t.Fatalf("hot read regions: %+v %v", read, err)
	}
	history, err := cli.GetHistoryHotRegions(ctx, &pdhttp.HistoryHotRegionsRequest{StartTime: 1, EndTime: time.Now().UnixMilli()})
	if err != nil || history.HistoryHotRegion == nil || len(history.HistoryHotRegion) != 0 {
		t.Fatalf("history within the first write interval: %+v %v", history, err)
	}
}
