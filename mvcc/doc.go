// Package mvcc is TinyKV's transaction layer: Percolator as TiKV implements
// it, with TiKV's on-disk encodings, so that tikv/client-go and TiDB can use
// TinyKV unchanged.
//
// # On-disk layout
//
// All data lives in the engine's three column families. A raw user key K
// is stored memcomparably encoded, enc(K) (EncodeBytes: 8-byte groups, each
// zero-padded and followed by the marker 0xff minus the pad length), so
// encoded keys sort as raw keys do and no encoding is a prefix of another.
// A version suffix is the big-endian ^ts, so newer versions sort first.
//
//	CfLock     enc(K)               -> Lock   (at most one per key)
//	CfWrite    enc(K) ++ ^commit_ts -> Write  (Rollback records at ^start_ts)
//	CfDefault  enc(K) ++ ^start_ts  -> value  (only values over 255 bytes)
//
// Lock and Write records use TiKV's binary format (see Lock.Marshal and
// Write.Marshal): a type byte ('P' put, 'D' delete, 'L' lock, 'S'
// pessimistic lock, 'R' rollback), uvarint timestamps, then optional fields
// each introduced by a flag byte. Values of at most 255 bytes are inlined in
// the lock and then in the commit record as the short value 'v'. A
// protected Rollback carries the short value "p".
//
// # Percolator rules
//
// Prewrite puts a lock on every key of the transaction start_ts, one of them
// the primary. It fails on a version committed after start_ts (write
// conflict; for pessimistic transactions after for_update_ts), on another
// transaction's lock (KeyIsLocked), and when the transaction was already
// rolled back on the key. Commit replaces each lock by a commit record at
// commit_ts; the transaction is committed once its primary is. A reader at
// ts sees the newest Put or Delete with commit_ts <= ts, and is blocked by a
// Put or Delete lock with start_ts <= ts (and min_commit_ts <= ts) unless
// the client lists it in resolved_locks or committed_locks; Lock and
// pessimistic locks never block reads.
//
// A transaction whose lock is gone and that has no commit record is rolled
// back by writing a Rollback record at start_ts, which makes a late prewrite
// fail. Unprotected Rollbacks may be collapsed (deleted by a newer
// Rollback) because an optimistic late prewrite also fails on the newer
// record; Rollbacks of pessimistic primaries, and those written by
// CheckTxnStatus and CheckSecondaryLocks, are protected and stay until GC.
// When another transaction's commit record already occupies key@start_ts,
// a protected rollback flags that record (overlapped rollback) instead.
//
// Async commit and 1PC choose the commit timestamp on the store: a
// ConcurrencyManager tracks max_ts (the largest read timestamp seen) and
// publishes in-flight locks in memory, so the chosen timestamp is above
// every read that could have missed the locks.
//
// Pipelined DML (TiDB's tidb_dml_type = 'bulk') writes a transaction's
// buffer while it runs: Flush is an optimistic prewrite whose locks carry a
// generation, so a key flushed again is replaced by the later generation
// and a late retry of an earlier one changes nothing; BufferBatchGet reads
// the transaction's own locks back. The client commits the primary, then
// resolves the other locks by range (ResolveLock).
//
// FLASHBACK CLUSTER runs in TiKV's two phases over a range: PrepareFlashback
// rolls back the range's locks and locks its first key for the flashback's
// start_ts (that lock is the persistent mark of a prepared range);
// Flashback writes, at commit_ts, the value each changed key had at the
// target version and commits the lock. Unlike TiKV, the store does not
// refuse other reads and writes of the range meanwhile: TiDB fences its
// sessions (super_read_only, GC and TTL jobs off) for the flashback.
//
// Commands run through a Store, which serialises commands on the same keys
// with Latches and reads and writes through a storage.Storage:
// storage.NewStandalone over a local engine, or a replicated store. Every
// snapshot and write of a command is addressed with the command's request
// context (its kvrpcpb.Context), so that a replicated store can check the
// region, epoch and leadership; work that serves no request passes nil. A
// region error from storage (a *storage.RegionError) is returned to the
// caller untouched, never as a key error.
package mvcc
