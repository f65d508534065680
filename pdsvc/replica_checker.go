package pdsvc

import "fmt"

// replicaChecker keeps every region at maxReplicas peers on healthy stores,
// as PD's replica checker does without placement rules. In order, it
//
//   - replaces a peer the leader reports down, once its store has sent no
//     heartbeat for max-store-down-time (PD's rule: the store's silence
//     decides, not the peer's down_seconds);
//   - replaces a peer on an Offline or Tombstone store;
//   - adds a peer when the region has fewer than maxReplicas;
//   - removes a peer when it has more.
//
// A replacement adds the new peer first and then removes the old one,
// moving the leader away first if it is on the old peer's store; with more
// peers than maxReplicas it only removes.
type replicaChecker struct {
	maxReplicas int
}

// opPlan is an operator the checker or the HTTP API wants, before the
// controller runs it.
type opPlan struct {
	desc  string
	kind  opKind
	steps []opStep
	// priority is the operator's priority; newPlan derives it from kind.
	priority int
	// regionID is the region the plan is for, when a scheduler made it
	// from a snapshot and the coordinator must look the region up again.
	regionID uint64
	// group is the scatter group of a scatter plan.
	group string
}

// newPlan returns a plan whose kind is origin plus what the steps change.
func newPlan(desc string, origin opKind, steps ...opStep) *opPlan {
	kind := origin
	for _, s := range steps {
		switch s.(type) {
		case addPeer, removePeer:
			kind |= opRegion
		case transferLeader:
			kind |= opLeader
		case splitRegion:
			kind |= opSplit
		}
	}
	return &opPlan{desc: desc, kind: kind, steps: steps, priority: kind.priority()}
}

// checkEnv is what one check sees: the stores, and their peer counts
// (including what running operators will change), loaded on first use.
type checkEnv struct {
	view       storeView
	loadCounts func() map[uint64]int
	counts     map[uint64]int
	// allocPeerID returns a new peer id; it is called only for a plan that
	// adds a peer.
	allocPeerID func() (uint64, error)
	// moves is balance-region's memory of the stores regions left; nil for
	// none.
	moves *moveHistory
}

func (e *checkEnv) peerCount(store uint64) int {
	if e.counts == nil {
		e.counts = e.loadCounts()
	}
	return e.counts[store]
}

// check returns the plan region r needs, or nil if it needs none.
func (c replicaChecker) check(r *regionInfo, env *checkEnv) (*opPlan, error) {
	if store := downPeerStore(r, env.view); store != 0 {
		return c.fixPeer(r, store, "down", env)
	}
	if store := offlinePeerStore(r, env.view); store != 0 {
		return c.fixPeer(r, store, "offline", env)
	}
	switch n := len(r.meta.GetPeers()); {
	case n < c.maxReplicas:
		return c.makeUp(r, env)
	case n > c.maxReplicas:
		return c.removeExtra(r, env), nil
	}
	return nil, nil
}

// downPeerStore returns the store of the first down peer whose store has
// been down for max-store-down-time, or 0. A store PD does not know stops
// the search, as in PD (it may be a PD being recovered).
func downPeerStore(r *regionInfo, v storeView) uint64 {
	for _, d := range r.downPeers {
		s, ok := v.stores[d.GetPeer().GetStoreId()]
		if !ok {
			return 0
		}
		if v.down(s) {
			return s.meta.GetId()
		}
	}
	return 0
}

// offlinePeerStore returns the store of the first peer on an Offline or
// Tombstone store, or 0; an unknown store stops the search.
func offlinePeerStore(r *regionInfo, v storeView) uint64 {
	for _, p := range r.meta.GetPeers() {
		s, ok := v.stores[p.GetStoreId()]
		if !ok {
			return 0
		}
		if !s.isUp() {
			return s.meta.GetId()
		}
	}
	return 0
}

// fixPeer replaces the peer on store, or only removes it when the region
// has more peers than it needs.
func (c replicaChecker) fixPeer(r *regionInfo, store uint64, status string, env *checkEnv) (*opPlan, error) {
	if len(r.meta.GetPeers()) > c.maxReplicas {
		steps := removeSteps(r, store, 0, env.view)
		if steps == nil {
			return nil, nil
		}
		return newPlan("remove-extra-"+status+"-replica", opReplica, steps...), nil
	}
	add, err := c.addStep(r, env)
	if add == nil || err != nil {
		return nil, err
	}
	steps := removeSteps(r, store, add.toStore, env.view)
	if steps == nil {
		return nil, nil
	}
	return newPlan("replace-"+status+"-replica", opReplica, append([]opStep{*add}, steps...)...), nil
}

