package pdsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
)

// coordinator turns leader heartbeats into operator steps: on each accepted
// report it advances the region's operator, or asks the replica checker for
// one when the region has none, and sends the step due to the leader's
// store on that store's heartbeat stream. It runs the schedulers in rounds
// (schedulers.go), splits regions (region_splitter.go), scatters them
// (region_scatter.go) and starts the operators the HTTP API asks for. An
// operator's first step is sent when it starts, the later ones on the
// heartbeats that show the earlier done. Safe for concurrent use.
type coordinator struct {
	clusterID  uint64
	cluster    *cluster
	ids        *idAllocator
	streams    *heartbeatStreams
	ops        *operatorController
	checker    replicaChecker
	schedulers *schedulerSet
	limiter    *storeLimiter
	moves      *moveHistory
	scatterer  *regionScatterer
	cfg        ScheduleConfig
	now        func() time.Time
	// start is when the server started (see storeView.start).
	start time.Time
	log   *slog.Logger

	// roundMu serialises scheduling rounds and guards rng.
	roundMu sync.Mutex
	rng     *rand.Rand
}

func newCoordinator(s *Server) *coordinator {
	seed := s.cfg.ScheduleSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	return &coordinator{
		clusterID:  s.clusterID,
		cluster:    s.cluster,
		ids:        s.ids,
		streams:    newHeartbeatStreams(),
		ops:        newOperatorController(s.log),
		checker:    replicaChecker{maxReplicas: s.cfg.Replication.MaxReplicas},
		schedulers: newSchedulerSet(s.storage),
		limiter:    newStoreLimiter(s.cfg.Schedule.StoreBalanceRate),
		moves:      newMoveHistory(),
		scatterer:  newRegionScatterer(),
		cfg:        s.cfg.Schedule,
		now:        s.cfg.Now,
		start:      s.startTime,
		log:        s.log,
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

func (co *coordinator) view() storeView {
	return storeView{
		stores:           co.cluster.storeSnapshot(),
		now:              co.now(),
		start:            co.start,
		maxStoreDownTime: co.cfg.MaxStoreDownTime,
	}
}

// onRegionHeartbeat handles region r, just accepted from its leader.
func (co *coordinator) onRegionHeartbeat(ctx context.Context, r *regionInfo) {
	v := co.view()
	cmd, running := co.ops.dispatch(r, v)
	if !running {
		cmd = co.runChecker(ctx, r, v)
	}
	co.send(r, cmd)
}

// runChecker starts the operator the replica checker plans for r, if any,
// and returns its first command.
func (co *coordinator) runChecker(ctx context.Context, r *regionInfo, v storeView) *pdpb.RegionHeartbeatResponse {
	plan, err := co.checker.check(r, co.checkEnv(ctx, v))
	if err == nil && plan != nil {
		var cmd *pdpb.RegionHeartbeatResponse
		if cmd, err = co.startPlan(plan, r, v); err == nil {
			return cmd
		}
	}
	switch {
	case errors.Is(err, errOperatorExists):
		co.log.Debug("replica checker lost a race", "region-id", r.meta.GetId(), "err", err)
	case err != nil:
		co.log.Warn("replica checker failed", "region-id", r.meta.GetId(), "err", err)
	}
	return nil
}

func (co *coordinator) checkEnv(ctx context.Context, v storeView) *checkEnv {
	return &checkEnv{
		view: v,
		loadCounts: func() map[uint64]int {
			counts := co.cluster.peerCounts()
			for store, delta := range co.ops.influence(v.now) {
				counts[store] += delta.peers
			}
			return counts
		},
		allocPeerID: func() (uint64, error) { return co.ids.alloc(ctx, 1) },
		moves:       co.moves,
	}
}

// startPlan runs plan as r's operator and returns its first command.
func (co *coordinator) startPlan(plan *opPlan, r *regionInfo, v storeView) (*pdpb.RegionHeartbeatResponse, error) {
	return co.startPlanOn(plan, r, r, v)
}

// startPlanOn runs plan, made from planned, PD's copy of the region when the
// plan was made, as the operator of cur, PD's copy now; it fails if the
// region's epoch moved in between.
func (co *coordinator) startPlanOn(plan *opPlan, planned, cur *regionInfo, v storeView) (*pdpb.RegionHeartbeatResponse, error) {
	op := newOperator(plan.desc, plan.kind, planned, v.now, co.timeout(plan.kind), plan.steps...)
	op.priority, op.group = plan.priority, plan.group
	if err := co.ops.add(op, cur); err != nil {
		return nil, err
	}
	cmd, _ := co.ops.dispatch(cur, v)
	return cmd, nil
}

// timeout is how long an operator of kind may run.
func (co *coordinator) timeout(kind opKind) time.Duration {
	if kind&opRegion != 0 {
		return co.cfg.RegionOperatorWaitTime
	}
	return co.cfg.LeaderOperatorWaitTime
}

// send addresses cmd to r's leader, as PD fills a heartbeat response, and
// sends it on the leader store's stream. Nil cmd sends nothing.
func (co *coordinator) send(r *regionInfo, cmd *pdpb.RegionHeartbeatResponse) {
	if cmd == nil {
		return
	}
	cmd.Header = &pdpb.ResponseHeader{ClusterId: co.clusterID}
	cmd.RegionId = r.meta.GetId()
	cmd.RegionEpoch = r.meta.GetRegionEpoch()
	cmd.TargetPeer = r.leader
	if err := co.streams.send(cmd); err != nil {
		co.log.Warn("send schedule command failed", "region-id", r.meta.GetId(), "err", err)
		return
	}
	co.log.Debug("send schedule command", "region-id", r.meta.GetId(),
		"change-peer", cmd.GetChangePeer(), "transfer-leader", cmd.GetTransferLeader(), "split-region", cmd.GetSplitRegion())
}

// Names of the operators the HTTP API creates, as pd-ctl sends them.
const (
	adminTransferLeader = "transfer-leader"
	adminAddPeer        = "add-peer"
	adminRemovePeer     = "remove-peer"
)

// addAdminOperator starts the operator name on a region, involving store:
// the leader's new store, the store to add a peer on or to remove one from.
// The first step goes out at once on the leader's stream.
func (co *coordinator) addAdminOperator(ctx context.Context, name string, regionID, store uint64) error {
	r := co.cluster.regionByID(regionID)
	if r == nil {
		return fmt.Errorf("region %d not found: %w", regionID, ErrInvalidValue)
	}
	v := co.view()
	plan, err := co.adminPlan(ctx, name, r, store, v)
	if err != nil {
		return fmt.Errorf("%s on region %d: %w", name, regionID, err)
	}
	cmd, err := co.startPlan(plan, r, v)
	if err != nil {
		return err
	}
	co.send(r, cmd)
	return nil
}

func (co *coordinator) adminPlan(ctx context.Context, name string, r *regionInfo, store uint64, v storeView) (*opPlan, error) {
	peer := r.storePeer(store)
	switch name {
	case adminTransferLeader:
		if peer == nil || peer.GetRole() != metapb.PeerRole_Voter {
			return nil, fmt.Errorf("region has no voter in store %d: %w", store, ErrInvalidValue)
		}
		return newPlan("admin-transfer-leader", opAdmin, transferLeader{fromStore: r.leader.GetStoreId(), toStore: store}), nil
	case adminAddPeer:
		if peer != nil {
			return nil, fmt.Errorf("region already has peer in store %d: %w", store, ErrInvalidValue)
		}
		if err := v.checkTarget(store); err != nil {
			return nil, fmt.Errorf("%w: %w", err, ErrInvalidValue)
		}
		id, err := co.ids.alloc(ctx, 1)
		if err != nil {
			return nil, fmt.Errorf("allocate peer id: %w", err)
		}
		return newPlan("admin-add-peer", opAdmin, addPeer{toStore: store, peerID: id}), nil
	case adminRemovePeer:
		if peer == nil {
			return nil, fmt.Errorf("region has no peer in store %d: %w", store, ErrInvalidValue)
		}
		steps := removeSteps(r, store, 0, v)
		if steps == nil {
			return nil, fmt.Errorf("no healthy follower to take the leader from store %d: %w", store, ErrInvalidValue)
		}
		return newPlan("admin-remove-peer", opAdmin, steps...), nil
	}
	return nil, fmt.Errorf("unknown operator %q: %w", name, ErrInvalidValue)
}
