package mvcc

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// ConcurrencyManager makes async-commit and 1PC commit timestamps safe. It
// tracks max_ts, the largest timestamp any read (or pessimistic lock) has
// used, and an in-memory table of the locks of async-commit and 1PC
// prewrites that are computing their commit timestamp or being written.
//
// The protocol: a prewrite first puts its locks in the table, then reads
// max_ts and picks a commit timestamp above it; a read first raises max_ts
// to its start_ts, then checks the table. So either the prewrite sees the
// read's start_ts and commits above it, or the read sees the lock. Entries
// leave the table only after the locks (or 1PC commits) are in storage,
// where readers see them.
type ConcurrencyManager struct {
	maxTS atomic.Uint64

	mu sync.Mutex
	// locks maps encoded keys to in-flight locks. An entry is owned by one
	// memoryLocks (latches keep keys exclusive between commands).
	locks map[string]*Lock
}

// NewConcurrencyManager returns a manager whose max_ts starts at
// initialMaxTS (a fresh TSO timestamp at startup).
func NewConcurrencyManager(initialMaxTS uint64) *ConcurrencyManager {
	cm := &ConcurrencyManager{locks: make(map[string]*Lock)}
	cm.maxTS.Store(initialMaxTS)
	return cm
}

// MaxTS returns the current max_ts.
func (cm *ConcurrencyManager) MaxTS() uint64 { return cm.maxTS.Load() }

// UpdateMaxTS raises max_ts to ts; MaxTS itself is ignored (it is not a
// real timestamp but "read the latest").
func (cm *ConcurrencyManager) UpdateMaxTS(ts uint64) {
	if ts == MaxTS {
		return
	}
	for {
		current := cm.maxTS.Load()
		if ts <= current || cm.maxTS.CompareAndSwap(current, ts) {
			return
		}
	}
}

// CheckKey calls check with the in-memory lock of the raw key, if any.
func (cm *ConcurrencyManager) CheckKey(key []byte, check func(*Lock) error) error {
	cm.mu.Lock()
	lock := cm.locks[string(EncodeKey(key))]
	cm.mu.Unlock()
	if lock == nil {
		return nil
	}
	return check(lock)
}

// CheckRange calls check with each in-memory lock on a raw key in [start,
// end) (empty end: unbounded), stopping at the first error.
func (cm *ConcurrencyManager) CheckRange(start, end []byte, check func(key []byte, lock *Lock) error) error {
	lower := EncodeKey(start)
	var upper []byte
	if len(end) > 0 {
		upper = EncodeKey(end)
	}
	cm.mu.Lock()
	var inRange []KeyLock
	for encoded, lock := range cm.locks {
		k := []byte(encoded)
		if bytes.Compare(k, lower) >= 0 && (upper == nil || bytes.Compare(k, upper) < 0) {
			inRange = append(inRange, KeyLock{Key: k, Lock: lock})
		}
	}
	cm.mu.Unlock()
	for _, kl := range inRange {
		raw, err := DecodeKey(kl.Key)
		if err != nil {
			return err
		}
		if err := check(raw, kl.Lock); err != nil {
			return err
		}
	}
	return nil
}

// memoryLocks are the table entries of one prewrite.
type memoryLocks struct {
	cm *ConcurrencyManager
	// keys are the encoded keys this prewrite put in the table.
	keys []string
}

// lockInMemory puts copies of the locks in the table. The caller holds the
// latches of the keys.
func (cm *ConcurrencyManager) lockInMemory(keyLocks []encodedLock) *memoryLocks {
	ml := &memoryLocks{cm: cm}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	for _, kl := range keyLocks {
		copied := *kl.lock
		cm.locks[string(kl.encoded)] = &copied
		ml.keys = append(ml.keys, string(kl.encoded))
	}
	return ml
}

// setMinCommitTS records the chosen min_commit_ts in the table's locks.
func (ml *memoryLocks) setMinCommitTS(ts uint64) {
	ml.cm.mu.Lock()
	defer ml.cm.mu.Unlock()
	for _, key := range ml.keys {
		replaced := *ml.cm.locks[key]
		replaced.MinCommitTS = ts
		ml.cm.locks[key] = &replaced
	}
}

// release removes the prewrite's entries; it is a no-op on nil.
func (ml *memoryLocks) release() {
	if ml == nil {
		return
	}
	ml.cm.mu.Lock()
	defer ml.cm.mu.Unlock()
	for _, key := range ml.keys {
		delete(ml.cm.locks, key)
	}
	ml.keys = nil
}

// encodedLock is a lock with the encoded key it locks.
type encodedLock struct {
	encoded []byte
	lock    *Lock
}
