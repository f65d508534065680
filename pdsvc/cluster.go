package pdsvc

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
)

// storeInfo is PD's view of one store.
type storeInfo struct {
	meta          *metapb.Store
	stats         *pdpb.StoreStats
	lastHeartbeat time.Time
	minResolvedTS uint64
}

// cluster holds the stores and regions of a bootstrapped cluster and keeps
// them durable. All methods are safe for concurrent use.
type cluster struct {
	storage *storage
	now     func() time.Time

	mu           sync.RWMutex
	bootstrapped bool
	meta         *metapb.Cluster
	stores       map[uint64]*storeInfo
	// Invariant: regionsByID and tree hold the same regions; tree ranges do
	// not overlap.
	regionsByID map[uint64]*regionInfo
	tree        *regionTree
	// changed is closed, and replaced, whenever an accepted heartbeat
	// changes a region's metadata or leader (see regionsChanged).
	changed chan struct{}
}

func newCluster(st *storage, now func() time.Time) *cluster {
	return &cluster{
		storage:     st,
		now:         now,
		stores:      make(map[uint64]*storeInfo),
		regionsByID: make(map[uint64]*regionInfo),
		tree:        newRegionTree(),
		changed:     make(chan struct{}),
	}
}

// regionsChanged returns a channel that is closed at the next change of a
// region's metadata or leader. Take it before looking at the regions, so
// that a change in between is not missed.
func (c *cluster) regionsChanged() <-chan struct{} {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.changed
}

// load restores the cluster from storage.
func (c *cluster) load(ctx context.Context) error {
	raw, err := c.storage.load(ctx, c.storage.clusterKey())
	if err != nil || raw == nil {
		return err
	}
	meta := &metapb.Cluster{}
	if err := proto.Unmarshal(raw, meta); err != nil {
		return fmt.Errorf("cluster: decode bootstrap record: %w", err)
	}
	stores, err := c.storage.loadPrefix(ctx, c.storage.storePrefix())
	if err != nil {
		return err
	}
	regions, err := c.storage.loadPrefix(ctx, c.storage.regionPrefix())
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bootstrapped, c.meta = true, meta
	for _, raw := range stores {
		store := &metapb.Store{}
		if err := proto.Unmarshal(raw, store); err != nil {
			return fmt.Errorf("cluster: decode store: %w", err)
		}
		c.stores[store.GetId()] = &storeInfo{meta: store}
	}
	for _, raw := range regions {
		saved := &pdpb.Region{}
		if err := proto.Unmarshal(raw, saved); err != nil {
			return fmt.Errorf("cluster: decode region: %w", err)
		}
		c.insertRegionLocked(&regionInfo{meta: saved.Region, leader: nilIfEmptyPeer(saved.Leader)})
	}
	return nil
}

func nilIfEmptyPeer(p *metapb.Peer) *metapb.Peer {
	if p.GetId() == 0 {
		return nil
	}
	return p
}

func (c *cluster) isBootstrapped() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bootstrapped
}

// bootstrap records the first store and region. It fails if the cluster is
// already bootstrapped.
func (c *cluster) bootstrap(ctx context.Context, clusterID uint64, store *metapb.Store, region *metapb.Region) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bootstrapped {
		return ErrAlreadyBootstrapped
	}
	if err := validateBootstrap(store, region); err != nil {
		return err
	}
	meta := &metapb.Cluster{Id: clusterID, MaxPeerCount: 3}
	store = withServingState(store)
	info := &regionInfo{meta: region}
	if err := c.storage.saveProto(ctx, c.storage.storeKey(store.GetId()), store); err != nil {
		return err
	}
	if err := c.saveRegion(ctx, info); err != nil {
		return err
	}
	if err := c.storage.saveProto(ctx, c.storage.clusterKey(), meta); err != nil {
		return err
	}
	c.bootstrapped, c.meta = true, meta
	c.stores[store.GetId()] = &storeInfo{meta: store}
	c.insertRegionLocked(info)
	return nil
}

