package mvcc

import (
	"context"
	"errors"
	"fmt"

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

// Storage is what the transaction layer reads from and writes through. A
// standalone engine implements it directly; a replicated store implements
// Write by proposing the modifies and applying them once committed.
type Storage interface {
	// Write applies the modifies atomically: a Snapshot taken after Write
	// returns sees all of them, and no Snapshot sees part of them.
	Write(ctx context.Context, modifies []Modify) error
	// Snapshot returns a consistent view that includes every Write that
	// returned before the call. It must be closed.
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Snapshot is a consistent read-only view of the three CFs.
type Snapshot interface {
	// Get returns the value of key in cf, or nil when the key is absent (a
	// present empty value is a non-nil empty slice).
	Get(cf engine.CF, key []byte) ([]byte, error)
	// NewIterator returns an unpositioned iterator over cf; it must be
	// closed before the snapshot.
	NewIterator(cf engine.CF, opts engine.IterOptions) Iterator
	// NextLockByStartTS returns the CfLock value of a lock with the
	// smallest start_ts at or above from, or false when there is none. Its
	// cost does not grow with the number of locks a transaction holds.
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

// standalone is a Storage over one local engine.
type standalone struct{ engine *engine.Engine }

// NewStandalone returns a Storage that writes to and reads from e directly.
// e must rank its locks with LockRank; NewStandalone panics otherwise, as
// that is a mistake in the code that opened it.
func NewStandalone(e *engine.Engine) Storage {
	if !e.RanksLocks() {
		panic("mvcc: NewStandalone needs an engine opened with Options.LockRank = mvcc.LockRank")
	}
	return standalone{engine: e}
}

func (s standalone) Write(ctx context.Context, modifies []Modify) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	wb := engine.NewWriteBatch()
	for _, m := range modifies {
		if m.Delete {
			wb.Delete(m.CF, m.Key)
		} else {
			wb.Put(m.CF, m.Key, m.Value)
		}
	}
	if err := s.engine.Write(wb); err != nil {
		return fmt.Errorf("mvcc: write %d modifies: %w", len(modifies), err)
	}
	return nil
}

func (s standalone) Snapshot(ctx context.Context) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return standaloneSnapshot{snap: s.engine.Snapshot()}, nil
}

type standaloneSnapshot struct{ snap *engine.Snapshot }

func (s standaloneSnapshot) Get(cf engine.CF, key []byte) ([]byte, error) {
	value, err := s.snap.Get(cf, key)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil
	}
	return value, err
}

func (s standaloneSnapshot) NewIterator(cf engine.CF, opts engine.IterOptions) Iterator {
	return s.snap.NewIterator(cf, opts)
}

func (s standaloneSnapshot) NextLockByStartTS(from uint64) ([]byte, bool) {
	_, lock, ok := s.snap.NextRankedLock(from)
	return lock, ok
}

func (s standaloneSnapshot) Close() { s.snap.Close() }
