package pdsvc_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/pingcap/kvproto/pkg/metapb"
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
