package pdsvc

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
)

// courseCluster is the course's 3C mock cluster (balance_test.go): stores
// with a given region count n and region size 10·n, all heard from now,
// and regions of size 10 with a leader and followers.
type courseCluster struct {
	t           *testing.T
	maxReplicas int
	stores      map[uint64]*storeInfo
	counts      map[uint64]int
	regions     []*regionInfo
	nextPeer    uint64
}

func newCourseCluster(t *testing.T, maxReplicas int) *courseCluster {
	return &courseCluster{t: t, maxReplicas: maxReplicas, stores: make(map[uint64]*storeInfo),
		counts: make(map[uint64]int), nextPeer: 1000}
}

// addRegionStore is AddRegionStore(id, n).
func (c *courseCluster) addRegionStore(id uint64, n int) {
	c.stores[id] = unitStore(id, metapb.NodeState_Serving, unitNow)
	c.counts[id] = n
}

func (c *courseCluster) setDown(id uint64) {
	c.stores[id] = unitStore(id, c.stores[id].meta.GetNodeState(), time.Time{})
}

func (c *courseCluster) setOffline(id uint64) {
	c.stores[id] = unitStore(id, metapb.NodeState_Removing, c.stores[id].lastHeartbeat)
}

// addLeaderRegion is AddLeaderRegion(id, leader, followers...); it
// replaces any region with the same id.
func (c *courseCluster) addLeaderRegion(id, leader uint64, followers ...uint64) *regionInfo {
	r := &regionInfo{meta: &metapb.Region{Id: id, RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: 1}}, approxSize: 10}
	for _, s := range append([]uint64{leader}, followers...) {
		r.meta.Peers = append(r.meta.Peers, &metapb.Peer{Id: 100*id + s, StoreId: s})
	}
	r.leader = r.meta.Peers[0]
	kept := c.regions[:0]
	for _, old := range c.regions {
		if old.meta.GetId() != id {
			kept = append(kept, old)
		}
	}
	c.regions = append(kept, r)
	return r
}

// env is the round's view, with the stores' scores set as the mock sets
// them rather than derived from the regions.
func (c *courseCluster) env() *schedEnv {
	v := unitView()
	v.stores = c.stores
	env := newSchedEnv(schedInput{
		view: v, regions: c.regions, cfg: ScheduleConfig{}.withOperatorDefaults(), maxReplicas: c.maxReplicas,
		rng:         rand.New(rand.NewPCG(3, 3)),
		allocPeerID: func() (uint64, error) { c.nextPeer++; return c.nextPeer, nil },
	})
	for id, n := range c.counts {
		env.loads[id] = &storeLoad{peers: n, size: int64(10 * n)}
	}
	return env
}

// balance runs balance-region once and returns its plan.
func (c *courseCluster) balance() *opPlan {
	c.t.Helper()
	plan, err := balanceRegionScheduler{}.scheduleOne(c.env())
	if err != nil {
		c.t.Fatal(err)
	}
	return plan
}

// expectMove checks plan is a MovePeer of its region from src to dst:
// add on dst, [transfer the leader,] remove src.
func expectMove(t *testing.T, plan *opPlan, src, dst uint64, transfer bool) {
	t.Helper()
	if plan == nil {
		t.Fatalf("no operator, want a move %d→%d", src, dst)
	}
	want := 2
	if transfer {
		want = 3
	}
	if plan.desc != balanceRegionDesc || plan.kind&opRegion == 0 || len(plan.steps) != want {
		t.Fatalf("plan %s (%s) %v, want a %d-step move %d→%d", plan.desc, plan.kind, plan.steps, want, src, dst)
	}
	if add, ok := plan.steps[0].(addPeer); !ok || add.toStore != dst {
		t.Fatalf("first step %v, want add peer on %d", plan.steps[0], dst)
	}
	if transfer {
		if tl, ok := plan.steps[1].(transferLeader); !ok || tl.fromStore != src {
			t.Fatalf("second step %v, want the leader to leave %d", plan.steps[1], src)
		}
	}
	if rm, ok := plan.steps[want-1].(removePeer); !ok || rm.fromStore != src {
		t.Fatalf("last step %v, want remove peer on %d", plan.steps[want-1], src)
	}
}

