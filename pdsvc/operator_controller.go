package pdsvc

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pingcap/kvproto/pkg/pdpb"
)

const (
	// stepResendInterval is the least time between two sends of the same
	// step. A step goes out when it becomes current; after that only a
	// heartbeat this much later that still shows it unfinished sends it
	// again, so a store that reports often while it works is not flooded.
	stepResendInterval = 5 * time.Second
	// operatorRecordTTL is how long an ended operator's status stays
	// visible to GetOperator, PD's operatorStatusRemainTime.
	operatorRecordTTL = 10 * time.Minute
	// recordPruneInterval bounds how often the records are scanned for
	// expired entries.
	recordPruneInterval = time.Minute
)

var (
	// errOperatorExists: the region runs an operator the new one may not
	// replace.
	errOperatorExists = errors.New("region already has an operator of the same or higher priority")
	// errOperatorEpoch: the region changed between planning an operator
	// and adding it.
	errOperatorEpoch = errors.New("region epoch changed since the operator was created")
	// errOperatorNotFound: the region has no running operator.
	errOperatorNotFound = errors.New("operator not found")
)

// operatorController holds at most one running operator per region and the
// last ended one, and decides on each leader heartbeat what to send. All
// methods are safe for concurrent use.
type operatorController struct {
	log *slog.Logger

	mu sync.Mutex
	// ops holds each region's running operator. Invariant: every operator
	// here has status opRunning, and none is also in records.
	ops map[uint64]*operator
	// records holds each region's last ended operator until
	// operatorRecordTTL after it ended.
	records  map[uint64]*operator
	prunedAt time.Time
}

func newOperatorController(log *slog.Logger) *operatorController {
	return &operatorController{log: log, ops: make(map[uint64]*operator), records: make(map[uint64]*operator)}
}

// add starts op for region r, PD's current copy of it. It replaces a
// running operator of lower priority, which ends as replaced.
func (c *operatorController) add(op *operator, r *regionInfo) error {
	cur := r.meta.GetRegionEpoch()
	if op.epoch.GetVersion() != cur.GetVersion() || op.epoch.GetConfVer() != cur.GetConfVer() {
		return fmt.Errorf("add operator %s to region %d: %w", op.desc, op.regionID, errOperatorEpoch)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(op.createdAt)
	if old := c.ops[op.regionID]; old != nil {
		if op.priority <= old.priority {
			return fmt.Errorf("add operator %s to region %d running %s: %w", op.desc, op.regionID, old.desc, errOperatorExists)
		}
		old.end(opReplaced, op.createdAt)
		c.retireLocked(old, "replaced by "+op.desc)
	}
	c.ops[op.regionID] = op
	c.log.Info("add operator", "region-id", op.regionID, "operator", op.String())
	return nil
}

// dispatch checks region r's operator against r, its leader's latest
// report, and returns the command for the leader (nil for none) and
// whether the region still has a running operator.
func (c *operatorController) dispatch(r *regionInfo, v storeView) (*pdpb.RegionHeartbeatResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	op := c.ops[r.meta.GetId()]
	if op == nil {
		return nil, false
	}
	step := op.check(r, v.now)
	if step == nil {
		c.retireLocked(op, "ended")
		return nil, false
	}
	if err := op.staleReason(step, r, v); err != nil {
		op.end(opCanceled, v.now)
		c.retireLocked(op, "stale: "+err.Error())
		return nil, false
	}
	return op.nextCommand(step, r, v.now), true
}

// retireLocked moves an ended operator from ops to records.
func (c *operatorController) retireLocked(op *operator, reason string) {
	delete(c.ops, op.regionID)
	c.records[op.regionID] = op
	c.log.Info("operator ended", "region-id", op.regionID, "status", op.status.toPB().String(),
		"reason", reason, "operator", op.String())
}

// sweepLocked ends the operators that ran past their timeout, whether or
// not their region reported since, and drops expired records.
func (c *operatorController) sweepLocked(now time.Time) {
	for _, op := range c.ops {
		if op.timedOut(now) {
			op.end(opTimeout, now)
			c.retireLocked(op, "timeout")
		}
	}
	if now.Sub(c.prunedAt) < recordPruneInterval {
		return
	}
	c.prunedAt = now
	for id, op := range c.records {
		if now.Sub(op.endedAt) > operatorRecordTTL {
			delete(c.records, id)
		}
	}
}

// cancel ends the region's running operator as canceled.
func (c *operatorController) cancel(regionID uint64, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	op := c.ops[regionID]
	if op == nil {
		return fmt.Errorf("cancel operator of region %d: %w", regionID, errOperatorNotFound)
	}
	op.end(opCanceled, now)
	c.retireLocked(op, "canceled by admin")
	return nil
}

// cancelAll ends every running operator as canceled.
func (c *operatorController) cancelAll(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, op := range c.ops {
		op.end(opCanceled, now)
		c.retireLocked(op, "canceled by admin")
	}
}

// opSnapshot is an operator as reported to clients.
type opSnapshot struct {
	regionID uint64
	desc     string
	kind     opKind
	status   opStatus
	text     string
}

func snapshotOf(op *operator) opSnapshot {
	return opSnapshot{regionID: op.regionID, desc: op.desc, kind: op.kind, status: op.status, text: op.String()}
}

// status returns the region's running operator or else its last ended one
// (within operatorRecordTTL); false if there is neither.
func (c *operatorController) status(regionID uint64, now time.Time) (opSnapshot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	if op := c.ops[regionID]; op != nil {
		return snapshotOf(op), true
	}
	if op := c.records[regionID]; op != nil && now.Sub(op.endedAt) <= operatorRecordTTL {
		return snapshotOf(op), true
	}
	return opSnapshot{}, false
}

// running lists the running operators, ordered by region id.
func (c *operatorController) running(now time.Time) []opSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	result := make([]opSnapshot, 0, len(c.ops))
	for _, op := range c.ops {
		result = append(result, snapshotOf(op))
	}
	slices.SortFunc(result, func(a, b opSnapshot) int { return cmpUint64(a.regionID, b.regionID) })
	return result
}

// influence returns, by store, how the running operators will change its
// peers, leaders and size.
func (c *operatorController) influence(now time.Time) storeDeltas {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	deltas := make(storeDeltas)
	for _, op := range c.ops {
		op.influence(deltas)
	}
	return deltas
}

// runningSummary is what the schedulers need to know of the running
// operators: which regions have one, and how many have each kind bit.
type runningSummary struct {
	regions map[uint64]bool
	kinds   map[opKind]int
}

// summary returns the running operators' summary at now.
func (c *operatorController) summary(now time.Time) runningSummary {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	sum := runningSummary{regions: make(map[uint64]bool, len(c.ops)), kinds: make(map[opKind]int)}
	for id, op := range c.ops {
		sum.regions[id] = true
		for _, n := range opKindNames {
			if op.kind&n.kind != 0 {
				sum.kinds[n.kind]++
			}
		}
	}
	return sum
}

// runningInfo describes a region's running operator.
type runningInfo struct {
	desc     string
	priority int
	group    string
}

// runningOf describes the region's running operator; false if it has none.
func (c *operatorController) runningOf(regionID uint64, now time.Time) (runningInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now)
	op := c.ops[regionID]
	if op == nil {
		return runningInfo{}, false
	}
	return runningInfo{desc: op.desc, priority: op.priority, group: op.group}, true
}
