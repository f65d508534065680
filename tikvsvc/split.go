package tikvsvc

import (
	"bytes"
	"context"
	"slices"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
)

// regionSplitter is a RegionView that can split regions.
type regionSplitter interface {
	SplitRegion(ctx context.Context, req *kvrpcpb.Context, keys [][]byte) ([]*metapb.Region, error)
}

// SplitRegion splits the region at the given keys, as TiKV does: the keys
// are sorted and deduplicated, encoded unless the request is raw, and must
// lie inside the region (a key at the region's start is dropped). The
// answer lists the regions the split made, left to right; a store whose
// regions cannot split (the standalone store) answers an empty list, the
// protocol's valid "nothing split" answer.
func (s *Service) SplitRegion(ctx context.Context, req *kvrpcpb.SplitRegionRequest) (*kvrpcpb.SplitRegionResponse, error) {
	region, regionErr := s.regions.Check(req.GetContext())
	keys := splitKeys(req)
	if regionErr == nil {
		if req.GetIsRawKv() {
			regionErr = checkRawKeys(region, req.GetSplitKeys()...)
		} else {
			regionErr = checkTxnKeys(region, req.GetSplitKeys()...)
		}
	}
	if regionErr != nil {
		return &kvrpcpb.SplitRegionResponse{RegionError: regionErr}, nil
	}
	keys = slices.DeleteFunc(keys, func(k []byte) bool { return bytes.Equal(k, region.GetStartKey()) })
	splitter, ok := s.regions.(regionSplitter)
	if !ok || len(keys) == 0 {
		return &kvrpcpb.SplitRegionResponse{}, nil
	}
	regions, err := splitter.SplitRegion(ctx, req.GetContext(), keys)
	if err != nil {
		if regionErr := storage.AsRegionError(err); regionErr != nil {
			return &kvrpcpb.SplitRegionResponse{RegionError: regionErr}, nil
		}
		return nil, err
	}
	resp := &kvrpcpb.SplitRegionResponse{Regions: regions}
	if len(regions) == 2 {
		resp.Left, resp.Right = regions[0], regions[1]
	}
	return resp, nil
}

// splitKeys returns the request's split keys as region bounds hold them,
// sorted and without duplicates.
func splitKeys(req *kvrpcpb.SplitRegionRequest) [][]byte {
	raw := req.GetSplitKeys()
	if len(raw) == 0 && len(req.GetSplitKey()) > 0 {
		raw = [][]byte{req.GetSplitKey()}
	}
	keys := make([][]byte, 0, len(raw))
	for _, k := range raw {
		if !req.GetIsRawKv() {
			k = mvcc.EncodeKey(k)
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, bytes.Compare)
	return slices.CompactFunc(keys, bytes.Equal)
}