func expectNoMove(t *testing.T, plan *opPlan) {
	t.Helper()
	if plan != nil {
		t.Fatalf("unexpected operator %s %v", plan.desc, plan.steps)
	}
}

// The four tests below are the course's 3C balance-region scenarios.

func TestBalanceRegionReplicas1(t *testing.T) {
	c := newCourseCluster(t, 1)
	c.addRegionStore(1, 6)
	c.addRegionStore(2, 8)
	c.addRegionStore(3, 8)
	c.addRegionStore(4, 16)
	c.addLeaderRegion(1, 4)
	expectMove(t, c.balance(), 4, 1, true)

	c.setOffline(1)
	c.addRegionStore(2, 6)
	expectMove(t, c.balance(), 4, 2, true)

	c.maxReplicas = 3
	expectNoMove(t, c.balance())
	c.maxReplicas = 1
	if c.balance() == nil {
		t.Fatal("no operator once max-replicas is back to 1")
	}
}

func TestBalanceRegionReplicas3(t *testing.T) {
	c := newCourseCluster(t, 3)
	c.addRegionStore(1, 16)
	c.addRegionStore(2, 15)
	c.addRegionStore(3, 14)
	c.addLeaderRegion(1, 1, 2, 3)
	expectNoMove(t, c.balance()) // no store without the region
	c.addRegionStore(4, 2)
	expectMove(t, c.balance(), 1, 4, true)
	c.addRegionStore(5, 1)
	expectMove(t, c.balance(), 1, 5, true)
	c.addRegionStore(6, 0)
	expectMove(t, c.balance(), 1, 6, true)
	c.setDown(6)
	expectMove(t, c.balance(), 1, 5, true)
	c.setDown(4)
	c.setDown(5)
	c.addRegionStore(7, 20)
	expectNoMove(t, c.balance()) // 7 is not smaller than 1 by 2 × the region size
}

func TestBalanceRegionReplicas5(t *testing.T) {
	c := newCourseCluster(t, 5)
	for id, n := range map[uint64]int{1: 4, 2: 5, 3: 6, 4: 7, 5: 28} {
		c.addRegionStore(id, n)
	}
	c.addLeaderRegion(1, 1, 2, 3, 4, 5)
	c.addRegionStore(6, 1)
	expectMove(t, c.balance(), 5, 6, false)
	c.addRegionStore(7, 5)
	expectMove(t, c.balance(), 5, 6, false)

	c.addLeaderRegion(1, 2, 3, 4, 5, 6)
	expectMove(t, c.balance(), 5, 1, false)
	c.addRegionStore(11, 29)
	c.addRegionStore(12, 8)
	c.addRegionStore(13, 7)
	c.addLeaderRegion(1, 2, 3, 11, 12, 13)
	expectMove(t, c.balance(), 11, 6, false)
}

func TestBalanceRegionPrefersPendingRegion(t *testing.T) {
	c := newCourseCluster(t, 3)
	c.addRegionStore(1, 16)
	c.addRegionStore(2, 7)
	c.addRegionStore(3, 15)
	c.addRegionStore(4, 10)
	c.addLeaderRegion(1, 1, 2, 3)
	c.addLeaderRegion(2, 1, 2, 3)
	r3 := c.addLeaderRegion(3, 2, 1, 3)
	r3.pendingPeers = []*metapb.Peer{r3.storePeer(1)}
	plan := c.balance()
	expectMove(t, plan, 1, 4, false)
	if plan.regionID != 3 {
		t.Fatalf("moved region %d, want the pending region 3", plan.regionID)
	}
}

