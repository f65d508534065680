package raft

// inflights is a bounded FIFO of the last index (and byte size) of each
// MsgApp sent to a follower in replicate state and not yet acknowledged.
// It implements the MaxInflightMsgs / MaxInflightBytes window.
type inflights struct {
	// start is the position of the oldest in-flight message in buffer.
	start int
	// count is the number of in-flight messages.
	// Invariant: 0 <= count <= size.
	count int
	// bytes is the total payload size of in-flight messages.
	bytes uint64

	size     int    // maximum number of in-flight messages
	maxBytes uint64 // maximum in-flight payload; 0 means no limit

	// buffer is a ring buffer, grown lazily up to size.
	buffer []inflight
}

type inflight struct {
	index uint64
	bytes uint64
}

func newInflights(size int, maxBytes uint64) *inflights {
	return &inflights{size: size, maxBytes: maxBytes}
}

// clone returns an independent copy.
func (in *inflights) clone() *inflights {
	c := *in
	c.buffer = append([]inflight(nil), in.buffer...)
	return &c
}

// add records a message ending at index carrying bytes of payload. It must
// only be called when !full().
func (in *inflights) add(index, bytes uint64) {
	if in.full() {
		panic("raft: cannot add into a full inflights window")
	}
	next := in.start + in.count
	if next >= in.size {
		next -= in.size
	}
	if next >= len(in.buffer) {
		in.grow()
	}
	in.buffer[next] = inflight{index: index, bytes: bytes}
	in.count++
	in.bytes += bytes
}

func (in *inflights) grow() {
	newSize := min(max(len(in.buffer)*2, 1), in.size)
	buf := make([]inflight, newSize)
	copy(buf, in.buffer)
	in.buffer = buf
}

// freeLE frees every in-flight message with index <= to.
func (in *inflights) freeLE(to uint64) {
	if in.count == 0 || to < in.buffer[in.start].index {
		return
	}
	idx := in.start
	var i int
	var bytes uint64
	for i = 0; i < in.count; i++ {
		if to < in.buffer[idx].index {
			break
		}
		bytes += in.buffer[idx].bytes
		if idx++; idx >= in.size {
			idx -= in.size
		}
	}
	in.count -= i
	in.bytes -= bytes
	in.start = idx
	if in.count == 0 {
		in.start = 0
	}
}

// freeFirstOne frees the oldest in-flight message.
func (in *inflights) freeFirstOne() {
	if in.count > 0 {
		in.freeLE(in.buffer[in.start].index)
	}
}

// full reports whether no more messages may be sent.
func (in *inflights) full() bool {
	return in.count == in.size || (in.maxBytes != 0 && in.bytes >= in.maxBytes)
}

func (in *inflights) reset() {
	in.count, in.bytes, in.start = 0, 0, 0
}
