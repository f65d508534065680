package pdsvc_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"github.com/tinykv/tinykv/pdsvc"
)

// scheduleStart is the fake clock's start in the scheduling tests.
var scheduleStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// scheduleCluster is a PD on a fake clock with the bootstrap store and
// region plus more stores, driven as TiKV stores drive PD: store
// heartbeats, and region heartbeats from each leader on its store's stream.
type scheduleCluster struct {
	t      *testing.T
	p      *testPD
	clock  *fakeClock
	stores []*metapb.Store // stores[0] holds the bootstrap region
	region *metapb.Region  // the bootstrap region as first reported
	// silent stores send no store heartbeats.
	silent  map[uint64]bool
	streams map[uint64]*heartbeater
}

func newScheduleCluster(t *testing.T, extraStores int, configure func(*pdsvc.Config)) *scheduleCluster {
	t.Helper()
	clock := &fakeClock{now: scheduleStart}
	p := startPDWithConfig(t, clock.Now, configure)
	store, region := p.bootstrap("127.0.0.1:20160")
	c := &scheduleCluster{t: t, p: p, clock: clock, stores: []*metapb.Store{store}, region: region,
		silent: make(map[uint64]bool), streams: make(map[uint64]*heartbeater)}
	for i := range extraStores {
		s := &metapb.Store{Id: p.allocID(), Address: fmt.Sprintf("127.0.0.1:%d", 20161+i), Version: "8.5.4"}
		if h := p.putStore(s); h.GetError() != nil {
			t.Fatalf("put store %d: %v", s.Id, h.GetError())
		}
		c.stores = append(c.stores, s)
	}
	c.storeHeartbeats()
	return c
}

// regionWithPeers returns the bootstrap region as it is once stores 1 to n
// have joined it, one conf change each.
func (c *scheduleCluster) regionWithPeers(n int) *metapb.Region {
	c.t.Helper()
	region := c.region
	for i := 1; i <= n; i++ {
		region = withPeer(region, &metapb.Peer{Id: c.p.allocID(), StoreId: c.storeID(i)})
	}
	return region
}

// storeID returns the id of the i-th store (0 is the bootstrap store).
func (c *scheduleCluster) storeID(i int) uint64 { return c.stores[i].Id }

// storeHeartbeats reports every store that is not silent at the clock's
// current time.
func (c *scheduleCluster) storeHeartbeats() {
	c.t.Helper()
	for _, s := range c.stores {
		if c.silent[s.Id] {
			continue
		}
		resp, err := c.p.raw.StoreHeartbeat(ctxT(c.t), &pdpb.StoreHeartbeatRequest{Header: c.p.header(),
			Stats: &pdpb.StoreStats{StoreId: s.Id, Capacity: 1 << 30, Available: 1 << 29}})
		if err != nil || resp.GetHeader().GetError() != nil {
			c.t.Fatalf("store %d heartbeat: %v %v", s.Id, err, resp.GetHeader().GetError())
		}
	}
}

// advance moves the clock on and lets the stores that are not silent
// heartbeat at the new time.
func (c *scheduleCluster) advance(d time.Duration) {
	c.t.Helper()
	c.clock.advance(d)
	c.storeHeartbeats()
}

// stream returns store's region heartbeat stream, opening it on first use.
func (c *scheduleCluster) stream(store uint64) *heartbeater {
	c.t.Helper()
	if h := c.streams[store]; h != nil {
		return h
	}
	h := c.p.heartbeater()
	c.streams[store] = h
	return h
}

// report sends region's heartbeat from the leader on store, on that
// store's stream.
func (c *scheduleCluster) report(region *metapb.Region, leaderStore uint64, pending []uint64, down []uint64) {
	c.t.Helper()
	req := &pdpb.RegionHeartbeatRequest{Region: region, Leader: peerOn(c.t, region, leaderStore), Term: 1}
	for _, s := range pending {
		req.PendingPeers = append(req.PendingPeers, peerOn(c.t, region, s))
	}
	for _, s := range down {
		req.DownPeers = append(req.DownPeers, &pdpb.PeerStats{Peer: peerOn(c.t, region, s), DownSeconds: 600})
	}
	c.stream(leaderStore).sendRequest(req)
}

