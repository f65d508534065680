package tikvsvc

import (
	"bytes"
	"context"
	"sync"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tinykv/tinykv/mvcc"
)

// RegionView is the service's view of the regions its store serves.
type RegionView interface {
	// Check validates a request context before the request is served and
	// returns the region it addresses, or the region error to answer. Region
	// keys are memcomparable-encoded, as PD and clients see them.
	Check(req *kvrpcpb.Context) (*metapb.Region, *errorpb.Error)
	// Led returns the regions whose writes this store serves (it leads
	// them), for background work such as GC.
	Led(ctx context.Context) []*metapb.Region
}

// staticRegions is a fixed set of regions, all served by this store: the
// standalone store's view.
type staticRegions struct {
	storeID uint64

	mu sync.RWMutex
	// byID holds the regions this store has a peer of. Region keys are
	// memcomparable-encoded, as PD and clients see them.
	byID map[uint64]*metapb.Region
}

func newRegions(storeID uint64, served ...*metapb.Region) *staticRegions {
	r := &staticRegions{storeID: storeID, byID: make(map[uint64]*metapb.Region)}
	for _, region := range served {
		r.byID[region.GetId()] = region
	}
	return r
}

// Led returns the served regions.
func (r *staticRegions) Led(context.Context) []*metapb.Region {
	r.mu.RLock()
	defer r.mu.RUnlock()
	result := make([]*metapb.Region, 0, len(r.byID))
	for _, region := range r.byID {
		result = append(result, region)
	}
	return result
}

// Check validates a request context against the fixed regions, epochs
// matched exactly.
func (r *staticRegions) Check(ctx *kvrpcpb.Context) (*metapb.Region, *errorpb.Error) {
	if peer := ctx.GetPeer(); peer != nil && peer.GetStoreId() != r.storeID {
		return nil, &errorpb.Error{
			Message:       "store not match",
			StoreNotMatch: &errorpb.StoreNotMatch{RequestStoreId: peer.GetStoreId(), ActualStoreId: r.storeID},
		}
	}
	r.mu.RLock()
	region, ok := r.byID[ctx.GetRegionId()]
	r.mu.RUnlock()
	if !ok {
		return nil, &errorpb.Error{
			Message:        "region not found",
			RegionNotFound: &errorpb.RegionNotFound{RegionId: ctx.GetRegionId()},
		}
	}
	want, got := region.GetRegionEpoch(), ctx.GetRegionEpoch()
	if got.GetVersion() != want.GetVersion() || got.GetConfVer() != want.GetConfVer() {
		return nil, &errorpb.Error{
			Message:       "epoch not match",
			EpochNotMatch: &errorpb.EpochNotMatch{CurrentRegions: []*metapb.Region{proto.Clone(region).(*metapb.Region)}},
		}
	}
	return region, nil
}

// checkTxnKeys answers key_not_in_region for the first transactional (raw,
// unencoded) key outside the region.
func checkTxnKeys(region *metapb.Region, keys ...[]byte) *errorpb.Error {
	if coversAll(region) {
		return nil
	}
	for _, key := range keys {
		if !inRegion(region, mvcc.EncodeKey(key)) {
			return keyNotInRegion(region, key)
		}
	}
	return nil
}

// checkRawKeys is checkTxnKeys for raw keys, which region bounds hold as is
// in API V1.
func checkRawKeys(region *metapb.Region, keys ...[]byte) *errorpb.Error {
	for _, key := range keys {
		if !inRegion(region, key) {
			return keyNotInRegion(region, key)
		}
	}
	return nil
}

func coversAll(region *metapb.Region) bool {
	return len(region.GetStartKey()) == 0 && len(region.GetEndKey()) == 0
}

func inRegion(region *metapb.Region, key []byte) bool {
	return bytes.Compare(key, region.GetStartKey()) >= 0 &&
		(len(region.GetEndKey()) == 0 || bytes.Compare(key, region.GetEndKey()) < 0)
}

func keyNotInRegion(region *metapb.Region, key []byte) *errorpb.Error {
	return &errorpb.Error{
		Message: "key not in region",
		KeyNotInRegion: &errorpb.KeyNotInRegion{
			Key: key, RegionId: region.GetId(), StartKey: region.GetStartKey(), EndKey: region.GetEndKey(),
		},
	}
}

// regionContext addresses region's peer on storeID as a client would.
func regionContext(region *metapb.Region, storeID uint64) *kvrpcpb.Context {
	ctx := &kvrpcpb.Context{RegionId: region.GetId(), RegionEpoch: region.GetRegionEpoch()}
	for _, p := range region.GetPeers() {
		if p.GetStoreId() == storeID {
			ctx.Peer = p
		}
	}
	return ctx
}

// rawRegionRange decodes a region's memcomparable bounds to raw keys.
func rawRegionRange(region *metapb.Region) (start, end []byte, err error) {
	if len(region.GetStartKey()) > 0 {
		if start, err = mvcc.DecodeKey(region.GetStartKey()); err != nil {
			return nil, nil, err
		}
	}
	if len(region.GetEndKey()) > 0 {
		if end, err = mvcc.DecodeKey(region.GetEndKey()); err != nil {
			return nil, nil, err
		}
	}
	return start, end, nil
}
