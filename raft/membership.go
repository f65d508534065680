// Applying membership changes to a running node.

package raft

import "github.com/pingcap/kvproto/pkg/eraftpb"

// applyConfChange applies a committed conf change and returns the new
// ConfState. An invalid change leaves the configuration unchanged and
// returns an error; since every node applies the same entries to the same
// configuration, they all reject it alike.
func (r *raft) applyConfChange(cc *eraftpb.ConfChangeV2) (eraftpb.ConfState, error) {
	c := newChanger(&r.trk, r.raftLog.lastIndex())
	if err := c.apply(cc); err != nil {
		return r.trk.confState(), err
	}
	return r.switchToConfig(c.config, c.progress), nil
}

// switchToConfig installs a configuration. A leader re-evaluates the commit
// index (the quorum may have changed) and tells followers about it; a leader
// that is no longer a voter hands leadership off (see handOffLeadership).
func (r *raft) switchToConfig(cfg trackerConfig, prs progressMap) eraftpb.ConfState {
	r.trk.config = cfg
	r.trk.progress = prs
	r.logger.Info("raft: switched config", "id", r.id, "config", cfg.String())
	cs := r.trk.confState()
	if r.state != StateLeader {
		return cs
	}
	if r.maybeCommit() {
		r.bcastAppend()
	} else {
		for _, id := range r.trk.progress.ids {
			if id != r.id {
				r.maybeSendAppend(id, false)
			}
		}
	}
	if r.leadTransferee != None && !r.trk.config.voters.contains(r.leadTransferee) {
		r.abortLeaderTransfer()
	}
	if r.removedLeader() {
		r.handOffLeadership()
	}
	return cs
}

// removedLeader reports whether this leader is no longer a voter (removed
// or demoted to learner).
func (r *raft) removedLeader() bool {
	pr := r.trk.progress.get(r.id)
	return r.state == StateLeader && (pr == nil || pr.IsLearner)
}

// handOffLeadership is how a removed leader steps down. Simply stepping
// down is not enough: configurations take effect when applied, so the
// remaining voters may still need this node's vote (e.g. in the joint
// configuration that removed it), and this node, which can no longer
// campaign, would refuse it if its log is longer than theirs. So the
// removed leader stops serving requests, keeps replicating, and once the
// most up-to-date remaining voter has its whole log, sends it MsgTimeoutNow
// and becomes a follower. A transfer that does not finish within an
// election timeout is retried (tickHeartbeat).
func (r *raft) handOffLeadership() {
	if r.leadTransferee != None {
		return
	}
	var best uint64
	var bestMatch uint64
	for _, id := range r.trk.config.voters.ids() {
		if pr := r.trk.progress.get(id); id != r.id && (best == None || pr.Match > bestMatch) {
			best, bestMatch = id, pr.Match
		}
	}
	if best == None {
		r.becomeFollower(r.Term, None)
		return
	}
	r.logger.Info("raft: removed leader hands off leadership", "id", r.id, "to", best)
	r.leadTransferee = best
	r.electionElapsed = 0
	if bestMatch == r.raftLog.lastIndex() {
		r.sendTimeoutNow(best)
		return
	}
	r.sendAppend(best)
}

// appliedTo records application progress and, for a leader in an
// auto-leave joint config, proposes leaving it once the change that entered
// it is applied.
func (r *raft) appliedTo(i uint64) {
	if i <= r.raftLog.applied {
		return
	}
	r.raftLog.appliedTo(i)
	if r.state == StateLeader && r.trk.config.autoLeave && i >= r.pendingConfIndex {
		m := eraftpb.Message{
			MsgType: eraftpb.MessageType_MsgPropose,
			Entries: []*eraftpb.Entry{{EntryType: eraftpb.EntryType_EntryConfChangeV2}},
		}
		if err := r.Step(&m); err != nil {
			r.logger.Info("raft: could not propose leaving joint config", "id", r.id, "err", err)
		}
	}
}