func validateBootstrap(store *metapb.Store, region *metapb.Region) error {
	switch {
	case store.GetId() == 0:
		return fmt.Errorf("bootstrap: missing store id: %w", ErrInvalidValue)
	case store.GetAddress() == "":
		return fmt.Errorf("bootstrap: missing store address: %w", ErrInvalidValue)
	case region.GetId() == 0:
		return fmt.Errorf("bootstrap: missing region id: %w", ErrInvalidValue)
	case len(region.GetStartKey()) > 0 || len(region.GetEndKey()) > 0:
		return fmt.Errorf("bootstrap: first region must cover all keys: %w", ErrInvalidValue)
	case len(region.GetPeers()) != 1 || region.GetPeers()[0].GetStoreId() != store.GetId():
		return fmt.Errorf("bootstrap: first region must have one peer on store %d: %w", store.GetId(), ErrInvalidValue)
	}
	return nil
}

// withServingState returns a copy of store that is Up and Serving, the state
// PD gives a store that joins with no data to move.
func withServingState(store *metapb.Store) *metapb.Store {
	s := proto.Clone(store).(*metapb.Store)
	s.State = metapb.StoreState_Up
	s.NodeState = metapb.NodeState_Serving
	return s
}

// putStore adds a store or updates its addresses, version and labels.
func (c *cluster) putStore(ctx context.Context, store *metapb.Store) error {
	if store.GetId() == 0 {
		return fmt.Errorf("invalid put store %v: %w", store, ErrInvalidValue)
	}
	if store.GetAddress() == "" {
		return fmt.Errorf("invalid put store %d: empty address: %w", store.GetId(), ErrInvalidValue)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.bootstrapped {
		return ErrNotBootstrapped
	}
	old := c.stores[store.GetId()]
	if old != nil && old.meta.GetNodeState() == metapb.NodeState_Removed {
		return ErrStoreTombstone
	}
	if err := c.checkAddressFreeLocked(store); err != nil {
		return err
	}
	updated := withServingState(store)
	if old != nil {
		// A returning store keeps its state, so an offline store stays
		// offline across restarts, as in PD.
		updated.State, updated.NodeState = old.meta.GetState(), old.meta.GetNodeState()
		updated.Labels = mergeLabels(old.meta.GetLabels(), store.GetLabels())
	}
	if err := c.storage.saveProto(ctx, c.storage.storeKey(store.GetId()), updated); err != nil {
		return err
	}
	info := &storeInfo{meta: updated}
	if old != nil {
		info.stats, info.lastHeartbeat, info.minResolvedTS = old.stats, old.lastHeartbeat, old.minResolvedTS
	}
	c.stores[store.GetId()] = info
	return nil
}

func (c *cluster) checkAddressFreeLocked(store *metapb.Store) error {
	for id, other := range c.stores {
		if id == store.GetId() || other.meta.GetNodeState() == metapb.NodeState_Removed {
			continue
		}
		if other.meta.GetAddress() == store.GetAddress() {
			return fmt.Errorf("duplicated store address: %v, already registered by store %d: %w",
				store.GetAddress(), id, ErrInvalidValue)
		}
	}
	return nil
}

// mergeLabels overlays update on base, keyed by label name.
func mergeLabels(base, update []*metapb.StoreLabel) []*metapb.StoreLabel {
	merged := slices.Clone(base)
	for _, l := range update {
		i := slices.IndexFunc(merged, func(m *metapb.StoreLabel) bool { return m.GetKey() == l.GetKey() })
		if i >= 0 {
			merged[i] = l
		} else {
			merged = append(merged, l)
		}
	}
	return merged
}

// getStore returns the store with id, or an error the client understands.
func (c *cluster) getStore(id uint64) (*storeInfo, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.bootstrapped {
		return nil, ErrNotBootstrapped
	}
	s, ok := c.stores[id]
	if !ok {
		return nil, storeNotFound(id)
	}
	return s, nil
}

// allStores returns every store, ordered by ID.
func (c *cluster) allStores(excludeTombstones bool) []*storeInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	result := make([]*storeInfo, 0, len(c.stores))
	for _, s := range c.stores {
		if excludeTombstones && s.meta.GetNodeState() == metapb.NodeState_Removed {
			continue
		}
		result = append(result, s)
	}
	slices.SortFunc(result, func(a, b *storeInfo) int { return cmpUint64(a.meta.GetId(), b.meta.GetId()) })
	return result
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// storeHeartbeat records a store's statistics.
func (c *cluster) storeHeartbeat(stats *pdpb.StoreStats) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.stores[stats.GetStoreId()]
	if !ok {
		return fmt.Errorf("store %d not found: %w", stats.GetStoreId(), ErrStoreNotFound)
	}
	if s.meta.GetNodeState() == metapb.NodeState_Removed {
		return ErrStoreTombstone
	}
	c.stores[stats.GetStoreId()] = &storeInfo{meta: s.meta, stats: stats, lastHeartbeat: c.now(), minResolvedTS: s.minResolvedTS}
	return nil
}

