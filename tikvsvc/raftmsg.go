package tikvsvc

import (
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errNoRaft answers the raft streams of a store that runs no raftstore.
var errNoRaft = status.Error(codes.Unimplemented, "this store runs no raftstore")

// Raft receives raft messages from another store, one per stream message.
func (s *Service) Raft(stream tikvpb.Tikv_RaftServer) error {
	if s.raft == nil {
		return errNoRaft
	}
	return s.raft.Raft(stream)
}

// BatchRaft receives raft messages from another store in batches.
func (s *Service) BatchRaft(stream tikvpb.Tikv_BatchRaftServer) error {
	if s.raft == nil {
		return errNoRaft
	}
	return s.raft.BatchRaft(stream)
}

// Snapshot receives a region snapshot from another store in chunks.
func (s *Service) Snapshot(stream tikvpb.Tikv_SnapshotServer) error {
	if s.raft == nil {
		return errNoRaft
	}
	return s.raft.Snapshot(stream)
}
