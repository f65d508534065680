package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/engine"
)

// standalone is a Storage over one local engine.
type standalone struct{ engine *engine.Engine }

// NewStandalone returns a Storage that writes to and reads from e directly.
// It serves the whole engine whatever region a request addresses: it
// ignores the request context, which may be nil, and returns no region
// errors. e must rank its locks with mvcc.LockRank; NewStandalone panics
// otherwise, as that is a mistake in the code that opened it.
func NewStandalone(e *engine.Engine) Storage {
	if !e.RanksLocks() {
		panic("storage: NewStandalone needs an engine opened with Options.LockRank = mvcc.LockRank")
	}
	return standalone{engine: e}
}

func (s standalone) Write(ctx context.Context, _ *kvrpcpb.Context, modifies []Modify) error {
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
		return fmt.Errorf("storage: write %d modifies: %w", len(modifies), err)
	}
	return nil
}

func (s standalone) Snapshot(ctx context.Context, _ *kvrpcpb.Context) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return standaloneSnapshot{snap: s.engine.Snapshot()}, nil
}

func (s standalone) DestroyRange(ctx context.Context, start, end []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.engine.DeleteRangeAllCFs(start, end); err != nil {
		return fmt.Errorf("storage: destroy range: %w", err)
	}
	return nil
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
