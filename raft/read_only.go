package raft

import (
	"slices"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// ReadOnlyOption selects how ReadIndex requests are served.
type ReadOnlyOption int

const (
	// ReadOnlySafe confirms leadership with a round of heartbeats to a
	// quorum before answering. Reference: Raft thesis section 6.4.
	ReadOnlySafe ReadOnlyOption = iota
	// ReadOnlyLeaseBased answers immediately, relying on the leader lease
	// provided by check-quorum. It is only correct if clock drift is
	// bounded, and requires Config.CheckQuorum. Its lease is not tied to
	// acknowledged heartbeats: a deposed leader may keep answering for a
	// few ticks after a new leader committed. The replicated store uses
	// ReadOnlySafe and serves lease reads only while RawNode.LeaseValid
	// (Config.LeaseTicks) instead.
	ReadOnlyLeaseBased
)

// ReadState is the answer to a ReadIndex request: once the application has
// applied up to Index, it may serve the read identified by RequestCtx.
type ReadState struct {
	Index      uint64
	RequestCtx []byte
}

// readIndexRequest is a ReadIndex request awaiting confirmation.
type readIndexRequest struct {
	req eraftpb.Message
	// index is the leader's commit index when the request arrived.
	index uint64
	// round is the heartbeat round sent after it arrived; the request is
	// confirmed once a quorum acknowledged that round or a later one.
	round uint64
}

// readKey identifies a request: the node that asked and its context.
type readKey struct {
	from uint64
	ctx  string
}

// readOnly tracks ReadIndex requests (ReadOnlySafe) awaiting confirmation
// by a heartbeat round.
type readOnly struct {
	option ReadOnlyOption
	// queue holds the requests in arrival order, so rounds ascend.
	queue []*readIndexRequest
	// live maps each key to its newest request. A retry with the same
	// key supersedes the earlier request, which is then dropped unanswered:
	// answering it would hand the retry an index older than the commit
	// index at the retry's arrival.
	// Invariant: every value of live is in queue; an element of queue that
	// is not a value of live was superseded.
	live map[readKey]*readIndexRequest
}

func newReadOnly(option ReadOnlyOption) *readOnly {
	return &readOnly{option: option, live: map[readKey]*readIndexRequest{}}
}

// addRequest registers request m, which reads at index and is confirmed by
// round.
func (ro *readOnly) addRequest(index, round uint64, m eraftpb.Message) {
	rs := &readIndexRequest{req: m, index: index, round: round}
	ro.live[readKey{from: m.From, ctx: string(m.Entries[0].Data)}] = rs
	ro.queue = append(ro.queue, rs)
}

// advance removes the requests confirmed by a quorum acknowledging round
// acked, and returns those not superseded, in arrival order.
func (ro *readOnly) advance(acked uint64) []*readIndexRequest {
	n := 0
	for n < len(ro.queue) && ro.queue[n].round <= acked {
		n++
	}
	var confirmed []*readIndexRequest
	for _, rs := range ro.queue[:n] {
		key := readKey{from: rs.req.From, ctx: string(rs.req.Entries[0].Data)}
		if ro.live[key] == rs {
			delete(ro.live, key)
			confirmed = append(confirmed, rs)
		}
	}
	// Delete also clears the vacated tail, so the queue does not keep
	// answered requests alive.
	ro.queue = slices.Delete(ro.queue, 0, n)
	return confirmed
}

// pending reports whether requests await confirmation.
func (ro *readOnly) pending() bool { return len(ro.queue) > 0 }
