package raftstore

import "github.com/pingcap/kvproto/pkg/raft_serverpb"

// Transport carries raft messages to the stores of their to_peer. Send must
// not block on the network: it queues the message or fails at once. A
// failed send is reported to raft as the peer being unreachable; a queued
// message may still be lost, which raft tolerates.
type Transport interface {
	Send(msg *raft_serverpb.RaftMessage) error
}
