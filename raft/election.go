// Leader election: timeouts, (pre-)campaigns, vote counting and the voting
// rules.

package raft

import "github.com/pingcap/kvproto/pkg/eraftpb"

// tickElection is run by followers and candidates.
func (r *raft) tickElection() {
	r.electionElapsed++
	if r.promotable() && r.pastElectionTimeout() {
		r.electionElapsed = 0
		_ = r.Step(&eraftpb.Message{From: r.id, MsgType: eraftpb.MessageType_MsgHup})
	}
}

func (r *raft) becomeCandidate() {
	if r.state == StateLeader {
		panic("raft: invalid transition [leader -> candidate]")
	}
	r.reset(r.Term + 1)
	r.Vote = r.id
	r.state = StateCandidate
	r.logger.Info("raft: became candidate", "id", r.id, "term", r.Term)
}

// becomePreCandidate starts a pre-vote: neither term nor vote change, so a
// failed pre-vote leaves no trace. Reference: Raft thesis section 9.6.
func (r *raft) becomePreCandidate() {
	if r.state == StateLeader {
		panic("raft: invalid transition [leader -> pre-candidate]")
	}
	r.trk.resetVotes()
	r.lead = None
	r.state = StatePreCandidate
}

func (r *raft) hup(t campaignType) {
	if r.state == StateLeader || !r.promotable() || r.hasUnappliedConfChanges() {
		return
	}
	r.campaign(t)
}

// hasUnappliedConfChanges reports whether a conf change is committed but
// not applied; campaigning then could use a stale configuration.
func (r *raft) hasUnappliedConfChanges() bool {
	if r.raftLog.applied >= r.raftLog.committed {
		return false
	}
	ents, err := r.raftLog.slice(max(r.raftLog.applied+1, r.raftLog.firstIndex()), r.raftLog.committed+1, noLimit)
	if err != nil {
		return true
	}
	for _, e := range ents {
		if e.EntryType != eraftpb.EntryType_EntryNormal {
			return true
		}
	}
	return false
}

func (r *raft) campaign(t campaignType) {
	var term uint64
	var voteMsg eraftpb.MessageType
	if t == campaignPreElection {
		r.becomePreCandidate()
		voteMsg = eraftpb.MessageType_MsgRequestPreVote
		term = r.Term + 1
	} else {
		r.becomeCandidate()
		voteMsg = eraftpb.MessageType_MsgRequestVote
		term = r.Term
	}
	if r.poll(r.id, true) == voteWon {
		// Single-voter cluster.
		if t == campaignPreElection {
			r.campaign(campaignElection)
		} else {
			r.becomeLeader()
		}
		return
	}
	var ctx []byte
	if t == campaignTransfer {
		ctx = campaignTransferCtx
	}
	for _, id := range r.trk.config.voters.ids() {
		if id == r.id {
			continue
		}
		r.send(eraftpb.Message{
			To: id, Term: term, MsgType: voteMsg,
			Index: r.raftLog.lastIndex(), LogTerm: r.raftLog.lastTerm(), Context: ctx,
		})
	}
}

func (r *raft) poll(id uint64, granted bool) voteOutcome {
	r.trk.recordVote(id, granted)
	return r.trk.voteResult()
}

// handleVoteRequest implements the voting rules. Reference: Raft paper
// section 5.2 (one vote per term) and 5.4.1 (candidate's log must be at
// least as up-to-date). A node that recently heard from a leader grants no
// new vote (voteRefusalActive; Raft thesis sections 4.2.3 and 6.4.1).
func (r *raft) handleVoteRequest(m *eraftpb.Message) {
	canVote := r.Vote == m.From ||
		(r.Vote == None && r.lead == None && !r.voteRefusalActive(m)) ||
		(m.MsgType == eraftpb.MessageType_MsgRequestPreVote && m.Term > r.Term)
	resp := voteRespMsgType(m.MsgType)
	upToDate := r.raftLog.isUpToDate(m.Index, m.LogTerm)
	if canVote && upToDate {
		r.send(eraftpb.Message{To: m.From, Term: m.Term, MsgType: resp})
		if m.MsgType == eraftpb.MessageType_MsgRequestVote {
			r.electionElapsed = 0
			r.Vote = m.From
		}
		return
	}
	r.send(eraftpb.Message{To: m.From, Term: r.Term, MsgType: resp, Reject: true})
	if !upToDate && r.trk.config.voters.contains(m.From) {
		r.maybeRescueCampaign()
	}
}

// maybeRescueCampaign lets a node that is not a voter in its own
// configuration campaign after refusing its vote, for being less
// up-to-date, to a candidate that is a voter of that configuration.
//
// Configurations take effect when applied, so such a candidate may not
// have applied this node's removal yet and still need its vote, which this
// node must refuse; and this node normally never campaigns. Without help
// that is a deadlock (e.g. a removed leader that crashed before handing
// off). So this node campaigns among the voters of its own configuration;
// if it wins, it hands leadership off to a voter as soon as that voter has
// its whole log (see handOffLeadership). Requests from nodes outside the
// configuration (e.g. removed ones) never trigger this, so they cannot use
// it to disrupt the cluster.
func (r *raft) maybeRescueCampaign() {
	pr := r.trk.progress.get(r.id)
	if r.state == StateLeader || (pr != nil && !pr.IsLearner) || len(r.trk.config.voters[0]) == 0 ||
		r.raftLog.hasPendingSnapshot() || r.hasUnappliedConfChanges() {
		return
	}
	r.logger.Info("raft: non-voter campaigns to unblock an election", "id", r.id, "term", r.Term)
	if r.preVote {
		r.campaign(campaignPreElection)
	} else {
		r.campaign(campaignElection)
	}
}

func (r *raft) stepCandidate(m *eraftpb.Message) error {
	myVoteResp := eraftpb.MessageType_MsgRequestVoteResponse
	if r.state == StatePreCandidate {
		myVoteResp = eraftpb.MessageType_MsgRequestPreVoteResponse
	}
	switch m.MsgType {
	case eraftpb.MessageType_MsgPropose:
		return ErrProposalDropped
	case eraftpb.MessageType_MsgAppend, eraftpb.MessageType_MsgHeartbeat, eraftpb.MessageType_MsgSnapshot:
		// A leader of our term exists: follow it.
		r.becomeFollower(m.Term, m.From)
		return r.stepFollower(m)
	case myVoteResp:
		switch r.poll(m.From, !m.Reject) {
		case voteWon:
			if r.state == StatePreCandidate {
				r.campaign(campaignElection)
			} else {
				r.becomeLeader()
				r.bcastAppend()
			}
		case voteLost:
			r.becomeFollower(r.Term, None)
		}
	}
	return nil
}

// promotable reports whether this node may campaign.
func (r *raft) promotable() bool {
	pr := r.trk.progress.get(r.id)
	return pr != nil && !pr.IsLearner && !r.raftLog.hasPendingSnapshot()
}

func (r *raft) pastElectionTimeout() bool {
	return r.electionElapsed >= r.randomizedElectionTimeout
}

func (r *raft) resetRandomizedElectionTimeout() {
	r.randomizedElectionTimeout = r.electionTimeout + r.rand.IntN(r.electionTimeout)
}
