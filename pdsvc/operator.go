package pdsvc

import (
	"fmt"
	"strings"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
)

// opKind is a bit set saying who made an operator and what it changes, as
// PD's OpKind.
type opKind uint32

const (
	// opAdmin: created through the HTTP API.
	opAdmin opKind = 1 << iota
	// opReplica: created by the replica checker.
	opReplica
	// opRegion: adds or removes peers.
	opRegion
	// opLeader: moves the leader.
	opLeader
	// opSplit: splits the region.
	opSplit
)

var opKindNames = []struct {
	kind opKind
	name string
}{{opAdmin, "admin"}, {opReplica, "replica"}, {opRegion, "region"}, {opLeader, "leader"}, {opSplit, "split"}}

// String joins the flag names with commas, in PD's order.
func (k opKind) String() string {
	var names []string
	for _, n := range opKindNames {
		if k&n.kind != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "unknown"
	}
	return strings.Join(names, ",")
}

// Operator priorities, PD's levels: a new operator replaces a running one
// only if its priority is strictly higher.
const (
	// priorityNormal: the balance schedulers and the region splitter.
	priorityNormal = iota
	// priorityHigh: the replica checker and the region scatterer.
	priorityHigh
	// priorityUrgent: operators created through the HTTP API.
	priorityUrgent
)

// priority is the level PD gives an operator of kind unless its creator
// sets one: Urgent for admin operators, High for the replica checker's.
func (k opKind) priority() int {
	switch {
	case k&opAdmin != 0:
		return priorityUrgent
	case k&opReplica != 0:
		return priorityHigh
	}
	return priorityNormal
}

// opStatus is where an operator is in its life: running, or one of PD's end
// states.
type opStatus int

const (
	opRunning opStatus = iota
	opSuccess
	opCanceled
	opReplaced
	opTimeout
)

// toPB maps the status to what GetOperator reports.
func (s opStatus) toPB() pdpb.OperatorStatus {
	return [...]pdpb.OperatorStatus{
		opRunning:  pdpb.OperatorStatus_RUNNING,
		opSuccess:  pdpb.OperatorStatus_SUCCESS,
		opCanceled: pdpb.OperatorStatus_CANCEL,
		opReplaced: pdpb.OperatorStatus_REPLACE,
		opTimeout:  pdpb.OperatorStatus_TIMEOUT,
	}[s]
}

// operator is a sequence of steps that changes one region, run by the
// operatorController. Its mutable fields are guarded by the controller's
// mutex.
type operator struct {
	desc     string
	kind     opKind
	priority int
	regionID uint64
	// size is the region's approximate size in MiB when the operator was
	// created; it weighs the operator's influence on store sizes.
	size uint64
	// group is the scatter group of a scatter operator, "" otherwise.
	group string
	// epoch is the region's epoch when the operator was created. A conf_ver
	// beyond it by more than the operator's own applied steps means someone
	// else changed the peers, and the operator is stale.
	epoch     *metapb.RegionEpoch
	steps     []opStep
	createdAt time.Time
	timeout   time.Duration

	// current indexes the first unfinished step; len(steps) once all are.
	current int
	status  opStatus
	// sentStep is the index of the step last sent (-1 before any) and
	// sentAt when, to pace re-sends.
	sentStep int
	sentAt   time.Time
	endedAt  time.Time
}

func newOperator(desc string, kind opKind, r *regionInfo, now time.Time, timeout time.Duration, steps ...opStep) *operator {
	return &operator{
		desc:      desc,
		kind:      kind,
		priority:  kind.priority(),
		regionID:  r.meta.GetId(),
		size:      r.approxSize,
		epoch:     r.meta.GetRegionEpoch(),
		steps:     steps,
		createdAt: now,
		timeout:   timeout,
		sentStep:  -1,
	}
}

// check advances past the steps r shows finished and returns the step to
// carry out next. It returns nil once the operator has ended: with success
// when every step is finished, with a timeout when it ran too long.
func (o *operator) check(r *regionInfo, now time.Time) opStep {
	if o.status != opRunning {
		return nil
	}
	for o.current < len(o.steps) && o.steps[o.current].finished(r) {
		o.current++
	}
	switch {
	case o.current == len(o.steps):
		o.end(opSuccess, now)
	case o.timedOut(now):
		o.end(opTimeout, now)
	default:
		return o.steps[o.current]
	}
	return nil
}

func (o *operator) timedOut(now time.Time) bool { return now.Sub(o.createdAt) > o.timeout }

func (o *operator) end(status opStatus, now time.Time) {
	o.status, o.endedAt = status, now
}

// confVerChanged is how many conf_ver bumps r shows from the steps up to
// and including the current one (which may have applied since the last
// heartbeat).
func (o *operator) confVerChanged(r *regionInfo) uint64 {
	last := min(o.current, len(o.steps)-1)
	var total uint64
	for _, s := range o.steps[:last+1] {
		total += s.confVerChanged(r)
	}
	return total
}

// staleReason returns why the running operator, at step, can no longer
// succeed on r, or nil: the step itself is stuck, or the region's conf_ver
// moved more than the operator's own steps explain (PD's rule; version
// changes from splits do not make an operator stale).
func (o *operator) staleReason(step opStep, r *regionInfo, v storeView) error {
	if err := step.checkInProgress(r, v); err != nil {
		return err
	}
	latest := r.meta.GetRegionEpoch().GetConfVer()
	origin := o.epoch.GetConfVer()
	if latest > origin && latest-origin > o.confVerChanged(r) {
		return fmt.Errorf("conf_ver %d moved from %d by more than the operator's %d changes",
			latest, origin, o.confVerChanged(r))
	}
	return nil
}

// nextCommand returns the heartbeat response that carries step, or nil
// when it should not be sent now: a step is sent once, then again only
// when a heartbeat at least stepResendInterval later still shows it
// unfinished.
func (o *operator) nextCommand(step opStep, r *regionInfo, now time.Time) *pdpb.RegionHeartbeatResponse {
	if o.sentStep == o.current && now.Sub(o.sentAt) < stepResendInterval {
		return nil
	}
	cmd := step.command(r)
	if cmd != nil {
		o.sentStep, o.sentAt = o.current, now
	}
	return cmd
}

// influence adds the unfinished steps' changes to the per-store deltas.
func (o *operator) influence(deltas storeDeltas) {
	for _, s := range o.steps[o.current:] {
		s.influence(deltas, o.size)
	}
}

// String describes the operator in PD's format, as GET /operators lists it.
func (o *operator) String() string {
	brief := make([]string, len(o.steps))
	steps := make([]string, len(o.steps))
	for i, s := range o.steps {
		brief[i] = s.String()
		steps[i] = fmt.Sprintf("%d:{%s}", i, s)
	}
	return fmt.Sprintf("%s {%s} (kind:%s, region:%d(%d, %d), createAt:%s, currentStep:%d, steps:[%s], timeout:[%s])",
		o.desc, strings.Join(brief, "; "), o.kind, o.regionID, o.epoch.GetVersion(), o.epoch.GetConfVer(),
		o.createdAt.Format(time.RFC3339), o.current, strings.Join(steps, ", "), o.timeout)
}
