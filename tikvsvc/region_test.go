package tikvsvc

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tinykv/tinykv/mvcc"
)

func TestRegionCheck(t *testing.T) {
	region := &metapb.Region{
		Id:          7,
		StartKey:    mvcc.EncodeKey([]byte("b")),
		EndKey:      mvcc.EncodeKey([]byte("m")),
		RegionEpoch: &metapb.RegionEpoch{ConfVer: 2, Version: 5},
		Peers:       []*metapb.Peer{{Id: 8, StoreId: 1}},
	}
	r := newRegions(1, region)
	good := &kvrpcpb.Context{RegionId: 7, RegionEpoch: &metapb.RegionEpoch{ConfVer: 2, Version: 5}, Peer: region.Peers[0]}
	for _, tc := range []struct {
		name  string
		ctx   *kvrpcpb.Context
		check func(*testing.T, *kvrpcpb.Context)
	}{
		{"valid", good, func(t *testing.T, ctx *kvrpcpb.Context) {
			if got, err := r.Check(ctx); err != nil || got != region {
				t.Fatalf("got %v, %v", got, err)
			}
		}},
		{"other store", &kvrpcpb.Context{RegionId: 7, Peer: &metapb.Peer{StoreId: 9}}, func(t *testing.T, ctx *kvrpcpb.Context) {
			if _, err := r.Check(ctx); err.GetStoreNotMatch().GetActualStoreId() != 1 {
				t.Fatalf("got %v", err)
			}
		}},
		{"unknown region", &kvrpcpb.Context{RegionId: 99}, func(t *testing.T, ctx *kvrpcpb.Context) {
			if _, err := r.Check(ctx); err.GetRegionNotFound().GetRegionId() != 99 {
				t.Fatalf("got %v", err)
			}
		}},
		{"stale version", &kvrpcpb.Context{RegionId: 7, RegionEpoch: &metapb.RegionEpoch{ConfVer: 2, Version: 4}}, func(t *testing.T, ctx *kvrpcpb.Context) {
			_, err := r.Check(ctx)
			if current := err.GetEpochNotMatch().GetCurrentRegions(); len(current) != 1 || current[0].GetId() != 7 {
				t.Fatalf("got %v", err)
			}
		}},
		{"missing epoch", &kvrpcpb.Context{RegionId: 7}, func(t *testing.T, ctx *kvrpcpb.Context) {
			if _, err := r.Check(ctx); err.GetEpochNotMatch() == nil {
				t.Fatalf("got %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, tc.ctx) })
	}
	for key, inside := range map[string]bool{"a": false, "b": true, "c": true, "l\xff": true, "m": false, "z": false} {
		if err := checkTxnKeys(region, []byte(key)); (err == nil) != inside {
			t.Errorf("key %q: in region %v, error %v", key, inside, err)
		} else if err != nil && string(err.GetKeyNotInRegion().GetKey()) != key {
			t.Errorf("key %q: key_not_in_region names %q", key, err.GetKeyNotInRegion().GetKey())
		}
	}
	if err := entryTooLarge(7, maxEntrySize+1); err.GetRaftEntryTooLarge().GetEntrySize() != maxEntrySize+1 {
		t.Fatalf("entry too large: %v", err)
	}
	if err := entryTooLarge(7, maxEntrySize); err != nil {
		t.Fatalf("entry at the limit refused: %v", err)
	}
}
