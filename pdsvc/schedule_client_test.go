package pdsvc_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"github.com/tinykv/tinykv/internal/testutil"
	"github.com/tinykv/tinykv/pdsvc"
)

// probeRegionID is the region of the heartbeat fakeStores sends to learn
// that PD has answered everything before it (see drain).
const probeRegionID = 424242

// fakeStores plays the TiKV stores of a scheduleCluster whose scheduler
// rounds the test drives: it keeps every region as the stores have it,
// carries PD's commands out at once, and reports each change from the
// region's leader on the leader store's stream, as TiKV does.
type fakeStores struct {
	c      *scheduleCluster
	rounds chan chan struct{}
	// regions maps a region id to its current metadata and leader store.
	regions map[uint64]*fakeRegion
	// adds counts, per store, the peers added in the current round.
	adds map[uint64]int
	// onCommand, if set, sees every command before it is carried out; it
	// returns false to leave a command to the test.
	onCommand func(store uint64, resp *pdpb.RegionHeartbeatResponse) bool
}

type fakeRegion struct {
	meta   *metapb.Region
	leader uint64
}

// newFakeStores starts a PD with n stores whose scheduling rounds run only
// when the test asks (round), with a seeded scheduler.
func newFakeStores(t *testing.T, n int, configure func(*pdsvc.Config)) *fakeStores {
	t.Helper()
	rounds := make(chan chan struct{})
	seed := testutil.Rand(t).Uint64()
	t.Logf("schedule seed %d", seed)
	c := newScheduleCluster(t, n-1, func(cfg *pdsvc.Config) {
		cfg.ScheduleRounds = rounds
		cfg.ScheduleSeed = seed
		if configure != nil {
			configure(cfg)
		}
	})
	return &fakeStores{c: c, rounds: rounds, regions: make(map[uint64]*fakeRegion), adds: make(map[uint64]int)}
}

// createRegions reports count regions that split the key space at
// "k001", "k002", …, each with a peer on every one of the first stores
// stores and led by the store leaderOf(i) picks (an index into stores).
func (f *fakeStores) createRegions(count, stores int, leaderOf func(i int) int) []uint64 {
	f.c.t.Helper()
	ids := make([]uint64, count)
	for i := range count {
		id := f.c.region.Id
		if i > 0 {
			id = f.c.p.allocID()
		}
		r := &metapb.Region{Id: id, RegionEpoch: &metapb.RegionEpoch{ConfVer: uint64(1 + stores), Version: 2}}
		if i > 0 {
			r.StartKey = []byte(fmt.Sprintf("k%03d", i))
		}
		if i < count-1 {
			r.EndKey = []byte(fmt.Sprintf("k%03d", i+1))
		}
		for s := range stores {
			r.Peers = append(r.Peers, &metapb.Peer{Id: f.c.p.allocID(), StoreId: f.c.storeID(s)})
		}
		if i == 0 {
			r.Peers[0].Id = f.c.region.Peers[0].Id // the bootstrap peer
		}
		f.regions[id] = &fakeRegion{meta: r, leader: f.c.storeID(leaderOf(i))}
		f.report(id)
		ids[i] = id
	}
	return ids
}

// addStore registers one more store, which heartbeats from now on.
func (f *fakeStores) addStore() uint64 {
	f.c.t.Helper()
	s := &metapb.Store{Id: f.c.p.allocID(), Address: fmt.Sprintf("127.0.0.1:%d", 20160+len(f.c.stores)), Version: "8.5.4"}
	if h := f.c.p.putStore(s); h.GetError() != nil {
		f.c.t.Fatalf("put store %d: %v", s.Id, h.GetError())
	}
	f.c.stores = append(f.c.stores, s)
	f.c.storeHeartbeats()
	return s.Id
}

// report sends region id's heartbeat from its leader.
func (f *fakeStores) report(id uint64) {
	f.c.t.Helper()
	r := f.regions[id]
	f.c.report(r.meta, r.leader, nil, nil)
}

