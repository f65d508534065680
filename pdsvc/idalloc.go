package pdsvc

import (
	"context"
	"fmt"
	"sync"
)

// idAllocStep is how many IDs one durable write reserves.
const idAllocStep = 1000

// idAllocator hands out cluster-unique IDs (stores, regions, peers). It
// reserves IDs in steps: the end of the reserved range is persisted before any
// ID from it is returned, so after a restart allocation resumes past every ID
// ever handed out. IDs start at 1.
type idAllocator struct {
	storage *storage

	mu sync.Mutex
	// Invariant: last <= end. IDs in (last, end] are reserved but unused;
	// end is durable.
	last uint64
	end  uint64
}

func newIDAllocator(ctx context.Context, st *storage) (*idAllocator, error) {
	end, err := st.loadUint64(ctx, st.allocIDKey())
	if err != nil {
		return nil, fmt.Errorf("id allocator: %w", err)
	}
	return &idAllocator{storage: st, last: end, end: end}, nil
}

// alloc returns the first of count consecutive new IDs.
func (a *idAllocator) alloc(ctx context.Context, count uint64) (uint64, error) {
	if count == 0 {
		return 0, fmt.Errorf("id allocator: count must be positive: %w", ErrInvalidValue)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last+count > a.end {
		end := a.last + max(count, idAllocStep)
		if err := a.storage.saveUint64(ctx, a.storage.allocIDKey(), end); err != nil {
			return 0, fmt.Errorf("id allocator: reserve: %w", err)
		}
		a.end = end
	}
	first := a.last + 1
	a.last += count
	return first, nil
}
