package engine

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/btree"
)

// lockTreeDegree is the B-tree degree of the lock table.
const lockTreeDegree = 32

// storedEntry is one key of the lock table, in stored form (CF prefix
// included), with its value. Both slices are owned by the table and never
// modified once inserted.
type storedEntry struct {
	key, value []byte
}

func lessStoredEntry(a, b storedEntry) bool { return bytes.Compare(a.key, b.key) < 0 }

// lockTree is an ordered set of CfLock entries.
type lockTree = btree.BTreeG[storedEntry]

// rankedLock is one entry of the rank index: a CfLock entry's rank (see
// Options.LockRank) and its stored key, which it shares with the lock table.
type rankedLock struct {
	rank uint64
	key  []byte
}

func lessRankedLock(a, b rankedLock) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return bytes.Compare(a.key, b.key) < 0
}

// rankTree orders the CfLock entries by rank, then key.
type rankTree = btree.BTreeG[rankedLock]

// lockTables are the lock table and, when the engine ranks locks, its rank
// index, as of one published version. Snapshots hold copy-on-write clones.
type lockTables struct {
	locks *lockTree
	// ranks holds exactly one entry per entry of locks, with the rank of its
	// value; nil when the engine has no LockRank.
	ranks *rankTree
}

func (t lockTables) clone() lockTables {
	c := lockTables{locks: t.locks.Clone()}
	if t.ranks != nil {
		c.ranks = t.ranks.Clone()
	}
	return c
}

// view decides what snapshots see, and keeps CfLock in memory.
//
// Badger runs in managed mode: the committer commits each group at the
// next version, and only then publishes it; a snapshot reads Badger at the
// last published version, so it sees every commit entirely or not at all
// even while the next one is being written.
//
// Snapshots read CfLock from an in-memory copy (the lock table) rather than
// from Badger. Locks live briefly: every transaction writes its locks and
// deletes them at commit or rollback, so in Badger CfLock is mostly deleted
// versions, which a Badger iterator walks one by one until it finds a live
// key. Reads check for locks in every range they read, usually finding
// none, and would pay for every lock deleted since the last compaction. The
// table holds only live locks; Badger still stores CfLock for durability,
// and the table is loaded from it on Open.
type view struct {
	db *badger.DB

	// mu serializes publish, acquire and release.
	mu sync.Mutex
	// published is the last version whose commit is visible to snapshots.
	published uint64
	// tables are CfLock as of published.
	tables lockTables
	// rank is Options.LockRank; nil when locks are not ranked.
	rank func(value []byte) uint64
	// readers counts the open snapshots by their read version. Badger may
	// drop a version only when no open snapshot can read it, so the discard
	// version is kept at the oldest of them (or published, when none).
	readers map[uint64]int
}

// openView loads CfLock from db at its latest version, and ranks its entries
// with rank unless it is nil.
func openView(db *badger.DB, rank func(value []byte) uint64) (*view, error) {
	v := &view{db: db, published: db.MaxVersion(), rank: rank,
		tables: lockTables{locks: btree.NewG(lockTreeDegree, lessStoredEntry)}, readers: make(map[uint64]int)}
	if rank != nil {
		v.tables.ranks = btree.NewG(lockTreeDegree, lessRankedLock)
	}
	txn := db.NewTransactionAt(v.published, false)
	defer txn.Discard()
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte{CfLock.prefix()}
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		value, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, fmt.Errorf("engine: load lock table: %w", err)
		}
		v.putLock(storedEntry{key: it.Item().KeyCopy(nil), value: value})
	}
	db.SetDiscardTs(v.published)
	return v, nil
}

// publish makes the group committed to Badger at version visible: its
// CfLock operations go to the lock table, in order, and new snapshots read
// at version.
func (v *view) publish(version uint64, group []*commitRequest) {
	prefix := CfLock.prefix()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, req := range group {
		wb := req.batch
		for _, op := range wb.ops {
			key := wb.storedKey(op)
			switch {
			case key[0] != prefix:
			case op.delete:
				v.deleteLock(key)
			default:
				v.putLock(storedEntry{key: bytes.Clone(key), value: bytes.Clone(wb.value(op))})
			}
		}
	}
	v.published = version
	if len(v.readers) == 0 {
		v.db.SetDiscardTs(version)
	}
}

// putLock inserts or replaces a lock table entry, and its rank. v.mu must
// be held (or v not yet shared).
func (v *view) putLock(entry storedEntry) {
	old, replaced := v.tables.locks.ReplaceOrInsert(entry)
	if v.tables.ranks == nil {
		return
	}
	if replaced {
		v.tables.ranks.Delete(rankedLock{rank: v.rank(old.value), key: old.key})
	}
	v.tables.ranks.ReplaceOrInsert(rankedLock{rank: v.rank(entry.value), key: entry.key})
}

// deleteLock removes the lock table entry of key, if any, and its rank. v.mu
// must be held.
func (v *view) deleteLock(key []byte) {
	old, found := v.tables.locks.Delete(storedEntry{key: key})
	if found && v.tables.ranks != nil {
		v.tables.ranks.Delete(rankedLock{rank: v.rank(old.value), key: old.key})
	}
}

// acquire registers a snapshot and returns its read version and lock
// tables.
func (v *view) acquire() (version uint64, tables lockTables) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.readers[v.published]++
	return v.published, v.tables.clone()
}

// release unregisters a snapshot at version.
func (v *view) release(version uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.readers[version]--; v.readers[version] > 0 {
		return
	}
	delete(v.readers, version)
	v.db.SetDiscardTs(v.oldestReadable())
}

// oldestReadable is the oldest version an open snapshot reads, or the
// published version when no snapshot is open. v.mu must be held.
func (v *view) oldestReadable() uint64 {
	oldest := v.published
	for readVersion := range v.readers {
		oldest = min(oldest, readVersion)
	}
	return oldest
}
