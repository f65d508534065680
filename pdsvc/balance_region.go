package pdsvc

import "fmt"

const (
	balanceRegionName = "balance-region-scheduler"
	balanceRegionDesc = "balance-region"
	// balanceRetryLimit is how many regions a balance scheduler tries on
	// one store before it moves on, PD's retry limit.
	balanceRetryLimit = 10
)

// balanceRegionScheduler evens out the stores' region scores by moving
// peers, as PD's balance-region does and as the course's 3C scheduler
// chooses:
//
//   - Score: a store's region size in MiB (the sum of the approximate sizes
//     of the regions it holds a peer of) when every region reports a size,
//     else its peer count; running operators count as if done.
//   - Source: the Serving stores that are not down, highest score first
//     (ties: larger store id), each with a remove-peer token left.
//   - Region: on the source, a random region with a pending peer there, else
//     one it follows, else one it leads; skipped if it has an operator, has
//     not exactly max-replicas peers, has a down peer, has a pending peer
//     elsewhere (for followers and leaders), or its leader's store is not
//     connected. Up to balanceRetryLimit regions per source.
//   - Target: the Serving, connected store without a peer of the region
//     with the lowest score (ties: larger id) and an add-peer token left,
//     that balance-region has not moved the region off in the last
//     moveCooldown.
//   - Tolerance: see schedEnv.worthMoving.
//   - Operator: add a voter on the target, then remove the source's peer,
//     moving the leader first if it is there (to a caught-up follower, else
//     to the new peer).
//
// One round plans moves until none is worth making or region-schedule-limit
// operators run.
type balanceRegionScheduler struct{}

func (balanceRegionScheduler) name() string { return balanceRegionName }

func (s balanceRegionScheduler) schedule(env *schedEnv) ([]*opPlan, error) {
	var plans []*opPlan
	for env.kinds[opRegion] < env.cfg.RegionScheduleLimit {
		plan, err := s.scheduleOne(env)
		if err != nil || plan == nil {
			return plans, err
		}
		plans = append(plans, plan)
	}
	return plans, nil
}

// scheduleOne plans and commits one move, or returns nil if no store has a
// region worth moving.
func (s balanceRegionScheduler) scheduleOne(env *schedEnv) (*opPlan, error) {
	sources := env.storesBy(env.sourceOK, env.score, true)
	for _, src := range sources {
		if !env.limiter.available(src, limitRemovePeer, env.view.now) {
			continue
		}
		plan, err := s.scheduleFrom(env, src)
		if plan != nil || err != nil {
			return plan, err
		}
	}
	return nil, nil
}

// scheduleFrom tries up to balanceRetryLimit regions of src.
func (s balanceRegionScheduler) scheduleFrom(env *schedEnv, src uint64) (*opPlan, error) {
	tried := make(map[uint64]bool)
	for range balanceRetryLimit {
		r := s.pickRegion(env, src, tried)
		if r == nil {
			return nil, nil
		}
		tried[r.meta.GetId()] = true
		dst := s.target(env, r)
		if dst == 0 || !env.worthMoving(src, dst, r) {
			continue
		}
		plan, err := s.movePlan(env, r, src, dst)
		if err != nil {
			return nil, err
		}
		if plan != nil {
			env.commit(plan, r)
			env.moves.record(r.meta.GetId(), src, env.view.now)
			return plan, nil
		}
	}
	return nil, nil
}

// pickRegion returns a random movable region of src not yet tried: one
// with a pending peer on src first, then one src follows, then one it
// leads.
func (balanceRegionScheduler) pickRegion(env *schedEnv, src uint64, tried map[uint64]bool) *regionInfo {
	base := func(r *regionInfo) bool { return !tried[r.meta.GetId()] && env.movable(r) }
	if r := env.pick(env.pending[src], base); r != nil {
		return r
	}
	settled := func(r *regionInfo) bool { return base(r) && len(r.pendingPeers) == 0 }
	if r := env.pick(env.followers[src], settled); r != nil {
		return r
	}
	return env.pick(env.leaders[src], settled)
}

// movable reports whether balance-region may move a peer of r: no
// operator, exactly max-replicas peers, none down, a connected leader.
func (env *schedEnv) movable(r *regionInfo) bool {
	return !env.busy[r.meta.GetId()] && len(r.meta.GetPeers()) == env.maxReplicas &&
		len(r.downPeers) == 0 && env.leaderConnected(r)
}

// target returns the store to move a peer of r to, or 0.
func (balanceRegionScheduler) target(env *schedEnv, r *regionInfo) uint64 {
	ok := func(id uint64) bool {
		return env.targetOK(id) && r.storePeer(id) == nil && env.limiter.available(id, limitAddPeer, env.view.now) &&
			!env.moves.recentlyLeft(r.meta.GetId(), id, env.view.now)
	}
	if stores := env.storesBy(ok, env.score, false); len(stores) > 0 {
		return stores[0]
	}
	return 0
}

// movePlan builds the move of r's peer from src to dst, or nil if the
// leader cannot leave src.
func (balanceRegionScheduler) movePlan(env *schedEnv, r *regionInfo, src, dst uint64) (*opPlan, error) {
	remove := removeSteps(r, src, dst, env.view)
	if remove == nil {
		return nil, nil
	}
	id, err := env.allocPeerID()
	if err != nil {
		return nil, fmt.Errorf("balance-region: region %d: allocate peer id: %w", r.meta.GetId(), err)
	}
	plan := newPlan(balanceRegionDesc, 0, append([]opStep{addPeer{toStore: dst, peerID: id}}, remove...)...)
	plan.regionID = r.meta.GetId()
	return plan, nil
}
