package tikvsvc

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
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

// flowMeter attributes flow to regions by the region the request context
// addresses.
type flowMeter struct {
	// flows holds a *regionFlow per region id, created on first use.
	flows sync.Map
	// unowned counts what work that serves no request read or wrote.
	unowned regionFlow
}

func newFlowMeter() *flowMeter { return &flowMeter{} }

// flowOf returns the flow of the region req addresses.
func (m *flowMeter) flowOf(req *kvrpcpb.Context) *regionFlow {
	if req.GetRegionId() == 0 {
		return &m.unowned
	}
	if f, ok := m.flows.Load(req.GetRegionId()); ok {
		return f.(*regionFlow)
	}
	f, _ := m.flows.LoadOrStore(req.GetRegionId(), &regionFlow{})
	return f.(*regionFlow)
}

// take returns and resets the flow of region id.
func (m *flowMeter) take(id uint64) flowCounts {
	if f, ok := m.flows.Load(id); ok {
		return f.(*regionFlow).take()
	}
	return flowCounts{}
}

func (f *regionFlow) wrote(size int) {
	f.writtenBytes.Add(uint64(size))
	f.writtenKeys.Add(1)
}

func (f *regionFlow) read(size int) {
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
	flow := s.meter.flowOf(req)
	for _, m := range modifies {
		flow.wrote(len(m.Key) + len(m.Value))
	}
	return nil
}

func (s meteredStorage) Snapshot(ctx context.Context, req *kvrpcpb.Context) (storage.Snapshot, error) {
	snap, err := s.Storage.Snapshot(ctx, req)
	if err != nil {
		return nil, err
	}
	return meteredSnapshot{Snapshot: snap, flow: s.meter.flowOf(req)}, nil
}

type meteredSnapshot struct {
	storage.Snapshot
	flow *regionFlow
}

func (s meteredSnapshot) Get(cf engine.CF, key []byte) ([]byte, error) {
	value, err := s.Snapshot.Get(cf, key)
	if value != nil {
		s.flow.read(len(key) + len(value))
	}
	return value, err
}

func (s meteredSnapshot) NewIterator(cf engine.CF, opts engine.IterOptions) storage.Iterator {
	return meteredIterator{Iterator: s.Snapshot.NewIterator(cf, opts), flow: s.flow}
}

// meteredIterator counts each value it reads.
type meteredIterator struct {
	storage.Iterator
	flow *regionFlow
}

func (it meteredIterator) Value() ([]byte, error) {
	value, err := it.Iterator.Value()
	if err == nil {
		it.flow.read(len(it.Key()) + len(value))
	}
	return value, err
}
