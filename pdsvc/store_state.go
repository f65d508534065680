package pdsvc

import (
	"context"
	"fmt"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/metapb"
)

// storeDisconnectDuration is how long a store may go without a heartbeat
// before PD stops counting it as connected (and so as a place for new
// peers), as in PD.
const storeDisconnectDuration = 20 * time.Second

// isUp reports whether the store is neither offline nor a tombstone: PD's
// IsUp, which does not look at heartbeats.
func (s *storeInfo) isUp() bool {
	state := s.meta.GetNodeState()
	return state == metapb.NodeState_Serving || state == metapb.NodeState_Preparing
}

func (s *storeInfo) isRemoved() bool {
	return s.meta.GetNodeState() == metapb.NodeState_Removed
}

// connected reports whether the store has sent a heartbeat within
// storeDisconnectDuration of now.
func (s *storeInfo) connected(now time.Time) bool {
	return !s.lastHeartbeat.IsZero() && now.Sub(s.lastHeartbeat) <= storeDisconnectDuration
}

// canTakePeer reports whether the replica checker may place a new peer on
// the store: Serving and connected.
func (s *storeInfo) canTakePeer(now time.Time) bool {
	return s.meta.GetNodeState() == metapb.NodeState_Serving && s.connected(now)
}

// downTime is how long the store has been silent at now. Heartbeats are not
// persisted, so a store not heard from since PD started counts from start:
// a PD restart does not make every store look down at once.
func (s *storeInfo) downTime(now, start time.Time) time.Duration {
	last := s.lastHeartbeat
	if last.Before(start) {
		last = start
	}
	return now.Sub(last)
}

// nodeStateOf maps the legacy store state to the node state PD keeps beside
// it.
func nodeStateOf(state metapb.StoreState) metapb.NodeState {
	switch state {
	case metapb.StoreState_Offline:
		return metapb.NodeState_Removing
	case metapb.StoreState_Tombstone:
		return metapb.NodeState_Removed
	default:
		return metapb.NodeState_Serving
	}
}

// setStoreState moves a store to Up, Offline or Tombstone and persists it.
// A tombstone never comes back. Like every store update it replaces the
// storeInfo rather than changing it (see storeSnapshot).
func (c *cluster) setStoreState(ctx context.Context, id uint64, state metapb.StoreState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.bootstrapped {
		return ErrNotBootstrapped
	}
	old, ok := c.stores[id]
	if !ok {
		return storeNotFound(id)
	}
	if old.isRemoved() {
		return fmt.Errorf("set store %d %s: %w", id, state, ErrStoreTombstone)
	}
	updated := proto.Clone(old.meta).(*metapb.Store)
	updated.State, updated.NodeState = state, nodeStateOf(state)
	if err := c.storage.saveProto(ctx, c.storage.storeKey(id), updated); err != nil {
		return fmt.Errorf("set store %d %s: %w", id, state, err)
	}
	info := *old
	info.meta = updated
	c.stores[id] = &info
	return nil
}

// storeSnapshot returns every store by id. A storeInfo's meta, stats and
// lastHeartbeat are never changed in place (updates replace the storeInfo),
// so the caller may read them without the lock.
func (c *cluster) storeSnapshot() map[uint64]*storeInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	result := make(map[uint64]*storeInfo, len(c.stores))
	for id, s := range c.stores {
		result[id] = s
	}
	return result
}

// peerCounts returns how many region peers each store holds.
func (c *cluster) peerCounts() map[uint64]int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	counts := make(map[uint64]int)
	for _, r := range c.regionsByID {
		for _, p := range r.meta.GetPeers() {
			counts[p.GetStoreId()]++
		}
	}
	return counts
}
