package tikvsvc

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
)

// TestMaxTSSyncGenerations: a region is synced only by a sync started in
// its current leadership; one started before a loss and regain of the
// leadership does not count.
func TestMaxTSSyncGenerations(t *testing.T) {
	m := newMaxTSSync()
	require.NotNil(t, m.check(1).GetMaxTimestampNotSynced(), "a region never led is not synced")
	gen, needs := m.led(1)
	require.True(t, needs)
	require.NotNil(t, m.check(1).GetMaxTimestampNotSynced())

	m.lost(1)
	regained, needs := m.led(1)
	require.True(t, needs)
	m.markSynced(1, gen)
	require.NotNil(t, m.check(1).GetMaxTimestampNotSynced(), "a sync of the earlier leadership does not count")

	m.markSynced(1, regained)
	require.Nil(t, m.check(1))
	_, needs = m.led(1)
	require.False(t, needs, "a synced region needs no sync while it is led")
	m.lost(1)
	require.NotNil(t, m.check(1).GetMaxTimestampNotSynced())
	require.Nil(t, (*maxTSSync)(nil).check(1), "a standalone store is always synced")
}

// TestPrewriteWaitsForMaxTSSync: async-commit and 1PC prewrites on a region
// whose max_ts is not synced answer MaxTimestampNotSynced, as TiKV does; a
// plain prewrite goes through; once synced, async commit goes through.
func TestPrewriteWaitsForMaxTSSync(t *testing.T) {
	e, err := engine.Open(t.TempDir(), engine.Options{InMemory: true, MemTableSize: engine.MinMemTableSize, LockRank: mvcc.LockRank})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	region := &metapb.Region{Id: 4, RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: 1}, Peers: []*metapb.Peer{{Id: 5, StoreId: 1}}}
	sync := newMaxTSSync()
	svc, err := NewService(ServiceConfig{StoreID: 1, Regions: []*metapb.Region{region}, Storage: storage.NewStandalone(e),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ImportDir: t.TempDir(), maxTS: sync})
	require.NoError(t, err)
	kvctx := &kvrpcpb.Context{RegionId: 4, RegionEpoch: region.RegionEpoch, Peer: region.Peers[0]}
	prewrite := func(startTS uint64, asyncCommit, onePC bool) *kvrpcpb.PrewriteResponse {
		key := []byte{byte('a' + startTS)}
		resp, err := svc.KvPrewrite(context.Background(), &kvrpcpb.PrewriteRequest{
			Context: kvctx, PrimaryLock: key, StartVersion: startTS, LockTtl: 1000,
			Mutations:      []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_Put, Key: key, Value: []byte("v")}},
			UseAsyncCommit: asyncCommit, TryOnePc: onePC, Secondaries: [][]byte{},
		})
		require.NoError(t, err)
		return resp
	}
	generation, _ := sync.led(4)
	require.NotNil(t, prewrite(1, true, false).GetRegionError().GetMaxTimestampNotSynced())
	require.NotNil(t, prewrite(2, false, true).GetRegionError().GetMaxTimestampNotSynced())
	plain := prewrite(3, false, false)
	require.Nil(t, plain.GetRegionError())
	require.Empty(t, plain.GetErrors())

	sync.markSynced(4, generation)
	async := prewrite(4, true, false)
	require.Nil(t, async.GetRegionError())
	require.Empty(t, async.GetErrors())
	require.NotZero(t, async.GetMinCommitTs())
}
