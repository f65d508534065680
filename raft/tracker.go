package raft

import (
	"fmt"
	"strings"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// trackerConfig is the active membership.
//
// Invariants (checked by checkInvariants after every change):
//   - learners and voters (either half) are disjoint;
//   - learnersNext are voters of the outgoing config that become learners
//     when the joint config is left, so they are only set while joint;
//   - autoLeave is only set while joint.
type trackerConfig struct {
	voters       jointConfig
	autoLeave    bool
	learners     map[uint64]struct{}
	learnersNext map[uint64]struct{}
}

func (c trackerConfig) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "voters=%s", c.voters)
	if len(c.learners) > 0 {
		fmt.Fprintf(&b, " learners=%s", majorityConfig(c.learners))
	}
	if len(c.learnersNext) > 0 {
		fmt.Fprintf(&b, " learners_next=%s", majorityConfig(c.learnersNext))
	}
	if c.autoLeave {
		b.WriteString(" autoleave")
	}
	return b.String()
}

func (c trackerConfig) clone() trackerConfig {
	return trackerConfig{
		voters:       jointConfig{c.voters[0].clone(), c.voters[1].clone()},
		autoLeave:    c.autoLeave,
		learners:     majorityConfig(c.learners).clone(),
		learnersNext: majorityConfig(c.learnersNext).clone(),
	}
}

func (c trackerConfig) joint() bool { return len(c.voters[1]) > 0 }

// tracker tracks membership, per-member progress and election votes.
type tracker struct {
	config   trackerConfig
	progress progressMap
	// votes records the (pre-)vote answers of the current election.
	votes map[uint64]bool

	maxInflight      int
	maxInflightBytes uint64
}

func newTracker(maxInflight int, maxInflightBytes uint64) tracker {
	return tracker{
		config: trackerConfig{
			voters:       jointConfig{majorityConfig{}, nil},
			learners:     nil,
			learnersNext: nil,
		},
		progress:         newProgressMap(),
		votes:            map[uint64]bool{},
		maxInflight:      maxInflight,
		maxInflightBytes: maxInflightBytes,
	}
}

// confState returns the configuration as a ConfState.
func (t *tracker) confState() eraftpb.ConfState {
	return eraftpb.ConfState{
		Voters:         t.config.voters[0].sorted(),
		VotersOutgoing: t.config.voters[1].sorted(),
		Learners:       majorityConfig(t.config.learners).sorted(),
		LearnersNext:   majorityConfig(t.config.learnersNext).sorted(),
		AutoLeave:      t.config.autoLeave,
	}
}

// isSingleton reports whether the only voter is a single node.
func (t *tracker) isSingleton() bool {
	return len(t.config.voters[0]) == 1 && len(t.config.voters[1]) == 0
}

func (t *tracker) acked(id uint64) uint64 {
	if pr := t.progress.get(id); pr != nil {
		return pr.Match
	}
	return 0
}

// committed returns the highest index replicated on a quorum.
func (t *tracker) committed() uint64 {
	return t.config.voters.committedIndex(t.acked)
}

// quorumActive reports whether a quorum of voters was recently active.
func (t *tracker) quorumActive() bool {
	active := make(map[uint64]bool, len(t.progress.ids))
	for id, pr := range t.progress.m {
		if !pr.IsLearner {
			active[id] = pr.RecentActive
		}
	}
	return t.config.voters.voteResult(active) == voteWon
}

func (t *tracker) resetVotes() { clear(t.votes) }

// recordVote records a vote; only the first answer of each node counts.
func (t *tracker) recordVote(id uint64, v bool) {
	if _, ok := t.votes[id]; !ok {
		t.votes[id] = v
	}
}

// voteResult returns the outcome of the current election. Votes of
// non-voters are recorded but do not count.
func (t *tracker) voteResult() voteOutcome {
	return t.config.voters.voteResult(t.votes)
}
