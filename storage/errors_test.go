package storage_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/storage"
)

// TestAsRegionErrorThroughWrapping: the errorpb.Error of a RegionError is
// found however the error is wrapped or joined, and an error chain without
// one gives nil.
func TestAsRegionErrorThroughWrapping(t *testing.T) {
	notLeader := &errorpb.Error{
		Message:   "peer is not leader",
		NotLeader: &errorpb.NotLeader{RegionId: 3, Leader: &metapb.Peer{Id: 5, StoreId: 2}},
	}
	regionErr := &storage.RegionError{Err: notLeader}
	for name, err := range map[string]error{
		"bare":    regionErr,
		"wrapped": fmt.Errorf("mvcc: prewrite %q: %w", "k", regionErr),
		"twice":   fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", regionErr)),
		"joined":  errors.Join(errors.New("other"), regionErr),
	} {
		require.Same(t, notLeader, storage.AsRegionError(err), name)
	}
	require.Contains(t, regionErr.Error(), "peer is not leader")
	for name, err := range map[string]error{
		"nil":   nil,
		"plain": errors.New("disk on fire"),
		"other": fmt.Errorf("wrapped: %w", errors.New("disk on fire")),
	} {
		require.Nil(t, storage.AsRegionError(err), name)
	}
}