// command returns the next response on store's stream, which must be an
// operator step for region.
func (c *scheduleCluster) command(store uint64, region *metapb.Region) *pdpb.RegionHeartbeatResponse {
	c.t.Helper()
	resp := c.stream(store).nextError()
	if resp.GetHeader().GetError() != nil {
		c.t.Fatalf("store %d: want an operator step for region %d, got error %v", store, region.Id, resp.GetHeader().GetError())
	}
	leader := resp.GetTargetPeer()
	if resp.GetRegionId() != region.Id || !proto.Equal(resp.GetRegionEpoch(), region.RegionEpoch) ||
		leader.GetStoreId() != store || peerOn(c.t, region, store).Id != leader.GetId() {
		c.t.Fatalf("store %d: step not addressed to region %d epoch %v leader on the store: %v",
			store, region.Id, region.RegionEpoch, resp)
	}
	return resp
}

// quiet asserts that PD has sent nothing more on store's stream: it sends
// a heartbeat PD must reject and expects the rejection as the next
// response, since PD answers one stream's heartbeats in order.
func (c *scheduleCluster) quiet(store uint64) {
	c.t.Helper()
	h := c.stream(store)
	h.sendRequest(&pdpb.RegionHeartbeatRequest{Region: &metapb.Region{Id: 424242}})
	if resp := h.nextError(); resp.GetHeader().GetError() == nil {
		c.t.Fatalf("store %d: unexpected operator step %v", store, resp)
	}
}

// operator asks GetOperator about region.
func (c *scheduleCluster) operator(regionID uint64) *pdpb.GetOperatorResponse {
	c.t.Helper()
	resp, err := c.p.raw.GetOperator(ctxT(c.t), &pdpb.GetOperatorRequest{Header: c.p.header(), RegionId: regionID})
	if err != nil {
		c.t.Fatalf("get operator: %v", err)
	}
	return resp
}

// expectOperator asserts GetOperator's answer for region.
func (c *scheduleCluster) expectOperator(regionID uint64, desc string, status pdpb.OperatorStatus) {
	c.t.Helper()
	resp := c.operator(regionID)
	if resp.GetHeader().GetError() != nil || string(resp.GetDesc()) != desc || resp.GetStatus() != status {
		c.t.Fatalf("operator of region %d = %q %v (%v), want %q %v", regionID, resp.GetDesc(), resp.GetStatus(),
			resp.GetHeader().GetError(), desc, status)
	}
}

// setStoreState sets a store's state through the HTTP API.
func (c *scheduleCluster) setStoreState(store uint64, state string) {
	c.t.Helper()
	url := fmt.Sprintf("http://%s/pd/api/v1/store/%d/state?state=%s", c.p.client, store, state)
	c.httpDo(http.MethodPost, url, "", http.StatusOK)
	if state == "Tombstone" {
		c.silent[store] = true
	}
}

// httpDo sends a request and checks the status; it returns the body.
func (c *scheduleCluster) httpDo(method, url, body string, wantStatus int) string {
	c.t.Helper()
	req, err := http.NewRequestWithContext(ctxT(c.t), method, url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		c.t.Fatalf("%s %s = %d %s, want %d", method, url, resp.StatusCode, data, wantStatus)
	}
	return string(data)
}

func peerOn(t testing.TB, region *metapb.Region, store uint64) *metapb.Peer {
	t.Helper()
	for _, p := range region.Peers {
		if p.StoreId == store {
			return p
		}
	}
	t.Fatalf("region %d has no peer on store %d", region.Id, store)
	return nil
}

// withPeer returns region after peer joined: conf_ver bumped, as the store
// reports it once the conf change applied.
func withPeer(region *metapb.Region, peer *metapb.Peer) *metapb.Region {
	r := proto.Clone(region).(*metapb.Region)
	r.Peers = append(r.Peers, proto.Clone(peer).(*metapb.Peer))
	r.RegionEpoch.ConfVer++
	return r
}

// withoutStore returns region after its peer on store left.
func withoutStore(region *metapb.Region, store uint64) *metapb.Region {
	r := proto.Clone(region).(*metapb.Region)
	r.Peers = nil
	for _, p := range region.Peers {
		if p.StoreId != store {
			r.Peers = append(r.Peers, proto.Clone(p).(*metapb.Peer))
		}
	}
	r.RegionEpoch.ConfVer++
	return r
}

// addNode checks that resp adds a new voter on store and returns it.
func addNode(t testing.TB, resp *pdpb.RegionHeartbeatResponse, store uint64) *metapb.Peer {
	t.Helper()
	cp := resp.GetChangePeer()
	if cp.GetChangeType() != eraftpb.ConfChangeType_AddNode || cp.GetPeer().GetStoreId() != store ||
		cp.GetPeer().GetRole() != metapb.PeerRole_Voter || cp.GetPeer().GetId() == 0 || resp.GetTransferLeader() != nil {
		t.Fatalf("want AddNode of a voter on store %d, got %v", store, resp)
	}
	return cp.GetPeer()
}

