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
	// locks is CfLock as of published. Snapshots hold copy-on-write clones.
	locks *lockTree
	// readers counts the open snapshots by their read version. Badger may
	// drop a version only when no open snapshot can read it, so the discard
	// version is kept at the oldest of them (or published, when none).
	readers map[uint64]int
}

// openView loads CfLock from db at its latest version.
func openView(db *badger.DB) (*view, error) {
	v := &view{db: db, published: db.MaxVersion(), locks: btree.NewG(lockTreeDegree, lessStoredEntry),
		readers: make(map[uint64]int)}
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
		v.locks.ReplaceOrInsert(storedEntry{key: it.Item().KeyCopy(nil), value: value})
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
				v.locks.Delete(storedEntry{key: key})
			default:
				v.locks.ReplaceOrInsert(storedEntry{key: bytes.Clone(key), value: bytes.Clone(wb.value(op))})
			}
		}
	}
	v.published = version
	if len(v.readers) == 0 {
		v.db.SetDiscardTs(version)
	}
}

// acquire registers a snapshot and returns its read version and lock table.
func (v *view) acquire() (version uint64, locks *lockTree) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.readers[v.published]++
	return v.published, v.locks.Clone()
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
