package raft_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/tinykv/tinykv/raft"
)

// A single-node cluster driven through the Ready loop.
func ExampleRawNode() {
	storage := raft.NewMemoryStorage()
	// Bootstrap: a snapshot holding the initial membership.
	_ = storage.ApplySnapshot(eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{
		Index: 1, Term: 1, ConfState: &eraftpb.ConfState{Voters: []uint64{1}},
	}})
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: storage,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256,
		Rand: rand.NewPCG(1, 1),
	})
	if err != nil {
		panic(err)
	}
	_ = rn.Campaign()
	handle := func() {
		for rn.HasReady() {
			rd := rn.Ready()
			// 1. Persist.
			if rd.Snapshot != nil {
				_ = storage.ApplySnapshot(*rd.Snapshot)
			}
			_ = storage.Append(rd.Entries)
			if !raft.IsEmptyHardState(rd.HardState) {
				_ = storage.SetHardState(rd.HardState)
			}
			// 2. Send rd.Messages (none in a single-node cluster).
			// 3. Apply.
			for _, e := range rd.CommittedEntries {
				if e.EntryType == eraftpb.EntryType_EntryNormal && len(e.Data) > 0 {
					fmt.Printf("applied %q at index %d\n", e.Data, e.Index)
				}
			}
			// 4. Acknowledge.
			rn.Advance()
		}
	}
	handle()
	_ = rn.Propose([]byte("hello"))
	_ = rn.Propose([]byte("world"))
	handle()
	// Output:
	// applied "hello" at index 3
	// applied "world" at index 4
}