// removeNode checks that resp removes region's peer on store.
func removeNode(t testing.TB, resp *pdpb.RegionHeartbeatResponse, region *metapb.Region, store uint64) {
	t.Helper()
	cp := resp.GetChangePeer()
	if cp.GetChangeType() != eraftpb.ConfChangeType_RemoveNode || !proto.Equal(cp.GetPeer(), peerOn(t, region, store)) {
		t.Fatalf("want RemoveNode of the peer on store %d, got %v", store, resp)
	}
}

// fastConfig shortens the operator wait times for tests.
func fastConfig(cfg *pdsvc.Config) {
	cfg.Schedule.RegionOperatorWaitTime = time.Minute
	cfg.Schedule.LeaderOperatorWaitTime = 30 * time.Second
}

func TestReplicaCheckerAddsPeersUpToMaxReplicas(t *testing.T) {
	c := newScheduleCluster(t, 3, fastConfig)
	leader := c.storeID(0)
	region := c.region
	c.report(region, leader, nil, nil)
	first := addNode(t, c.command(leader, region), c.storeID(1))
	probe := c.p.allocID()
	for _, p := range region.Peers {
		if first.Id == p.Id || first.Id == region.Id || first.Id >= probe {
			t.Fatalf("new peer id %d is not fresh (region %v, next id %d)", first.Id, region, probe)
		}
	}
	c.expectOperator(region.Id, "make-up-replica", pdpb.OperatorStatus_RUNNING)
	if kind := string(c.operator(region.Id).GetKind()); kind != "replica,region" {
		t.Fatalf("kind %q", kind)
	}

	c.report(region, leader, nil, nil)
	c.quiet(leader) // the step was just sent: no re-send yet
	c.advance(6 * time.Second)
	c.report(region, leader, nil, nil)
	if again := addNode(t, c.command(leader, region), c.storeID(1)); again.Id != first.Id {
		t.Fatalf("re-sent AddNode with peer %d, first was %d", again.Id, first.Id)
	}

	region = withPeer(region, first)
	c.report(region, leader, []uint64{c.storeID(1)}, nil)
	c.quiet(leader) // added, catching up: nothing to send
	c.expectOperator(region.Id, "make-up-replica", pdpb.OperatorStatus_RUNNING)

	c.report(region, leader, nil, nil)
	second := addNode(t, c.command(leader, region), c.storeID(2))
	if second.Id == first.Id {
		t.Fatalf("second peer reuses id %d", second.Id)
	}
	region = withPeer(region, second)
	c.report(region, leader, nil, nil)
	c.quiet(leader)
	c.expectOperator(region.Id, "make-up-replica", pdpb.OperatorStatus_SUCCESS)
	for range 3 {
		c.advance(10 * time.Second)
		c.report(region, leader, nil, nil)
	}
	c.quiet(leader)
	c.expectOperator(region.Id, "make-up-replica", pdpb.OperatorStatus_SUCCESS)
}

func TestReplicaCheckerRemovesExtraFollower(t *testing.T) {
	c := newScheduleCluster(t, 3, fastConfig)
	leader := c.storeID(0)
	region := c.regionWithPeers(3)
	c.report(region, leader, nil, nil)
	removeNode(t, c.command(leader, region), region, c.storeID(1)) // all alike: the lowest store id
	c.expectOperator(region.Id, "remove-extra-replica", pdpb.OperatorStatus_RUNNING)
	region = withoutStore(region, c.storeID(1))
	c.report(region, leader, nil, nil)
	c.quiet(leader)
	c.expectOperator(region.Id, "remove-extra-replica", pdpb.OperatorStatus_SUCCESS)
}

func TestReplicaCheckerRemovesUnhealthyFollowerFirst(t *testing.T) {
	c := newScheduleCluster(t, 3, fastConfig)
	leader := c.storeID(0)
	region := c.regionWithPeers(3)
	c.silent[c.storeID(3)] = true
	c.advance(time.Minute) // store 3 is now disconnected
	c.report(region, leader, nil, nil)
	removeNode(t, c.command(leader, region), region, c.storeID(3))
}

