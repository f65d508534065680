// The follower role: accepting entries, heartbeats and snapshots from the
// leader, and forwarding requests to it.

package raft

import "github.com/pingcap/kvproto/pkg/eraftpb"

func (r *raft) stepFollower(m *eraftpb.Message) error {
	switch m.MsgType {
	case eraftpb.MessageType_MsgPropose:
		if r.lead == None || r.disableProposalForwarding {
			return ErrProposalDropped
		}
		m.To = r.lead
		r.send(*m)
	case eraftpb.MessageType_MsgAppend:
		r.heardFromLeader(m.From)
		r.handleAppendEntries(m)
	case eraftpb.MessageType_MsgHeartbeat:
		r.heardFromLeader(m.From)
		r.handleHeartbeat(m)
	case eraftpb.MessageType_MsgSnapshot:
		r.heardFromLeader(m.From)
		r.handleSnapshot(m)
	case eraftpb.MessageType_MsgTransferLeader, eraftpb.MessageType_MsgReadIndex:
		if r.lead == None {
			return nil
		}
		m.To = r.lead
		r.send(*m)
	case eraftpb.MessageType_MsgTimeoutNow:
		// Leader transfers skip pre-vote: the leader asked for it.
		r.hup(campaignTransfer)
	case eraftpb.MessageType_MsgReadIndexResp:
		if len(m.Entries) != 1 || m.Entries[0] == nil {
			return nil
		}
		r.readStates = append(r.readStates, ReadState{Index: m.Index, RequestCtx: m.Entries[0].Data})
	}
	return nil
}

// handleAppendEntries implements the follower side of AppendEntries.
// Reference: Raft paper section 5.3.
func (r *raft) handleAppendEntries(m *eraftpb.Message) {
	if !contiguous(m.Index, m.Entries) {
		r.logger.Warn("raft: ignoring append with non-contiguous entries", "id", r.id, "from", m.From)
		return
	}
	if m.Index < r.raftLog.committed {
		r.send(eraftpb.Message{To: m.From, MsgType: eraftpb.MessageType_MsgAppendResponse, Index: r.raftLog.committed})
		return
	}
	if last, ok := r.raftLog.maybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries); ok {
		r.send(eraftpb.Message{To: m.From, MsgType: eraftpb.MessageType_MsgAppendResponse, Index: last})
		return
	}
	// Reject with a hint: the largest index <= m.Index whose term is <=
	// m.LogTerm. Entries between it and m.Index cannot match, so the
	// leader can skip them all at once.
	hintIndex := min(m.Index, r.raftLog.lastIndex())
	hintIndex, hintTerm := r.raftLog.findConflictByTerm(hintIndex, m.LogTerm)
	r.send(eraftpb.Message{
		To:         m.From,
		MsgType:    eraftpb.MessageType_MsgAppendResponse,
		Index:      m.Index,
		Reject:     true,
		RejectHint: hintIndex,
		LogTerm:    hintTerm,
	})
}

func nonNil(ents []*eraftpb.Entry) bool {
	for _, e := range ents {
		if e == nil {
			return false
		}
	}
	return true
}

// contiguous reports whether ents are numbered index+1, index+2, ...
func contiguous(index uint64, ents []*eraftpb.Entry) bool {
	for i, e := range ents {
		if e == nil || e.Index != index+1+uint64(i) {
			return false
		}
	}
	return true
}

// handleHeartbeat advances commit and echoes the heartbeat's context, which
// numbers the leader's round (see heartbeatRounds).
func (r *raft) handleHeartbeat(m *eraftpb.Message) {
	// The leader caps Commit at our match index; a larger value can only
	// come from a misbehaving peer, and ignoring it is always safe.
	if m.Commit <= r.raftLog.lastIndex() {
		r.raftLog.commitTo(m.Commit)
	}
	r.send(eraftpb.Message{To: m.From, MsgType: eraftpb.MessageType_MsgHeartbeatResponse, Context: m.Context})
}

func (r *raft) handleSnapshot(m *eraftpb.Message) {
	if IsEmptySnap(m.Snapshot) {
		return
	}
	if r.restore(m.Snapshot) {
		r.logger.Info("raft: restored snapshot", "id", r.id, "index", m.Snapshot.Metadata.Index)
		r.send(eraftpb.Message{To: m.From, MsgType: eraftpb.MessageType_MsgAppendResponse, Index: r.raftLog.lastIndex()})
		return
	}
	r.send(eraftpb.Message{To: m.From, MsgType: eraftpb.MessageType_MsgAppendResponse, Index: r.raftLog.committed})
}

// restore installs snapshot s if it is newer than our commit index and
// includes this node. It reports whether the snapshot was installed
// (false also when the log already contains it and only commit advanced).
func (r *raft) restore(s *eraftpb.Snapshot) bool {
	meta := s.Metadata
	if meta.Index <= r.raftLog.committed {
		return false
	}
	if r.state != StateFollower {
		// Only followers receive snapshots; be defensive anyway.
		r.becomeFollower(r.Term+1, None)
		return false
	}
	cs := meta.GetConfState()
	if !containsID(cs.GetVoters(), r.id) && !containsID(cs.GetLearners(), r.id) &&
		!containsID(cs.GetVotersOutgoing(), r.id) {
		return false
	}
	if r.raftLog.matchTerm(meta.Index, meta.Term) {
		// Our log already has the snapshot's last entry: fast-forward.
		r.raftLog.commitTo(meta.Index)
		return false
	}
	cfg, prs, err := restoreConfig(&r.trk, cs, meta.Index)
	if err != nil {
		r.logger.Warn("raft: ignoring snapshot with invalid conf state", "id", r.id, "err", err)
		return false
	}
	r.raftLog.restore(s)
	r.switchToConfig(cfg, prs)
	return true
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
