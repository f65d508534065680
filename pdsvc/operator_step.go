package pdsvc

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
)

// opStep is one change an operator asks of a region's leader, in the shape
// of PD's operator steps. A step is judged only from the region as its
// leader last reported it.
type opStep interface {
	fmt.Stringer
	// finished reports whether r shows the step done.
	finished(r *regionInfo) bool
	// confVerChanged is 1 if the step bumps conf_ver and r shows it
	// applied, else 0; it tells an operator's own conf changes from others'.
	confVerChanged(r *regionInfo) uint64
	// checkInProgress returns why the step can no longer succeed, or nil.
	checkInProgress(r *regionInfo, v storeView) error
	// command returns the heartbeat response, with only the operation set,
	// that asks r's leader to carry the step out; nil when nothing needs
	// sending (an added peer still catching up).
	command(r *regionInfo) *pdpb.RegionHeartbeatResponse
	// influence adds what the step will change to the per-store deltas;
	// size is the region's approximate size in MiB.
	influence(deltas storeDeltas, size uint64)
}

// storeDelta is how a store's share of the regions changes once operators
// finish.
type storeDelta struct {
	peers, leaders int
	size           int64 // MiB
}

// storeDeltas holds a delta per store id.
type storeDeltas map[uint64]storeDelta

// add changes store's delta by peers, leaders and size.
func (d storeDeltas) add(store uint64, peers, leaders int, size int64) {
	cur := d[store]
	cur.peers += peers
	cur.leaders += leaders
	cur.size += size
	d[store] = cur
}

// storeView is what steps and the replica checker know of the stores at one
// moment.
type storeView struct {
	stores map[uint64]*storeInfo
	now    time.Time
	// start is when this PD started: heartbeats are not persisted, so down
	// time is counted from here for stores not heard from since.
	start            time.Time
	maxStoreDownTime time.Duration
}

// down reports whether the store has been silent for maxStoreDownTime.
func (v storeView) down(s *storeInfo) bool {
	return s.downTime(v.now, v.start) >= v.maxStoreDownTime
}

// checkTarget returns why a step may not put a peer or the leader on store
// id: it is unknown, a tombstone, or down (PD's validateStore).
func (v storeView) checkTarget(id uint64) error {
	s, ok := v.stores[id]
	switch {
	case !ok:
		return fmt.Errorf("target store %d does not exist", id)
	case s.isRemoved():
		return fmt.Errorf("target store %d is tombstone", id)
	case v.down(s):
		return fmt.Errorf("target store %d is down", id)
	}
	return nil
}

// storePeer returns r's peer on store, or nil.
func (r *regionInfo) storePeer(store uint64) *metapb.Peer {
	for _, p := range r.meta.GetPeers() {
		if p.GetStoreId() == store {
			return p
		}
	}
	return nil
}

// isPending reports whether the leader lists peer id as pending (behind
// the log or waiting for a snapshot).
func (r *regionInfo) isPending(id uint64) bool {
	return slices.ContainsFunc(r.pendingPeers, func(p *metapb.Peer) bool { return p.GetId() == id })
}

// isDown reports whether the leader lists peer id as down.
func (r *regionInfo) isDown(id uint64) bool {
	return slices.ContainsFunc(r.downPeers, func(s *pdpb.PeerStats) bool { return s.GetPeer().GetId() == id })
}

// addPeer adds a voter with a PD-allocated id on a store. Our raftstore has
// no learners, so the peer joins as a voter directly, as before PD 4.0.
type addPeer struct {
	toStore, peerID uint64
}

func (s addPeer) String() string {
	return fmt.Sprintf("add peer %d on store %d", s.peerID, s.toStore)
}

// finished: the peer is in the region and has caught up.
func (s addPeer) finished(r *regionInfo) bool {
	p := r.storePeer(s.toStore)
	return p != nil && p.GetId() == s.peerID && !r.isPending(s.peerID)
}

func (s addPeer) confVerChanged(r *regionInfo) uint64 {
	return boolToUint64(r.storePeer(s.toStore).GetId() == s.peerID)
}

func (s addPeer) checkInProgress(r *regionInfo, v storeView) error {
	if err := v.checkTarget(s.toStore); err != nil {
		return err
	}
	if p := r.storePeer(s.toStore); p != nil && p.GetId() != s.peerID {
		return fmt.Errorf("store %d already has peer %d, not the peer %d being added", s.toStore, p.GetId(), s.peerID)
	}
	return nil
}

