package raftstore

import "sync"

// The batch system drives many state machines (FSMs: one peer or one
// applier per region) with a fixed pool of goroutines, as TiKV's
// batch-system does: each FSM has a mailbox; sending to an idle mailbox
// queues it for the pool; a poller takes up to maxBatch queued mailboxes,
// drains their messages and hands them to the round function in one batch,
// so that the round can share one engine write (and one fsync) among them.
//
// A mailbox is queued or being handled by at most one poller at a time
// (scheduled), so each FSM's messages are handled in order and its state is
// never touched by two goroutines at once.

// mailbox holds the messages sent to one FSM and not yet handled.
type mailbox[F any, M any] struct {
	fsm F
	sys *batchSystem[F, M]

	mu sync.Mutex
	// msgs are the messages not yet taken by a poller.
	msgs []M
	// scheduled is true while the mailbox is in the system's queue or in a
	// poller's batch. Invariant: a mailbox is in at most one of them.
	scheduled bool
	// closed mailboxes refuse messages.
	closed bool
}

// send queues m for the FSM; it reports false when the mailbox is closed.
func (mb *mailbox[F, M]) send(m M) bool {
	mb.mu.Lock()
	if mb.closed {
		mb.mu.Unlock()
		return false
	}
	mb.msgs = append(mb.msgs, m)
	wake := !mb.scheduled
	mb.scheduled = true
	mb.mu.Unlock()
	if wake {
		mb.sys.schedule(mb)
	}
	return true
}

// close makes later sends fail and returns the messages never handled.
func (mb *mailbox[F, M]) close() []M {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.closed = true
	msgs := mb.msgs
	mb.msgs = nil
	return msgs
}

// take removes the queued messages.
func (mb *mailbox[F, M]) take() []M {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	msgs := mb.msgs
	mb.msgs = nil
	return msgs
}

// release ends a poller's turn: the mailbox is queued again if messages
// arrived meanwhile, otherwise it becomes idle.
func (mb *mailbox[F, M]) release() {
	mb.mu.Lock()
	again := len(mb.msgs) > 0 && !mb.closed
	mb.scheduled = again
	mb.mu.Unlock()
	if again {
		mb.sys.schedule(mb)
	}
}

// delivery is one FSM's share of a poll round.
type delivery[F any, M any] struct {
	fsm  F
	msgs []M
}

// batchSystem is a pool of pollers over a queue of scheduled mailboxes.
type batchSystem[F any, M any] struct {
	maxBatch int
	// round handles one batch of deliveries; it runs on a poller goroutine.
	round func(batch []delivery[F, M])

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*mailbox[F, M]
	stopped bool
	wg      sync.WaitGroup
}

func newBatchSystem[F any, M any](pollers, maxBatch int, round func([]delivery[F, M])) *batchSystem[F, M] {
	sys := &batchSystem[F, M]{maxBatch: maxBatch, round: round}
	sys.cond = sync.NewCond(&sys.mu)
	for range pollers {
		sys.wg.Add(1)
		go sys.poll()
	}
	return sys
}

func (sys *batchSystem[F, M]) newMailbox(fsm F) *mailbox[F, M] {
	return &mailbox[F, M]{fsm: fsm, sys: sys}
}

func (sys *batchSystem[F, M]) schedule(mb *mailbox[F, M]) {
	sys.mu.Lock()
	sys.queue = append(sys.queue, mb)
	sys.mu.Unlock()
	sys.cond.Signal()
}

// next waits for scheduled mailboxes and takes up to maxBatch of them; it
// returns nil once the system is stopped.
func (sys *batchSystem[F, M]) next() []*mailbox[F, M] {
	sys.mu.Lock()
	defer sys.mu.Unlock()
	for len(sys.queue) == 0 && !sys.stopped {
		sys.cond.Wait()
	}
	if sys.stopped {
		return nil
	}
	n := min(len(sys.queue), sys.maxBatch)
	batch := make([]*mailbox[F, M], n)
	copy(batch, sys.queue)
	rest := copy(sys.queue, sys.queue[n:])
	clear(sys.queue[rest:])
	sys.queue = sys.queue[:rest]
	return batch
}

func (sys *batchSystem[F, M]) poll() {
	defer sys.wg.Done()
	for {
		batch := sys.next()
		if batch == nil {
			return
		}
		deliveries := make([]delivery[F, M], len(batch))
		for i, mb := range batch {
			deliveries[i] = delivery[F, M]{fsm: mb.fsm, msgs: mb.take()}
		}
		sys.round(deliveries)
		for _, mb := range batch {
			mb.release()
		}
	}
}

// stop ends the pollers after their current round and waits for them.
// Messages still queued are left in their mailboxes.
func (sys *batchSystem[F, M]) stop() {
	sys.mu.Lock()
	sys.stopped = true
	sys.mu.Unlock()
	sys.cond.Broadcast()
	sys.wg.Wait()
}
