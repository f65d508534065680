package pdsvc

import (
	"cmp"
	"math/rand/v2"
	"slices"

	"github.com/pingcap/kvproto/pkg/metapb"
)

// Tolerance defaults, PD's (pkg/schedule/schedulers/utils.go): with
// tolerant-size-ratio 0 the region ratio is 0.5 % of the largest store's
// region count, at least 1, and the leader tolerance is 5 leaders.
const (
	autoTolerantRatioPerRegion = 0.005
	minTolerantRatio           = 1.0
	leaderTolerantRatio        = 5.0
)

// storeLoad is one store's share of the regions as the schedulers see it:
// what the region tree shows plus what the running operators, and those
// planned earlier in the round, will change.
type storeLoad struct {
	peers, leaders int
	size           int64 // MiB
}

// schedInput is what a scheduling round is built from.
type schedInput struct {
	view        storeView
	regions     []*regionInfo
	running     runningSummary
	deltas      storeDeltas
	cfg         ScheduleConfig
	maxReplicas int
	rng         *rand.Rand
	// limiter is the per-store limit; nil for none.
	limiter *storeLimiter
	// moves is balance-region's memory of the stores regions left; nil
	// for none.
	moves       *moveHistory
	allocPeerID func() (uint64, error)
}

// schedEnv is one scheduling round's view of the cluster, shared by the
// schedulers of the round: each plan a scheduler makes is committed to it
// (commit), so later plans see the stores as they will be.
type schedEnv struct {
	schedInput

	byID map[uint64]*regionInfo
	// The regions each store leads, follows and holds a pending peer of,
	// in region id order.
	leaders, followers, pending map[uint64][]*regionInfo
	loads                       map[uint64]*storeLoad
	// sizeMode: every region reports an approximate size, so scores are
	// sizes in MiB; otherwise they are region counts.
	sizeMode bool
	// totalSize is the regions' summed approximate size in MiB.
	totalSize int64
	// busy holds the regions that have an operator, running or planned.
	busy map[uint64]bool
	// kinds counts the running and planned operators by kind bit.
	kinds map[opKind]int
}

func newSchedEnv(in schedInput) *schedEnv {
	env := &schedEnv{
		schedInput: in,
		byID:       make(map[uint64]*regionInfo, len(in.regions)),
		leaders:    make(map[uint64][]*regionInfo),
		followers:  make(map[uint64][]*regionInfo),
		pending:    make(map[uint64][]*regionInfo),
		loads:      make(map[uint64]*storeLoad),
		sizeMode:   len(in.regions) > 0,
		busy:       make(map[uint64]bool, len(in.running.regions)),
		kinds:      make(map[opKind]int),
	}
	for id := range in.view.stores {
		env.loads[id] = &storeLoad{}
	}
	regions := slices.SortedFunc(slices.Values(in.regions), func(a, b *regionInfo) int {
		return cmp.Compare(a.meta.GetId(), b.meta.GetId())
	})
	for _, r := range regions {
		env.index(r)
	}
	for store, d := range in.deltas {
		env.load(store).add(d)
	}
	for id := range in.running.regions {
		env.busy[id] = true
	}
	for kind, n := range in.running.kinds {
		env.kinds[kind] = n
	}
	return env
}

// index adds r to the per-store lists and loads.
func (env *schedEnv) index(r *regionInfo) {
	env.byID[r.meta.GetId()] = r
	env.sizeMode = env.sizeMode && r.approxSize > 0
	env.totalSize += int64(r.approxSize)
	leader := r.leader.GetStoreId()
	for _, p := range r.meta.GetPeers() {
		store := p.GetStoreId()
		l := env.load(store)
		l.peers++
		l.size += int64(r.approxSize)
		if store == leader {
			l.leaders++
			env.leaders[store] = append(env.leaders[store], r)
		} else {
			env.followers[store] = append(env.followers[store], r)
		}
	}
	for _, p := range r.pendingPeers {
		env.pending[p.GetStoreId()] = append(env.pending[p.GetStoreId()], r)
	}
}

func (env *schedEnv) load(store uint64) *storeLoad {
	l := env.loads[store]
	if l == nil {
		l = &storeLoad{}
		env.loads[store] = l
	}
	return l
}

func (l *storeLoad) add(d storeDelta) {
	l.peers += d.peers
	l.leaders += d.leaders
	l.size += d.size
}

// score is a store's region score: its size in MiB in size mode, else its
// peer count.
func (env *schedEnv) score(store uint64) int64 {
	l := env.load(store)
	if env.sizeMode {
		return l.size
	}
	return int64(l.peers)
}

// regionScore is what moving r changes a store's score by.
func (env *schedEnv) regionScore(r *regionInfo) int64 {
	if env.sizeMode {
		return int64(r.approxSize)
	}
	return 1
}

