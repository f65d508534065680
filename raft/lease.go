// The leader lease (Config.LeaseTicks, RawNode.LeaseValid) and the
// numbered heartbeat rounds that both the lease and ReadIndex rely on.
//
// Why the lease is sound (Raft thesis section 6.4.1). A leader stamps each
// heartbeat round with its own logical tick T at sending; followers echo
// the stamp. Once a quorum (the leader included) has echoed rounds stamped
// T or later, every member Q of that quorum received a heartbeat of this
// leader at or after T (in real time) and then refuses to help elect
// another leader for ElectionTick of its own ticks:
//
//   - it ignores or rejects vote requests other than those of a leader
//     transfer (voteRefusalActive), and
//   - it does not campaign itself: its election timeout, randomized in
//     [ElectionTick, 2*ElectionTick), restarts on every heartbeat.
//
// The refusal survives term changes and restarts: it is measured from
// leaderContactTick, which only moves forward, and a restarted node
// counts its start as contact. Any new leader needs a vote from a quorum,
// which includes some Q, so no other leader can exist until ElectionTick
// of Q's ticks have passed since Q received the round, at or after T. The
// leader's lease ends at T + LeaseTicks on its own clock; LeaseTicks <
// ElectionTick leaves ElectionTick - LeaseTicks ticks for clocks running
// at different rates. Rounds and their acknowledgements belong to one term
// (reset on every term change), and a node leads a term at most once, so
// a stamp always comes from the clock that reads it.
//
// Two ways to elect a leader skip the refusal, and the lease accounts for
// both: MsgTimeoutNow (a leader transfer) starts an election that voters
// grant at once, so a leader that is transferring or has sent
// MsgTimeoutNow in its term holds no lease; and RawNode.Campaign is an
// explicit override that campaigns regardless, so the application must
// only call it on members that cannot be following a live leader. The
// rescue campaign of a node outside its own configuration
// (maybeRescueCampaign) needs no exemption: its own vote does not count
// there, and the votes it needs are subject to the refusal.
//
// A leader that steps down loses its lease at once, and the lease is only
// valid once the leader committed an entry of its term, so that its commit
// index is current.

package raft

import (
	"encoding/binary"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// heartbeatRounds numbers the heartbeat rounds a leader sends in its term
// and records what each follower acknowledged. A round's context, echoed
// by followers in MsgHeartbeatResponse, is (round, send tick).
type heartbeatRounds struct {
	// last is the newest round sent in this term; 0 before the first.
	last uint64
	// acks holds, per node, the newest round it acknowledged in this term
	// and that round's send tick.
	// Invariant: acks[id].round <= last, and a higher round never carries
	// a lower tick (rounds are numbered in sending order).
	acks map[uint64]roundAck
}

type roundAck struct{ round, tick uint64 }

const roundCtxLen = 16

// next starts a new round sent at tick and returns its context.
func (hr *heartbeatRounds) next(tick uint64) []byte {
	hr.last++
	ctx := make([]byte, 0, roundCtxLen)
	ctx = binary.BigEndian.AppendUint64(ctx, hr.last)
	return binary.BigEndian.AppendUint64(ctx, tick)
}

// recvAck records that id echoed ctx. It reports false if ctx is not a
// round context of this term.
func (hr *heartbeatRounds) recvAck(id uint64, ctx []byte) bool {
	if len(ctx) != roundCtxLen {
		return false
	}
	ack := roundAck{round: binary.BigEndian.Uint64(ctx), tick: binary.BigEndian.Uint64(ctx[8:])}
	if ack.round == 0 || ack.round > hr.last {
		return false
	}
	if ack.round > hr.acks[id].round {
		hr.acks[id] = ack
	}
	return true
}

func (hr *heartbeatRounds) reset() {
	hr.last = 0
	clear(hr.acks)
}

// ackedRound returns the newest round acknowledged by id (0 for none). The
// leader acknowledges its own rounds as it sends them.
func (r *raft) ackedRound(id uint64) uint64 {
	if id == r.id {
		return r.rounds.last
	}
	return r.rounds.acks[id].round
}

// leaseEnd returns the tick at which the support id gave by acknowledging
// a round ends: the round's send tick plus leaseTicks, or 0 if id
// acknowledged none. The leader supports itself as of now.
func (r *raft) leaseEnd(id uint64) uint64 {
	if id == r.id {
		return r.ticks + r.leaseTicks
	}
	if ack, ok := r.rounds.acks[id]; ok {
		return ack.tick + r.leaseTicks
	}
	return 0
}

// bcastRoundHeartbeat starts a heartbeat round and sends it to everyone.
func (r *raft) bcastRoundHeartbeat() {
	r.bcastHeartbeatWithCtx(r.rounds.next(r.ticks))
}

// leaseValid implements RawNode.LeaseValid.
func (r *raft) leaseValid() bool {
	if r.leaseTicks == 0 || r.state != StateLeader || r.removedLeader() ||
		r.leadTransferee != None || r.timeoutNowSent || !r.committedEntryInCurrentTerm() {
		return false
	}
	// The lease lasts until T + leaseTicks for the largest T such that a
	// quorum acknowledged rounds sent at T or later.
	return r.ticks < r.trk.config.voters.committedIndex(r.leaseEnd)
}

// heardFromLeader records a message from the leader of the current term.
func (r *raft) heardFromLeader(lead uint64) {
	r.electionElapsed = 0
	r.lead = lead
	r.leaderContactTick = r.ticks
}

// voteRefusalActive reports whether this node must not help elect a new
// leader now: with CheckQuorum, while it heard from a leader within an
// election timeout (Raft thesis section 4.2.3), and with LeaseTicks also
// within an election timeout of its last leader contact or start, whatever
// happened to its term since (the promise the lease relies on, see the top
// of this file). Leader transfers (campaignTransferCtx) are exempt.
func (r *raft) voteRefusalActive(m *eraftpb.Message) bool {
	if !r.checkQuorum || string(m.Context) == string(campaignTransferCtx) {
		return false
	}
	if r.lead != None && r.electionElapsed < r.electionTimeout {
		return true
	}
	return r.leaseTicks > 0 && r.ticks < r.leaderContactTick+uint64(r.electionTimeout)
}
