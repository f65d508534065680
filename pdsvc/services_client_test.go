package pdsvc_test

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/pdpb"
	rmpb "github.com/pingcap/kvproto/pkg/resource_manager"
	pd "github.com/tikv/pd/client"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestGCSafePointRules(t *testing.T) {
	p := startPD(t)
	p.bootstrap("127.0.0.1:20160")
	cli := p.stockClient()
	ctx := ctxT(t)

	for _, tc := range []struct{ propose, want uint64 }{{100, 100}, {50, 100}, {150, 150}, {150, 150}, {0, 150}} {
		got, err := cli.UpdateGCSafePoint(ctx, tc.propose)
		if err != nil || got != tc.want {
			t.Fatalf("UpdateGCSafePoint(%d) = %d, %v; want %d", tc.propose, got, err, tc.want)
		}
	}

	// Each step: a service proposes a safe point with a TTL; PD answers the
	// minimum over live services. A proposal below the minimum is ignored.
	steps := []struct {
		service   string
		ttl       int64
		safePoint uint64
		wantMin   uint64
	}{
		{"gc_worker", math.MaxInt64, 10, 10},
		{"gc_worker", math.MaxInt64, 20, 20},
		{"br", 3600, 15, 20},
		{"br", 3600, 25, 20},
		{"gc_worker", math.MaxInt64, 30, 25},
		{"cdc", 1, 26, 25},
	}
	for _, st := range steps {
		min, err := cli.UpdateServiceGCSafePoint(ctx, st.service, st.ttl, st.safePoint)
		if err != nil || min != st.wantMin {
			t.Fatalf("%s proposes %d: min %d, %v; want %d", st.service, st.safePoint, min, err, st.wantMin)
		}
	}
	if _, err := cli.UpdateServiceGCSafePoint(ctx, "gc_worker", 60, 40); err == nil {
		t.Fatalf("gc_worker with finite TTL accepted")
	}

	p.restart()
	cli = p.stockClient()
	sp, err := p.raw.GetGCSafePoint(ctxT(t), &pdpb.GetGCSafePointRequest{Header: p.header()})
	if err != nil || sp.GetSafePoint() != 150 {
		t.Fatalf("safe point after restart: %v %v", sp, err)
	}
	time.Sleep(2100 * time.Millisecond) // cdc's TTL of 1 s runs out
	min, err := cli.UpdateServiceGCSafePoint(ctx, "gc_worker", math.MaxInt64, 30)
	if err != nil || min != 25 {
		t.Fatalf("after cdc expired: min %d, %v; want 25 (br)", min, err)
	}
	min, err = cli.UpdateServiceGCSafePoint(ctx, "br", 0, 0)
	if err != nil || min != 30 {
		t.Fatalf("removing br: min %d, %v; want 30", min, err)
	}
}

func TestExternalTimestampAndGlobalConfig(t *testing.T) {
	p := startPD(t)
	p.bootstrap("127.0.0.1:20160")
	cli := p.stockClient()
	ctx := ctxT(t)
	if ts, err := cli.GetExternalTimestamp(ctx); err != nil || ts != 0 {
		t.Fatalf("initial external ts %d, %v", ts, err)
	}
	physical, logical, err := cli.GetTS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := composeTS(physical, logical)
	if err := cli.SetExternalTimestamp(ctx, now-10); err != nil {
		t.Fatalf("set external ts: %v", err)
	}
	if err := cli.SetExternalTimestamp(ctx, now-20); err == nil {
		t.Fatalf("external ts moved back")
	}
	if err := cli.SetExternalTimestamp(ctx, now+1<<30); err == nil {
		t.Fatalf("external ts ahead of tso accepted")
	}

	items := []pd.GlobalConfigItem{
		{Name: "enable_resource_metering", Value: "true", EventType: pdpb.EventType_PUT},
		{Name: "source_id", PayLoad: []byte("7"), EventType: pdpb.EventType_PUT},
	}
	if err := cli.StoreGlobalConfig(ctx, "", items); err != nil {
		t.Fatalf("store global config: %v", err)
	}
	if err := cli.StoreGlobalConfig(ctx, "/elsewhere/", items); err == nil {
		t.Fatalf("global config outside its namespace accepted")
	}
	p.restart()
	cli = p.stockClient()
	if ts, err := cli.GetExternalTimestamp(ctx); err != nil || ts != now-10 {
		t.Fatalf("external ts after restart %d, %v; want %d", ts, err, now-10)
	}
	got, _, err := cli.LoadGlobalConfig(ctx, []string{"enable_resource_metering", "source_id", "missing"}, "")
	if err != nil || len(got) != 3 {
		t.Fatalf("load global config: %v %v", got, err)
	}
	if string(got[0].PayLoad) != "true" || string(got[1].PayLoad) != "7" || got[2].PayLoad != nil {
		t.Fatalf("global config items: %+v", got)
	}
}