func (s addPeer) command(r *regionInfo) *pdpb.RegionHeartbeatResponse {
	if r.storePeer(s.toStore) != nil {
		return nil
	}
	return &pdpb.RegionHeartbeatResponse{ChangePeer: &pdpb.ChangePeer{
		ChangeType: eraftpb.ConfChangeType_AddNode,
		Peer:       &metapb.Peer{Id: s.peerID, StoreId: s.toStore, Role: metapb.PeerRole_Voter},
	}}
}

func (s addPeer) influence(d storeDeltas, size uint64) { d.add(s.toStore, 1, 0, int64(size)) }

// removePeer removes a store's peer, peerID, from the region.
type removePeer struct {
	fromStore, peerID uint64
}

func (s removePeer) String() string {
	return fmt.Sprintf("remove peer on store %d", s.fromStore)
}

func (s removePeer) finished(r *regionInfo) bool { return r.storePeer(s.fromStore) == nil }

// confVerChanged counts the removal once the peer is gone, or replaced by
// another peer on the same store.
func (s removePeer) confVerChanged(r *regionInfo) uint64 {
	p := r.storePeer(s.fromStore)
	return boolToUint64(p == nil || p.GetId() != s.peerID)
}

// errRemoveLeader is why a removal stalls: TiKV refuses to remove the
// leader, so it must move first.
var errRemoveLeader = errors.New("cannot remove leader peer")

func (s removePeer) checkInProgress(r *regionInfo, _ storeView) error {
	if r.leader.GetStoreId() == s.fromStore {
		return errRemoveLeader
	}
	return nil
}

func (s removePeer) command(r *regionInfo) *pdpb.RegionHeartbeatResponse {
	return &pdpb.RegionHeartbeatResponse{ChangePeer: &pdpb.ChangePeer{
		ChangeType: eraftpb.ConfChangeType_RemoveNode,
		Peer:       r.storePeer(s.fromStore),
	}}
}

func (s removePeer) influence(d storeDeltas, size uint64) { d.add(s.fromStore, -1, 0, -int64(size)) }

// transferLeader moves the region's leader to its peer on toStore.
type transferLeader struct {
	fromStore, toStore uint64
}

func (s transferLeader) String() string {
	return fmt.Sprintf("transfer leader from store %d to store %d", s.fromStore, s.toStore)
}

func (s transferLeader) finished(r *regionInfo) bool { return r.leader.GetStoreId() == s.toStore }

func (transferLeader) confVerChanged(*regionInfo) uint64 { return 0 }

func (s transferLeader) checkInProgress(r *regionInfo, v storeView) error {
	p := r.storePeer(s.toStore)
	switch {
	case p == nil:
		return fmt.Errorf("no peer on store %d to transfer the leader to", s.toStore)
	case p.GetRole() != metapb.PeerRole_Voter:
		return fmt.Errorf("peer %d on store %d is not a voter", p.GetId(), s.toStore)
	}
	return v.checkTarget(s.toStore)
}

func (s transferLeader) command(r *regionInfo) *pdpb.RegionHeartbeatResponse {
	return &pdpb.RegionHeartbeatResponse{TransferLeader: &pdpb.TransferLeader{Peer: r.storePeer(s.toStore)}}
}

func (s transferLeader) influence(d storeDeltas, _ uint64) {
	d.add(s.fromStore, 0, -1, 0)
	d.add(s.toStore, 0, 1, 0)
}

// splitRegion asks the leader to split the region at keys, PD's SplitRegion
// step with the USEKEY policy. The region's range when the step was made
// tells when it is done.
type splitRegion struct {
	startKey, endKey []byte
	keys             [][]byte
}

func (s splitRegion) String() string {
	return fmt.Sprintf("split region with policy USEKEY at %d keys", len(s.keys))
}

// finished: the region's range is no longer the one it had.
func (s splitRegion) finished(r *regionInfo) bool {
	return !bytes.Equal(r.startKey(), s.startKey) || !bytes.Equal(r.endKey(), s.endKey)
}

func (splitRegion) confVerChanged(*regionInfo) uint64 { return 0 }

func (splitRegion) checkInProgress(*regionInfo, storeView) error { return nil }

func (s splitRegion) command(*regionInfo) *pdpb.RegionHeartbeatResponse {
	return &pdpb.RegionHeartbeatResponse{SplitRegion: &pdpb.SplitRegion{Policy: pdpb.CheckPolicy_USEKEY, Keys: s.keys}}
}

func (splitRegion) influence(storeDeltas, uint64) {}

func boolToUint64(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
