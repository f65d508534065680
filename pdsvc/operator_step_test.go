package pdsvc

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
)

var unitNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// unitRegion builds region 100 at conf_ver with a peer 10+s on each store
// s, led by the peer on leaderStore, with the given pending peer stores.
func unitRegion(confVer uint64, leaderStore uint64, stores []uint64, pending ...uint64) *regionInfo {
	r := &regionInfo{meta: &metapb.Region{Id: 100, RegionEpoch: &metapb.RegionEpoch{ConfVer: confVer, Version: 1}}}
	for _, s := range stores {
		r.meta.Peers = append(r.meta.Peers, &metapb.Peer{Id: 10 + s, StoreId: s})
	}
	r.leader = r.storePeer(leaderStore)
	for _, s := range pending {
		r.pendingPeers = append(r.pendingPeers, r.storePeer(s))
	}
	return r
}

// unitStore is a store in state that last heartbeated at last.
func unitStore(id uint64, state metapb.NodeState, last time.Time) *storeInfo {
	return &storeInfo{meta: &metapb.Store{Id: id, NodeState: state}, lastHeartbeat: last}
}

func unitView(stores ...*storeInfo) storeView {
	v := storeView{stores: make(map[uint64]*storeInfo), now: unitNow, start: unitNow.Add(-time.Hour),
		maxStoreDownTime: 30 * time.Minute}
	for _, s := range stores {
		v.stores[s.meta.GetId()] = s
	}
	return v
}

func healthyView(ids ...uint64) storeView {
	stores := make([]*storeInfo, len(ids))
	for i, id := range ids {
		stores[i] = unitStore(id, metapb.NodeState_Serving, unitNow)
	}
	return unitView(stores...)
}

func TestStepFinishAndCommand(t *testing.T) {
	view := healthyView(1, 2, 3, 4)
	cases := []struct {
		name       string
		step       opStep
		region     *regionInfo
		finished   bool
		confVer    uint64
		stuck      bool
		wantChange eraftpb.ConfChangeType // with wantPeer, the ChangePeer expected
		wantPeer   uint64                 // peer id in the command; 0: no command
		wantLeader uint64                 // peer id in TransferLeader
	}{
		{"add: absent", addPeer{toStore: 3, peerID: 13}, unitRegion(1, 1, []uint64{1, 2}), false, 0, false,
			eraftpb.ConfChangeType_AddNode, 13, 0},
		{"add: present, pending", addPeer{toStore: 3, peerID: 13}, unitRegion(2, 1, []uint64{1, 2, 3}, 3), false, 1, false,
			0, 0, 0},
		{"add: present, caught up", addPeer{toStore: 3, peerID: 13}, unitRegion(2, 1, []uint64{1, 2, 3}), true, 1, false,
			0, 0, 0},
		{"add: other peer on the store", addPeer{toStore: 3, peerID: 99}, unitRegion(2, 1, []uint64{1, 2, 3}), false, 0, true,
			0, 0, 0},
		{"add: unknown store", addPeer{toStore: 9, peerID: 19}, unitRegion(1, 1, []uint64{1}), false, 0, true,
			eraftpb.ConfChangeType_AddNode, 19, 0},
		{"remove: present", removePeer{fromStore: 2, peerID: 12}, unitRegion(2, 1, []uint64{1, 2}), false, 0, false,
			eraftpb.ConfChangeType_RemoveNode, 12, 0},
		{"remove: gone", removePeer{fromStore: 2, peerID: 12}, unitRegion(3, 1, []uint64{1}), true, 1, false,
			eraftpb.ConfChangeType_RemoveNode, 0, 0},
		{"remove: replaced by another peer", removePeer{fromStore: 2, peerID: 99}, unitRegion(3, 1, []uint64{1, 2}), false, 1, false,
			eraftpb.ConfChangeType_RemoveNode, 12, 0},
		{"remove: the leader", removePeer{fromStore: 1, peerID: 11}, unitRegion(2, 1, []uint64{1, 2}), false, 0, true,
			eraftpb.ConfChangeType_RemoveNode, 11, 0},
		{"transfer: elsewhere", transferLeader{fromStore: 1, toStore: 2}, unitRegion(2, 1, []uint64{1, 2}), false, 0, false,
			0, 0, 12},
		{"transfer: done", transferLeader{fromStore: 1, toStore: 2}, unitRegion(2, 2, []uint64{1, 2}), true, 0, false,
			0, 0, 12},
		{"transfer: no peer there", transferLeader{fromStore: 1, toStore: 3}, unitRegion(2, 1, []uint64{1, 2}), false, 0, true,
			0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.step.finished(tc.region); got != tc.finished {
				t.Errorf("finished = %v", got)
			}
			if got := tc.step.confVerChanged(tc.region); got != tc.confVer {
				t.Errorf("confVerChanged = %d", got)
			}
			if err := tc.step.checkInProgress(tc.region, view); (err != nil) != tc.stuck {
				t.Errorf("checkInProgress = %v", err)
			}
			if tc.finished || tc.stuck {
				return
			}
			checkCommand(t, tc.step.command(tc.region), tc.wantChange, tc.wantPeer, tc.wantLeader)
		})
	}
}