func TestEtcdOnTheSameAddress(t *testing.T) {
	p := startPD(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{p.client}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := ctxT(t)
	members, err := cli.MemberList(ctx)
	if err != nil || len(members.Members) != 1 || members.Members[0].ClientURLs[0] != "http://"+p.client {
		t.Fatalf("member list: %v %v", members, err)
	}
	pdMembers, err := p.raw.GetMembers(ctx, &pdpb.GetMembersRequest{})
	if err != nil || pdMembers.GetLeader().GetClientUrls()[0] != members.Members[0].ClientURLs[0] {
		t.Fatalf("GetMembers disagrees with MemberList: %v %v", pdMembers, err)
	}

	before, err := cli.Get(ctx, "/tidb/ddl/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	// From the next revision, so that the watch cannot start after the put it is meant to see.
	watch := cli.Watch(ctx, "/tidb/ddl/", clientv3.WithPrefix(), clientv3.WithRev(before.Header.Revision+1))
	lease, err := cli.Grant(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/tidb/ddl/owner", "tidb-1", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	got, err := cli.Get(ctx, "/tidb/ddl/owner")
	if err != nil || string(got.Kvs[0].Value) != "tidb-1" {
		t.Fatalf("get: %v %v", got, err)
	}
	ev := <-watch
	if len(ev.Events) != 1 || string(ev.Events[0].Kv.Value) != "tidb-1" {
		t.Fatalf("watch put: %+v", ev)
	}
	ev = <-watch // the lease runs out and takes the key with it
	if len(ev.Events) != 1 || ev.Events[0].Type != clientv3.EventTypeDelete {
		t.Fatalf("watch lease expiry: %+v", ev)
	}
}

func TestMetaStorageAndResourceManager(t *testing.T) {
	p := startPD(t)
	cli := p.stockClient()
	ctx := ctxT(t)
	resp, err := cli.Get(ctx, []byte("resource_group/controller"))
	if err != nil || resp.GetHeader() == nil || resp.GetHeader().GetRevision() == 0 {
		t.Fatalf("meta storage get: %v %v", resp, err)
	}
	group, err := cli.GetResourceGroup(ctx, "default")
	if err != nil || group.GetRUSettings().GetRU().GetSettings().GetBurstLimit() >= 0 {
		t.Fatalf("default group: %v %v", group, err)
	}
	settings, err := cli.Get(ctx, []byte("resource_group/settings"), pd.WithPrefix())
	if err != nil || len(settings.GetKvs()) != 1 {
		t.Fatalf("load resource groups via meta storage: %v %v", settings, err)
	}

	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Watch from the revision after the load, as TiDB's resource group client does: a watch without a
	// start revision begins whenever the server gets to it, which may be after the put below.
	fromRev := settings.GetHeader().GetRevision() + 1
	events, err := cli.Watch(watchCtx, []byte("resource_group/settings"), pd.WithPrefix(), pd.WithPrevKV(), pd.WithRev(fromRev))
	if err != nil {
		t.Fatal(err)
	}
	rg := &rmpb.ResourceGroup{
		Name: "rg1", Mode: rmpb.GroupMode_RUMode, Priority: 8,
		RUSettings: &rmpb.GroupRequestUnitSettings{RU: &rmpb.TokenBucket{Settings: &rmpb.TokenLimitSettings{FillRate: 100}}},
	}
	if _, err := cli.AddResourceGroup(ctx, rg); err != nil {
		t.Fatalf("add group: %v", err)
	}
	select {
	case evs := <-events:
		if len(evs) == 0 || !bytes.HasSuffix(evs[0].GetKv().GetKey(), []byte("rg1")) {
			t.Fatalf("watch event: %v", evs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no watch event for the new group")
	}
	rg.RUSettings.RU.Settings.FillRate = 200
	if _, err := cli.ModifyResourceGroup(ctx, rg); err != nil {
		t.Fatalf("modify group: %v", err)
	}
	if _, err := cli.ModifyResourceGroup(ctx, &rmpb.ResourceGroup{Name: "nope", Mode: rmpb.GroupMode_RUMode}); err == nil {
		t.Fatalf("modify of a missing group accepted")
	}
	if _, err := cli.AddResourceGroup(ctx, &rmpb.ResourceGroup{Name: strings.Repeat("x", 40), Mode: rmpb.GroupMode_RUMode}); err == nil {
		t.Fatalf("over-long name accepted")
	}
	if _, err := cli.DeleteResourceGroup(ctx, "default"); err == nil {
		t.Fatalf("default group deleted")
	}

	p.restart()
	cli = p.stockClient()
	groups, err := cli.ListResourceGroups(ctx)
	if err != nil || len(groups) != 2 {
		t.Fatalf("list after restart: %v %v", groups, err)
	}
	got, err := cli.GetResourceGroup(ctx, "rg1")
	if err != nil || got.GetRUSettings().GetRU().GetSettings().GetFillRate() != 200 {
		t.Fatalf("rg1 after restart: %v %v", got, err)
	}
	if _, err := cli.DeleteResourceGroup(ctx, "rg1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := cli.GetResourceGroup(ctx, "rg1"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("deleted group still there: %v", err)
	}

	buckets, err := cli.AcquireTokenBuckets(ctx, &rmpb.TokenBucketsRequest{Requests: []*rmpb.TokenBucketRequest{{
		ResourceGroupName: "default",
		Request: &rmpb.TokenBucketRequest_RuItems{RuItems: &rmpb.TokenBucketRequest_RequestRU{
			RequestRU: []*rmpb.RequestUnitItem{{Type: rmpb.RequestUnitType_RU, Value: 5000}},
		}},
	}}})
	if err != nil || len(buckets) != 1 || buckets[0].GetGrantedRUTokens()[0].GetGrantedTokens().GetTokens() != 5000 {
		t.Fatalf("acquire tokens: %v %v", buckets, err)
	}
}
