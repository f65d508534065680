package raft

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// heapAlloc returns the bytes of live heap objects after a full collection.
func heapAlloc() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// Once entries are persisted, applied and compacted away, no node keeps
// them alive: neither its unstable log nor the messages it already handed
// out. Otherwise an idle group would hold its last burst of proposals
// forever, which a store with thousands of groups cannot afford.
func TestPersistedEntriesReleased(t *testing.T) {
	const proposals, size = 40, 1 << 20
	c := newRNCluster(t, ids(3), nil, nil)
	c.discardApplied = true
	c.elect(1)
	before := heapAlloc()
	// Bursts of different sizes, so that logs and message queues hold
	// several entries at once and their arrays have spare room.
	for proposed, burst := 0, 2; proposed < proposals; proposed, burst = proposed+burst, 7-burst {
		for range min(burst, proposals-proposed) {
			require.NoError(t, c.nodes[1].rn.Propose(make([]byte, size)))
		}
		c.stabilize()
	}
	for _, id := range sortedKeys(c.nodes) {
		n := c.nodes[id]
		require.NoError(t, n.storage.Compact(n.rn.BasicStatus().Applied))
	}
	// Measured at once (an idle group may not even heartbeat) and after
	// ten heartbeat rounds.
	for round := range 2 {
		if round == 1 {
			c.tick(1, 10)
		}
		retained := heapAlloc() - before
		runtime.KeepAlive(c) // the cluster must be live while measured
		require.Less(t, retained, int64(size), "after %d heartbeat rounds: %d KiB of %d MiB proposed still retained",
			10*round, retained>>10, proposals*size>>20)
	}
}
