package raft

import "github.com/pingcap/kvproto/pkg/eraftpb"

// ReadOnlyOption selects how ReadIndex requests are served.
type ReadOnlyOption int

const (
	// ReadOnlySafe confirms leadership with a round of heartbeats to a
	// quorum before answering. Reference: Raft thesis section 6.4.
	ReadOnlySafe ReadOnlyOption = iota
	// ReadOnlyLeaseBased answers immediately, relying on the leader lease
	// provided by check-quorum. It is only correct if clock drift is
	// bounded, and requires Config.CheckQuorum.
	ReadOnlyLeaseBased
)

// ReadState is the answer to a ReadIndex request: once the application has
// applied up to Index, it may serve the read identified by RequestCtx.
type ReadState struct {
	Index      uint64
	RequestCtx []byte
}

type readIndexStatus struct {
	req   eraftpb.Message
	index uint64
	acks  map[uint64]bool
}

// readOnly tracks ReadIndex requests awaiting heartbeat confirmation.
type readOnly struct {
	option  ReadOnlyOption
	pending map[string]*readIndexStatus
	// queue holds request contexts in arrival order.
	// Invariant: the keys of pending are exactly the elements of queue.
	queue []string
}

func newReadOnly(option ReadOnlyOption) *readOnly {
	return &readOnly{option: option, pending: map[string]*readIndexStatus{}}
}

// addRequest registers a request m that reads at index (the leader's commit
// index when the request arrived). Duplicate contexts are ignored.
func (ro *readOnly) addRequest(index uint64, m eraftpb.Message) {
	ctx := string(m.Entries[0].Data)
	if _, ok := ro.pending[ctx]; ok {
		return
	}
	ro.pending[ctx] = &readIndexStatus{req: m, index: index, acks: map[uint64]bool{}}
	ro.queue = append(ro.queue, ctx)
}

// recvAck records a heartbeat acknowledgement from id for ctx and returns
// the acknowledgements so far (nil if ctx is unknown).
func (ro *readOnly) recvAck(id uint64, ctx []byte) map[uint64]bool {
	rs, ok := ro.pending[string(ctx)]
	if !ok {
		return nil
	}
	rs.acks[id] = true
	return rs.acks
}

// advance removes and returns every request up to and including ctx: a
// heartbeat round confirming ctx also confirms all earlier requests.
func (ro *readOnly) advance(ctx []byte) []*readIndexStatus {
	for i, c := range ro.queue {
		if c != string(ctx) {
			continue
		}
		rss := make([]*readIndexStatus, 0, i+1)
		for _, okctx := range ro.queue[:i+1] {
			rss = append(rss, ro.pending[okctx])
			delete(ro.pending, okctx)
		}
		ro.queue = ro.queue[i+1:]
		return rss
	}
	return nil
}

// lastPendingRequestCtx returns the context of the newest pending request.
func (ro *readOnly) lastPendingRequestCtx() []byte {
	if len(ro.queue) == 0 {
		return nil
	}
	return []byte(ro.queue[len(ro.queue)-1])
}
