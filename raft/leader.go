// The leader role: replication to followers (appends, snapshots,
// heartbeats), commit, proposals and leader transfer.

package raft

import (
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

func (r *raft) sendAppend(to uint64) { r.maybeSendAppend(to, true) }

// maybeSendAppend sends entries (or a snapshot if they are compacted) to
// follower to, respecting flow control. If sendIfEmpty is false, nothing is
// sent when there are no new entries. It reports whether a message was
// sent.
func (r *raft) maybeSendAppend(to uint64, sendIfEmpty bool) bool {
	pr := r.trk.progress.get(to)
	if pr.isPaused() {
		return false
	}
	prevIndex := pr.Next - 1
	prevTerm, err := r.raftLog.term(prevIndex)
	var ents []*eraftpb.Entry
	if err == nil {
		ents, err = r.raftLog.entries(pr.Next, r.maxMsgSize)
	}
	if err != nil {
		// The entries the follower needs were compacted.
		return r.maybeSendSnapshot(to, pr)
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	var last uint64
	if len(ents) > 0 {
		last = ents[len(ents)-1].Index
	}
	pr.sentEntries(len(ents), last, payloadsSize(ents))
	pr.sentCommit = r.raftLog.committed
	r.send(eraftpb.Message{
		To:      to,
		MsgType: eraftpb.MessageType_MsgAppend,
		Index:   prevIndex,
		LogTerm: prevTerm,
		Entries: ents,
		Commit:  r.raftLog.committed,
	})
	return true
}

// maybeSendSnapshot sends the latest snapshot to a follower whose next
// entries were compacted.
func (r *raft) maybeSendSnapshot(to uint64, pr *Progress) bool {
	if !pr.RecentActive {
		return false
	}
	snap, err := r.raftLog.snapshot()
	if errors.Is(err, ErrSnapshotTemporarilyUnavailable) {
		return false
	}
	if err != nil {
		panic(err)
	}
	if IsEmptySnap(&snap) {
		panic("raft: need non-empty snapshot")
	}
	r.logger.Info("raft: sending snapshot", "id", r.id, "to", to, "index", snap.Metadata.Index, "progress", pr.String())
	pr.becomeSnapshot(snap.Metadata.Index)
	r.send(eraftpb.Message{To: to, MsgType: eraftpb.MessageType_MsgSnapshot, Snapshot: &snap})
	return true
}

// sendHeartbeat sends a heartbeat. The commit index is capped at the
// follower's match index: the follower may not have the leader's entries
// beyond it, so committing them there could commit the wrong entries.
func (r *raft) sendHeartbeat(to uint64, ctx []byte) {
	pr := r.trk.progress.get(to)
	commit := min(pr.Match, r.raftLog.committed)
	pr.sentCommit = commit
	r.send(eraftpb.Message{To: to, MsgType: eraftpb.MessageType_MsgHeartbeat, Commit: commit, Context: ctx})
}

func (r *raft) bcastAppend() {
	for _, id := range r.trk.progress.ids {
		if id != r.id {
			r.sendAppend(id)
		}
	}
}

// bcastHeartbeat sends the periodic heartbeats. They form a numbered round
// when a round is useful: to renew the lease or to confirm pending reads.
func (r *raft) bcastHeartbeat() {
	if r.leaseTicks > 0 || r.readOnly.pending() {
		r.bcastRoundHeartbeat()
		return
	}
	r.bcastHeartbeatWithCtx(nil)
}

func (r *raft) bcastHeartbeatWithCtx(ctx []byte) {
	for _, id := range r.trk.progress.ids {
		if id != r.id {
			r.sendHeartbeat(id, ctx)
		}
	}
}

// maybeCommit advances the commit index to what a quorum has replicated,
// if that entry is from the current term.
func (r *raft) maybeCommit() bool {
	return r.raftLog.maybeCommit(r.trk.committed(), r.Term)
}

// appendEntry assigns term and index to es, appends them to the leader's
// log and counts the leader's own acknowledgement.
func (r *raft) appendEntry(es ...*eraftpb.Entry) {
	li := r.raftLog.lastIndex()
	for i, e := range es {
		e.Term = r.Term
		e.Index = li + 1 + uint64(i)
	}
	li = r.raftLog.append(es...)
	if self := r.trk.progress.get(r.id); self != nil {
		self.maybeUpdate(li)
	}
	r.maybeCommit()
}

// tickHeartbeat is run by leaders.
func (r *raft) tickHeartbeat() {
	r.heartbeatElapsed++
	r.electionElapsed++
	if r.electionElapsed >= r.electionTimeout {
		r.electionElapsed = 0
		// A removed leader does not step down for lack of a quorum: it
		// serves no requests, and it must hand off leadership first.
		if r.checkQuorum && !r.removedLeader() {
			_ = r.Step(&eraftpb.Message{From: r.id, MsgType: eraftpb.MessageType_MsgCheckQuorum})
		}
		// A transfer that did not finish within an election timeout is
		// aborted so that proposals are accepted again.
		if r.state == StateLeader && r.leadTransferee != None {
			r.abortLeaderTransfer()
			if r.removedLeader() {
				r.handOffLeadership()
			}
		}
	}
	if r.state != StateLeader {
		return
	}
	if r.heartbeatElapsed >= r.heartbeatTimeout {
		r.heartbeatElapsed = 0
		_ = r.Step(&eraftpb.Message{From: r.id, MsgType: eraftpb.MessageType_MsgBeat})
	}
}

func (r *raft) becomeLeader() {
	if r.state == StateFollower {
		panic("raft: invalid transition [follower -> leader]")
	}
	r.reset(r.Term)
	r.lead = r.id
	r.state = StateLeader
	if self := r.trk.progress.get(r.id); self != nil {
		self.becomeReplicate()
		self.RecentActive = true
	}
	// Conservatively assume the log may hold an unapplied conf change.
	r.pendingConfIndex = r.raftLog.lastIndex()
	// An empty entry of the new term lets the leader commit (and learn the
	// commit status of) earlier entries. Reference: Raft paper 5.4.2.
	r.appendEntry(&eraftpb.Entry{})
	r.logger.Info("raft: became leader", "id", r.id, "term", r.Term)
	if r.removedLeader() {
		r.handOffLeadership()
	}
}

func (r *raft) stepLeader(m *eraftpb.Message) error {
	switch m.MsgType {
	case eraftpb.MessageType_MsgBeat:
		r.bcastHeartbeat()
		return nil
	case eraftpb.MessageType_MsgCheckQuorum:
		if !r.trk.quorumActive() {
			r.logger.Warn("raft: stepped down, quorum is not active", "id", r.id, "term", r.Term)
			r.becomeFollower(r.Term, None)
		}
		for _, id := range r.trk.progress.ids {
			if id != r.id {
				r.trk.progress.get(id).RecentActive = false
			}
		}
		return nil
	case eraftpb.MessageType_MsgPropose:
		return r.handlePropose(m)
	case eraftpb.MessageType_MsgReadIndex:
		r.handleReadIndex(m)
		return nil
	}

	pr := r.trk.progress.get(m.From)
	if pr == nil {
		return nil
	}
	switch m.MsgType {
	case eraftpb.MessageType_MsgAppendResponse:
		r.handleAppendResponse(m, pr)
	case eraftpb.MessageType_MsgHeartbeatResponse:
		r.handleHeartbeatResponse(m, pr)
	case eraftpb.MessageType_MsgSnapStatus:
		if pr.State != ProgressStateSnapshot {
			return nil
		}
		if m.Reject {
			pr.PendingSnapshot = 0
		}
		pr.becomeProbe()
		// Wait for an append or heartbeat response before probing, so a
		// follower still applying the snapshot is not flooded.
		pr.ProbeSent = true
	case eraftpb.MessageType_MsgUnreachable:
		if pr.State == ProgressStateReplicate {
			pr.becomeProbe()
		}
	case eraftpb.MessageType_MsgTransferLeader:
		r.handleTransferLeader(m, pr)
	}
	return nil
}

func (r *raft) handlePropose(m *eraftpb.Message) error {
	if len(m.Entries) == 0 || !nonNil(m.Entries) {
		return errors.New("raft: empty proposal")
	}
	if r.removedLeader() || r.leadTransferee != None {
		return ErrProposalDropped
	}
	size := payloadsSize(m.Entries)
	if r.uncommittedSize > 0 && size > 0 && r.uncommittedSize+size > r.maxUncommittedSize {
		return ErrProposalDropped
	}
	for i, e := range m.Entries {
		if e.EntryType == eraftpb.EntryType_EntryNormal {
			continue
		}
		if reason := r.confChangeRefusal(e); reason != "" {
			r.logger.Info("raft: ignoring conf change", "id", r.id, "reason", reason)
			m.Entries[i] = &eraftpb.Entry{EntryType: eraftpb.EntryType_EntryNormal}
			continue
		}
		r.pendingConfIndex = r.raftLog.lastIndex() + uint64(i) + 1
	}
	// Refused conf changes were emptied: count what is appended.
	r.uncommittedSize += payloadsSize(m.Entries)
	r.appendEntry(m.Entries...)
	r.bcastAppend()
	return nil
}

// reduceUncommittedSize stops counting committed entries towards
// MaxUncommittedEntriesSize.
func (r *raft) reduceUncommittedSize(committed []*eraftpb.Entry) {
	if r.uncommittedSize == 0 {
		return
	}
	r.uncommittedSize -= min(r.uncommittedSize, payloadsSize(committed))
}

// confChangeRefusal returns why a proposed conf change entry must be
// refused, or "" if it is acceptable. Only one conf change may be pending
// (proposed but not applied) at a time.
func (r *raft) confChangeRefusal(e *eraftpb.Entry) string {
	cc, err := decodeConfChange(e)
	if err != nil {
		return err.Error()
	}
	if r.pendingConfIndex > r.raftLog.applied {
		return fmt.Sprintf("possible unapplied conf change at index %d (applied to %d)", r.pendingConfIndex, r.raftLog.applied)
	}
	joint, leave := r.trk.config.joint(), leavesJoint(cc)
	if joint && !leave {
		return "must transition out of joint config first"
	}
	if !joint && leave {
		return "not in joint state; refusing empty conf change"
	}
	if err := newChanger(&r.trk, r.raftLog.lastIndex()).apply(cc); err != nil {
		return err.Error()
	}
	return ""
}

func (r *raft) handleAppendResponse(m *eraftpb.Message, pr *Progress) {
	pr.RecentActive = true
	if m.Reject {
		// The follower's hint (RejectHint, LogTerm) names the last index
		// that could match; skip every leader entry with a larger term.
		next := m.RejectHint
		if m.LogTerm > 0 {
			next, _ = r.raftLog.findConflictByTerm(m.RejectHint, m.LogTerm)
		}
		if pr.maybeDecrTo(m.Index, next) {
			if pr.State == ProgressStateReplicate {
				pr.becomeProbe()
			}
			r.sendAppend(m.From)
		}
		return
	}
	if m.Index > r.raftLog.lastIndex() {
		// Acknowledges entries we never sent: a misbehaving peer.
		return
	}
	if !pr.maybeUpdate(m.Index) && (pr.Match != m.Index || pr.State != ProgressStateProbe) {
		return
	}
	switch pr.State {
	case ProgressStateProbe:
		pr.becomeReplicate()
	case ProgressStateSnapshot:
		if pr.Match+1 >= r.raftLog.firstIndex() {
			pr.becomeProbe()
			pr.becomeReplicate()
		}
	case ProgressStateReplicate:
		pr.inflights.freeLE(m.Index)
	}
	if r.maybeCommit() {
		r.releasePendingReadIndexMessages()
		r.bcastAppend()
	} else if pr.canBumpCommit(r.raftLog.committed) {
		// The follower may have missed the commit index (e.g. its window
		// was full when it advanced): tell it now, not at the next
		// heartbeat.
		r.sendAppend(m.From)
	}
	for r.maybeSendAppend(m.From, false) {
	}
	if m.From == r.leadTransferee && pr.Match == r.raftLog.lastIndex() {
		r.sendTimeoutNow(m.From)
	}
}

func (r *raft) handleHeartbeatResponse(m *eraftpb.Message, pr *Progress) {
	pr.RecentActive = true
	pr.ProbeSent = false
	// Free one slot so a stream stalled by lost appends makes progress.
	if pr.State == ProgressStateReplicate && pr.inflights.full() {
		pr.inflights.freeFirstOne()
	}
	// A follower in probe state gets an append even when it is caught up
	// (e.g. after ReportUnreachable): its answer moves it back to
	// replicate state.
	if pr.Match < r.raftLog.lastIndex() || pr.State == ProgressStateProbe {
		r.sendAppend(m.From)
	}
	if !r.rounds.recvAck(m.From, m.Context) || !r.readOnly.pending() {
		return
	}
	acked := r.trk.config.voters.committedIndex(r.ackedRound)
	for _, rs := range r.readOnly.advance(acked) {
		if resp := r.responseToReadIndexReq(&rs.req, rs.index); resp.To != None {
			r.send(resp)
		}
	}
}

func (r *raft) handleTransferLeader(m *eraftpb.Message, pr *Progress) {
	if pr.IsLearner {
		return
	}
	transferee := m.From
	if last := r.leadTransferee; last != None {
		if last == transferee {
			return
		}
		r.abortLeaderTransfer()
	}
	if transferee == r.id {
		return
	}
	// The transfer must finish within an election timeout.
	r.electionElapsed = 0
	r.leadTransferee = transferee
	if pr.Match == r.raftLog.lastIndex() {
		r.sendTimeoutNow(transferee)
	} else {
		r.sendAppend(transferee)
	}
}

// sendTimeoutNow tells the transferee to campaign now. A removed leader
// steps down at this point: the transferee has its whole log.
func (r *raft) sendTimeoutNow(to uint64) {
	r.send(eraftpb.Message{To: to, MsgType: eraftpb.MessageType_MsgTimeoutNow})
	r.timeoutNowSent = true
	if r.removedLeader() {
		r.becomeFollower(r.Term, None)
	}
}

func (r *raft) abortLeaderTransfer() { r.leadTransferee = None }