// round runs one scheduling round and waits until it has sent the first
// steps of the operators it started.
func (f *fakeStores) round() {
	f.c.t.Helper()
	done := make(chan struct{})
	select {
	case f.rounds <- done:
	case <-time.After(10 * time.Second):
		f.c.t.Fatal("scheduling round not taken")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		f.c.t.Fatal("scheduling round did not finish")
	}
}

// settle carries out every command PD sends until it sends no more, and
// returns how many it carried out.
func (f *fakeStores) settle() int {
	f.c.t.Helper()
	total := 0
	for {
		n := 0
		for _, s := range f.c.stores {
			for _, resp := range f.drain(s.Id) {
				if f.onCommand == nil || f.onCommand(s.Id, resp) {
					f.carryOut(s.Id, resp)
				}
				n++
			}
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

// drain returns the responses PD has sent on store's stream: it sends a
// heartbeat PD must reject and reads up to the rejection, since PD answers
// one stream's heartbeats in order and a round's commands are sent before
// the round ends.
func (f *fakeStores) drain(store uint64) []*pdpb.RegionHeartbeatResponse {
	f.c.t.Helper()
	h := f.c.stream(store)
	h.sendRequest(&pdpb.RegionHeartbeatRequest{Region: &metapb.Region{Id: probeRegionID}})
	var cmds []*pdpb.RegionHeartbeatResponse
	for {
		resp := h.nextError()
		if resp.GetHeader().GetError() != nil {
			if resp.GetRegionId() != probeRegionID {
				f.c.t.Fatalf("store %d: heartbeat rejected: %v", store, resp)
			}
			return cmds
		}
		cmds = append(cmds, resp)
	}
}

// carryOut applies a command from store's stream as TiKV would, checking
// that it is addressed to the region's leader there with PD's epoch and
// never puts two peers of a region on one store.
func (f *fakeStores) carryOut(store uint64, resp *pdpb.RegionHeartbeatResponse) {
	t := f.c.t
	t.Helper()
	r := f.regions[resp.GetRegionId()]
	if r == nil || r.leader != store || resp.GetTargetPeer().GetStoreId() != store ||
		!proto.Equal(resp.GetRegionEpoch(), r.meta.RegionEpoch) {
		t.Fatalf("store %d: command not for a region it leads at its epoch: %v", store, resp)
	}
	switch cp, tl := resp.GetChangePeer(), resp.GetTransferLeader(); {
	case cp != nil && cp.GetChangeType() == eraftpb.ConfChangeType_AddNode:
		to := cp.GetPeer().GetStoreId()
		if slices.ContainsFunc(r.meta.Peers, func(p *metapb.Peer) bool { return p.StoreId == to }) {
			t.Fatalf("region %d: second peer on store %d", r.meta.Id, to)
		}
		r.meta = withPeer(r.meta, cp.GetPeer())
		f.adds[to]++
	case cp != nil && cp.GetChangeType() == eraftpb.ConfChangeType_RemoveNode:
		if cp.GetPeer().GetStoreId() == r.leader {
			t.Fatalf("region %d: asked to remove its leader", r.meta.Id)
		}
		r.meta = withoutStore(r.meta, cp.GetPeer().GetStoreId())
	case tl != nil:
		peerOn(t, r.meta, tl.GetPeer().GetStoreId())
		r.leader = tl.GetPeer().GetStoreId()
	case resp.GetSplitRegion() != nil:
		f.split(r, resp.GetSplitRegion())
		return
	default:
		t.Fatalf("store %d: unexpected command %v", store, resp)
	}
	f.report(r.meta.Id)
}

// split splits r at the command's keys as TiKV does with right-derive: new
// regions, with new ids for the region and its peers, take the left parts
// and r keeps the rightmost; every part is reported by its leader.
func (f *fakeStores) split(r *fakeRegion, cmd *pdpb.SplitRegion) {
	t := f.c.t
	t.Helper()
	keys := cmd.GetKeys()
	if cmd.GetPolicy() != pdpb.CheckPolicy_USEKEY || len(keys) == 0 {
		t.Fatalf("region %d: split %v, want USEKEY with keys", r.meta.Id, cmd)
	}
	start := r.meta.StartKey
	version := r.meta.RegionEpoch.Version + uint64(len(keys))
	for i, k := range keys {
		if string(k) <= string(start) || (len(r.meta.EndKey) > 0 && string(k) >= string(r.meta.EndKey)) ||
			(i > 0 && string(k) <= string(keys[i-1])) {
			t.Fatalf("region %d [%q, %q): bad split keys %q", r.meta.Id, r.meta.StartKey, r.meta.EndKey, keys)
		}
		left := proto.Clone(r.meta).(*metapb.Region)
		left.Id, left.StartKey, left.EndKey = f.c.p.allocID(), start, k
		left.RegionEpoch.Version = version
		for _, p := range left.Peers {
			p.Id = f.c.p.allocID()
		}
		f.regions[left.Id] = &fakeRegion{meta: left, leader: r.leader}
		f.report(left.Id)
		start = k
	}
	r.meta = proto.Clone(r.meta).(*metapb.Region)
	r.meta.StartKey = start
	r.meta.RegionEpoch.Version = version
	f.report(r.meta.Id)
}

// counts returns, per store, the peers and the leaders it holds.
func (f *fakeStores) counts() (peers, leaders map[uint64]int) {
	peers, leaders = make(map[uint64]int), make(map[uint64]int)
	for _, s := range f.c.stores {
		peers[s.Id], leaders[s.Id] = 0, 0
	}
	for _, r := range f.regions {
		for _, p := range r.meta.Peers {
			peers[p.StoreId]++
		}
		leaders[r.leader]++
	}
	return peers, leaders
}

func spread(m map[uint64]int) int {
	lo, hi := 1<<30, 0
	for _, v := range m {
		lo, hi = min(lo, v), max(hi, v)
	}
	return hi - lo
}

// converge runs rounds, each after tick of fake time, until one starts no
// operator; it returns the rounds that did. Then it checks that quiet more
// rounds, a minute apart, start nothing either.
func (f *fakeStores) converge(tick time.Duration, quiet int, perRound func(round, commands int)) int {
	t := f.c.t
	t.Helper()
	busy := 0
	for ; ; busy++ {
		if busy > 60 {
			t.Fatal("scheduling did not converge in 60 rounds")
		}
		f.c.advance(tick)
		clear(f.adds)
		f.round()
		n := f.settle()
		if perRound != nil {
			perRound(busy, n)
		}
		if n == 0 {
			break
		}
	}
	for i := range quiet {
		f.c.advance(time.Minute)
		f.round()
		if n := f.settle(); n != 0 {
			t.Fatalf("quiet round %d after convergence: %d commands", i, n)
		}
	}
	if ops := f.c.httpDo("GET", fmt.Sprintf("http://%s/pd/api/v1/operators", f.c.p.client), "", 200); ops != "[]\n" {
		t.Fatalf("operators still running: %s", ops)
	}
	return busy
}

// TestBalanceRegionFillsNewStore: three stores hold a peer of each of 30
// regions; a fourth joins, and balance-region moves peers onto it, at most
// store-balance-rate a minute, until the stores are within tolerance (the
// spread at most 2 regions, as ratio 1 allows), and then stops.
func TestBalanceRegionFillsNewStore(t *testing.T) {
	f := newFakeStores(t, 3, nil)
	f.createRegions(30, 3, func(i int) int { return i % 3 })
	if n := f.settle(); n != 0 {
		t.Fatalf("%d commands for a fresh cluster", n)
	}
	f.round()
	if n := f.settle(); n != 0 {
		t.Fatalf("balanced cluster got %d commands", n)
	}
	fourth := f.addStore()
	rounds := f.converge(10*time.Second, 5, func(round, n int) {
		if f.adds[fourth] > pdsvc.DefaultStoreBalanceRate {
			t.Fatalf("round %d added %d peers to store %d, over the per-store limit", round, f.adds[fourth], fourth)
		}
	})
	peers, leaders := f.counts()
	t.Logf("after %d busy rounds: peers %v leaders %v", rounds, peers, leaders)
	if spread(peers) > 2 || peers[fourth] < 20 {
		t.Fatalf("peers %v: not within tolerance", peers)
	}
	if rounds < 2 {
		t.Fatalf("22 moves in %d round(s): the per-store limit did not hold them back", rounds)
	}
	for id, r := range f.regions {
		if len(r.meta.Peers) != 3 {
			t.Fatalf("region %d ended with %d peers", id, len(r.meta.Peers))
		}
	}
}

// TestBalanceLeaderSpreadsLeaders: every region is led by one store;
// balance-leader moves leaders away, never more than leader-schedule-limit
// in a round, until no store leads more than 2 × 5 regions over another.
func TestBalanceLeaderSpreadsLeaders(t *testing.T) {
	f := newFakeStores(t, 3, nil)
	f.createRegions(30, 3, func(int) int { return 0 })
	f.converge(10*time.Second, 5, func(round, n int) {
		if n > pdsvc.DefaultLeaderScheduleLimit {
			t.Fatalf("round %d: %d leader transfers, over leader-schedule-limit", round, n)
		}
	})
	_, leaders := f.counts()
	t.Logf("leaders %v", leaders)
	if spread(leaders) > 10 || leaders[f.c.storeID(0)] == 30 {
		t.Fatalf("leaders %v not spread", leaders)
	}
}

// TestSchedulersHTTPAPI lists, removes and restores the schedulers as
// pd-ctl does; a removed scheduler plans nothing and stays removed across
// a restart.
func TestSchedulersHTTPAPI(t *testing.T) {
	f := newFakeStores(t, 3, nil)
	f.createRegions(30, 3, func(int) int { return 0 })
	api := fmt.Sprintf("http://%s/pd/api/v1/schedulers", f.c.p.client)
	list := func(query string) string { return f.c.httpDo("GET", api+query, "", 200) }
	if got := list(""); got != "[\n  \"balance-leader-scheduler\",\n  \"balance-region-scheduler\"\n]\n" {
		t.Fatalf("schedulers: %s", got)
	}
	f.c.httpDo("DELETE", api+"/balance-leader-scheduler", "", 200)
	f.c.httpDo("DELETE", api+"/balance-leader-scheduler", "", 404)
	f.c.httpDo("DELETE", api+"/no-such-scheduler", "", 404)
	if got := list(""); got != "[\n  \"balance-region-scheduler\"\n]\n" {
		t.Fatalf("schedulers after removal: %s", got)
	}
	if got := list("?status=disabled"); got != "[\n  \"balance-leader-scheduler\"\n]\n" {
		t.Fatalf("disabled schedulers: %s", got)
	}
	f.round()
	if n := f.settle(); n != 0 {
		t.Fatalf("removed balance-leader still moved %d leaders", n)
	}
	f.c.httpDo("POST", api, `{"name":"balance-region-scheduler"}`, 500) // it runs already
	f.c.httpDo("POST", api, `{"name":"shuffle-leader-scheduler"}`, 400)
	f.c.httpDo("POST", api, `{}`, 400)
	f.c.httpDo("POST", api, `not json`, 400)

	f.c.p.restart()
	if got := list(""); got != "[\n  \"balance-region-scheduler\"\n]\n" {
		t.Fatalf("schedulers after restart: %s", got)
	}
	f.c.httpDo("POST", api, `{"name":"balance-leader-scheduler"}`, 200)
	if got := list(""); got != "[\n  \"balance-leader-scheduler\",\n  \"balance-region-scheduler\"\n]\n" {
		t.Fatalf("schedulers after adding back: %s", got)
	}
}
