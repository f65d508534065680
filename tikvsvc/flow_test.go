package tikvsvc

import (
	"context"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
)

// TestFlowMeterAttributesFlowByRegion: writes and reads through a metered
// storage count, with their key and value bytes, in the region their
// request context addresses; work that serves no request counts in no
// region, and taking a region's flow resets it.
func TestFlowMeterAttributesFlowByRegion(t *testing.T) {
	e, err := engine.Open(t.TempDir(), engine.Options{InMemory: true, MemTableSize: engine.MinMemTableSize, LockRank: mvcc.LockRank})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	meter := newFlowMeter()
	metered := meteredStorage{Storage: storage.NewStandalone(e), meter: meter}
	ctx := context.Background()
	region1, region2 := &kvrpcpb.Context{RegionId: 1}, &kvrpcpb.Context{RegionId: 2}
	for _, w := range []struct {
		req  *kvrpcpb.Context
		mods []storage.Modify
	}{
		{region1, []storage.Modify{{CF: engine.CfDefault, Key: []byte("a"), Value: []byte("123")}, {CF: engine.CfWrite, Key: []byte("b"), Value: []byte("4")}}},
		{region2, []storage.Modify{{CF: engine.CfDefault, Key: []byte("x"), Value: []byte("56789")}, {CF: engine.CfLock, Key: []byte("y"), Delete: true}}},
		{nil, []storage.Modify{{CF: engine.CfDefault, Key: []byte("q"), Value: []byte("0")}}},
	} {
		if err := metered.Write(ctx, w.req, w.mods); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := meter.take(1), (flowCounts{writtenBytes: 6, writtenKeys: 2}); got != want {
		t.Fatalf("region 1 after the write: %+v, want %+v", got, want)
	}
	if got, want := meter.take(2), (flowCounts{writtenBytes: 7, writtenKeys: 2}); got != want {
		t.Fatalf("region 2 after the write: %+v, want %+v", got, want)
	}

	snap1, err := metered.Snapshot(ctx, region1)
	if err != nil {
		t.Fatal(err)
	}
	defer snap1.Close()
	if v, err := snap1.Get(engine.CfDefault, []byte("a")); err != nil || string(v) != "123" {
		t.Fatalf("get a: %q %v", v, err)
	}
	if v, err := snap1.Get(engine.CfDefault, []byte("nope")); err != nil || v != nil {
		t.Fatalf("get a missing key: %q %v", v, err)
	}
	snap2, err := metered.Snapshot(ctx, region2)
	if err != nil {
		t.Fatal(err)
	}
	defer snap2.Close()
	it := snap2.NewIterator(engine.CfDefault, engine.IterOptions{LowerBound: []byte("b")})
	for it.Rewind(); it.Valid(); it.Next() {
		if _, err := it.Value(); err != nil {
			t.Fatal(err)
		}
	}
	it.Close()
	if got, want := meter.take(1), (flowCounts{readBytes: 4, readKeys: 1}); got != want {
		t.Fatalf("region 1 after the reads: %+v, want %+v", got, want)
	}
	if got, want := meter.take(2), (flowCounts{readBytes: 8, readKeys: 2}); got != want {
		t.Fatalf("region 2 after the reads: %+v, want %+v", got, want)
	}
	if got := meter.take(1); got != (flowCounts{}) {
		t.Fatalf("a taken flow starts again from zero: %+v", got)
	}
}