func TestStaleHeartbeatGetsNoOperator(t *testing.T) {
	c := newScheduleCluster(t, 3, fastConfig)
	leader := c.storeID(0)
	stale := proto.Clone(c.region).(*metapb.Region)
	stale.RegionEpoch.ConfVer = 0
	c.report(stale, leader, nil, nil)
	if resp := c.stream(leader).nextError(); !strings.Contains(resp.GetHeader().GetError().GetMessage(), "stale") {
		t.Fatalf("stale heartbeat answered %v", resp)
	}
	c.quiet(leader)

	c.report(c.region, leader, nil, nil)
	addNode(t, c.command(leader, c.region), c.storeID(1))
	c.advance(time.Minute / 2)
	c.report(stale, leader, nil, nil) // a re-send is due, but not on a stale report
	if resp := c.stream(leader).nextError(); resp.GetHeader().GetError() == nil {
		t.Fatalf("stale heartbeat got %v", resp)
	}
	c.quiet(leader)
}

func TestTombstoneStorePeerIsReplaced(t *testing.T) {
	c := newScheduleCluster(t, 3, fastConfig)
	leader := c.storeID(0)
	region := c.regionWithPeers(2)
	c.report(region, leader, nil, nil)
	c.quiet(leader)

	c.setStoreState(c.storeID(2), "Tombstone")
	c.report(region, leader, nil, nil)
	added := addNode(t, c.command(leader, region), c.storeID(3))
	c.expectOperator(region.Id, "replace-offline-replica", pdpb.OperatorStatus_RUNNING)
	region = withPeer(region, added)
	c.report(region, leader, nil, nil)
	removeNode(t, c.command(leader, region), region, c.storeID(2))
	region = withoutStore(region, c.storeID(2))
	c.report(region, leader, nil, nil)
	c.quiet(leader)
	c.expectOperator(region.Id, "replace-offline-replica", pdpb.OperatorStatus_SUCCESS)
}

// TestOfflineLeaderMovesBeforeRemoval checks that steps go to the stream of
// the store that leads the region: the transfer to the old leader's, the
// removal to the new leader's.
func TestOfflineLeaderMovesBeforeRemoval(t *testing.T) {
	c := newScheduleCluster(t, 3, fastConfig)
	oldLeader, newLeader := c.storeID(0), c.storeID(1)
	region := c.regionWithPeers(2)
	c.report(region, newLeader, nil, nil) // store 1's stream is open before the move
	c.quiet(newLeader)
	c.httpDo(http.MethodDelete, fmt.Sprintf("http://%s/pd/api/v1/store/%d", c.p.client, oldLeader), "", http.StatusOK)
	if h := c.p.putStore(c.stores[0]); h.GetError() != nil { // a restarting store stays offline
		t.Fatalf("put offline store: %v", h.GetError())
	}
	got, err := c.p.raw.GetStore(ctxT(t), &pdpb.GetStoreRequest{Header: c.p.header(), StoreId: oldLeader})
	if err != nil || got.GetStore().GetState() != metapb.StoreState_Offline {
		t.Fatalf("store after delete and put: %v %v", got, err)
	}
	c.report(region, oldLeader, nil, nil)
	added := addNode(t, c.command(oldLeader, region), c.storeID(3))
	region = withPeer(region, added)
	c.report(region, oldLeader, nil, nil)
	tl := c.command(oldLeader, region).GetTransferLeader()
	if !proto.Equal(tl.GetPeer(), peerOn(t, region, newLeader)) {
		t.Fatalf("transfer leader to %v, want the peer on store %d", tl, newLeader)
	}
	c.report(region, newLeader, nil, nil)
	removeNode(t, c.command(newLeader, region), region, oldLeader)
	c.quiet(oldLeader)
	region = withoutStore(region, oldLeader)
	c.report(region, newLeader, nil, nil)
	c.quiet(newLeader)
	c.expectOperator(region.Id, "replace-offline-replica", pdpb.OperatorStatus_SUCCESS)
}

func TestDownPeerReplacedAfterMaxStoreDownTime(t *testing.T) {
	c := newScheduleCluster(t, 3, func(cfg *pdsvc.Config) {
		fastConfig(cfg)
		cfg.Schedule.MaxStoreDownTime = 10 * time.Minute
	})
	leader, downStore := c.storeID(0), c.storeID(2)
	region := c.regionWithPeers(2)
	c.silent[downStore] = true
	c.advance(9 * time.Minute)
	c.report(region, leader, nil, []uint64{downStore})
	c.quiet(leader)
	c.advance(2 * time.Minute)
	c.report(region, leader, nil, []uint64{downStore})
	added := addNode(t, c.command(leader, region), c.storeID(3))
	c.expectOperator(region.Id, "replace-down-replica", pdpb.OperatorStatus_RUNNING)
	region = withPeer(region, added)
	c.report(region, leader, nil, []uint64{downStore})
	removeNode(t, c.command(leader, region), region, downStore)
}

