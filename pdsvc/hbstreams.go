package pdsvc

import (
	"errors"
	"fmt"
	"sync"

	"github.com/pingcap/kvproto/pkg/pdpb"
)

// hbStream is one RegionHeartbeat stream. gRPC forbids concurrent Sends on
// a stream, so one sender goroutine sends everything, in order, from
// outbox: the stream's own handler's answers (reply, which waits for its
// answer to go out) and operator steps from the coordinator and the HTTP
// API (send, which never blocks, so that a store that stops reading its
// stream cannot stall scheduling: a full outbox drops the step, and PD
// sends it again on a later heartbeat).
type hbStream struct {
	stream pdpb.PD_RegionHeartbeatServer
	outbox chan outgoing
	stop   chan struct{}
}

// outgoing is one queued response; sent, when not nil, receives the
// result of its Send.
type outgoing struct {
	resp *pdpb.RegionHeartbeatResponse
	sent chan error
}

// hbStreamOutbox is how many responses may wait for a stream's sender.
const hbStreamOutbox = 256

// errHeartbeatStreamBackedUp is returned for a response dropped because
// the stream's outbox is full.
var errHeartbeatStreamBackedUp = errors.New("pdsvc: region heartbeat stream backed up")

// newHBStream wraps a stream and starts its sender; close stops it.
func newHBStream(stream pdpb.PD_RegionHeartbeatServer) *hbStream {
	s := &hbStream{stream: stream, outbox: make(chan outgoing, hbStreamOutbox), stop: make(chan struct{})}
	go s.run()
	return s
}

func (s *hbStream) run() {
	for {
		select {
		case <-s.stop:
			return
		case o := <-s.outbox:
			err := s.stream.Send(o.resp)
			if o.sent != nil {
				o.sent <- err
			}
			if err != nil {
				return
			}
		}
	}
}

// close stops the sender; queued responses are dropped.
func (s *hbStream) close() { close(s.stop) }

// reply sends the handler's answer after what is queued, and waits until
// it went out or the stream ended.
func (s *hbStream) reply(resp *pdpb.RegionHeartbeatResponse) error {
	o := outgoing{resp: resp, sent: make(chan error, 1)}
	done := s.stream.Context().Done()
	select {
	case s.outbox <- o:
	case <-done:
		return s.stream.Context().Err()
	}
	select {
	case err := <-o.sent:
		return err
	case <-done:
		return s.stream.Context().Err()
	}
}

// send queues resp for the sender without blocking.
func (s *hbStream) send(resp *pdpb.RegionHeartbeatResponse) error {
	select {
	case s.outbox <- outgoing{resp: resp}:
		return nil
	default:
		return errHeartbeatStreamBackedUp
	}
}

// heartbeatStreams keeps each store's latest RegionHeartbeat stream: the
// one a store last sent a leader's heartbeat on is where PD sends that
// store's operator steps, as PD's hbstream does. Safe for concurrent use.
type heartbeatStreams struct {
	mu      sync.Mutex
	streams map[uint64]*hbStream
}

func newHeartbeatStreams() *heartbeatStreams {
	return &heartbeatStreams{streams: make(map[uint64]*hbStream)}
}

// bind makes s the stream of store.
func (h *heartbeatStreams) bind(store uint64, s *hbStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams[store] = s
}

// unbind forgets s, which has ended, for every store still bound to it.
func (h *heartbeatStreams) unbind(s *hbStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for store, bound := range h.streams {
		if bound == s {
			delete(h.streams, store)
		}
	}
}

// send delivers resp on the stream of the store that holds its target
// peer, the region's leader.
func (h *heartbeatStreams) send(resp *pdpb.RegionHeartbeatResponse) error {
	store := resp.GetTargetPeer().GetStoreId()
	h.mu.Lock()
	s := h.streams[store]
	h.mu.Unlock()
	if s == nil {
		return fmt.Errorf("region %d: no heartbeat stream from store %d", resp.GetRegionId(), store)
	}
	if err := s.send(resp); err != nil {
		return fmt.Errorf("region %d: send to store %d: %w", resp.GetRegionId(), store, err)
	}
	return nil
}