func checkCommand(t *testing.T, cmd *pdpb.RegionHeartbeatResponse, change eraftpb.ConfChangeType, peer, leader uint64) {
	t.Helper()
	switch {
	case peer == 0 && leader == 0:
		if cmd != nil {
			t.Errorf("command = %v, want none", cmd)
		}
	case leader != 0:
		if cmd.GetTransferLeader().GetPeer().GetId() != leader || cmd.GetChangePeer() != nil {
			t.Errorf("command = %v, want transfer to peer %d", cmd, leader)
		}
	default:
		cp := cmd.GetChangePeer()
		if cp.GetChangeType() != change || cp.GetPeer().GetId() != peer || cmd.GetTransferLeader() != nil {
			t.Errorf("command = %v, want %v of peer %d", cmd, change, peer)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	view := unitView(
		unitStore(1, metapb.NodeState_Serving, unitNow),
		unitStore(2, metapb.NodeState_Removed, unitNow),
		unitStore(3, metapb.NodeState_Serving, unitNow.Add(-31*time.Minute)),
		unitStore(4, metapb.NodeState_Serving, time.Time{}), // never heard from since start, an hour ago
	)
	for id, ok := range map[uint64]bool{1: true, 2: false, 3: false, 4: false, 5: false} {
		if err := view.checkTarget(id); (err == nil) != ok {
			t.Errorf("checkTarget(%d) = %v", id, err)
		}
	}
	view.start = unitNow.Add(-time.Minute) // just restarted: store 4 counts from the start
	if err := view.checkTarget(4); err != nil {
		t.Errorf("after restart, checkTarget(4) = %v", err)
	}
}

// TestOperatorStepsAndStaleness walks a move (add 3, transfer 1→2, remove
// 1) through the reports a store would send.
func TestOperatorStepsAndStaleness(t *testing.T) {
	view := healthyView(1, 2, 3)
	start := unitRegion(2, 1, []uint64{1, 2})
	newOp := func() *operator {
		return newOperator("move", opReplica|opRegion|opLeader, start, unitNow, time.Minute,
			addPeer{toStore: 3, peerID: 13}, transferLeader{fromStore: 1, toStore: 2}, removePeer{fromStore: 1, peerID: 11})
	}
	op := newOp()
	reports := []struct {
		region  *regionInfo
		current int // the step check returns; -1 for none
		stale   bool
	}{
		{start, 0, false},
		{unitRegion(3, 1, []uint64{1, 2, 3}, 3), 0, false}, // added, catching up
		{unitRegion(3, 1, []uint64{1, 2, 3}), 1, false},
		{unitRegion(3, 2, []uint64{1, 2, 3}), 2, false},
		{unitRegion(4, 2, []uint64{2, 3}), -1, false},
	}
	for i, rep := range reports {
		step := op.check(rep.region, unitNow)
		if rep.current < 0 {
			if step != nil || op.status != opSuccess {
				t.Fatalf("report %d: step %v status %v, want success", i, step, op.status)
			}
			continue
		}
		if step != op.steps[rep.current] {
			t.Fatalf("report %d: step %v, want %v", i, step, op.steps[rep.current])
		}
		if err := op.staleReason(step, rep.region, view); (err != nil) != rep.stale {
			t.Fatalf("report %d: stale %v", i, err)
		}
	}

	other := newOp()
	foreign := unitRegion(3, 1, []uint64{1, 2, 4}) // someone else added a peer on store 4
	if err := other.staleReason(other.check(foreign, unitNow), foreign, view); err == nil {
		t.Fatalf("a foreign conf change did not make the operator stale")
	}
	split := unitRegion(2, 1, []uint64{1, 2})
	split.meta.RegionEpoch.Version = 5
	if err := other.staleReason(other.check(split, unitNow), split, view); err != nil {
		t.Fatalf("a split made the operator stale: %v", err)
	}
}

func TestOperatorPacingAndTimeout(t *testing.T) {
	r := unitRegion(1, 1, []uint64{1})
	op := newOperator("make-up-replica", opReplica|opRegion, r, unitNow, time.Minute, addPeer{toStore: 2, peerID: 12})
	sends := 0
	for _, at := range []time.Duration{0, time.Second, 4 * time.Second, 5 * time.Second, 6 * time.Second, 10 * time.Second} {
		now := unitNow.Add(at)
		if cmd := op.nextCommand(op.check(r, now), r, now); cmd != nil {
			sends++
		}
	}
	if sends != 3 { // at 0, 5s and 10s
		t.Fatalf("%d sends in 10 s, want 3", sends)
	}
	if step := op.check(r, unitNow.Add(61*time.Second)); step != nil || op.status != opTimeout {
		t.Fatalf("after the timeout: step %v status %v", step, op.status)
	}
	if step := op.check(unitRegion(2, 1, []uint64{1, 2}), unitNow.Add(62*time.Second)); step != nil || op.status != opTimeout {
		t.Fatalf("an ended operator moved on: %v %v", step, op.status)
	}
}

func TestControllerPriorityAndStatus(t *testing.T) {
	c := newOperatorController(slog.New(slog.NewTextHandler(io.Discard, nil)))
	r := unitRegion(1, 1, []uint64{1, 2})
	checker := newOperator("make-up-replica", opReplica|opRegion, r, unitNow, time.Minute, addPeer{toStore: 3, peerID: 13})
	admin := newOperator("admin-transfer-leader", opAdmin|opLeader, r, unitNow, time.Minute, transferLeader{fromStore: 1, toStore: 2})
	if err := c.add(checker, r); err != nil {
		t.Fatal(err)
	}
	if err := c.add(newOperator("again", opReplica|opRegion, r, unitNow, time.Minute), r); !errors.Is(err, errOperatorExists) {
		t.Fatalf("same priority: %v", err)
	}
	if err := c.add(admin, r); err != nil {
		t.Fatalf("admin: %v", err)
	}
	if checker.status != opReplaced {
		t.Fatalf("replaced operator status %v", checker.status)
	}
	if err := c.add(newOperator("checker", opReplica|opRegion, r, unitNow, time.Minute), r); !errors.Is(err, errOperatorExists) {
		t.Fatalf("lower priority: %v", err)
	}
	moved := unitRegion(2, 1, []uint64{1, 2, 3})
	if err := c.add(newOperator("late", opAdmin, r, unitNow, time.Minute), moved); !errors.Is(err, errOperatorEpoch) {
		t.Fatalf("epoch moved: %v", err)
	}
	if got := c.influence(unitNow); got[1].peers != 0 || got[2].peers != 0 || got[1].leaders != -1 || got[2].leaders != 1 {
		t.Fatalf("a leader transfer's influence %v, want only a leader from 1 to 2", got)
	}
	if st, ok := c.status(r.meta.GetId(), unitNow.Add(2*time.Minute)); !ok || st.status != opTimeout {
		t.Fatalf("status after the timeout: %+v %v", st, ok)
	}
	if _, ok := c.status(r.meta.GetId(), unitNow.Add(2*time.Minute+operatorRecordTTL+time.Second)); ok {
		t.Fatalf("record kept past its TTL")
	}
}

func TestReplicaCheckerChoices(t *testing.T) {
	now := unitNow
	stores := func(extra ...*storeInfo) storeView {
		base := []*storeInfo{
			unitStore(1, metapb.NodeState_Serving, now),
			unitStore(2, metapb.NodeState_Serving, now),
			unitStore(3, metapb.NodeState_Serving, now),
			unitStore(4, metapb.NodeState_Serving, now),
			unitStore(5, metapb.NodeState_Serving, now),
		}
		return unitView(append(base, extra...)...)
	}
	disconnected := unitStore(5, metapb.NodeState_Serving, now.Add(-time.Minute))
	offline := unitStore(3, metapb.NodeState_Removing, now)
	cases := []struct {
		name   string
		region *regionInfo
		view   storeView
		counts map[uint64]int
		want   string // the plan's operator text, "" for none
	}{
		{"full", unitRegion(5, 1, []uint64{1, 2, 3}), stores(), nil, ""},
		{"add: fewest peers", unitRegion(1, 1, []uint64{1}), stores(), map[uint64]int{2: 5, 3: 2, 4: 2, 5: 3},
			"make-up-replica [add peer 1000 on store 3]"},
		{"add: skip disconnected", unitRegion(1, 1, []uint64{1}), stores(disconnected), map[uint64]int{2: 9, 3: 9, 4: 9},
			"make-up-replica [add peer 1000 on store 2]"},
		{"add: nowhere", unitRegion(1, 1, []uint64{1, 2}), unitView(unitStore(1, metapb.NodeState_Serving, now), unitStore(2, metapb.NodeState_Serving, now)), nil, ""},
		{"remove: most peers", unitRegion(5, 1, []uint64{1, 2, 3, 4}), stores(), map[uint64]int{1: 9, 2: 3, 3: 4, 4: 3},
			"remove-extra-replica [remove peer on store 3]"},
		{"remove: unhealthy first", unitRegion(5, 1, []uint64{1, 2, 3, 5}), stores(disconnected), map[uint64]int{2: 9, 3: 9},
			"remove-extra-replica [remove peer on store 5]"},
		{"offline: replace", unitRegion(5, 1, []uint64{1, 2, 3}), stores(offline), nil,
			"replace-offline-replica [add peer 1000 on store 4; remove peer on store 3]"},
		{"offline leader: transfer first", unitRegion(5, 3, []uint64{1, 2, 3}), stores(offline), nil,
			"replace-offline-replica [add peer 1000 on store 4; transfer leader from store 3 to store 1; remove peer on store 3]"},
		{"offline with extra peers: remove only", unitRegion(5, 1, []uint64{1, 2, 3, 4}), stores(offline), nil,
			"remove-extra-offline-replica [remove peer on store 3]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := &checkEnv{
				view:        tc.view,
				loadCounts:  func() map[uint64]int { return tc.counts },
				allocPeerID: func() (uint64, error) { return 1000, nil },
			}
			plan, err := replicaChecker{maxReplicas: 3}.check(tc.region, env)
			if err != nil {
				t.Fatal(err)
			}
			if got := planText(plan); got != tc.want {
				t.Fatalf("plan %q, want %q", got, tc.want)
			}
		})
	}
}

