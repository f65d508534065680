package pdsvc

import (
	"sync"
	"time"
)

// limitType is what a per-store limit counts, PD's store limit types.
type limitType int

const (
	// limitAddPeer counts peers added to a store.
	limitAddPeer limitType = iota
	// limitRemovePeer counts peers removed from a store.
	limitRemovePeer
)

// storeLimiter is PD's per-store limit: for every store and limit type a
// token bucket that refills at rate tokens a minute, up to one minute's
// worth. A balance or scatter operator takes one token for every peer it
// adds to a store and every peer it removes from one, when it starts. It
// reads time only from the now its callers pass, so tests drive it with a
// fake clock. Safe for concurrent use.
type storeLimiter struct {
	rate float64 // tokens per minute, > 0

	mu sync.Mutex
	// buckets holds the buckets that have been used. Invariant: 0 <=
	// tokens <= rate as of at.
	buckets map[limitKey]*tokenBucket
}

type limitKey struct {
	store uint64
	typ   limitType
}

type tokenBucket struct {
	tokens float64
	at     time.Time
}

func newStoreLimiter(ratePerMinute float64) *storeLimiter {
	return &storeLimiter{rate: ratePerMinute, buckets: make(map[limitKey]*tokenBucket)}
}

// available reports whether store has a token of typ at now. A nil
// limiter has tokens for everything.
func (l *storeLimiter) available(store uint64, typ limitType, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bucketLocked(store, typ, now).tokens >= 1
}

// take spends one token of typ on store; it may leave the bucket below one
// token, never below zero.
func (l *storeLimiter) take(store uint64, typ limitType, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketLocked(store, typ, now)
	b.tokens = max(b.tokens-1, 0)
}

// bucketLocked returns the bucket refilled up to now; a new bucket is full.
func (l *storeLimiter) bucketLocked(store uint64, typ limitType, now time.Time) *tokenBucket {
	key := limitKey{store, typ}
	b := l.buckets[key]
	if b == nil {
		b = &tokenBucket{tokens: l.rate, at: now}
		l.buckets[key] = b
		return b
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(l.rate, b.tokens+l.rate*elapsed.Minutes())
		b.at = now
	}
	return b
}

// allows reports whether every peer steps add or remove has a token now. A
// nil limiter allows everything.
func (l *storeLimiter) allows(steps []opStep, now time.Time) bool {
	for _, s := range steps {
		if store, typ, ok := limitOf(s); ok && !l.available(store, typ, now) {
			return false
		}
	}
	return true
}

// spend takes the tokens of every peer steps add or remove.
func (l *storeLimiter) spend(steps []opStep, now time.Time) {
	if l == nil {
		return
	}
	for _, s := range steps {
		if store, typ, ok := limitOf(s); ok {
			l.take(store, typ, now)
		}
	}
}

// limitOf returns the store and limit a step counts against, if any.
func limitOf(s opStep) (uint64, limitType, bool) {
	switch s := s.(type) {
	case addPeer:
		return s.toStore, limitAddPeer, true
	case removePeer:
		return s.fromStore, limitRemovePeer, true
	}
	return 0, 0, false
}

// moveCooldown is how long balance-region keeps a region off a store it
// moved the region's peer away from. Tolerance alone keeps two stores from
// trading a region, but with many stores a region moved off a store that
// was high can be the best candidate to refill it once it is low; the
// cooldown makes balance-region move another region instead.
const moveCooldown = 10 * time.Minute

// moveHistory remembers, for moveCooldown, which stores balance-region
// moved each region off. Safe for concurrent use; nil remembers nothing.
type moveHistory struct {
	mu sync.Mutex
	// left maps a (region, store) pair to when the region's peer was
	// planned to leave the store. Invariant: no entry is older than
	// moveCooldown as of prunedAt.
	left     map[[2]uint64]time.Time
	prunedAt time.Time
}

func newMoveHistory() *moveHistory {
	return &moveHistory{left: make(map[[2]uint64]time.Time)}
}

// record notes that region's peer leaves store at now.
func (h *moveHistory) record(region, store uint64, now time.Time) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pruneLocked(now)
	h.left[[2]uint64{region, store}] = now
}

// recentlyLeft reports whether region left store within moveCooldown of now.
func (h *moveHistory) recentlyLeft(region, store uint64, now time.Time) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.left[[2]uint64{region, store}]
	return ok && now.Sub(at) < moveCooldown
}

func (h *moveHistory) pruneLocked(now time.Time) {
	if now.Sub(h.prunedAt) < moveCooldown {
		return
	}
	h.prunedAt = now
	for k, at := range h.left {
		if now.Sub(at) >= moveCooldown {
			delete(h.left, k)
		}
	}
}