// processRegionHeartbeat applies a region report. Following PD, a report is
// stale (and rejected) if its epoch is older than the region PD holds for the
// same ID, its term is behind, or it overlaps a region with a newer version.
// Accepted reports replace every region they overlap.
func (c *cluster) processRegionHeartbeat(ctx context.Context, r *regionInfo) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	origin := c.regionsByID[r.meta.GetId()]
	overlaps := c.tree.overlaps(r.startKey(), r.endKey())
	if err := checkStale(r, origin, overlaps); err != nil {
		return err
	}
	if origin != nil && !metaChanged(origin, r) {
		c.replaceStatsLocked(origin, r)
		return nil
	}
	if err := c.saveRegion(ctx, r); err != nil {
		return err
	}
	for _, o := range overlaps {
		if o.meta.GetId() != r.meta.GetId() {
			if err := c.storage.remove(ctx, c.storage.regionKey(o.meta.GetId())); err != nil {
				return err
			}
		}
	}
	c.insertRegionLocked(r)
	close(c.changed)
	c.changed = make(chan struct{})
	return nil
}

func checkStale(r, origin *regionInfo, overlaps []*regionInfo) error {
	for _, o := range overlaps {
		if r.meta.GetRegionEpoch().GetVersion() < o.meta.GetRegionEpoch().GetVersion() {
			return fmt.Errorf("%w: region %d version %d overlaps region %d version %d", ErrRegionStale,
				r.meta.GetId(), r.meta.GetRegionEpoch().GetVersion(), o.meta.GetId(), o.meta.GetRegionEpoch().GetVersion())
		}
	}
	if origin == nil {
		return nil
	}
	re, oe := r.meta.GetRegionEpoch(), origin.meta.GetRegionEpoch()
	termBehind := r.term > 0 && r.term < origin.term
	if termBehind || re.GetVersion() < oe.GetVersion() || re.GetConfVer() < oe.GetConfVer() {
		return fmt.Errorf("%w: region %d epoch %v term %d, origin epoch %v term %d", ErrRegionStale,
			r.meta.GetId(), re, r.term, oe, origin.term)
	}
	return nil
}

// metaChanged reports whether a report changes what PD persists: the region
// metadata or its leader.
func metaChanged(origin, r *regionInfo) bool {
	return !proto.Equal(origin.meta, r.meta) || origin.leader.GetId() != r.leader.GetId()
}

// replaceStatsLocked swaps in a report that changes only statistics, without
// a durable write.
func (c *cluster) replaceStatsLocked(origin, r *regionInfo) {
	c.tree.remove(origin)
	c.insertRegionLocked(r)
}

