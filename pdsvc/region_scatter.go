package pdsvc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
)

const (
	// scatterOperatorDesc is the scatter operators' description, which
	// client-go's WaitScatterRegionFinish looks for.
	scatterOperatorDesc = "scatter-region"
	// scatterGroupTTL is how long a group's pick counts outlive its last
	// scatter, PD's.
	scatterGroupTTL = 3 * time.Minute
	// maxRetryLimit caps the retries ScatterRegion and SplitRegions make,
	// PD's scatter cap.
	maxRetryLimit = 30
	// retryBackoff is the first wait between attempts; it doubles up to
	// maxRetryBackoff, as in PD.
	retryBackoff    = 100 * time.Millisecond
	maxRetryBackoff = time.Minute
)

var (
	// errScatterRegionNotFound: ScatterRegion for one region PD does not
	// know, which PD answers with an error.
	errScatterRegionNotFound = errors.New("region not found")
	// errEmptyRegion: ScatterRegion without regions.
	errEmptyRegion = errors.New("empty region")
)

// regionScatterer spreads regions' peers and leaders over the stores, as
// PD's region scatterer does: for each group (a table, say) it counts how
// often it has picked each store for a peer and for a leader, and places
// each region's peers on the least picked stores, so that a batch of
// regions scattered together ends up spread evenly. Safe for concurrent use.
type regionScatterer struct {
	mu sync.Mutex
	// groups holds each group's counts; a group unused for scatterGroupTTL
	// is dropped.
	groups map[string]*scatterGroup
}

type scatterGroup struct {
	peers, leaders map[uint64]uint64 // store id → times picked
	used           time.Time
}

func newRegionScatterer() *regionScatterer {
	return &regionScatterer{groups: make(map[string]*scatterGroup)}
}

// scatterInput is what one region's scatter sees.
type scatterInput struct {
	view        storeView
	maxReplicas int
	allocPeerID func() (uint64, error)
}

