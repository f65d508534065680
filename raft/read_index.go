// ReadIndex: linearizable reads confirmed by heartbeats or by the lease.

package raft

import "github.com/pingcap/kvproto/pkg/eraftpb"

func (r *raft) handleReadIndex(m *eraftpb.Message) {
	if len(m.Entries) != 1 || m.Entries[0] == nil || r.removedLeader() {
		return
	}
	if r.trk.isSingleton() {
		if resp := r.responseToReadIndexReq(m, r.raftLog.committed); resp.To != None {
			r.send(resp)
		}
		return
	}
	// The commit index is only known to be current once the leader has
	// committed an entry of its own term. Reference: thesis 6.4.
	if !r.committedEntryInCurrentTerm() {
		r.pendingReadIndexMessages = append(r.pendingReadIndexMessages, *m)
		return
	}
	r.sendMsgReadIndexResponse(m)
}

func (r *raft) sendMsgReadIndexResponse(m *eraftpb.Message) {
	switch r.readOnly.option {
	case ReadOnlySafe:
		// The request is confirmed once a quorum acknowledged a heartbeat
		// round sent after it arrived: then no newer leader can have
		// committed anything when it arrived. Reference: thesis 6.4.
		r.bcastRoundHeartbeat()
		r.readOnly.addRequest(r.raftLog.committed, r.rounds.last, *m)
	case ReadOnlyLeaseBased:
		if resp := r.responseToReadIndexReq(m, r.raftLog.committed); resp.To != None {
			r.send(resp)
		}
	}
}

func (r *raft) releasePendingReadIndexMessages() {
	if len(r.pendingReadIndexMessages) == 0 || !r.committedEntryInCurrentTerm() {
		return
	}
	msgs := r.pendingReadIndexMessages
	r.pendingReadIndexMessages = nil
	for i := range msgs {
		r.sendMsgReadIndexResponse(&msgs[i])
	}
}

// responseToReadIndexReq answers a confirmed read: locally through
// readStates, or with a MsgReadIndexResp to the follower that asked.
func (r *raft) responseToReadIndexReq(req *eraftpb.Message, readIndex uint64) eraftpb.Message {
	if req.From == None || req.From == r.id {
		r.readStates = append(r.readStates, ReadState{Index: readIndex, RequestCtx: req.Entries[0].Data})
		return eraftpb.Message{}
	}
	return eraftpb.Message{
		MsgType: eraftpb.MessageType_MsgReadIndexResp,
		To:      req.From,
		Index:   readIndex,
		Entries: req.Entries,
	}
}

func (r *raft) committedEntryInCurrentTerm() bool {
	return r.raftLog.zeroTermOnErrCompacted(r.raftLog.term(r.raftLog.committed)) == r.Term
}
