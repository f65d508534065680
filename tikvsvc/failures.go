package tikvsvc

import (
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/storage"
)

// splitRegionError separates a failure from storage that carries a region
// error (a *storage.RegionError: not leader, epoch not match, ...), returned
// as the errorpb.Error for the response's region_error, from any other
// failure, returned as err for the handler to report as it reports storage
// failures. Every handler that reaches storage answers through it, so a
// region error always reaches the client as a region error, alone.
func splitRegionError(err error) (*errorpb.Error, error) {
	if regionErr := storage.AsRegionError(err); regionErr != nil {
		return regionErr, nil
	}
	return nil, err
}

// answer is a handler's response for the outcome of its storage work: resp
// when err is nil; otherwise failed with what splitRegionError makes of
// err, either a region error or another failure, never both. failed builds
// the handler's response for either, as txnCall's does.
func answer[Resp any](resp Resp, err error, failed func(*errorpb.Error, error) Resp) Resp {
	if err == nil {
		return resp
	}
	return failed(splitRegionError(err))
}

// errString is a failure as the message of a response's error string, ""
// without one.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// abortError is a failure as a key error whose abort carries the message,
// nil without one.
func abortError(err error) *kvrpcpb.KeyError {
	if err == nil {
		return nil
	}
	return &kvrpcpb.KeyError{Abort: err.Error()}
}

// abortPairs is how the raw reads that return pairs report a failure: one
// pair carrying abortError; nil without a failure.
func abortPairs(err error) []*kvrpcpb.KvPair {
	if err == nil {
		return nil
	}
	return []*kvrpcpb.KvPair{{Error: abortError(err)}}
}
