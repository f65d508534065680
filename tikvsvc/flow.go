package tikvsvc

import (
	"bytes"
	"context"
	"slices"
	"sync/atomic"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/storage"
)

// regionFlow counts what was written to and read from one region since the
// last region heartbeat took it, as TiKV reports in
// RegionHeartbeatRequest: every put or delete applied is a written key,
// every value read from the engine a read key, each with its key and value
// bytes.
type regionFlow struct {
	writtenBytes, writtenKeys atomic.Uint64
	readBytes, readKeys       atomic.Uint64
}

// flowCounts is a regionFlow taken for one heartbeat.
type flowCounts struct {
	writtenBytes, writtenKeys, readBytes, readKeys uint64
}

func (f *regionFlow) take() flowCounts {
	return flowCounts{
		writtenBytes: f.writtenBytes.Swap(0), writtenKeys: f.writtenKeys.Swap(0),
		readBytes: f.readBytes.Swap(0), readKeys: f.readKeys.Swap(0),
	}
}

// flowMeter attributes flow to the store's regions by key. The regions are
// fixed for the meter's life (a store serves the regions it opened with).
type flowMeter struct {
	// regions are sorted by start key; flows[i] is regions[i]'s.
	regions []*metapb.Region
	flows   []*regionFlow
	// unowned counts keys outside every region (none in a healthy store).
	unowned regionFlow
}

func newFlowMeter(regions []*metapb.Region) *flowMeter {
	sorted := slices.Clone(regions)
	slices.SortFunc(sorted, func(a, b *metapb.Region) int { return bytes.Compare(a.GetStartKey(), b.GetStartKey()) })
	m := &flowMeter{regions: sorted, flows: make([]*regionFlow, len(sorted))}
	for i := range sorted {
		m.flows[i] = &regionFlow{}
	}
	return m
}

// flowOf returns the flow of the region holding the engine key: the last
// region starting at or before it, if it ends after it.
func (m *flowMeter) flowOf(key []byte) *regionFlow {
	i, found := slices.BinarySearchFunc(m.regions, key, func(r *metapb.Region, k []byte) int {
		return bytes.Compare(r.GetStartKey(), k)
	})
	if !found {
		i--
	}
	if i < 0 || !inRegion(m.regions[i], key) {
		return &m.unowned
	}
	return m.flows[i]
}

// take returns and resets the flow of region id.
func (m *flowMeter) take(id uint64) flowCounts {
	for i, r := range m.regions {
		if r.GetId() == id {
			return m.flows[i].take()
		}
	}
	return flowCounts{}
}

func (m *flowMeter) wrote(key []byte, size int) {
	f := m.flowOf(key)
	f.writtenBytes.Add(uint64(size))
	f.writtenKeys.Add(1)
}

func (m *flowMeter) read(key []byte, size int) {
	f := m.flowOf(key)
	f.readBytes.Add(uint64(size))
	f.readKeys.Add(1)
}

// meteredStorage is a storage.Storage whose writes and reads count in a
// flowMeter.
type meteredStorage struct {
	storage.Storage
	meter *flowMeter
}

func (s meteredStorage) Write(ctx context.Context, req *kvrpcpb.Context, modifies []storage.Modify) error {
	if err := s.Storage.Write(ctx, req, modifies); err != nil {
		return err
	}
	for _, m := range modifies {
		s.meter.wrote(m.Key, len(m.Key)+len(m.Value))
	}
	return nil
}

func (s meteredStorage) Snapshot(ctx context.Context, req *kvrpcpb.Context) (storage.Snapshot, error) {
	snap, err := s.Storage.Snapshot(ctx, req)
	if err != nil {
		return nil, err
	}
	return meteredSnapshot{Snapshot: snap, meter: s.meter}, nil
}

type meteredSnapshot struct {
	storage.Snapshot
	meter *flowMeter
}

func (s meteredSnapshot) Get(cf engine.CF, key []byte) ([]byte, error) {
	value, err := s.Snapshot.Get(cf, key)
	if value != nil {
		s.meter.read(key, len(key)+len(value))
	}
	return value, err
}

func (s meteredSnapshot) NewIterator(cf engine.CF, opts engine.IterOptions) storage.Iterator {
	return meteredIterator{Iterator: s.Snapshot.NewIterator(cf, opts), meter: s.meter}
}

// meteredIterator counts each value it reads.
type meteredIterator struct {
	storage.Iterator
	meter *flowMeter
}

func (it meteredIterator) Value() ([]byte, error) {
	value, err := it.Iterator.Value()
	if err == nil {
		key := it.Key()
		it.meter.read(key, len(key)+len(value))
	}
	return value, err
}
