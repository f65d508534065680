package pdsvc

import (
	"context"
	"fmt"
	"sync"
	"time"
)

const (
	// logicalBits is the width of the logical part of a timestamp:
	// ts = physical_ms << logicalBits | logical.
	logicalBits = 18
	// maxLogical bounds the logical counter: every issued logical is below it.
	maxLogical = int64(1) << logicalBits
	// tsoWindow is how far ahead of the clock the allocator persists its
	// upper bound, as PD's save interval.
	tsoWindow = 3 * time.Second
	// tsoRefill is how close to the persisted bound the background updater
	// extends it, so requests rarely wait for a durable write.
	tsoRefill = time.Second
)

// tsoAllocator issues strictly increasing hybrid timestamps.
//
// Safety across restarts rests on one rule: no timestamp with physical >=
// limit is ever issued, and limit is durable before it is used. A restarted
// allocator starts at max(now, persisted limit), which is above everything
// issued before.
type tsoAllocator struct {
	storage *storage
	now     func() time.Time

	// saveMu serialises extensions of limit; it is taken before mu.
	saveMu sync.Mutex

	mu sync.Mutex
	// Invariant: physical < limit once a timestamp has been issued from it;
	// 0 <= logical < maxLogical; (physical, logical) is the last timestamp
	// issued (or the starting point, with logical 0).
	physical int64
	logical  int64
	// limit is the durable exclusive bound on physical, in unix ms.
	limit int64
}

func newTSOAllocator(ctx context.Context, st *storage, now func() time.Time) (*tsoAllocator, error) {
	saved, err := st.loadUint64(ctx, st.timestampKey())
	if err != nil {
		return nil, fmt.Errorf("tso: load window: %w", err)
	}
	a := &tsoAllocator{storage: st, now: now}
	a.physical = max(now().UnixMilli(), int64(saved))
	a.limit = int64(saved)
	if err := a.extend(ctx, a.physical+tsoWindow.Milliseconds()); err != nil {
		return nil, err
	}
	return a, nil
}

// generate reserves count timestamps and returns the largest: the caller
// owns logical values (logical-count, logical] at that physical time.
func (a *tsoAllocator) generate(ctx context.Context, count uint32) (physical, logical int64, err error) {
	if count == 0 || int64(count) >= maxLogical {
		return 0, 0, fmt.Errorf("tso: count %d outside [1, %d): %w", count, maxLogical, ErrTSOCount)
	}
	for {
		a.mu.Lock()
		now := a.now().UnixMilli()
		if now > a.physical {
			a.physical, a.logical = now, 0
		}
		if a.logical+int64(count) >= maxLogical {
			a.physical, a.logical = a.physical+1, 0
		}
		if a.physical < a.limit {
			a.logical += int64(count)
			physical, logical = a.physical, a.logical
			a.mu.Unlock()
			return physical, logical, nil
		}
		target := a.physical + tsoWindow.Milliseconds()
		a.mu.Unlock()
		if err := a.extend(ctx, target); err != nil {
			return 0, 0, err
		}
	}
}

// extend makes target the durable bound if it is above the current one.
func (a *tsoAllocator) extend(ctx context.Context, target int64) error {
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	a.mu.Lock()
	current := a.limit
	a.mu.Unlock()
	if target <= current {
		return nil
	}
	if err := a.storage.saveUint64(ctx, a.storage.timestampKey(), uint64(target)); err != nil {
		return fmt.Errorf("tso: persist window: %w", err)
	}
	a.mu.Lock()
	a.limit = target
	a.mu.Unlock()
	return nil
}

// refill extends the window when the clock has come within tsoRefill of it.
func (a *tsoAllocator) refill(ctx context.Context) error {
	a.mu.Lock()
	front := max(a.physical, a.now().UnixMilli())
	near := front+tsoRefill.Milliseconds() >= a.limit
	a.mu.Unlock()
	if !near {
		return nil
	}
	return a.extend(ctx, front+tsoWindow.Milliseconds())
}

// run refills the window in the background until ctx ends.
func (a *tsoAllocator) run(ctx context.Context, onError func(error)) {
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := a.refill(ctx); err != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}

// composeTS packs a hybrid timestamp into the uint64 form clients use.
func composeTS(physical, logical int64) uint64 {
	return uint64(physical)<<logicalBits | uint64(logical)
}
