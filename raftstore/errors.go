package raftstore

import (
	"errors"
	"fmt"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tinykv/tinykv/storage"
)

// ErrStopped is returned for requests to a store that is closing or closed.
var ErrStopped = errors.New("raftstore: store stopped")

// ErrNoPD is returned for a split on a store configured without a PD
// client to allocate the new regions' ids.
var ErrNoPD = errors.New("raftstore: no PD client configured")

// regionErr wraps a region problem as the storage seam carries it: callers
// find it with storage.AsRegionError and answer it in region_error.
func regionErr(err *errorpb.Error) error { return &storage.RegionError{Err: err} }

func cloneRegion(region *metapb.Region) *metapb.Region {
	return proto.Clone(region).(*metapb.Region)
}

func errNotLeader(regionID uint64, leader *metapb.Peer) *errorpb.Error {
	return &errorpb.Error{
		Message:   fmt.Sprintf("peer is not leader for region %d, leader may %v", regionID, leader),
		NotLeader: &errorpb.NotLeader{RegionId: regionID, Leader: leader},
	}
}

func errRegionNotFound(regionID uint64) *errorpb.Error {
	return &errorpb.Error{
		Message:        fmt.Sprintf("region %d is missing", regionID),
		RegionNotFound: &errorpb.RegionNotFound{RegionId: regionID},
	}
}

func errStoreNotMatch(requested, actual uint64) *errorpb.Error {
	return &errorpb.Error{
		Message:       fmt.Sprintf("store not match: to store %d, this is store %d", requested, actual),
		StoreNotMatch: &errorpb.StoreNotMatch{RequestStoreId: requested, ActualStoreId: actual},
	}
}

func errMismatchPeerID(requested, actual uint64) *errorpb.Error {
	return &errorpb.Error{
		Message:        fmt.Sprintf("mismatch peer id %d != %d", requested, actual),
		MismatchPeerId: &errorpb.MismatchPeerId{RequestPeerId: requested, StorePeerId: actual},
	}
}

func errEpochNotMatch(current *metapb.Region, requested *metapb.RegionEpoch) *errorpb.Error {
	return &errorpb.Error{
		Message: fmt.Sprintf("epoch not match: region %d is at %v, request at %v",
			current.GetId(), current.GetRegionEpoch(), requested),
		EpochNotMatch: &errorpb.EpochNotMatch{CurrentRegions: []*metapb.Region{cloneRegion(current)}},
	}
}

func errStaleCommand() *errorpb.Error {
	return &errorpb.Error{Message: "stale command", StaleCommand: &errorpb.StaleCommand{}}
}

func errKeyNotInRegion(key []byte, region *metapb.Region) *errorpb.Error {
	return &errorpb.Error{
		Message: fmt.Sprintf("key %q is not in region %d", key, region.GetId()),
		KeyNotInRegion: &errorpb.KeyNotInRegion{
			Key: key, RegionId: region.GetId(), StartKey: region.GetStartKey(), EndKey: region.GetEndKey(),
		},
	}
}

func errRaftEntryTooLarge(regionID, size uint64) *errorpb.Error {
	return &errorpb.Error{
		Message:           fmt.Sprintf("raft entry of %d bytes is too large for region %d", size, regionID),
		RaftEntryTooLarge: &errorpb.RaftEntryTooLarge{RegionId: regionID, EntrySize: size},
	}
}

func errReadIndexNotReady(regionID uint64, reason string) *errorpb.Error {
	return &errorpb.Error{
		Message:           fmt.Sprintf("read index not ready for region %d: %s", regionID, reason),
		ReadIndexNotReady: &errorpb.ReadIndexNotReady{Reason: reason, RegionId: regionID},
	}
}

// errStoreStopping answers requests the store will not serve because it is
// closing: a region-not-found, so that clients look the region up again.
func errStoreStopping(regionID uint64) *errorpb.Error {
	err := errRegionNotFound(regionID)
	err.Message = "store is stopping"
	return err
}
