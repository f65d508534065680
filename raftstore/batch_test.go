package raftstore

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// counterFSM records the messages it got and whether two pollers ever
// handled it at once.
type counterFSM struct {
	busy       atomic.Bool
	overlapped atomic.Bool
	got        []int
}

// TestBatchSystemOrderAndExclusion: every message reaches its FSM, in the
// order sent, and no FSM is handled by two pollers at once.
func TestBatchSystemOrderAndExclusion(t *testing.T) {
	const fsms, perSender = 16, 2000
	var handled atomic.Int64
	var wg sync.WaitGroup
	wg.Add(fsms * perSender)
	sys := newBatchSystem(4, 3, func(batch []delivery[*counterFSM, int]) {
		for _, d := range batch {
			if d.fsm.busy.Swap(true) {
				d.fsm.overlapped.Store(true)
			}
			d.fsm.got = append(d.fsm.got, d.msgs...)
			d.fsm.busy.Store(false)
			handled.Add(int64(len(d.msgs)))
			for range d.msgs {
				wg.Done()
			}
		}
	})
	boxes := make([]*mailbox[*counterFSM, int], fsms)
	for i := range boxes {
		boxes[i] = sys.newMailbox(&counterFSM{})
	}
	var senders sync.WaitGroup
	for _, mb := range boxes {
		senders.Go(func() {
			for j := range perSender {
				require.True(t, mb.send(j))
			}
		})
	}
	senders.Wait()
	wg.Wait()
	sys.stop()
	for i, mb := range boxes {
		require.False(t, mb.fsm.overlapped.Load(), "fsm %d handled concurrently", i)
		require.Len(t, mb.fsm.got, perSender)
		for j, v := range mb.fsm.got {
			require.Equal(t, j, v, "fsm %d message %d out of order", i, j)
		}
	}
	require.Equal(t, int64(fsms*perSender), handled.Load())
}

// TestMailboxClose: a closed mailbox refuses messages and hands back those
// never handled.
func TestMailboxClose(t *testing.T) {
	sys := newBatchSystem(1, 1, func([]delivery[int, int]) {})
	sys.stop()
	mb := sys.newMailbox(0)
	require.True(t, mb.send(1))
	require.True(t, mb.send(2))
	require.Equal(t, []int{1, 2}, mb.close())
	require.False(t, mb.send(3))
}