// TestBalanceRegionRoundStops checks that one round's moves see each other:
// three full stores and an empty one settle within tolerance in one round
// and the next round plans nothing.
func TestBalanceRegionRoundStops(t *testing.T) {
	c := newCourseCluster(t, 3)
	for id := uint64(1); id <= 4; id++ {
		c.addRegionStore(id, 0)
	}
	for id := uint64(1); id <= 30; id++ {
		c.addLeaderRegion(id, 1+id%3, 1+(id+1)%3, 1+(id+2)%3)
	}
	c.counts = nil // scores from the regions
	env := c.env()
	plans, err := balanceRegionScheduler{}.schedule(env)
	if err != nil {
		t.Fatal(err)
	}
	var most, least int64 = 0, 1 << 40
	for id := uint64(1); id <= 4; id++ {
		most, least = max(most, env.score(id)), min(least, env.score(id))
	}
	if len(plans) < 20 || most-least > 2*10 {
		t.Fatalf("%d moves leave scores from %d to %d", len(plans), least, most)
	}
	for _, p := range plans {
		c.apply(p)
	}
	if again, _ := (balanceRegionScheduler{}).schedule(c.env()); len(again) != 0 {
		t.Fatalf("a balanced cluster got %d more moves", len(again))
	}
}

// apply carries a move out on the mock cluster's region.
func (c *courseCluster) apply(p *opPlan) {
	for _, r := range c.regions {
		if r.meta.GetId() != p.regionID {
			continue
		}
		var add, remove uint64
		for _, s := range p.steps {
			switch s := s.(type) {
			case addPeer:
				add = s.toStore
			case removePeer:
				remove = s.fromStore
			}
		}
		peers := []uint64{}
		for _, peer := range r.meta.GetPeers() {
			if peer.GetStoreId() != remove {
				peers = append(peers, peer.GetStoreId())
			}
		}
		c.addLeaderRegion(r.meta.GetId(), peers[0], append(peers[1:], add)...)
		return
	}
}

func TestBalanceLeaderSpreadsAndStops(t *testing.T) {
	c := newCourseCluster(t, 3)
	for id := uint64(1); id <= 3; id++ {
		c.addRegionStore(id, 30)
	}
	for id := uint64(1); id <= 30; id++ {
		c.addLeaderRegion(id, 1, 2, 3)
	}
	c.counts = nil
	for round := 0; ; round++ {
		env := c.env()
		plans, err := balanceLeaderScheduler{}.schedule(env)
		if err != nil {
			t.Fatal(err)
		}
		if len(plans) > balanceLeaderBatch {
			t.Fatalf("round %d planned %d transfers", round, len(plans))
		}
		if len(plans) == 0 {
			break
		}
		for _, p := range plans {
			tl := p.steps[0].(transferLeader)
			r := c.regionByID(p.regionID)
			others := []uint64{}
			for _, peer := range r.meta.GetPeers() {
				if peer.GetStoreId() != tl.toStore {
					others = append(others, peer.GetStoreId())
				}
			}
			c.addLeaderRegion(p.regionID, tl.toStore, others...)
		}
		if round > 30 {
			t.Fatal("leader balancing does not stop")
		}
	}
	leaders := map[uint64]int{}
	for _, r := range c.regions {
		leaders[r.leader.GetStoreId()]++
	}
	for _, s := range []uint64{2, 3} {
		if leaders[1]-leaders[s] > 2*leaderTolerantRatio {
			t.Fatalf("leaders %v: store 1 still leads more than 10 over store %d", leaders, s)
		}
	}
	if leaders[1] == 30 {
		t.Fatalf("leaders %v: nothing moved", leaders)
	}
}

func (c *courseCluster) regionByID(id uint64) *regionInfo {
	for _, r := range c.regions {
		if r.meta.GetId() == id {
			return r
		}
	}
	c.t.Fatalf("no region %d", id)
	return nil
}

