package raft

import (
	"errors"
	"sync"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// Sentinel errors returned by Storage implementations. Raft inspects them
// with errors.Is, so implementations may wrap them.
var (
	// ErrCompacted is returned by Storage.Entries and Storage.Term when a
	// requested index is older than the first retained entry (it has been
	// compacted into a snapshot). Raft reacts by sending a snapshot.
	ErrCompacted = errors.New("raft: requested index is unavailable due to compaction")

	// ErrSnapOutOfDate is returned by MemoryStorage.ApplySnapshot and
	// MemoryStorage.CreateSnapshot when the snapshot is not newer than the
	// one already held.
	ErrSnapOutOfDate = errors.New("raft: requested index is older than the existing snapshot")

	// ErrUnavailable is returned by Storage.Entries and Storage.Term when a
	// requested index is beyond the last stored entry.
	ErrUnavailable = errors.New("raft: requested entry at index is unavailable")

	// ErrSnapshotTemporarilyUnavailable is returned by Storage.Snapshot when
	// a snapshot is being produced and cannot be served right now. Raft
	// keeps the follower in probe state and retries later.
	ErrSnapshotTemporarilyUnavailable = errors.New("raft: snapshot is temporarily unavailable")
)

// Storage is the read side of the persistent Raft log, implemented by the
// application. Raft only reads from it; the application writes to it while
// handling a Ready (see the package documentation).
//
// Entries returned by Storage are shared with Raft and must not be mutated.
// If any method returns an error other than the sentinels above, the Raft
// instance stops working (it panics), as it can no longer trust its log.
type Storage interface {
	// InitialState returns the saved HardState and ConfState.
	InitialState() (eraftpb.HardState, eraftpb.ConfState, error)
	// Entries returns entries in [lo, hi). maxSize limits the total byte
	// size of the returned entries, but at least one entry is returned if
	// any is available.
	Entries(lo, hi, maxSize uint64) ([]*eraftpb.Entry, error)
	// Term returns the term of entry i, which must be in the range
	// [FirstIndex()-1, LastIndex()]. The term of the entry before
	// FirstIndex is retained for log matching even though the entry itself
	// is compacted.
	Term(i uint64) (uint64, error)
	// LastIndex returns the index of the last entry in the log.
	LastIndex() (uint64, error)
	// FirstIndex returns the index of the first entry still available
	// (older entries have been folded into the latest snapshot).
	FirstIndex() (uint64, error)
	// Snapshot returns the most recent snapshot. If it is temporarily
	// unavailable it returns ErrSnapshotTemporarilyUnavailable.
	Snapshot() (eraftpb.Snapshot, error)
}

// MemoryStorage implements Storage backed by an in-memory slice. It is safe
// for concurrent use.
type MemoryStorage struct {
	mu        sync.Mutex
	hardState eraftpb.HardState
	snapshot  eraftpb.Snapshot
	// ents[0] is a dummy entry holding the index and term of the snapshot.
	// Invariant: len(ents) >= 1 and ents[i].Index == ents[0].Index+i.
	ents []*eraftpb.Entry
}

// NewMemoryStorage creates an empty MemoryStorage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{
		ents:     []*eraftpb.Entry{{}},
		snapshot: eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{ConfState: &eraftpb.ConfState{}}},
	}
}

// InitialState implements Storage.
func (ms *MemoryStorage) InitialState() (eraftpb.HardState, eraftpb.ConfState, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.hardState, cloneConfState(ms.snapshot.GetMetadata().GetConfState()), nil
}

// SetHardState saves the current HardState.
func (ms *MemoryStorage) SetHardState(st eraftpb.HardState) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.hardState = st
	return nil
}

// Entries implements Storage.
func (ms *MemoryStorage) Entries(lo, hi, maxSize uint64) ([]*eraftpb.Entry, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	offset := ms.ents[0].Index
	if lo <= offset {
		return nil, ErrCompacted
	}
	if hi > ms.lastIndex()+1 {
		return nil, ErrUnavailable
	}
	ents := ms.ents[lo-offset : hi-offset : hi-offset]
	return limitSize(ents, maxSize), nil
}

