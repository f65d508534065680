package mvcc

import (
	"hash/maphash"
	"slices"
	"sync"
)

// Latches serialise commands that touch the same keys. A key hashes to one
// of a fixed set of slots; a command locks the slots of all its keys in
// ascending slot order, so two commands never wait for each other in a
// cycle. Distinct keys may share a slot, which only costs concurrency.
type Latches struct {
	seed  maphash.Seed
	slots []sync.Mutex
}

// NewLatches returns latches with the given number of slots (at least 1).
func NewLatches(slots int) *Latches {
	return &Latches{seed: maphash.MakeSeed(), slots: make([]sync.Mutex, max(slots, 1))}
}

// LatchGuard holds the slots of one command's keys until Release.
type LatchGuard struct {
	latches *Latches
	// held are the locked slot indexes, ascending and distinct.
	held []int
}

// Acquire blocks until the command owns every key in keys.
func (l *Latches) Acquire(keys [][]byte) *LatchGuard {
	held := make([]int, 0, len(keys))
	for _, key := range keys {
		held = append(held, int(maphash.Bytes(l.seed, key)%uint64(len(l.slots))))
	}
	slices.Sort(held)
	held = slices.Compact(held)
	for _, slot := range held {
		l.slots[slot].Lock()
	}
	return &LatchGuard{latches: l, held: held}
}

// Release frees the slots; it must be called exactly once.
func (g *LatchGuard) Release() {
	for i := len(g.held) - 1; i >= 0; i-- {
		g.latches.slots[g.held[i]].Unlock()
	}
	g.held = nil
}
