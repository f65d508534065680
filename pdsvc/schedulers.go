package pdsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// scheduler plans operators from one round's view of the cluster. It
// commits every plan it returns to env (schedEnv.commit), so that later
// plans, its own and the next scheduler's, see their effect.
type scheduler interface {
	name() string
	schedule(env *schedEnv) ([]*opPlan, error)
}

// allSchedulers are the schedulers PD runs by default, in the order a
// round runs them.
var allSchedulers = []scheduler{balanceLeaderScheduler{}, balanceRegionScheduler{}}

// The scheduling interval is PD's: 10 ms after a round that started an
// operator, growing by 1.3 after each round that did not, up to 5 s.
const (
	minScheduleInterval    = 10 * time.Millisecond
	maxScheduleInterval    = 5 * time.Second
	scheduleIntervalGrowth = 1.3
)

var (
	// errSchedulerExisted: POST /schedulers for a running scheduler.
	errSchedulerExisted = errors.New("scheduler existed")
	// errSchedulerNotFound: DELETE /schedulers/{name} for one not running.
	errSchedulerNotFound = errors.New("scheduler not found")
	// errUnknownScheduler: a name we do not implement.
	errUnknownScheduler = errors.New("unknown scheduler")
)

// schedulerSet says which schedulers run. All run unless removed through
// the HTTP API; removals are persisted, so a removed scheduler stays
// removed across restarts, as in PD. Safe for concurrent use.
type schedulerSet struct {
	storage *storage

	mu sync.Mutex
	// disabled holds the names of the removed schedulers.
	disabled map[string]bool
}

func newSchedulerSet(st *storage) *schedulerSet {
	return &schedulerSet{storage: st, disabled: make(map[string]bool)}
}

// load reads the removed schedulers from storage.
func (ss *schedulerSet) load(ctx context.Context) error {
	raw, err := ss.storage.load(ctx, ss.storage.disabledSchedulersKey())
	if err != nil || raw == nil {
		return err
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return fmt.Errorf("schedulers: decode removed schedulers: %w", err)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, n := range names {
		ss.disabled[n] = true
	}
	return nil
}

// enabled returns the running schedulers in round order.
func (ss *schedulerSet) enabled() []scheduler {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var result []scheduler
	for _, s := range allSchedulers {
		if !ss.disabled[s.name()] {
			result = append(result, s)
		}
	}
	return result
}

// names lists the running schedulers' names, or with disabled the removed
// ones', sorted.
func (ss *schedulerSet) names(disabled bool) []string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	result := []string{}
	for _, s := range allSchedulers {
		if ss.disabled[s.name()] == disabled {
			result = append(result, s.name())
		}
	}
	slices.Sort(result)
	return result
}

// set starts (on) or removes (!on) the scheduler name and persists the
// change.
func (ss *schedulerSet) set(ctx context.Context, name string, on bool) error {
	if !slices.ContainsFunc(allSchedulers, func(s scheduler) bool { return s.name() == name }) {
		if on {
			return fmt.Errorf("%q: %w", name, errUnknownScheduler)
		}
		return fmt.Errorf("%q: %w", name, errSchedulerNotFound)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch {
	case on && !ss.disabled[name]:
		return fmt.Errorf("%q: %w", name, errSchedulerExisted)
	case !on && ss.disabled[name]:
		return fmt.Errorf("%q: %w", name, errSchedulerNotFound)
	}
	next := maps.Clone(ss.disabled)
	if on {
		delete(next, name)
	} else {
		next[name] = true
	}
	if err := ss.save(ctx, next); err != nil {
		return err
	}
	ss.disabled = next
	return nil
}

// save persists the removed schedulers' names.
func (ss *schedulerSet) save(ctx context.Context, disabled map[string]bool) error {
	raw, err := json.Marshal(slices.Sorted(maps.Keys(disabled)))
	if err != nil {
		return fmt.Errorf("schedulers: encode: %w", err)
	}
	if err := ss.storage.save(ctx, ss.storage.disabledSchedulersKey(), raw); err != nil {
		return fmt.Errorf("schedulers: %w", err)
	}
	return nil
}

// run runs scheduling rounds until ctx ends: one per channel from rounds
// if it is set, else on PD's adaptive interval.
func (co *coordinator) run(ctx context.Context, rounds <-chan chan struct{}) {
	if rounds != nil {
		for {
			select {
			case done := <-rounds:
				co.scheduleRound(ctx)
				close(done)
			case <-ctx.Done():
				return
			}
		}
	}
	interval := minScheduleInterval
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			interval = nextScheduleInterval(interval, co.scheduleRound(ctx) > 0)
			timer.Reset(interval)
		case <-ctx.Done():
			return
		}
	}
}

// nextScheduleInterval returns the wait before the next round.
func nextScheduleInterval(cur time.Duration, started bool) time.Duration {
	if started {
		return minScheduleInterval
	}
	return min(time.Duration(float64(cur)*scheduleIntervalGrowth), maxScheduleInterval)
}

// scheduleRound runs every enabled scheduler once on a fresh view of the
// cluster, starts the operators they plan and sends their first steps. It
// returns how many operators it started.
func (co *coordinator) scheduleRound(ctx context.Context) int {
	if !co.cluster.isBootstrapped() {
		return 0
	}
	co.roundMu.Lock()
	defer co.roundMu.Unlock()
	env := co.schedEnv(ctx)
	started := 0
	for _, s := range co.schedulers.enabled() {
		plans, err := s.schedule(env)
		if err != nil {
			co.log.Warn("scheduler failed", "scheduler", s.name(), "err", err)
		}
		for _, plan := range plans {
			if co.startScheduled(plan, env) {
				started++
			}
		}
	}
	return started
}

// schedEnv builds a round's view. Only scheduleRound uses co.rng, under
// roundMu.
func (co *coordinator) schedEnv(ctx context.Context) *schedEnv {
	v := co.view()
	return newSchedEnv(schedInput{
		view:        v,
		regions:     co.cluster.allRegions(),
		running:     co.ops.summary(v.now),
		deltas:      co.ops.influence(v.now),
		cfg:         co.cfg,
		maxReplicas: co.checker.maxReplicas,
		rng:         co.rng,
		limiter:     co.limiter,
		moves:       co.moves,
		allocPeerID: func() (uint64, error) { return co.ids.alloc(ctx, 1) },
	})
}

// startScheduled starts plan, made from env's copy of its region, if the
// region has not changed since, and sends its first step.
func (co *coordinator) startScheduled(plan *opPlan, env *schedEnv) bool {
	snap, cur := env.byID[plan.regionID], co.cluster.regionByID(plan.regionID)
	if snap == nil || cur == nil {
		return false
	}
	cmd, err := co.startPlanOn(plan, snap, cur, co.view())
	if err != nil {
		co.log.Debug("scheduled operator not started", "region-id", plan.regionID, "operator", plan.desc, "err", err)
		return false
	}
	co.send(cur, cmd)
	return true
}