// Term implements Storage.
func (ms *MemoryStorage) Term(i uint64) (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	offset := ms.ents[0].Index
	if i < offset {
		return 0, ErrCompacted
	}
	if i-offset >= uint64(len(ms.ents)) {
		return 0, ErrUnavailable
	}
	return ms.ents[i-offset].Term, nil
}

// LastIndex implements Storage.
func (ms *MemoryStorage) LastIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.lastIndex(), nil
}

func (ms *MemoryStorage) lastIndex() uint64 {
	return ms.ents[0].Index + uint64(len(ms.ents)) - 1
}

// FirstIndex implements Storage.
func (ms *MemoryStorage) FirstIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.ents[0].Index + 1, nil
}

// Snapshot implements Storage.
func (ms *MemoryStorage) Snapshot() (eraftpb.Snapshot, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.snapshot, nil
}

// ApplySnapshot overwrites the contents of this storage with the given
// snapshot, discarding every entry. It returns ErrSnapOutOfDate if the
// snapshot is not newer than the current one.
func (ms *MemoryStorage) ApplySnapshot(snap eraftpb.Snapshot) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if snap.GetMetadata().GetIndex() <= ms.snapshot.GetMetadata().GetIndex() {
		return ErrSnapOutOfDate
	}
	ms.snapshot = snap
	meta := snap.GetMetadata()
	ms.ents = []*eraftpb.Entry{{Term: meta.GetTerm(), Index: meta.GetIndex()}}
	return nil
}

// CreateSnapshot records a snapshot of the application state at applied
// index i, which must be in (snapshot index, LastIndex()]. cs, if not nil,
// is the configuration at i. Entries up to i are kept until Compact is
// called. It returns ErrSnapOutOfDate if i is not newer than the current
// snapshot.
func (ms *MemoryStorage) CreateSnapshot(i uint64, cs *eraftpb.ConfState, data []byte) (eraftpb.Snapshot, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if i <= ms.snapshot.GetMetadata().GetIndex() {
		return eraftpb.Snapshot{}, ErrSnapOutOfDate
	}
	if i > ms.lastIndex() {
		return eraftpb.Snapshot{}, ErrUnavailable
	}
	meta := &eraftpb.SnapshotMetadata{
		Index:     i,
		Term:      ms.ents[i-ms.ents[0].Index].Term,
		ConfState: ms.snapshot.GetMetadata().GetConfState(),
	}
	if cs != nil {
		c := cloneConfState(cs)
		meta.ConfState = &c
	}
	ms.snapshot = eraftpb.Snapshot{Metadata: meta, Data: data}
	return ms.snapshot, nil
}

// Compact discards all entries before compactIndex. The application must
// only compact up to its applied index, after having created a snapshot
// covering it. It returns ErrCompacted if compactIndex is not newer than the
// current first index - 1.
func (ms *MemoryStorage) Compact(compactIndex uint64) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	offset := ms.ents[0].Index
	if compactIndex <= offset {
		return ErrCompacted
	}
	if compactIndex > ms.lastIndex() {
		return ErrUnavailable
	}
	i := compactIndex - offset
	ents := make([]*eraftpb.Entry, 1, uint64(len(ms.ents))-i)
	ents[0] = &eraftpb.Entry{Index: ms.ents[i].Index, Term: ms.ents[i].Term}
	ms.ents = append(ents, ms.ents[i+1:]...)
	return nil
}

// Append appends entries to storage, truncating any conflicting suffix.
// Entries must be contiguous; entries older than the first index are
// ignored. The entries are retained by reference and must not be mutated.
func (ms *MemoryStorage) Append(entries []*eraftpb.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	first := ms.ents[0].Index + 1
	last := entries[0].Index + uint64(len(entries)) - 1
	if last < first {
		return nil
	}
	if first > entries[0].Index {
		entries = entries[first-entries[0].Index:]
	}
	offset := entries[0].Index - ms.ents[0].Index
	switch {
	case uint64(len(ms.ents)) > offset:
		ms.ents = append(ms.ents[:offset:offset], entries...)
	case uint64(len(ms.ents)) == offset:
		ms.ents = append(ms.ents, entries...)
	default:
		return ErrUnavailable
	}
	return nil
}
