package copr

import (
	"context"
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// Coprocessor request types (coprocessor.Request.Tp), as TiDB numbers them.
const (
	ReqTypeDAG      = 103
	ReqTypeAnalyze  = 104
	ReqTypeChecksum = 105
)

// ScanFunc reads committed data the way KvScan does: it honours start_ts,
// isolation level, resolved/committed locks from the request context, and
// reports a blocking lock as ScanResponse.error or as a KvPair error.
type ScanFunc func(ctx context.Context, req *kvrpcpb.ScanRequest) (*kvrpcpb.ScanResponse, error)

// Handle executes one coprocessor request (tp 103 DAG, 104 Analyze, 105
// Checksum). It never panics: a panic raised by a bug or by a malformed
// request is turned into Response.OtherError.
func Handle(ctx context.Context, scan ScanFunc, req *coprocessor.Request) (resp *coprocessor.Response) {
	defer func() {
		if r := recover(); r != nil {
			resp = &coprocessor.Response{OtherError: fmt.Sprintf("coprocessor panic: %v", r)}
		}
	}()
	if ctx == nil {
		ctx = context.Background()
	}
	p := scanParams{ctx: ctx, scan: scan, reqCtx: req.GetContext(), startTS: req.GetStartTs(), pagingSize: req.GetPagingSize()}
	switch req.GetTp() {
	case ReqTypeDAG:
		return handleDAG(p, req)
	case ReqTypeAnalyze:
		return handleAnalyze(p, req)
	case ReqTypeChecksum:
		return handleChecksum(p, req)
	default:
		return &coprocessor.Response{OtherError: fmt.Sprintf("unsupported coprocessor request type %d", req.GetTp())}
	}
}

// errorResponse maps a failure to the response field TiDB expects for it.
func errorResponse(err error) *coprocessor.Response {
	var locked *lockedError
	if errors.As(err, &locked) {
		return &coprocessor.Response{Locked: locked.lock}
	}
	var region *regionError
	if errors.As(err, &region) {
		return &coprocessor.Response{RegionError: region.err}
	}
	return &coprocessor.Response{OtherError: err.Error()}
}

// isStorageFailure reports whether err came from reading the data rather
// than from evaluating it.
func isStorageFailure(err error) bool {
	var (
		locked  *lockedError
		region  *regionError
		storage *storageError
	)
	return errors.As(err, &locked) || errors.As(err, &region) || errors.As(err, &storage)
}