func (c replicaChecker) makeUp(r *regionInfo, env *checkEnv) (*opPlan, error) {
	add, err := c.addStep(r, env)
	if add == nil || err != nil {
		return nil, err
	}
	return newPlan("make-up-replica", opReplica, *add), nil
}

// addStep returns a step adding a peer to the best target store, or nil if
// no store can take one.
func (c replicaChecker) addStep(r *regionInfo, env *checkEnv) (*addPeer, error) {
	target := selectTarget(r, env)
	if target == 0 {
		return nil, nil
	}
	id, err := env.allocPeerID()
	if err != nil {
		return nil, fmt.Errorf("replica checker: region %d: allocate peer id: %w", r.meta.GetId(), err)
	}
	return &addPeer{toStore: target, peerID: id}, nil
}

func (c replicaChecker) removeExtra(r *regionInfo, env *checkEnv) *opPlan {
	store := selectRemoval(r, env)
	if store == 0 {
		return nil
	}
	return newPlan("remove-extra-replica", opReplica, removePeer{fromStore: store, peerID: r.storePeer(store).GetId()})
}

// selectTarget returns the store for a new peer of r: Serving, heard from
// recently, holding no peer of r, with the fewest peers (PD prefers the
// lowest region score), ties to the lowest id; 0 if there is none. A store
// balance-region has just moved r off is taken only if no other store can
// be, so that a repair does not undo a balance move.
func selectTarget(r *regionInfo, env *checkEnv) uint64 {
	var best, fallback uint64
	for id, s := range env.view.stores {
		if !s.canTakePeer(env.view.now) || r.storePeer(id) != nil {
			continue
		}
		if env.moves.recentlyLeft(r.meta.GetId(), id, env.view.now) {
			if fallback == 0 || better(env.peerCount(id), env.peerCount(fallback), id, fallback) {
				fallback = id
			}
			continue
		}
		if best == 0 || better(env.peerCount(id), env.peerCount(best), id, best) {
			best = id
		}
	}
	if best == 0 {
		return fallback
	}
	return best
}

// better reports whether a store with count peers and this id beats the
// current best: fewer peers, then the lower id.
func better(count, bestCount int, id, bestID uint64) bool {
	return count < bestCount || (count == bestCount && id < bestID)
}

// selectRemoval returns the store of the follower to remove from r: one
// that is unhealthy (down, or on a store that is not Serving and connected)
// before a healthy one, then the one on the store with the most peers, ties
// to the lowest id; 0 if r has no follower.
func selectRemoval(r *regionInfo, env *checkEnv) uint64 {
	var best uint64
	bestRank := -1
	for _, p := range r.meta.GetPeers() {
		id := p.GetStoreId()
		if id == r.leader.GetStoreId() {
			continue
		}
		rank := env.peerCount(id)
		if !healthyPeer(r, p.GetId(), env.view.stores[id], env.view) {
			rank += 1 << 30
		}
		if rank > bestRank || (rank == bestRank && id < best) {
			best, bestRank = id, rank
		}
	}
	return best
}

// healthyPeer reports whether peer id of r is on a Serving, connected store
// and not reported down.
func healthyPeer(r *regionInfo, id uint64, s *storeInfo, v storeView) bool {
	return s != nil && s.canTakePeer(v.now) && !r.isDown(id)
}

// removeSteps returns the steps that remove r's peer on store: the removal
// alone, or first a leader transfer if the leader is there. The new leader
// is a healthy, caught-up follower (lowest store id), else the store a peer
// is being added to (added, 0 for none); nil if there is no candidate.
func removeSteps(r *regionInfo, store, added uint64, v storeView) []opStep {
	remove := removePeer{fromStore: store, peerID: r.storePeer(store).GetId()}
	if r.leader.GetStoreId() != store {
		return []opStep{remove}
	}
	to := leaderCandidate(r, store, v)
	if to == 0 {
		to = added
	}
	if to == 0 {
		return nil
	}
	return []opStep{transferLeader{fromStore: store, toStore: to}, remove}
}

// leaderCandidate returns the lowest store id holding a healthy follower of
// r that is not pending, other than exclude; 0 if none.
func leaderCandidate(r *regionInfo, exclude uint64, v storeView) uint64 {
	var best uint64
	for _, p := range r.meta.GetPeers() {
		id := p.GetStoreId()
		if id == exclude || r.isPending(p.GetId()) || !healthyPeer(r, p.GetId(), v.stores[id], v) {
			continue
		}
		if best == 0 || id < best {
			best = id
		}
	}
	return best
}
