package raftstore

import (
	"errors"
	"io"
	"log/slog"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"github.com/tinykv/tinykv/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultMaxSnapshotSize is the largest snapshot a RaftServer reassembles
// unless told otherwise: 1 GiB.
const DefaultMaxSnapshotSize = 1 << 30

// RaftServer receives what other stores' GRPCTransports send, on the Raft,
// BatchRaft and Snapshot RPCs of tikvpb.Tikv, and hands it to a Store. Its
// methods have the signatures of tikvpb.TikvServer's, so that the store's
// Tikv service can delegate those three to it.
type RaftServer struct {
	store           *Store
	log             *slog.Logger
	maxSnapshotSize int
}

// RaftServerOption adjusts a RaftServer.
type RaftServerOption func(*RaftServer)

// WithMaxSnapshotSize bounds the data of one received snapshot (default
// DefaultMaxSnapshotSize); a larger one fails its stream with
// ResourceExhausted. Non-positive sizes are ignored.
func WithMaxSnapshotSize(bytes int) RaftServerOption {
	return func(s *RaftServer) {
		if bytes > 0 {
			s.maxSnapshotSize = bytes
		}
	}
}

// NewRaftServer returns a server that delivers messages to store.
func NewRaftServer(store *Store, log *slog.Logger, opts ...RaftServerOption) *RaftServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &RaftServer{store: store, log: log, maxSnapshotSize: DefaultMaxSnapshotSize}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Raft receives raft messages one at a time until the sender closes the
// stream, then answers Done.
func (s *RaftServer) Raft(stream tikvpb.Tikv_RaftServer) error {
	return serveStream(stream.Recv, s.handle, stream.SendAndClose)
}

// BatchRaft receives batches of raft messages until the sender closes the
// stream, then answers Done.
func (s *RaftServer) BatchRaft(stream tikvpb.Tikv_BatchRaftServer) error {
	return serveStream(stream.Recv, func(batch *tikvpb.BatchRaftMessage) {
		for _, msg := range batch.GetMsgs() {
			s.handle(msg)
		}
	}, stream.SendAndClose)
}

// serveStream receives from a client stream until the client closes its
// side, handing each message to handle, then answers Done. A message the
// store refuses does not end the stream.
func serveStream[T any](recv func() (T, error), handle func(T), closeWith func(*raft_serverpb.Done) error) error {
	for {
		msg, err := recv()
		if errors.Is(err, io.EOF) {
			return closeWith(&raft_serverpb.Done{})
		}
		if err != nil {
			return err
		}
		handle(msg)
	}
}

// handle delivers one message to the store and logs a refusal: at warn for
// a message meant for another store (the sender's address for it is
// wrong), at debug otherwise.
func (s *RaftServer) handle(msg *raft_serverpb.RaftMessage) {
	err := s.store.HandleRaftMessage(msg)
	if err == nil {
		return
	}
	attrs := []any{"region-id", msg.GetRegionId(), "from-peer", msg.GetFromPeer(), "to-peer", msg.GetToPeer(), "err", err}
	if storage.AsRegionError(err).GetStoreNotMatch() != nil {
		s.log.Warn("raft message for another store", attrs...)
		return
	}
	s.log.Debug("raft message refused", attrs...)
}

// Snapshot receives one snapshot message: a first chunk with the message
// (its snapshot's data left out), then chunks of the data, which is put
// back into the message before the store gets it. It answers Done when the
// sender closes the stream.
func (s *RaftServer) Snapshot(stream tikvpb.Tikv_SnapshotServer) error {
	msg, err := s.receiveSnapshot(stream)
	if err != nil {
		return err
	}
	s.log.Debug("received a snapshot", "region-id", msg.GetRegionId(), "from-peer", msg.GetFromPeer(),
		"bytes", len(msg.GetMessage().GetSnapshot().GetData()))
	s.handle(msg)
	return stream.SendAndClose(&raft_serverpb.Done{})
}

// receiveSnapshot reassembles a snapshot message from its chunks (data left
// in the message itself comes first, so an unchunked snapshot is taken
// too). A stream not shaped as the transport sends it fails with
// InvalidArgument, one whose data exceeds the limit with ResourceExhausted.
func (s *RaftServer) receiveSnapshot(stream tikvpb.Tikv_SnapshotServer) (*raft_serverpb.RaftMessage, error) {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, status.Error(codes.InvalidArgument, "raftstore: empty snapshot stream")
	}
	if err != nil {
		return nil, err
	}
	msg := first.GetMessage()
	snap := msg.GetMessage().GetSnapshot()
	if snap == nil || msg.GetMessage().GetMsgType() != eraftpb.MessageType_MsgSnapshot {
		return nil, status.Error(codes.InvalidArgument, "raftstore: the first snapshot chunk carries no snapshot message")
	}
	data, err := s.appendChunk(snap.GetData(), first.GetData())
	if err != nil {
		return nil, err
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if chunk.GetMessage() != nil {
			return nil, status.Error(codes.InvalidArgument, "raftstore: a snapshot chunk after the first carries a message")
		}
		if data, err = s.appendChunk(data, chunk.GetData()); err != nil {
			return nil, err
		}
	}
	snap.Data = data
	return msg, nil
}

// appendChunk adds a chunk's data to the snapshot's, within the limit.
func (s *RaftServer) appendChunk(data, chunk []byte) ([]byte, error) {
	if len(chunk) > s.maxSnapshotSize-len(data) {
		return nil, status.Errorf(codes.ResourceExhausted, "raftstore: snapshot larger than %d bytes", s.maxSnapshotSize)
	}
	return append(data, chunk...), nil
}