func (c *cluster) saveRegion(ctx context.Context, r *regionInfo) error {
	return c.storage.saveProto(ctx, c.storage.regionKey(r.meta.GetId()),
		&pdpb.Region{Region: r.meta, Leader: r.leader})
}

// insertRegionLocked puts r in both indexes, dropping every region it
// overlaps (including an older version of itself).
func (c *cluster) insertRegionLocked(r *regionInfo) {
	if old := c.regionsByID[r.meta.GetId()]; old != nil {
		c.tree.remove(old)
	}
	for _, o := range c.tree.overlaps(r.startKey(), r.endKey()) {
		c.tree.remove(o)
		delete(c.regionsByID, o.meta.GetId())
	}
	c.tree.insert(r)
	c.regionsByID[r.meta.GetId()] = r
}

func (c *cluster) regionByKey(key []byte) *regionInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tree.search(key)
}

func (c *cluster) prevRegion(key []byte) *regionInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tree.prev(key)
}

func (c *cluster) regionByID(id uint64) *regionInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.regionsByID[id]
}

func (c *cluster) scanRegions(start, end []byte, limit int) []*regionInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tree.scan(start, end, limit)
}

// regionsInRange returns the regions overlapping [start, end); an empty end
// is unbounded.
func (c *cluster) regionsInRange(start, end []byte) []*regionInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tree.overlaps(start, end)
}

func (c *cluster) allRegions() []*regionInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tree.all()
}

// batchScan returns the regions intersecting any of ranges, each once and in
// key order, up to limit (all if limit <= 0). With mustContainAll, a gap
// between the regions covering a range is an error.
func (c *cluster) batchScan(ranges []*pdpb.KeyRange, limit int, mustContainAll bool) ([]*regionInfo, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var result []*regionInfo
	seen := make(map[uint64]bool)
	for _, kr := range ranges {
		regions := c.tree.overlaps(kr.GetStartKey(), kr.GetEndKey())
		if mustContainAll {
			if err := checkCovers(regions, kr); err != nil {
				return nil, err
			}
		}
		for _, r := range regions {
			if seen[r.meta.GetId()] {
				continue
			}
			seen[r.meta.GetId()] = true
			result = append(result, r)
			if limit > 0 && len(result) >= limit {
				return result, nil
			}
		}
	}
	return result, nil
}

// checkCovers verifies that regions, in key order, cover kr without gaps.
func checkCovers(regions []*regionInfo, kr *pdpb.KeyRange) error {
	notAdjacent := fmt.Errorf("regions are not adjacent in range [%x, %x)", kr.GetStartKey(), kr.GetEndKey())
	if len(regions) == 0 || !regions[0].contains(kr.GetStartKey()) {
		return notAdjacent
	}
	for i := 1; i < len(regions); i++ {
		if !bytes.Equal(regions[i-1].endKey(), regions[i].startKey()) {
			return notAdjacent
		}
	}
	last := regions[len(regions)-1].endKey()
	if len(last) != 0 && (len(kr.GetEndKey()) == 0 || bytes.Compare(last, kr.GetEndKey()) < 0) {
		return notAdjacent
	}
	return nil
}

// regionCount returns how many regions PD knows.
func (c *cluster) regionCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tree.len()
}

// setMinResolvedTS records a store's resolved ts; it never moves back.
func (c *cluster) setMinResolvedTS(storeID, ts uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.stores[storeID]
	if !ok {
		return storeNotFound(storeID)
	}
	if ts > s.minResolvedTS {
		s.minResolvedTS = ts
	}
	return nil
}

// minResolvedTSByStore returns each live store's reported resolved ts.
func (c *cluster) minResolvedTSByStore() map[uint64]uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	result := make(map[uint64]uint64)
	for id, s := range c.stores {
		if s.meta.GetNodeState() != metapb.NodeState_Removed {
			result[id] = s.minResolvedTS
		}
	}
	return result
}
