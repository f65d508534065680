package pdsvc

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"github.com/tinykv/tinykv/internal/testutil"
)

// The simulation drives the replica checker, the schedulers and the
// operator controller directly on a model cluster: stores and regions as
// numbers, no Raft, no gRPC. Every round is simRound of model time: the
// live stores heartbeat, every running operator's due step is carried out
// at once, the replica checker looks at every region without an operator,
// and the schedulers run a round. Operators start as the coordinator
// starts them, with their first step carried out at once.
const (
	simRound       = 10 * time.Second
	simRegions     = 1000
	simStores      = 10
	simMaxRounds   = 3000
	simQuietRounds = 6
	// simPingPongRounds is how soon a region may not go back to a store
	// it left: 50 rounds, 8m20s.
	simPingPongRounds = 50
)

type simCluster struct {
	t       *testing.T
	rng     *rand.Rand
	now     time.Time
	start   time.Time
	round   int
	cfg     ScheduleConfig
	stores  map[uint64]*storeInfo
	lost    map[uint64]bool
	regions map[uint64]*regionInfo
	ops     *operatorController
	limiter *storeLimiter
	moves   *moveHistory
	checker replicaChecker
	nextID  uint64
	// left records the round in which a region's peer left a store.
	left map[[2]uint64]int
	// issued counts the operators started, by description.
	issued map[string]int
	// history lists, per region, the commands carried out, for failures.
	history map[uint64][]string
}

func newSimCluster(t *testing.T, rng *rand.Rand, sized bool) *simCluster {
	cfg := ScheduleConfig{MaxStoreDownTime: 5 * time.Minute}.withOperatorDefaults()
	s := &simCluster{
		t: t, rng: rng, now: unitNow, start: unitNow, cfg: cfg,
		stores: make(map[uint64]*storeInfo), lost: make(map[uint64]bool), regions: make(map[uint64]*regionInfo),
		ops:     newOperatorController(slog.New(slog.NewTextHandler(io.Discard, nil))),
		limiter: newStoreLimiter(cfg.StoreBalanceRate),
		moves:   newMoveHistory(),
		checker: replicaChecker{maxReplicas: 3},
		nextID:  1 << 20, left: make(map[[2]uint64]int), issued: make(map[string]int),
		history: make(map[uint64][]string),
	}
	for range simStores {
		s.addStore()
	}
	// Skewed placement: store i is picked with weight i, so the last
	// stores start with several times the first stores' regions.
	for id := uint64(1); id <= simRegions; id++ {
		stores := s.weightedStores(3)
		r := &regionInfo{meta: &metapb.Region{Id: id, RegionEpoch: &metapb.RegionEpoch{ConfVer: 3, Version: 1}}}
		for _, st := range stores {
			r.meta.Peers = append(r.meta.Peers, &metapb.Peer{Id: s.allocID(), StoreId: st})
		}
		r.leader = r.meta.Peers[0]
		if sized {
			r.approxSize = 1 + uint64(rng.IntN(96))
		}
		s.regions[id] = r
	}
	return s
}

func (s *simCluster) allocID() uint64 { s.nextID++; return s.nextID }

func (s *simCluster) addStore() uint64 {
	id := uint64(len(s.stores) + 1)
	s.stores[id] = &storeInfo{meta: &metapb.Store{Id: id, NodeState: metapb.NodeState_Serving}, lastHeartbeat: s.now}
	return id
}

func (s *simCluster) weightedStores(n int) []uint64 {
	var picked []uint64
	for len(picked) < n {
		total := len(s.stores) * (len(s.stores) + 1) / 2
		x := s.rng.IntN(total)
		id := uint64(1)
		for x >= int(id) {
			x -= int(id)
			id++
		}
		if !slices.Contains(picked, id) {
			picked = append(picked, id)
		}
	}
	return picked
}

func (s *simCluster) view() storeView {
	return storeView{stores: maps.Clone(s.stores), now: s.now, start: s.start, maxStoreDownTime: s.cfg.MaxStoreDownTime}
}

func (s *simCluster) regionIDs() []uint64 { return slices.Sorted(maps.Keys(s.regions)) }

// step runs one round and returns how many operators it started.
func (s *simCluster) step() int {
	s.round++
	s.now = s.now.Add(simRound)
	for id, st := range s.stores {
		if !s.lost[id] {
			s.stores[id] = &storeInfo{meta: st.meta, lastHeartbeat: s.now}
		}
	}
	s.reportLostPeers()
	v := s.view()
	for _, id := range s.regionIDs() {
		if cmd, _ := s.ops.dispatch(s.regions[id], v); cmd != nil {
			s.carryOut(id, cmd)
		}
	}
	return s.runChecker() + s.runSchedulers()
}

