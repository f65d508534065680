package raft

import (
	"slices"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// None is a placeholder node ID used when there is no leader or no vote.
const None uint64 = 0

// noLimit disables a size limit.
const noLimit = ^uint64(0)

// limitSize returns the longest prefix of ents whose total size is at most
// maxSize, but always at least one entry.
func limitSize(ents []*eraftpb.Entry, maxSize uint64) []*eraftpb.Entry {
	if len(ents) == 0 || maxSize == noLimit {
		return ents
	}
	size := uint64(ents[0].Size())
	for i := 1; i < len(ents); i++ {
		size += uint64(ents[i].Size())
		if size > maxSize {
			return ents[:i:i]
		}
	}
	return ents
}

// entsSize returns the total encoded size of ents.
func entsSize(ents []*eraftpb.Entry) uint64 {
	var size uint64
	for _, e := range ents {
		size += uint64(e.Size())
	}
	return size
}

// payloadSize is the size of an entry's data, used by flow control and
// MaxUncommittedEntriesSize.
func payloadSize(e *eraftpb.Entry) uint64 {
	return uint64(len(e.Data))
}

func payloadsSize(ents []*eraftpb.Entry) uint64 {
	var size uint64
	for _, e := range ents {
		size += payloadSize(e)
	}
	return size
}

func cloneConfState(cs *eraftpb.ConfState) eraftpb.ConfState {
	if cs == nil {
		return eraftpb.ConfState{}
	}
	return eraftpb.ConfState{
		Voters:         slices.Clone(cs.Voters),
		Learners:       slices.Clone(cs.Learners),
		VotersOutgoing: slices.Clone(cs.VotersOutgoing),
		LearnersNext:   slices.Clone(cs.LearnersNext),
		AutoLeave:      cs.AutoLeave,
	}
}

// IsEmptySnap reports whether sp is nil or carries no state.
func IsEmptySnap(sp *eraftpb.Snapshot) bool {
	return sp.GetMetadata().GetIndex() == 0
}

// IsEmptyHardState reports whether st is the zero HardState.
func IsEmptyHardState(st eraftpb.HardState) bool {
	return isHardStateEqual(st, eraftpb.HardState{})
}

func isHardStateEqual(a, b eraftpb.HardState) bool {
	return a.Term == b.Term && a.Vote == b.Vote && a.Commit == b.Commit
}

// IsLocalMsg reports whether t is a message a node sends to itself (never
// over the network).
func IsLocalMsg(t eraftpb.MessageType) bool {
	switch t {
	case eraftpb.MessageType_MsgHup, eraftpb.MessageType_MsgBeat,
		eraftpb.MessageType_MsgUnreachable, eraftpb.MessageType_MsgSnapStatus,
		eraftpb.MessageType_MsgCheckQuorum:
		return true
	}
	return false
}

// IsResponseMsg reports whether t is a response to another message.
func IsResponseMsg(t eraftpb.MessageType) bool {
	switch t {
	case eraftpb.MessageType_MsgAppendResponse, eraftpb.MessageType_MsgRequestVoteResponse,
		eraftpb.MessageType_MsgHeartbeatResponse, eraftpb.MessageType_MsgUnreachable,
		eraftpb.MessageType_MsgRequestPreVoteResponse:
		return true
	}
	return false
}

// voteRespMsgType maps a vote request type to its response type.
func voteRespMsgType(t eraftpb.MessageType) eraftpb.MessageType {
	if t == eraftpb.MessageType_MsgRequestPreVote {
		return eraftpb.MessageType_MsgRequestPreVoteResponse
	}
	return eraftpb.MessageType_MsgRequestVoteResponse
}

func isVoteMsg(t eraftpb.MessageType) bool {
	return t == eraftpb.MessageType_MsgRequestVote || t == eraftpb.MessageType_MsgRequestPreVote
}
