// Package engine is TinyKV's local storage engine: a Badger v4 database with
// TiKV's three column families, atomic write batches with group commit, and
// consistent snapshots. The MVCC layer stores Percolator data in it, and the
// raft store opens a second Engine in another directory for raft state.
//
// # On-disk layout
//
// One Badger database per directory. A column family is a one-byte key
// prefix: CfDefault 'd', CfLock 'l', CfWrite 'w', and the raftstore's local
// CfRaft 'r'. The stored key is the prefix
// followed by the user key, unchanged, so within a CF stored keys sort as
// user keys do and the CF occupies exactly the stored range [prefix,
// prefix+1). Values are stored unchanged. Badger keeps one version per key
// (its own versions are not MVCC versions; TiKV's timestamps live inside the
// user keys, encoded by the MVCC layer). Values under 1 MiB stay in the LSM
// tree; larger ones go to Badger's value log, in files of 256 MiB. A
// background task rewrites every minute the files that are at least half
// garbage (values overwritten or deleted), keeping the moved values'
// old file until they are synced (see valueLogGC).
//
// Keys may be empty in every CF (the stored key is then the prefix alone),
// and sort before all other keys of the CF; the RPC layer rejects empty keys
// as TiKV does. Keys longer than MaxKeySize are rejected by Write.
//
// # Durability
//
// With Options.SyncWrites (the default from DefaultOptions) the engine keeps
// its own write-ahead log in the wal/ subdirectory: each group commit is
// appended to it as one checksummed record and fdatasynced (into blocks
// allocated ahead, so the sync writes data only) before it is committed to
// Badger, which runs without syncing. An acknowledged write therefore
// survives a process crash (SIGKILL) and a machine crash. Open re-applies
// the records Badger may not hold durably (all versions above those in its
// SSTs, since memtables flush in version order), cuts off a torn last record
// (a write never acknowledged) and fails with ErrWALCorrupt on any other
// damage. A segment is deleted once Badger has flushed everything in it and
// every value log file is synced; a clean Close leaves none. Badger's own sync (msync of its memory-mapped
// log) takes about twice as long per commit on our machines;
// BenchmarkWriteSync compares the two.
//
// Without SyncWrites there is no log of ours: acknowledged writes are in
// Badger's log and survive a process crash, and Engine.Sync makes them
// survive a machine crash.
//
// # Atomicity
//
// One Write is one Badger transaction: it is applied entirely or not at all,
// across CFs, both for concurrent readers and after a crash (Badger replays
// a transaction from its log only when the transaction's commit marker is
// there). A transaction must fit in one memtable write, so a batch is limited
// to Engine.MaxBatchEntries operations and Engine.MaxBatchBytes bytes (about
// 15% of Options.MemTableSize: with the default, ~200k operations or ~19 MiB).
// Write rejects larger batches with ErrBatchTooLarge rather than split them;
// Badger's own WriteBatch splits silently, so it is not used. WriteNonAtomic splits explicitly and guarantees only that a
// prefix of its chunks is applied. DeleteRange and DeleteRangeAllCFs are not
// atomic either.
//
// Concurrent Writes are group committed: one goroutine merges the batches
// queued while the previous commit ran into one transaction (within the same
// limits), so they share one fsync. Merging preserves each batch's atomicity;
// batches that were merged become visible and durable together.
//
// # Snapshots and iteration
//
// Badger runs in managed mode: the committer gives each group commit the
// next Badger version and publishes it once committed, and Engine.Snapshot
// reads at the last published version, so every read through a snapshot
// sees the state as of its creation, across all CFs, and never a part of a
// Write. The engine tells Badger which old versions open snapshots still
// need, so that compaction keeps them and drops the rest.
//
// CfLock is also kept in memory (the lock table), and snapshots read it
// from there: Percolator locks are written and deleted by every
// transaction, and a Badger iterator over CfLock would walk every deleted
// lock that compaction has not dropped yet, on every lock check of a range.
// With Options.LockRank the engine also keeps the lock table indexed by a
// rank of each lock's value (the MVCC layer's start_ts), updated in the same
// step, so that Snapshot.NextRankedLock lists the transactions holding locks
// without reading every lock.
//
// Iterators range over one CF within [LowerBound, UpperBound), an
// empty bound meaning the start or end of the CF, forward or reverse.
package engine
