package pdsvc

import (
	"fmt"
	"sync"

	"github.com/pingcap/kvproto/pkg/pdpb"
)

// hbStream is one RegionHeartbeat stream. gRPC forbids concurrent Sends on
// a stream, and both its own handler (error answers) and other goroutines
// (operators created over HTTP) send on it, so sends go through send.
type hbStream struct {
	mu     sync.Mutex
	stream pdpb.PD_RegionHeartbeatServer
}

func (s *hbStream) send(resp *pdpb.RegionHeartbeatResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream.Send(resp)
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
