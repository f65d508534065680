package storage

import (
	"errors"

	"github.com/pingcap/kvproto/pkg/errorpb"
)

// RegionError is a storage failure that the client must handle as a region
// problem (not leader, epoch not match, region not found, ...): the service
// answers it in the response's region_error field, with Err as it is, and
// the client refreshes its region cache and retries. The transaction layer
// never turns it into a key error.
type RegionError struct{ Err *errorpb.Error }

// Error describes the region error.
func (e *RegionError) Error() string { return "storage: region error: " + e.Err.String() }

// AsRegionError returns the errorpb.Error an error chain carries, or nil.
// It finds a *RegionError however deeply it is wrapped.
func AsRegionError(err error) *errorpb.Error {
	var regionErr *RegionError
	if errors.As(err, &regionErr) {
		return regionErr.Err
	}
	return nil
}
