package storage

import (
	"context"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/engine"
)

// Modify is one change to the engine: a put, or with Delete a deletion, of
// Key in CF. Keys are engine keys (encoded, versioned where the CF is).
type Modify struct {
	CF     engine.CF
	Key    []byte
	Value  []byte
	Delete bool
}

// Storage is what the transaction layer and raw KV read from and write
// through. req is the kvrpcpb.Context of the request being served, nil for
// work that serves no request. An error that the client must handle as a
// region problem carries a *RegionError (see AsRegionError); any other
// error is a storage failure.
type Storage interface {
	// Write applies the modifies atomically for the region the request
	// context addresses: a Snapshot taken after Write returns sees all of
	// them, and no Snapshot sees part of them.
	Write(ctx context.Context, req *kvrpcpb.Context, modifies []Modify) error
	// Snapshot returns a consistent view that includes every Write that
	// returned before the call, for the region req addresses. It must be
	// closed.
	Snapshot(ctx context.Context, req *kvrpcpb.Context) (Snapshot, error)
	// DestroyRange deletes every key of the data CFs in [start, end)
	// (engine keys; an empty end is unbounded) from this store alone,
	// outside replication, as UnsafeDestroyRange asks (TiDB sends it to
	// every store once GC has passed a dropped table). It is not atomic.
	DestroyRange(ctx context.Context, start, end []byte) error
}

// Snapshot is a consistent read-only view of the column families.
type Snapshot interface {
	// Get returns the value of key in cf, or nil when the key is absent (a
	// present empty value is a non-nil empty slice).
	Get(cf engine.CF, key []byte) ([]byte, error)
	// NewIterator returns an unpositioned iterator over cf; it must be
	// closed before the snapshot.
	NewIterator(cf engine.CF, opts engine.IterOptions) Iterator
	// NextLockByStartTS returns the CfLock value of a lock with the
	// smallest start_ts at or above from, or false when there is none. Its
	// cost does not grow with the number of locks a transaction holds. It
	// is store-wide: it sees the locks of every region in the store, not
	// only of the region the snapshot was taken for.
	NextLockByStartTS(from uint64) (lock []byte, ok bool)
	// Close releases the snapshot.
	Close()
}

// Iterator walks the keys of one CF within its bounds; *engine.Iterator
// implements it, and its documentation is the contract.
type Iterator interface {
	Rewind()
	Seek(key []byte)
	Next()
	Valid() bool
	Key() []byte
	Value() ([]byte, error)
	Close()
}