// TestBalanceLimits checks region-schedule-limit, the per-store limit and
// leader-schedule-limit, counting the operators already running.
func TestBalanceLimits(t *testing.T) {
	c := newCourseCluster(t, 3)
	for id := uint64(1); id <= 4; id++ {
		c.addRegionStore(id, 0)
	}
	for id := uint64(1); id <= 30; id++ {
		c.addLeaderRegion(id, 1, 2, 3)
	}
	c.counts = nil
	plan := func(cfg ScheduleConfig, limiter *storeLimiter, running map[opKind]int, s scheduler) int {
		env := c.env()
		env.cfg = cfg.withOperatorDefaults()
		env.limiter = limiter
		for k, n := range running {
			env.kinds[k] = n
		}
		plans, err := s.schedule(env)
		if err != nil {
			t.Fatal(err)
		}
		return len(plans)
	}
	if n := plan(ScheduleConfig{RegionScheduleLimit: 5}, nil, map[opKind]int{opRegion: 2}, balanceRegionScheduler{}); n != 3 {
		t.Fatalf("region-schedule-limit 5 with 2 running: %d moves, want 3", n)
	}
	if n := plan(ScheduleConfig{}, newStoreLimiter(4), nil, balanceRegionScheduler{}); n != 4 {
		t.Fatalf("4 add-peer tokens on the empty store: %d moves, want 4", n)
	}
	if n := plan(ScheduleConfig{LeaderScheduleLimit: 3}, nil, map[opKind]int{opLeader: 1}, balanceLeaderScheduler{}); n != 2 {
		t.Fatalf("leader-schedule-limit 3 with 1 running: %d transfers, want 2", n)
	}
	if n := plan(ScheduleConfig{LeaderScheduleLimit: 100}, nil, nil, balanceLeaderScheduler{}); n != balanceLeaderBatch {
		t.Fatalf("a round planned %d transfers, want the batch of %d", n, balanceLeaderBatch)
	}
}

// TestStoreLimiterRefills checks the token bucket on a fake clock.
func TestStoreLimiterRefills(t *testing.T) {
	l := newStoreLimiter(15)
	for i := range 15 {
		if !l.available(1, limitAddPeer, unitNow) {
			t.Fatalf("token %d missing from a full bucket", i)
		}
		l.take(1, limitAddPeer, unitNow)
	}
	if l.available(1, limitAddPeer, unitNow) || !l.available(1, limitRemovePeer, unitNow) || !l.available(2, limitAddPeer, unitNow) {
		t.Fatal("buckets are not per store and type")
	}
	if l.available(1, limitAddPeer, unitNow.Add(3*time.Second)) || !l.available(1, limitAddPeer, unitNow.Add(4*time.Second)) {
		t.Fatal("15 a minute should refill one token in 4 s")
	}
	if !l.available(1, limitAddPeer, unitNow.Add(time.Hour)) {
		t.Fatal("no token after an hour")
	}
	l.take(1, limitAddPeer, unitNow.Add(time.Hour))
	for range 14 {
		l.take(1, limitAddPeer, unitNow.Add(time.Hour))
	}
	if l.available(1, limitAddPeer, unitNow.Add(time.Hour)) {
		t.Fatal("the bucket holds more than a minute of tokens")
	}
}

// TestScatterPicksLeastPickedStores checks the scatterer's choices on six
// stores for regions that all start on stores 1, 2 and 3.
func TestScatterPicksLeastPickedStores(t *testing.T) {
	view := healthyView(1, 2, 3, 4, 5, 6)
	s := newRegionScatterer()
	next := uint64(1000)
	in := scatterInput{view: view, maxReplicas: 3, allocPeerID: func() (uint64, error) { next++; return next, nil }}
	picks := map[uint64]int{}
	for range 6 {
		r := unitRegion(3, 1, []uint64{1, 2, 3})
		plan, err := s.plan(r, "g", in)
		if err != nil {
			t.Fatal(err)
		}
		stores := map[uint64]bool{1: true, 2: true, 3: true}
		if plan != nil {
			for _, st := range plan.steps {
				switch st := st.(type) {
				case addPeer:
					stores[st.toStore] = true
				case removePeer:
					delete(stores, st.fromStore)
				}
			}
			if plan.priority != priorityHigh || plan.desc != scatterOperatorDesc {
				t.Fatalf("plan %s priority %d", plan.desc, plan.priority)
			}
		}
		for st := range stores {
			picks[st]++
		}
	}
	for st := uint64(1); st <= 6; st++ {
		if picks[st] != 3 {
			t.Fatalf("peer picks %v, want 3 on every store", picks)
		}
	}
	if _, err := s.plan(unitRegion(2, 1, []uint64{1, 2}), "g", in); err == nil {
		t.Fatal("a region short of a replica was scattered")
	}
}
