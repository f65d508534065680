package tikvsvc

import (
	"context"
	"testing"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
)

// TestFlowMeterAttributesFlowByRegion: writes and reads through a metered
// storage count, with their key and value bytes, in the region holding the
// key, and taking a region's flow resets it.
func TestFlowMeterAttributesFlowByRegion(t *testing.T) {
	e, err := engine.Open(t.TempDir(), engine.Options{InMemory: true, MemTableSize: engine.MinMemTableSize, LockRank: mvcc.LockRank})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	meter := newFlowMeter([]*metapb.Region{
		{Id: 2, StartKey: []byte("m")},
		{Id: 1, EndKey: []byte("m")},
	})
	metered := meteredStorage{Storage: storage.NewStandalone(e), meter: meter}
	ctx := context.Background()
	err = metered.Write(ctx, nil, []storage.Modify{
		{CF: engine.CfDefault, Key: []byte("a"), Value: []byte("123")},
		{CF: engine.CfWrite, Key: []byte("b"), Value: []byte("4")},
		{CF: engine.CfDefault, Key: []byte("x"), Value: []byte("56789")},
		{CF: engine.CfLock, Key: []byte("y"), Delete: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := meter.take(1), (flowCounts{writtenBytes: 6, writtenKeys: 2}); got != want {
		t.Fatalf("region 1 after the write: %+v, want %+v", got, want)
	}
	if got, want := meter.take(2), (flowCounts{writtenBytes: 7, writtenKeys: 2}); got != want {
		t.Fatalf("region 2 after the write: %+v, want %+v", got, want)
	}

	snap, err := metered.Snapshot(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if v, err := snap.Get(engine.CfDefault, []byte("a")); err != nil || string(v) != "123" {
		t.Fatalf("get a: %q %v", v, err)
	}
	if v, err := snap.Get(engine.CfDefault, []byte("nope")); err != nil || v != nil {
		t.Fatalf("get a missing key: %q %v", v, err)
	}
	it := snap.NewIterator(engine.CfDefault, engine.IterOptions{})
	for it.Rewind(); it.Valid(); it.Next() {
		if _, err := it.Value(); err != nil {
			t.Fatal(err)
		}
	}
	it.Close()
	if got, want := meter.take(1), (flowCounts{readBytes: 8, readKeys: 2}); got != want {
		t.Fatalf("region 1 after the reads: %+v, want %+v", got, want)
	}
	if got, want := meter.take(2), (flowCounts{readBytes: 6, readKeys: 1}); got != want {
		t.Fatalf("region 2 after the reads: %+v, want %+v", got, want)
	}
	if got := meter.take(1); got != (flowCounts{}) {
		t.Fatalf("a taken flow starts again from zero: %+v", got)
	}
}
