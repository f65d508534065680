package pdsvc

const (
	balanceLeaderName = "balance-leader-scheduler"
	balanceLeaderDesc = "balance-leader"
	// balanceLeaderBatch is how many transfers one round plans at most,
	// PD's balance-leader batch.
	balanceLeaderBatch = 4
)

// balanceLeaderScheduler evens out the stores' leader counts, as PD's
// balance-leader does with the count policy. It alternates two moves:
//
//   - out: from the store with the most leaders (not a tombstone, not down),
//     a random region it leads moves its leader to the follower store with
//     the fewest leaders;
//   - in: to the store with the fewest leaders (Serving, connected), a
//     random region it follows moves its leader there from the leader's
//     store.
//
// Only regions without an operator, pending or down peers qualify, and the
// new leader's store must be Serving and connected. A move needs the source
// to lead more than 2 × tolerance more regions than the target (see
// schedEnv.worthMovingLeader), so a transfer never makes the target the
// new maximum. A store that yields no move after balanceRetryLimit regions
// drops out of its side for the round; a round plans at most
// balanceLeaderBatch transfers and never more than leader-schedule-limit
// leader operators run.
type balanceLeaderScheduler struct{}

func (balanceLeaderScheduler) name() string { return balanceLeaderName }

func (s balanceLeaderScheduler) schedule(env *schedEnv) ([]*opPlan, error) {
	var plans []*opPlan
	outDone, inDone := make(map[uint64]bool), make(map[uint64]bool)
	leaders := func(id uint64) int64 { return int64(env.load(id).leaders) }
	for len(plans) < balanceLeaderBatch && env.kinds[opLeader] < env.cfg.LeaderScheduleLimit {
		src := firstNotIn(env.storesBy(env.leaderSourceOK, leaders, true), outDone)
		dst := firstNotIn(env.storesBy(env.targetOK, leaders, false), inDone)
		if src == 0 && dst == 0 {
			break
		}
		if src != 0 {
			plans = s.try(env, plans, outDone, src, s.transferOut)
		}
		if dst != 0 && len(plans) < balanceLeaderBatch && env.kinds[opLeader] < env.cfg.LeaderScheduleLimit {
			plans = s.try(env, plans, inDone, dst, s.transferIn)
		}
	}
	return plans, nil
}

// try runs move for store and appends its plan, or marks store done.
func (balanceLeaderScheduler) try(env *schedEnv, plans []*opPlan, done map[uint64]bool, store uint64,
	move func(*schedEnv, uint64) *opPlan) []*opPlan {
	plan := move(env, store)
	if plan == nil {
		done[store] = true
		return plans
	}
	return append(plans, plan)
}

func firstNotIn(ids []uint64, done map[uint64]bool) uint64 {
	for _, id := range ids {
		if !done[id] {
			return id
		}
	}
	return 0
}

// leaderSourceOK reports whether leaders may be moved off store: it is not
// a tombstone and not down.
func (env *schedEnv) leaderSourceOK(store uint64) bool {
	s := env.view.stores[store]
	return s != nil && !s.isRemoved() && !env.view.down(s)
}

// leaderMovable reports whether balance-leader may move r's leader.
func (env *schedEnv) leaderMovable(r *regionInfo) bool {
	return !env.busy[r.meta.GetId()] && len(r.pendingPeers) == 0 && len(r.downPeers) == 0 && env.leaderConnected(r)
}

// transferOut plans moving a leader off src.
func (s balanceLeaderScheduler) transferOut(env *schedEnv, src uint64) *opPlan {
	tried := make(map[uint64]bool)
	for range balanceRetryLimit {
		r := env.pick(env.leaders[src], func(r *regionInfo) bool { return !tried[r.meta.GetId()] && env.leaderMovable(r) })
		if r == nil {
			return nil
		}
		tried[r.meta.GetId()] = true
		ok := func(id uint64) bool { return id != src && r.storePeer(id) != nil && env.targetOK(id) }
		targets := env.storesBy(ok, func(id uint64) int64 { return int64(env.load(id).leaders) }, false)
		if len(targets) > 0 && env.worthMovingLeader(src, targets[0]) {
			return s.commit(env, r, src, targets[0])
		}
	}
	return nil
}

// transferIn plans moving a leader onto dst.
func (s balanceLeaderScheduler) transferIn(env *schedEnv, dst uint64) *opPlan {
	tried := make(map[uint64]bool)
	for range balanceRetryLimit {
		r := env.pick(env.followers[dst], func(r *regionInfo) bool { return !tried[r.meta.GetId()] && env.leaderMovable(r) })
		if r == nil {
			return nil
		}
		tried[r.meta.GetId()] = true
		src := r.leader.GetStoreId()
		if env.leaderSourceOK(src) && env.worthMovingLeader(src, dst) {
			return s.commit(env, r, src, dst)
		}
	}
	return nil
}

func (balanceLeaderScheduler) commit(env *schedEnv, r *regionInfo, src, dst uint64) *opPlan {
	plan := newPlan(balanceLeaderDesc, 0, transferLeader{fromStore: src, toStore: dst})
	plan.regionID = r.meta.GetId()
	env.commit(plan, r)
	return plan
}
