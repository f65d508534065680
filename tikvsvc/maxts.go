package tikvsvc

import (
	"sync"

	"github.com/pingcap/kvproto/pkg/errorpb"
)

// maxTSSync tracks, per region this store leads, whether max_ts was raised
// to a fresh TSO timestamp since this store became its leader (TiKV's
// max_ts_sync_status). Until then the region answers async-commit and 1PC
// prewrites with MaxTimestampNotSynced: reads the previous leader served
// at later timestamps are not reflected in this store's max_ts, and a
// commit timestamp computed from it could fall below them.
type maxTSSync struct {
	mu sync.Mutex
	// regions holds the regions led here. Invariant: a sync started at
	// generation g marks a region synced only if its generation is still g
	// (no loss of leadership in between).
	regions map[uint64]*regionMaxTS
	nextGen uint64
}

type regionMaxTS struct {
	generation uint64
	synced     bool
}

func newMaxTSSync() *maxTSSync { return &maxTSSync{regions: map[uint64]*regionMaxTS{}} }

// led records that this store leads region id; it returns the generation
// a sync must present to markSynced, and false when the region is synced
// already.
func (m *maxTSSync) led(id uint64) (generation uint64, needsSync bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.regions[id]
	if !ok {
		m.nextGen++
		r = &regionMaxTS{generation: m.nextGen}
		m.regions[id] = r
	}
	return r.generation, !r.synced
}

// lost records that this store no longer leads region id.
func (m *maxTSSync) lost(id uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.regions, id)
}

// markSynced marks region id synced if it is still led at generation.
func (m *maxTSSync) markSynced(id, generation uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.regions[id]; ok && r.generation == generation {
		r.synced = true
	}
}

// check answers MaxTimestampNotSynced for a region whose max_ts is not
// synced; a nil maxTSSync (the standalone store, which has no other
// leader) is always synced.
func (m *maxTSSync) check(id uint64) *errorpb.Error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.regions[id]; ok && r.synced {
		return nil
	}
	return &errorpb.Error{Message: "max timestamp not synced", MaxTimestampNotSynced: &errorpb.MaxTimestampNotSynced{}}
}