// reportLostPeers is what Raft and the leaders do about a lost store: a
// region led there elects a peer on a live store, and leaders report the
// peers on lost stores as down.
func (s *simCluster) reportLostPeers() {
	for _, id := range s.regionIDs() {
		r := s.regions[id]
		var down []*pdpb.PeerStats
		leader := r.leader
		for _, p := range r.meta.GetPeers() {
			if s.lost[p.GetStoreId()] {
				down = append(down, &pdpb.PeerStats{Peer: p, DownSeconds: 600})
			} else if s.lost[leader.GetStoreId()] {
				leader = p
			}
		}
		if len(down) != len(r.downPeers) || leader != r.leader {
			next := *r
			next.downPeers, next.leader = down, leader
			s.regions[id] = &next
		}
	}
}

// carryOut applies a command as the region's leader would, at once.
func (s *simCluster) carryOut(id uint64, cmd *pdpb.RegionHeartbeatResponse) {
	r := s.regions[id]
	op, _ := s.ops.runningOf(id, s.now)
	s.history[id] = append(s.history[id], fmt.Sprintf("round %d %s: %v", s.round, op.desc, cmd.String()))
	next := *r
	next.meta = proto.Clone(r.meta).(*metapb.Region)
	switch {
	case cmd.GetChangePeer() != nil && cmd.GetChangePeer().GetChangeType() == eraftpb.ConfChangeType_AddNode:
		p := cmd.GetChangePeer().GetPeer()
		if at, ok := s.left[[2]uint64{id, p.GetStoreId()}]; ok && s.round-at <= simPingPongRounds {
			s.t.Fatalf("round %d: region %d moved back to store %d it left in round %d:\n%s", s.round, id, p.GetStoreId(), at,
				strings.Join(s.history[id], "\n"))
		}
		next.meta.Peers = append(next.meta.Peers, proto.Clone(p).(*metapb.Peer))
		next.meta.RegionEpoch.ConfVer++
	case cmd.GetChangePeer() != nil:
		store := cmd.GetChangePeer().GetPeer().GetStoreId()
		next.meta.Peers = slices.DeleteFunc(next.meta.Peers, func(p *metapb.Peer) bool { return p.GetStoreId() == store })
		next.meta.RegionEpoch.ConfVer++
		next.downPeers = slices.DeleteFunc(slices.Clone(r.downPeers), func(d *pdpb.PeerStats) bool {
			return d.GetPeer().GetStoreId() == store
		})
		s.left[[2]uint64{id, store}] = s.round
	}
	leader := r.leader.GetStoreId()
	if tl := cmd.GetTransferLeader(); tl != nil {
		leader = tl.GetPeer().GetStoreId()
	}
	next.leader = next.storePeer(leader)
	s.regions[id] = &next
}

// startOp starts plan on its region and carries out its first step.
func (s *simCluster) startOp(plan *opPlan, r *regionInfo) bool {
	v := s.view()
	timeout := s.cfg.LeaderOperatorWaitTime
	if plan.kind&opRegion != 0 {
		timeout = s.cfg.RegionOperatorWaitTime
	}
	op := newOperator(plan.desc, plan.kind, r, v.now, timeout, plan.steps...)
	op.priority = plan.priority
	if err := s.ops.add(op, r); err != nil {
		return false
	}
	s.issued[plan.desc]++
	if cmd, _ := s.ops.dispatch(r, v); cmd != nil {
		s.carryOut(r.meta.GetId(), cmd)
	}
	return true
}

func (s *simCluster) runChecker() int {
	started := 0
	sum := s.ops.summary(s.now)
	v := s.view()
	for _, id := range s.regionIDs() {
		if sum.regions[id] {
			continue
		}
		r := s.regions[id]
		env := &checkEnv{view: v, allocPeerID: func() (uint64, error) { return s.allocID(), nil },
			loadCounts: s.peerCounts, moves: s.moves}
		plan, err := s.checker.check(r, env)
		if err != nil {
			s.t.Fatal(err)
		}
		if plan != nil && s.startOp(plan, r) {
			started++
		}
	}
	return started
}

func (s *simCluster) peerCounts() map[uint64]int {
	counts := make(map[uint64]int)
	for _, r := range s.regions {
		for _, p := range r.meta.GetPeers() {
			counts[p.GetStoreId()]++
		}
	}
	for store, d := range s.ops.influence(s.now) {
		counts[store] += d.peers
	}
	return counts
}

func (s *simCluster) env() *schedEnv {
	return newSchedEnv(schedInput{
		view: s.view(), regions: slices.Collect(maps.Values(s.regions)),
		running: s.ops.summary(s.now), deltas: s.ops.influence(s.now),
		cfg: s.cfg, maxReplicas: s.checker.maxReplicas, rng: s.rng, limiter: s.limiter, moves: s.moves,
		allocPeerID: func() (uint64, error) { return s.allocID(), nil },
	})
}