func TestOperatorTimesOut(t *testing.T) {
	c := newScheduleCluster(t, 1, fastConfig)
	leader := c.storeID(0)
	c.report(c.region, leader, nil, nil)
	first := addNode(t, c.command(leader, c.region), c.storeID(1))
	c.advance(59 * time.Second)
	c.expectOperator(c.region.Id, "make-up-replica", pdpb.OperatorStatus_RUNNING)
	c.advance(2 * time.Second)
	c.expectOperator(c.region.Id, "make-up-replica", pdpb.OperatorStatus_TIMEOUT)
	c.report(c.region, leader, nil, nil)
	if retry := addNode(t, c.command(leader, c.region), c.storeID(1)); retry.Id == first.Id {
		t.Fatalf("a new operator reuses peer id %d", retry.Id)
	}
	c.expectOperator(c.region.Id, "make-up-replica", pdpb.OperatorStatus_RUNNING)
}

func TestOperatorHTTPAPI(t *testing.T) {
	c := newScheduleCluster(t, 3, fastConfig)
	leader := c.storeID(0)
	region := c.regionWithPeers(2)
	c.report(region, leader, nil, nil)
	c.quiet(leader)
	api := fmt.Sprintf("http://%s/pd/api/v1/operators", c.p.client)

	c.httpDo(http.MethodPost, api, fmt.Sprintf(`{"name":"transfer-leader","region_id":%d,"to_store_id":%d}`, region.Id, c.storeID(2)), http.StatusOK)
	tl := c.command(leader, region).GetTransferLeader()
	if !proto.Equal(tl.GetPeer(), peerOn(t, region, c.storeID(2))) {
		t.Fatalf("transfer leader %v", tl)
	}
	c.expectOperator(region.Id, "admin-transfer-leader", pdpb.OperatorStatus_RUNNING)
	if list := c.httpDo(http.MethodGet, api, "", http.StatusOK); !strings.Contains(list, "admin-transfer-leader") {
		t.Fatalf("operators: %s", list)
	}
	if one := c.httpDo(http.MethodGet, fmt.Sprintf("%s/%d", api, region.Id), "", http.StatusOK); !strings.Contains(one, "status: RUNNING") {
		t.Fatalf("operator: %s", one)
	}
	c.httpDo(http.MethodDelete, fmt.Sprintf("%s/%d", api, region.Id), "", http.StatusOK)
	c.expectOperator(region.Id, "admin-transfer-leader", pdpb.OperatorStatus_CANCEL)
	c.httpDo(http.MethodDelete, fmt.Sprintf("%s/%d", api, region.Id), "", http.StatusInternalServerError)

	c.httpDo(http.MethodPost, api, fmt.Sprintf(`{"name":"add-peer","region_id":%d,"store_id":%d}`, region.Id, c.storeID(3)), http.StatusOK)
	added := addNode(t, c.command(leader, region), c.storeID(3))
	c.httpDo(http.MethodPost, api, fmt.Sprintf(`{"name":"remove-peer","region_id":%d,"store_id":%d}`, region.Id, c.storeID(1)), http.StatusInternalServerError)
	region = withPeer(region, added)
	c.report(region, leader, nil, nil)
	// The add finished with four peers: the replica checker removes one at
	// once, never the leader.
	removeNode(t, c.command(leader, region), region, c.storeID(1))
	c.expectOperator(region.Id, "remove-extra-replica", pdpb.OperatorStatus_RUNNING)

	for _, body := range []string{
		`{"region_id":1}`,
		`{"name":"split-region","region_id":1}`,
		`{"name":"transfer-leader","to_store_id":1}`,
		fmt.Sprintf(`{"name":"add-peer","region_id":%d}`, region.Id),
		`not json`,
	} {
		c.httpDo(http.MethodPost, api, body, http.StatusBadRequest)
	}
	c.httpDo(http.MethodPost, api, fmt.Sprintf(`{"name":"add-peer","region_id":%d,"store_id":%d}`, region.Id, c.storeID(2)), http.StatusInternalServerError)
	c.httpDo(http.MethodPost, api, `{"name":"add-peer","region_id":999999,"store_id":1}`, http.StatusInternalServerError)
	c.httpDo(http.MethodDelete, api, "", http.StatusOK)
	c.expectOperator(region.Id, "remove-extra-replica", pdpb.OperatorStatus_CANCEL)
}
