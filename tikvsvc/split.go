package tikvsvc

import (
	"context"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// SplitRegion answers a split request without splitting: the standalone
// store serves one region, and until the replicated store can split, an
// empty region list is the protocol's valid "nothing split" answer (the
// client keeps its cached region). Split keys must still lie in the region.
func (s *Service) SplitRegion(ctx context.Context, req *kvrpcpb.SplitRegionRequest) (*kvrpcpb.SplitRegionResponse, error) {
	region, regionErr := s.regions.check(req.GetContext())
	if regionErr == nil {
		regionErr = checkTxnKeys(region, req.GetSplitKeys()...)
	}
	if regionErr != nil {
		return &kvrpcpb.SplitRegionResponse{RegionError: regionErr}, nil
	}
	return &kvrpcpb.SplitRegionResponse{}, nil
}