// plan returns the operator that moves r to the stores picked for it in
// group, or nil if r already sits there; either way the picks are counted.
func (s *regionScatterer) plan(r *regionInfo, group string, in scatterInput) (*opPlan, error) {
	id := r.meta.GetId()
	switch {
	case r.leader == nil:
		return nil, fmt.Errorf("region %d has no leader", id)
	case len(r.meta.GetPeers()) != in.maxReplicas || len(r.downPeers) > 0:
		return nil, fmt.Errorf("region %d is not fully replicated", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupLocked(group, in.view.now)
	targets, candidates := g.pickPeers(r, in.view)
	leader := g.pickLeader(candidates)
	plan, err := scatterPlan(r, targets, leader, in)
	if err != nil {
		return nil, err
	}
	g.count(targets, leader)
	return plan, nil
}

// groupLocked returns group's counts, dropping the groups past their TTL.
func (s *regionScatterer) groupLocked(group string, now time.Time) *scatterGroup {
	for name, g := range s.groups {
		if now.Sub(g.used) > scatterGroupTTL {
			delete(s.groups, name)
		}
	}
	g := s.groups[group]
	if g == nil {
		g = &scatterGroup{peers: make(map[uint64]uint64), leaders: make(map[uint64]uint64)}
		s.groups[group] = g
	}
	g.used = now
	return g
}

// pickPeers chooses a store for each of r's peers, in store id order: a
// peer whose store another peer already chose stays, else it takes the
// least picked target store not chosen yet, or keeps its own store if that
// is picked no more often. When it takes another peer's store, that peer
// stays and this one chooses again. It returns the chosen stores and the
// ones that may lead (those of voters), in choice order.
func (g *scatterGroup) pickPeers(r *regionInfo, v storeView) (targets, leaders []uint64) {
	chosen := make(map[uint64]bool)
	peers := slices.SortedFunc(slices.Values(r.meta.GetPeers()), func(a, b *metapb.Peer) int {
		return cmp.Compare(a.GetStoreId(), b.GetStoreId())
	})
	for _, p := range peers {
		origin := p.GetStoreId()
		voter := p.GetRole() == metapb.PeerRole_Voter
		if chosen[origin] {
			if voter {
				leaders = append(leaders, origin)
			}
			continue
		}
		for {
			pick := g.pickStore(origin, chosen, v)
			chosen[pick] = true
			targets = append(targets, pick)
			if pick == origin || r.storePeer(pick) == nil {
				chosen[origin] = true
				if voter {
					leaders = append(leaders, pick)
				}
				break
			}
		}
	}
	return targets, leaders
}

// pickStore returns the store for the peer on origin: among the stores
// that may take a peer and are not chosen, the least picked one, unless
// every store is picked equally often or origin is picked no more often
// than it; ties go to the lower store id.
func (g *scatterGroup) pickStore(origin uint64, chosen map[uint64]bool, v storeView) uint64 {
	var most, least uint64
	first := true
	for id, s := range v.stores {
		if !s.canTakePeer(v.now) {
			continue
		}
		n := g.peers[id]
		if first {
			most, least, first = n, n, false
		}
		most, least = max(most, n), min(least, n)
	}
	var best uint64
	for id, s := range v.stores {
		n := g.peers[id]
		if chosen[id] || !s.canTakePeer(v.now) || (n == most && most != least) {
			continue
		}
		if best == 0 || n < g.peers[best] || (n == g.peers[best] && id < best) {
			best = id
		}
	}
	if best == 0 || g.peers[origin] <= g.peers[best] {
		return origin
	}
	return best
}

// pickLeader returns the candidate picked least often as a leader, the
// first on ties; 0 if there is none.
func (g *scatterGroup) pickLeader(candidates []uint64) uint64 {
	var best uint64
	for _, id := range candidates {
		if best == 0 || g.leaders[id] < g.leaders[best] {
			best = id
		}
	}
	return best
}

func (g *scatterGroup) count(targets []uint64, leader uint64) {
	for _, id := range targets {
		g.peers[id]++
	}
	g.leaders[leader]++
}

// scatterPlan builds the operator that moves r onto targets with its leader
// on leader, or nil if r is there already.
func scatterPlan(r *regionInfo, targets []uint64, leader uint64, in scatterInput) (*opPlan, error) {
	if leader == 0 {
		return nil, fmt.Errorf("region %d: no store to lead it", r.meta.GetId())
	}
	adds, removes := peerChanges(r, targets)
	if len(adds) == 0 && len(removes) == 0 && r.leader.GetStoreId() == leader {
		return nil, nil
	}
	steps, err := scatterSteps(r, targets, leader, adds, removes, in.allocPeerID)
	if err != nil {
		return nil, err
	}
	plan := newPlan(scatterOperatorDesc, 0, steps...)
	plan.priority = priorityHigh
	plan.regionID = r.meta.GetId()
	return plan, nil
}

// peerChanges returns the target stores r has no peer on, in targets'
// order, and the stores of r's peers that are not targets, sorted.
func peerChanges(r *regionInfo, targets []uint64) (adds, removes []uint64) {
	for _, t := range targets {
		if r.storePeer(t) == nil {
			adds = append(adds, t)
		}
	}
	for _, p := range r.meta.GetPeers() {
		if !slices.Contains(targets, p.GetStoreId()) {
			removes = append(removes, p.GetStoreId())
		}
	}
	slices.Sort(removes)
	return adds, removes
}

// scatterSteps adds a peer and removes one in turn, so the region never
// holds more than one extra peer. A leader on a peer about to go moves
// first, to leader if that store has a peer by then, else to a target
// that does; a final transfer puts the leader on leader.
func scatterSteps(r *regionInfo, targets []uint64, leader uint64, adds, removes []uint64,
	allocPeerID func() (uint64, error)) ([]opStep, error) {
	present := make(map[uint64]bool)
	for _, p := range r.meta.GetPeers() {
		present[p.GetStoreId()] = true
	}
	cur := r.leader.GetStoreId()
	var steps []opStep
	for i := range max(len(adds), len(removes)) {
		if i < len(adds) {
			id, err := allocPeerID()
			if err != nil {
				return nil, fmt.Errorf("scatter region %d: allocate peer id: %w", r.meta.GetId(), err)
			}
			steps = append(steps, addPeer{toStore: adds[i], peerID: id})
			present[adds[i]] = true
		}
		if i < len(removes) {
			gone := removes[i]
			if cur == gone {
				to := interimLeader(leader, targets, present)
				steps = append(steps, transferLeader{fromStore: cur, toStore: to})
				cur = to
			}
			steps = append(steps, removePeer{fromStore: gone, peerID: r.storePeer(gone).GetId()})
			delete(present, gone)
		}
	}
	if cur != leader {
		steps = append(steps, transferLeader{fromStore: cur, toStore: leader})
	}
	return steps, nil
}

// interimLeader is where a leader goes when its peer must leave: the final
// leader's store if it has a peer, else the first target that does.
func interimLeader(leader uint64, targets []uint64, present map[uint64]bool) uint64 {
	if present[leader] {
		return leader
	}
	for _, t := range targets {
		if present[t] {
			return t
		}
	}
	return leader
}

// scatterRegions scatters the regions ids in group, as PD's ScatterRegions
// does: each attempt scatters the regions not yet done, and the regions
// that failed are tried again, up to retryLimit (at most maxRetryLimit)
// more times with PD's backoff. It returns the finished percentage,
// 100 − 100 × failed / (done + failed); a single unknown region is an
// error, as in PD.
func (co *coordinator) scatterRegions(ctx context.Context, ids []uint64, group string, retryLimit int, skipLimit bool) (uint64, error) {
	if len(ids) == 0 {
		return 0, errEmptyRegion
	}
	if len(ids) == 1 && co.cluster.regionByID(ids[0]) == nil {
		return 0, fmt.Errorf("region %d: %w", ids[0], errScatterRegionNotFound)
	}
	failures := make(map[uint64]error)
	pending := slices.Compact(slices.Sorted(slices.Values(ids)))
	done := 0
	for attempt := 0; ; attempt++ {
		var again []uint64
		for _, id := range pending {
			if err := co.scatterByID(ctx, id, group, skipLimit); err != nil {
				failures[id] = err
				if !errors.Is(err, errScatterRegionNotFound) {
					again = append(again, id)
				}
				continue
			}
			delete(failures, id)
			done++
		}
		pending = again
		if len(pending) == 0 || attempt >= min(retryLimit, maxRetryLimit) || !sleepBackoff(ctx, attempt) {
			break
		}
	}
	for id, err := range failures {
		co.log.Debug("scatter region failed", "region-id", id, "err", err)
	}
	return finishedPercentage(done, len(failures)), nil
}

func finishedPercentage(done, failed int) uint64 {
	if failed == 0 {
		return 100
	}
	return uint64(100 - 100*failed/(done+failed))
}

// sleepBackoff waits before attempt+1, PD's 100 ms × 2^attempt up to a
// minute; false if ctx ended first.
func sleepBackoff(ctx context.Context, attempt int) bool {
	d := maxRetryBackoff
	if attempt < 20 {
		d = min(retryBackoff<<attempt, maxRetryBackoff)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (co *coordinator) scatterByID(ctx context.Context, id uint64, group string, skipLimit bool) error {
	r := co.cluster.regionByID(id)
	if r == nil {
		return fmt.Errorf("failed to find region %d: %w", id, errScatterRegionNotFound)
	}
	return co.scatter(ctx, r, group, skipLimit)
}

// scatter starts the operator that scatters r, PD's copy of it (or, for the
// legacy single-region request, the region the client sent), and sends its
// first step. A running scatter of the same group counts as done; any
// other running operator of High priority or more makes it fail, one of
// lower priority is replaced.
func (co *coordinator) scatter(ctx context.Context, r *regionInfo, group string, skipLimit bool) error {
	v := co.view()
	if op, ok := co.ops.runningOf(r.meta.GetId(), v.now); ok && op.priority >= priorityHigh {
		if op.desc == scatterOperatorDesc && op.group == group {
			return nil
		}
		return fmt.Errorf("the operator of region %d already exists", r.meta.GetId())
	}
	plan, err := co.scatterer.plan(r, group, scatterInput{
		view:        v,
		maxReplicas: co.checker.maxReplicas,
		allocPeerID: func() (uint64, error) { return co.ids.alloc(ctx, 1) },
	})
	if err != nil || plan == nil {
		return err
	}
	if !skipLimit && !co.limiter.allows(plan.steps, v.now) {
		return fmt.Errorf("scatter region %d: store limit reached", r.meta.GetId())
	}
	plan.group = group
	cmd, err := co.startPlan(plan, r, v)
	if err != nil {
		return fmt.Errorf("scatter region %d: %w", r.meta.GetId(), err)
	}
	if !skipLimit {
		co.limiter.spend(plan.steps, v.now)
	}
	co.send(r, cmd)
	return nil
}