// toleranceUnit is the score a move of r must beat: the larger of r's
// score and the average region's, as PD takes it, so that small regions
// do not shuttle between stores that are nearly even.
func (env *schedEnv) toleranceUnit(r *regionInfo) int64 {
	if !env.sizeMode {
		return 1
	}
	return max(int64(r.approxSize), env.totalSize/int64(len(env.byID)))
}

// tolerantRatio is tolerant-size-ratio, or with 0 PD's automatic ratio.
func (env *schedEnv) tolerantRatio() float64 {
	if env.cfg.TolerantSizeRatio > 0 {
		return env.cfg.TolerantSizeRatio
	}
	most := 0
	for id := range env.view.stores {
		most = max(most, env.load(id).peers)
	}
	return max(float64(most)*autoTolerantRatioPerRegion, minTolerantRatio)
}

// worthMoving is the balance-region rule: moving r from src to dst needs
//
//	score(src) − score(dst) > 2 × ratio × max(score(r), average region score)
//
// with ratio ≥ 1 (tolerantRatio). Since the right side is at least twice
// r's own score x, src is still ahead of dst after the move: dst does not
// become the new maximum, and every move lowers Σ score² (by 2·x·(d − x)
// with d > 2x), so balancing a cluster that does not change ends. The
// average keeps small regions from moving between nearly even stores. With
// regions of one size (or counts) and ratio 1 this is the course's
// source − target > 2 × region size.
func (env *schedEnv) worthMoving(src, dst uint64, r *regionInfo) bool {
	diff := float64(env.score(src) - env.score(dst))
	return diff > 2*env.tolerantRatio()*float64(env.toleranceUnit(r))
}

// leaderTolerance is tolerant-size-ratio, or with 0 PD's 5 leaders.
func (env *schedEnv) leaderTolerance() float64 {
	if env.cfg.TolerantSizeRatio > 0 {
		return env.cfg.TolerantSizeRatio
	}
	return leaderTolerantRatio
}

// worthMovingLeader is the balance-leader rule, PD's: the source must lead
// more than twice the tolerance more regions than the target.
func (env *schedEnv) worthMovingLeader(src, dst uint64) bool {
	diff := float64(env.load(src).leaders - env.load(dst).leaders)
	return diff > 2*env.leaderTolerance()
}

// sourceOK reports whether peers may be moved off store: it is Serving
// and not down (the course's suitable store).
func (env *schedEnv) sourceOK(store uint64) bool {
	s := env.view.stores[store]
	return s != nil && s.meta.GetNodeState() == metapb.NodeState_Serving && !env.view.down(s)
}

// targetOK reports whether a peer or the leader may be moved to store: it
// is Serving and heard from recently.
func (env *schedEnv) targetOK(store uint64) bool {
	s := env.view.stores[store]
	return s != nil && s.canTakePeer(env.view.now)
}

// leaderConnected reports whether r's leader is on a store that heartbeats,
// so that it can be told to carry an operator out.
func (env *schedEnv) leaderConnected(r *regionInfo) bool {
	s := env.view.stores[r.leader.GetStoreId()]
	return r.leader != nil && s != nil && s.connected(env.view.now)
}

// storesBy returns the stores that pass ok, ordered by key, descending if
// desc; equal keys put the larger store id first, as PD does (the newer
// store is scheduled first).
func (env *schedEnv) storesBy(ok func(uint64) bool, key func(uint64) int64, desc bool) []uint64 {
	var ids []uint64
	for id := range env.view.stores {
		if ok(id) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b uint64) int {
		c := cmp.Compare(key(a), key(b))
		if desc {
			c = -c
		}
		if c == 0 {
			c = cmp.Compare(b, a)
		}
		return c
	})
	return ids
}

// pick returns a region of list that passes ok, or nil: the first that
// does from a random place on, wrapping around.
func (env *schedEnv) pick(list []*regionInfo, ok func(*regionInfo) bool) *regionInfo {
	if len(list) == 0 {
		return nil
	}
	start := env.rng.IntN(len(list))
	for i := range list {
		if r := list[(start+i)%len(list)]; ok(r) {
			return r
		}
	}
	return nil
}

// commit records plan, made for r, as if it had run: the stores' loads
// change by its influence, r is busy, the plan counts against the schedule
// limits and spends its per-store tokens.
func (env *schedEnv) commit(plan *opPlan, r *regionInfo) {
	env.limiter.spend(plan.steps, env.view.now)
	deltas := make(storeDeltas)
	for _, s := range plan.steps {
		s.influence(deltas, r.approxSize)
	}
	for store, d := range deltas {
		env.load(store).add(d)
	}
	env.busy[r.meta.GetId()] = true
	for _, n := range opKindNames {
		if plan.kind&n.kind != 0 {
			env.kinds[n.kind]++
		}
	}
}
