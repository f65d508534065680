package tikvsvc

import (
	"context"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/tinykv/tinykv/tikvsvc/copr"
)

// Coprocessor runs a pushed-down request (DAG, Analyze, Checksum) over the
// region's data at start_ts, reading through the same scan as KvScan so
// that locks, isolation and max_ts are honoured exactly as for reads. Each
// scan carries the request's context, and a region error from storage
// comes back through KvScan's region_error as the response's region_error.
func (s *Service) Coprocessor(ctx context.Context, req *coprocessor.Request) (*coprocessor.Response, error) {
	if _, regionErr := s.regions.Check(req.GetContext()); regionErr != nil {
		return &coprocessor.Response{RegionError: regionErr}, nil
	}
	return copr.Handle(ctx, s.KvScan, req), nil
}
