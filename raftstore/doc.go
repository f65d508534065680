/*
Package raftstore is TinyKV's multi-Raft store: every region is a Raft group
with one peer per store that holds it, built on package raft.

# Structure

A Store holds one peer per region and drives all of them with two batch
systems (see batch.go), as TiKV does, rather than a goroutine per region:

  - the peer pollers step raft messages, ticks, proposals and reads into
    each peer's raft.RawNode, then handle the Readies of a whole poll round
    together: one raft engine write (one fsync) for every peer's entries
    and hard state, and only after it the messages that depend on them, the
    committed entries handed to the appliers, and Advance;
  - the apply pollers write committed commands into the KV engine, each
    region's apply state in the same batch as its data, then answer the
    proposals and report the applied index back to the peer.

# Persistence

The raft engine holds each region's log and RaftLocalState; the KV engine
holds the data and, in engine.CfRaft, each region's RaftApplyState and
RegionLocalState (keys.go). Because the apply state is written with the data
it describes, a restart re-applies exactly the committed entries after it;
because the raft engine syncs before anything leaves a Ready, no message
acknowledges state a crash could lose. A write is acknowledged once applied
on the leader.

# Requests

Propose takes a raft_cmdpb write command; Snapshot returns a region-bounded
view for a read. Both check, in TiKV's order, the store, the peer id,
leadership, the region epoch (the version: a conf change does not disturb
reads and writes) and the term, and answer region problems as *storage.RegionError
carrying the errorpb.Error clients expect: NotLeader with the leader this
peer knows, EpochNotMatch with the current region, StaleCommand for a
proposal overwritten by another leader's log, KeyNotInRegion,
RaftEntryTooLarge, RegionNotFound, StoreNotMatch, MismatchPeerId.

A read is served at once while the leader holds its lease (raft's
LeaseValid: a quorum acknowledged a heartbeat round less than LeaseTicks
ago, no transfer in progress) and has applied an entry of its term;
otherwise, or when the request asks for read_quorum, it confirms
leadership with a ReadIndex round (one for all the reads that reach a peer
in one poll round) and waits until the read index is applied.

# Log GC and snapshots

Every RaftLogGCTicks a leader proposes CompactLog by TiKV's rules (what all
peers replicated, or half the log past RaftLogGCCountLimit). Applying it
moves the truncated state, written with the data; a background worker then
syncs the KV engine and deletes the compacted entries from the raft engine.
A follower behind the truncated index gets a snapshot: built in the
background from one consistent view of the KV engine (data, apply state and
region state together; see snap.go for the inline format), checked on
arrival, applied by the region's applier in order with its other work (the
region's data replaced, apply state and region state at the snapshot), and
only then persisted on the raft side (the log emptied at the snapshot)
before the Ready's messages go out. A crash between the two is mended at
load (peerStorage.recoverAfterSnapshot).

# Membership, leader transfer and split

ChangePeer is a raft conf change, applied with a conf_ver bump; a store
creates an uninitialized peer for a new peer's first message (filled by a
snapshot), and a removed or stale peer destroys itself, leaving a
Tombstone (confchange.go). TransferLeader is answered at once by the leader
and carried out by raft (transfer.go). A leader whose region grew past
RegionMaxSize or RegionMaxKeys asks PD for ids and proposes BatchSplit;
every replica starts the new regions' peers when it applies it, and
regionRanges keeps peers and snapshots from overlapping a live region
(split.go, ranges.go).

# Between stores and with the node

GRPCTransport carries raft messages to other stores over the Tikv
service's BatchRaft stream (one per store, batched, never blocking the
peers: a full queue or a store that cannot be reached fails the send, and
raft marks the peer unreachable), snapshots over their own Snapshot stream
in chunks; RaftServer is the receiving side. Storage is the store as the
storage seam (kvstorage.go); CheckContext, LeaderRegions and
Config.OnLeaderChange give the node what it checks requests with and
reports to PD (regioninfo.go).

Not yet built: snapshots streamed from disk (they are chunked on the wire
but held whole in memory at both ends, and reported to raft as finished
when queued), the two-step Applying state for snapshots larger than one
atomic batch, follower and stale reads, joint-consensus ChangePeerV2,
region merge, and down peers in the heartbeats.
*/
package raftstore
