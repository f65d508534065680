package pdsvc

import (
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/pdpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors of the placement driver. Each is wrapped with context where
// it is returned; callers branch with errors.Is.
var (
	// ErrNotBootstrapped is returned by cluster operations before Bootstrap.
	ErrNotBootstrapped = errors.New("cluster is not bootstrapped")
	// ErrAlreadyBootstrapped is returned by a second Bootstrap.
	ErrAlreadyBootstrapped = errors.New("cluster is already bootstrapped")
	// ErrStoreNotFound is returned for a store ID that PD has never seen.
	ErrStoreNotFound = errors.New("store not found")
	// ErrStoreTombstone is returned for a store that has been removed.
	ErrStoreTombstone = errors.New("store is tombstone")
	// ErrRegionStale is returned when a reported region has an older epoch than
	// the one PD knows, or overlaps a region with a newer version.
	ErrRegionStale = errors.New("region is stale")
	// ErrInvalidSplit is returned when a reported split is not a contiguous
	// sequence of regions.
	ErrInvalidSplit = errors.New("invalid split region")
	// ErrInvalidValue is returned for requests whose arguments cannot be used.
	ErrInvalidValue = errors.New("invalid value")
	// ErrTSOCount is returned for a TSO request that asks for zero timestamps
	// or for more than the logical clock can hold.
	ErrTSOCount = errors.New("invalid tso count")
	// ErrServerClosed is returned once the server is shutting down.
	ErrServerClosed = errors.New("server closed")
)

// errNotStarted is the status PD returns while it cannot serve.
var errNotStarted = status.Error(codes.Unavailable, "server not started")

// mismatchClusterID is the status PD returns for a request that names
// another cluster.
func mismatchClusterID(want, got uint64) error {
	return status.Errorf(codes.FailedPrecondition, "mismatch cluster id, need %d but got %d", want, got)
}

// header builds the success header of a response.
func (s *Server) header() *pdpb.ResponseHeader {
	return &pdpb.ResponseHeader{ClusterId: s.clusterID}
}

// errorHeader builds a header carrying an error of the given type.
func (s *Server) errorHeader(typ pdpb.ErrorType, msg string) *pdpb.ResponseHeader {
	return &pdpb.ResponseHeader{
		ClusterId: s.clusterID,
		Error:     &pdpb.Error{Type: typ, Message: msg},
	}
}

// notBootstrappedHeader is the header PD sends before Bootstrap.
func (s *Server) notBootstrappedHeader() *pdpb.ResponseHeader {
	return s.errorHeader(pdpb.ErrorType_NOT_BOOTSTRAPPED, ErrNotBootstrapped.Error())
}

// unknownHeader wraps err as an UNKNOWN header error, as PD does for
// failures that have no more specific type.
func (s *Server) unknownHeader(err error) *pdpb.ResponseHeader {
	return s.errorHeader(pdpb.ErrorType_UNKNOWN, err.Error())
}

// storeErrorHeader maps the store errors to their PD header types.
func (s *Server) storeErrorHeader(err error) *pdpb.ResponseHeader {
	switch {
	case errors.Is(err, ErrNotBootstrapped):
		return s.notBootstrappedHeader()
	case errors.Is(err, ErrStoreTombstone):
		return s.errorHeader(pdpb.ErrorType_STORE_TOMBSTONE, ErrStoreTombstone.Error())
	default:
		return s.unknownHeader(err)
	}
}

// storeNotFound formats the message client-go matches on ("invalid store ID"
// and "not found") to treat a store as gone.
func storeNotFound(id uint64) error {
	return fmt.Errorf("invalid store ID %d, not found: %w", id, ErrStoreNotFound)
}
