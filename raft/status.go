package raft

import (
	"fmt"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// BasicStatus is a cheap snapshot of a node's state.
type BasicStatus struct {
	ID             uint64
	HardState      eraftpb.HardState
	SoftState      SoftState
	Applied        uint64
	LeadTransferee uint64
}

// Status adds the configuration and, on a leader, the replication progress
// of every member (copies; mutating them has no effect).
type Status struct {
	BasicStatus
	Config   string
	Progress map[uint64]Progress
}

func (s Status) String() string {
	return fmt.Sprintf("id=%d term=%d vote=%d commit=%d applied=%d lead=%d state=%s config=%s",
		s.ID, s.HardState.Term, s.HardState.Vote, s.HardState.Commit, s.Applied,
		s.SoftState.Lead, s.SoftState.RaftState, s.Config)
}

// BasicStatus returns the node's status without allocating.
func (rn *RawNode) BasicStatus() BasicStatus {
	r := rn.raft
	return BasicStatus{
		ID:             r.id,
		HardState:      r.hardState(),
		SoftState:      r.softState(),
		Applied:        r.raftLog.applied,
		LeadTransferee: r.leadTransferee,
	}
}

// Status returns the node's full status.
func (rn *RawNode) Status() Status {
	s := Status{BasicStatus: rn.BasicStatus(), Config: rn.raft.trk.config.String()}
	if rn.raft.state == StateLeader {
		s.Progress = make(map[uint64]Progress, len(rn.raft.trk.progress.ids))
		for _, id := range rn.raft.trk.progress.ids {
			pr := rn.raft.trk.progress.get(id).clone()
			s.Progress[id] = *pr
		}
	}
	return s
}
