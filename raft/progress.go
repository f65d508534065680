package raft

import (
	"fmt"
	"slices"
)

// ProgressState is the replication state of a follower as seen by the
// leader.
type ProgressState uint8

const (
	// ProgressStateProbe: the leader does not know the follower's last
	// matching index. It sends at most one MsgApp per heartbeat interval
	// and waits for the answer (fast backtracking via rejection hints).
	ProgressStateProbe ProgressState = iota
	// ProgressStateReplicate: the follower is known to match up to Match;
	// the leader streams entries optimistically, bounded by the inflight
	// window.
	ProgressStateReplicate
	// ProgressStateSnapshot: the follower needs entries that were
	// compacted; a snapshot is in flight and replication is paused until
	// ReportSnapshot or an append response.
	ProgressStateSnapshot
)

func (s ProgressState) String() string {
	switch s {
	case ProgressStateProbe:
		return "StateProbe"
	case ProgressStateReplicate:
		return "StateReplicate"
	case ProgressStateSnapshot:
		return "StateSnapshot"
	}
	return fmt.Sprintf("ProgressState(%d)", uint8(s))
}

// Progress is the leader's view of one follower's log.
type Progress struct {
	// Match is the highest index known to be replicated on the follower.
	// Next is the next index to send.
	// Invariant: Match < Next.
	Match, Next uint64
	// State selects how entries are sent (see ProgressState).
	State ProgressState
	// PendingSnapshot is the index of the snapshot in flight while in
	// ProgressStateSnapshot.
	PendingSnapshot uint64
	// RecentActive is true if the follower was heard from since the last
	// check-quorum round. The leader's own progress is always active.
	RecentActive bool
	// ProbeSent pauses a follower in probe state after one MsgApp until a
	// response (or heartbeat response) arrives.
	ProbeSent bool
	// IsLearner is true for non-voting members.
	IsLearner bool

	// sentCommit is the commit index carried by the last append or
	// heartbeat sent to the follower. It is lowered to Next-1 when Next
	// moves back, since what was sent beyond it was likely lost.
	sentCommit uint64

	inflights *inflights
}

func newProgress(next uint64, maxInflight int, maxBytes uint64, learner bool) *Progress {
	return &Progress{
		Next:         next,
		inflights:    newInflights(maxInflight, maxBytes),
		IsLearner:    learner,
		RecentActive: true,
	}
}

func (pr *Progress) String() string {
	return fmt.Sprintf("%s match=%d next=%d learner=%t inflight=%d pendingSnap=%d",
		pr.State, pr.Match, pr.Next, pr.IsLearner, pr.inflights.count, pr.PendingSnapshot)
}

// Inflight returns the number of in-flight append messages.
func (pr *Progress) Inflight() int { return pr.inflights.count }

func (pr *Progress) clone() *Progress {
	c := *pr
	c.inflights = pr.inflights.clone()
	return &c
}

func (pr *Progress) resetState(state ProgressState) {
	pr.ProbeSent = false
	pr.PendingSnapshot = 0
	pr.State = state
	pr.inflights.reset()
}

// becomeProbe moves to probe state, restarting from the last known match
// (or after the pending snapshot).
func (pr *Progress) becomeProbe() {
	if pr.State == ProgressStateSnapshot {
		pending := pr.PendingSnapshot
		pr.resetState(ProgressStateProbe)
		pr.Next = max(pr.Match+1, pending+1)
	} else {
		pr.resetState(ProgressStateProbe)
		pr.Next = pr.Match + 1
	}
	pr.sentCommit = min(pr.sentCommit, pr.Next-1)
}

// becomeReplicate moves to replicate state.
func (pr *Progress) becomeReplicate() {
	pr.resetState(ProgressStateReplicate)
	pr.Next = pr.Match + 1
}

// becomeSnapshot moves to snapshot state for a snapshot at snapi.
func (pr *Progress) becomeSnapshot(snapi uint64) {
	pr.resetState(ProgressStateSnapshot)
	pr.PendingSnapshot = snapi
}

// sentEntries updates the progress after sending a MsgApp whose last entry
// is last, carrying n entries of the given payload size.
func (pr *Progress) sentEntries(n int, last, bytes uint64) {
	switch pr.State {
	case ProgressStateReplicate:
		if n > 0 {
			pr.Next = last + 1
			pr.inflights.add(last, bytes)
		}
	case ProgressStateProbe:
		pr.ProbeSent = true
	default:
		panic(fmt.Sprintf("raft: sending append in unhandled state %s", pr.State))
	}
}

// maybeUpdate records that the follower acknowledged index n. It returns
// false if the acknowledgement is stale.
func (pr *Progress) maybeUpdate(n uint64) bool {
	updated := false
	if pr.Match < n {
		pr.Match = n
		updated = true
		pr.ProbeSent = false
	}
	pr.Next = max(pr.Next, n+1)
	return updated
}

// maybeDecrTo handles a rejected MsgApp for index rejected; matchHint is the
// leader's best guess of the last matching index derived from the
// follower's rejection hint. It returns false if the rejection is stale.
func (pr *Progress) maybeDecrTo(rejected, matchHint uint64) bool {
	if pr.State == ProgressStateReplicate {
		if rejected <= pr.Match {
			return false
		}
		pr.Next = pr.Match + 1
		pr.sentCommit = min(pr.sentCommit, pr.Next-1)
		return true
	}
	if pr.Next-1 != rejected {
		return false
	}
	pr.Next = max(min(rejected, matchHint+1), pr.Match+1)
	pr.sentCommit = min(pr.sentCommit, pr.Next-1)
	pr.ProbeSent = false
	return true
}

// canBumpCommit reports whether sending commit could advance the
// follower's commit index: the follower commits up to min(commit, Next-1)
// of what it was sent, so a commit index beyond the last one sent helps
// unless that one already covered everything sent.
func (pr *Progress) canBumpCommit(commit uint64) bool {
	return commit > pr.sentCommit && pr.sentCommit < pr.Next-1
}

// isPaused reports whether the leader must not send appends now.
func (pr *Progress) isPaused() bool {
	switch pr.State {
	case ProgressStateProbe:
		return pr.ProbeSent
	case ProgressStateReplicate:
		return pr.inflights.full()
	default:
		return true
	}
}

// progressMap holds the progress of every member, with a sorted ID list so
// that iteration (and therefore message order) is deterministic.
type progressMap struct {
	m   map[uint64]*Progress
	ids []uint64 // sorted keys of m
}

func newProgressMap() progressMap {
	return progressMap{m: map[uint64]*Progress{}}
}

func (p *progressMap) get(id uint64) *Progress { return p.m[id] }

func (p *progressMap) set(id uint64, pr *Progress) {
	if _, ok := p.m[id]; !ok {
		i, _ := slices.BinarySearch(p.ids, id)
		p.ids = slices.Insert(p.ids, i, id)
	}
	p.m[id] = pr
}

func (p *progressMap) delete(id uint64) {
	if _, ok := p.m[id]; !ok {
		return
	}
	delete(p.m, id)
	i, _ := slices.BinarySearch(p.ids, id)
	p.ids = slices.Delete(p.ids, i, i+1)
}

func (p *progressMap) clone() progressMap {
	c := progressMap{m: make(map[uint64]*Progress, len(p.m)), ids: slices.Clone(p.ids)}
	for id, pr := range p.m {
		c.m[id] = pr.clone()
	}
	return c
}