func planText(p *opPlan) string {
	if p == nil {
		return ""
	}
	text := p.desc + " ["
	for i, s := range p.steps {
		if i > 0 {
			text += "; "
		}
		text += s.String()
	}
	return text + "]"
}

func TestDownPeerWaitsForMaxStoreDownTime(t *testing.T) {
	r := unitRegion(5, 1, []uint64{1, 2, 3})
	r.downPeers = []*pdpb.PeerStats{{Peer: r.storePeer(3), DownSeconds: 3600}}
	for _, tc := range []struct {
		silence time.Duration
		want    string
	}{
		{29 * time.Minute, ""},
		{30 * time.Minute, "replace-down-replica [add peer 1000 on store 4; remove peer on store 3]"},
	} {
		view := unitView(unitStore(1, metapb.NodeState_Serving, unitNow), unitStore(2, metapb.NodeState_Serving, unitNow),
			unitStore(3, metapb.NodeState_Serving, unitNow.Add(-tc.silence)), unitStore(4, metapb.NodeState_Serving, unitNow))
		env := &checkEnv{view: view, loadCounts: func() map[uint64]int { return nil },
			allocPeerID: func() (uint64, error) { return 1000, nil }}
		plan, err := replicaChecker{maxReplicas: 3}.check(r, env)
		if err != nil || planText(plan) != tc.want {
			t.Fatalf("silent %s: plan %q %v, want %q", tc.silence, planText(plan), err, tc.want)
		}
	}
}