func (s *simCluster) runSchedulers() int {
	env := s.env()
	started := 0
	for _, sched := range allSchedulers {
		plans, err := sched.schedule(env)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, p := range plans {
			if s.startOp(p, s.regions[p.regionID]) {
				started++
			}
		}
	}
	return started
}

// converge runs at least minRounds rounds and until no operator runs and
// none starts for simQuietRounds rounds, and returns the rounds it took
// (not counting the quiet ones) and the operators started.
func (s *simCluster) converge(phase string, minRounds int) (rounds, issued int) {
	s.t.Helper()
	before := s.totalIssued()
	first, quiet, last := s.round, 0, s.round
	for quiet < simQuietRounds || s.round-first < minRounds {
		if s.round-first > simMaxRounds {
			s.t.Fatalf("%s: not converged after %d rounds; %s", phase, simMaxRounds, s.spread())
		}
		started := s.step()
		if started > 0 || len(s.ops.summary(s.now).regions) > 0 {
			quiet, last = 0, s.round
			continue
		}
		quiet++
	}
	return last - first, s.totalIssued() - before
}

func (s *simCluster) totalIssued() int {
	n := 0
	for _, v := range s.issued {
		n += v
	}
	return n
}

// spreads returns the max − min region score and leader count over the
// live stores, and the region score unit tolerance allows.
func (s *simCluster) spreads() (regions, leaders int64, tolerance float64) {
	env := s.env()
	var hi, lo, lhi, llo int64 = 0, 1 << 62, 0, 1 << 62
	for id := range s.stores {
		if s.lost[id] {
			continue
		}
		hi, lo = max(hi, env.score(id)), min(lo, env.score(id))
		l := int64(env.load(id).leaders)
		lhi, llo = max(lhi, l), min(llo, l)
	}
	return hi - lo, lhi - llo, 2 * env.tolerantRatio()
}

func (s *simCluster) spread() string {
	r, l, tol := s.spreads()
	return fmt.Sprintf("region score spread %d (tolerance %.2f units), leader spread %d", r, tol, l)
}

// checkReplicas asserts every region has three peers, none on a lost store.
func (s *simCluster) checkReplicas(phase string) {
	s.t.Helper()
	for id, r := range s.regions {
		if len(r.meta.GetPeers()) != 3 {
			st, _ := s.ops.status(id, s.now)
			s.t.Fatalf("%s: region %d has %d peers (last operator %s %v):\n%s", phase, id, len(r.meta.GetPeers()),
				st.text, st.status, strings.Join(s.history[id], "\n"))
		}
		for _, p := range r.meta.GetPeers() {
			if s.lost[p.GetStoreId()] {
				s.t.Fatalf("%s: region %d keeps a peer on lost store %d", phase, id, p.GetStoreId())
			}
		}
	}
}

func TestSchedulingSimulation(t *testing.T) {
	seed := testutil.Rand(t).Uint64()
	t.Logf("simulation seed %d (replay with TINYKV_SEED)", seed)
	for _, sized := range []bool{false, true} {
		name := map[bool]string{false: "count", true: "size"}[sized]
		t.Run(name, func(t *testing.T) {
			s := newSimCluster(t, rand.New(rand.NewPCG(seed, 7)), sized)
			unit := int64(1)
			if sized {
				unit = 96 // the largest region size
			}
			downRounds := int(s.cfg.MaxStoreDownTime/simRound) + 1
			phases := []struct {
				name      string
				change    func()
				minRounds int
			}{
				{"initial skew", func() {}, 0},
				{"store joins", func() { s.addStore() }, 0},
				{"store lost", func() { s.lost[4] = true }, downRounds},
			}
			for _, ph := range phases {
				ph.change()
				r0, l0, _ := s.spreads()
				rounds, issued := s.converge(ph.name, ph.minRounds)
				s.checkReplicas(ph.name)
				rs, ls, tol := s.spreads()
				t.Logf("%-5s %-12s: %4d rounds (%5s), %4d operators %v; region spread %d → %d (tolerance %.2f units), leader spread %d → %d",
					name, ph.name, rounds, time.Duration(rounds)*simRound, issued, s.issuedSummary(), r0, rs, tol, l0, ls)
				s.issued = make(map[string]int)
				if float64(rs) > tol*float64(unit) {
					t.Errorf("%s: region spread %d over the tolerance %.2f × %d", ph.name, rs, tol, unit)
				}
				if ls > 4*leaderTolerantRatio {
					t.Errorf("%s: leader spread %d", ph.name, ls)
				}
			}
		})
	}
}

func (s *simCluster) issuedSummary() string {
	keys := slices.SortedFunc(maps.Keys(s.issued), cmp.Compare[string])
	out := ""
	for _, k := range keys {
		out += fmt.Sprintf(" %s=%d", k, s.issued[k])
	}
	return "[" + out + " ]"
}
