/*
Package raft implements the Raft consensus protocol as a pure state
machine, for use by TinyKV.

The package performs no IO, starts no goroutines and reads no clock. The
application owns all of that: it persists state through a Storage it
provides, moves logical time forward with RawNode.Tick, delivers network
messages with RawNode.Step, and collects output through the Ready loop.
Wire types are those of github.com/pingcap/kvproto/pkg/eraftpb.

# Starting a node

A node reads its initial state from Config.Storage: the HardState (term,
vote, commit), the ConfState (membership) of the latest snapshot, and the
log. A new cluster is bootstrapped by writing a snapshot whose ConfState
lists the initial voters into every member's storage before calling
NewRawNode:

	storage := raft.NewMemoryStorage()
	_ = storage.ApplySnapshot(eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{
		Index: 1, Term: 1, ConfState: &eraftpb.ConfState{Voters: []uint64{1, 2, 3}},
	}})
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: storage,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256,
		CheckQuorum: true, PreVote: true,
		Rand: rand.NewPCG(seed, 1), // deterministic election timeouts
	})

A restarted node uses the same storage (and sets Config.Applied to the
index its state machine has applied).

# The Ready loop

All inputs (Tick, Step, Propose, ProposeConfChange, Campaign,
TransferLeader, ReadIndex, ReportUnreachable, ReportSnapshot) only change
memory. Their effects are collected with:

	for rn.HasReady() {
		rd := rn.Ready()
		// 1. Persist, in this order, before anything else leaves the node:
		//    - rd.Snapshot (if not nil): storage.ApplySnapshot and restore
		//      the state machine from it;
		//    - rd.Entries: storage.Append;
		//    - rd.HardState (if not empty): storage.SetHardState.
		//    Use fsync when rd.MustSync is true.
		// 2. Send rd.Messages. For each MsgSnapshot, later call
		//    rn.ReportSnapshot with the outcome.
		// 3. Apply rd.CommittedEntries to the state machine in order. For
		//    conf change entries call rn.ApplyConfChange.
		// 4. Serve reads in rd.ReadStates once applied >= ReadState.Index.
		// 5. rn.Advance()
	}

The persist-before-send contract (step 1 before step 2) is what makes Raft
safe across crashes: a message may acknowledge entries or carry a vote, a
term or a commit index, and the receiver relies on the sender not
forgetting it. In particular a vote must be on disk before the vote
response is sent, and appended entries before the append response. For the
same reason committed entries are applied only after the entries are
persisted: the leader counts its own log towards the quorum as soon as it
appends.

Ready and Advance strictly alternate; HasReady and Ready must not be called
between them. Inputs (e.g. Step) may be fed between Ready and Advance; their
effects show up in the next Ready. Entries in a Ready are shared with the
node and must not be modified.

# Features

  - Leader election with randomized timeouts (Config.Rand), pre-vote
    (Config.PreVote) and check-quorum with leader lease
    (Config.CheckQuorum).
  - Log replication with per-follower progress in probe, replicate or
    snapshot state, an inflight window (MaxInflightMsgs, MaxInflightBytes),
    message size limits (MaxSizePerMsg) and fast log backtracking via
    rejection hints.
  - Snapshots: sent automatically when a follower needs compacted entries;
    the application reports the outcome with ReportSnapshot.
  - Membership changes: learners, one-voter-at-a-time changes
    (eraftpb.ConfChange) and joint consensus (eraftpb.ConfChangeV2) with
    automatic or explicit leave. At most one change is pending at a time.
  - Flow control of proposals: a leader drops proposals beyond
    MaxUncommittedEntriesSize with ErrProposalDropped.
  - Leader transfer (TransferLeader, MsgTimeoutNow).
  - Linearizable reads via ReadIndex, heartbeat-confirmed (ReadOnlySafe) or
    lease-based (ReadOnlyLeaseBased). A retried ReadIndex (same context)
    replaces the pending one, so it is answered at the commit index of the
    retry's arrival.
  - A leader lease (Config.LeaseTicks, RawNode.LeaseValid): while
    LeaseValid, the leader may serve reads locally at its commit index.
    Its safety argument is in lease.go; the replicated store uses it
    instead of ReadOnlyLeaseBased.

# Memory

The node drops its references to entries once they are persisted
(Advance) and to messages once handed out (Ready), so an idle group holds
no payload beyond what Storage keeps.

# Membership changes

A conf change takes effect on a node when the application applies its
entry and calls RawNode.ApplyConfChange (not when it is appended). The
leader accepts a new change only once the previous one is applied, and
refuses (replaces with an empty entry) changes that are invalid for the
current configuration.

A new member starts with an empty Storage and no configuration; it learns
the configuration from the snapshot the leader sends it. That snapshot must
therefore include the new member: the application should create a snapshot
(MemoryStorage.CreateSnapshot with the ConfState returned by
ApplyConfChange) after applying a conf change, or generate snapshots on
demand.

A leader that is removed (or demoted to learner) stops accepting proposals
and reads, catches up the most up-to-date remaining voter and hands
leadership to it with MsgTimeoutNow before becoming a follower. Because
configurations take effect on apply, remaining voters may still need a
removed node's vote; a removed node with a longer log therefore campaigns
(and then hands off) when it refuses its vote to a less up-to-date
candidate that is a voter of its configuration, instead of blocking
elections forever.

As in any Raft, a removed node that never learns of its removal keeps
campaigning; enable PreVote and/or CheckQuorum (and shut removed nodes
down) so that it cannot disrupt the cluster.

# Errors and panics

Invalid external input (messages from unknown nodes, stale terms, malformed
messages) is ignored or answered with an error. Violations of internal
invariants that indicate a corrupted log or a broken Storage (e.g. a
committed entry being overwritten) panic, since continuing could violate
safety.
*/
package raft
