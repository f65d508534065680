package raft

import (
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// raftLog is the Raft log: a stable prefix in Storage followed by an
// unstable suffix (and possibly an unstable snapshot).
type raftLog struct {
	storage  Storage
	unstable unstable

	// committed is the highest index known to be committed by a quorum.
	// applying is the highest index handed to the application in a Ready
	// but not yet acknowledged by Advance. applied is the highest index the
	// application has applied.
	// Invariant: applied <= applying <= committed <= lastIndex().
	committed uint64
	applying  uint64
	applied   uint64

	// maxApplyingSize limits the size of committed entries per Ready.
	maxApplyingSize uint64
}

func newLog(storage Storage, maxApplyingSize uint64) *raftLog {
	first, err := storage.FirstIndex()
	if err != nil {
		panic(err)
	}
	last, err := storage.LastIndex()
	if err != nil {
		panic(err)
	}
	return &raftLog{
		storage:         storage,
		unstable:        unstable{offset: last + 1},
		committed:       first - 1,
		applying:        first - 1,
		applied:         first - 1,
		maxApplyingSize: maxApplyingSize,
	}
}

func (l *raftLog) String() string {
	return fmt.Sprintf("committed=%d, applied=%d, unstable.offset=%d, len(unstable.entries)=%d",
		l.committed, l.applied, l.unstable.offset, len(l.unstable.entries))
}

// maybeAppend appends ents after the entry (index, logTerm) if that entry
// matches our log, and advances commit to min(committed, last new index).
// It returns the index of the last new entry and whether the append
// happened.
func (l *raftLog) maybeAppend(index, logTerm, committed uint64, ents []*eraftpb.Entry) (uint64, bool) {
	if !l.matchTerm(index, logTerm) {
		return 0, false
	}
	lastNew := index + uint64(len(ents))
	ci := l.findConflict(ents)
	switch {
	case ci == 0:
	case ci <= l.committed:
		panic(fmt.Sprintf("raft: entry %d conflicts with committed entry [committed(%d)]", ci, l.committed))
	default:
		l.append(ents[ci-(index+1):]...)
	}
	l.commitTo(min(committed, lastNew))
	return lastNew, true
}

// append adds entries to the unstable log and returns the new last index.
func (l *raftLog) append(ents ...*eraftpb.Entry) uint64 {
	if len(ents) == 0 {
		return l.lastIndex()
	}
	if after := ents[0].Index - 1; after < l.committed {
		panic(fmt.Sprintf("raft: append after(%d) is out of range [committed(%d)]", after, l.committed))
	}
	l.unstable.truncateAndAppend(ents)
	return l.lastIndex()
}

// findConflict returns the index of the first entry in ents that is new or
// conflicts with an existing entry (same index, different term), or 0 if
// all of ents are already in the log.
func (l *raftLog) findConflict(ents []*eraftpb.Entry) uint64 {
	for _, e := range ents {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// findConflictByTerm returns the largest index <= index whose term is <=
// term, along with that term (0 if unknown). It powers fast log
// backtracking: every entry in between is known not to match.
func (l *raftLog) findConflictByTerm(index, term uint64) (uint64, uint64) {
	for ; index > 0; index-- {
		t, err := l.term(index)
		if err != nil {
			return index, 0
		}
		if t <= term {
			return index, t
		}
	}
	return 0, 0
}

// unstableEntries returns the entries not yet handed to Storage.
func (l *raftLog) unstableEntries() []*eraftpb.Entry {
	if len(l.unstable.entries) == 0 {
		return nil
	}
	return l.unstable.entries[:len(l.unstable.entries):len(l.unstable.entries)]
}

// nextCommittedEnts returns the committed entries not yet handed to the
// application, limited in size.
func (l *raftLog) nextCommittedEnts() []*eraftpb.Entry {
	lo, hi := l.applyRange()
	if lo >= hi {
		return nil
	}
	ents, err := l.slice(lo, hi, l.maxApplyingSize)
	if err != nil {
		panic(fmt.Sprintf("raft: unexpected error getting unapplied entries: %v", err))
	}
	return ents
}

func (l *raftLog) hasNextCommittedEnts() bool {
	lo, hi := l.applyRange()
	return lo < hi
}

func (l *raftLog) applyRange() (uint64, uint64) {
	lo := max(l.applying+1, l.firstIndex())
	return lo, l.committed + 1
}

func (l *raftLog) hasPendingSnapshot() bool {
	return l.unstable.snapshot != nil
}

func (l *raftLog) snapshot() (eraftpb.Snapshot, error) {
	if l.unstable.snapshot != nil {
		return *l.unstable.snapshot, nil
	}
	return l.storage.Snapshot()
}

func (l *raftLog) firstIndex() uint64 {
	if i, ok := l.unstable.maybeFirstIndex(); ok {
		return i
	}
	i, err := l.storage.FirstIndex()
	if err != nil {
		panic(err)
	}
	return i
}

func (l *raftLog) lastIndex() uint64 {
	if i, ok := l.unstable.maybeLastIndex(); ok {
		return i
	}
	i, err := l.storage.LastIndex()
	if err != nil {
		panic(err)
	}
	return i
}

func (l *raftLog) commitTo(tocommit uint64) {
	if l.committed >= tocommit {
		return
	}
	if last := l.lastIndex(); last < tocommit {
		panic(fmt.Sprintf("raft: tocommit(%d) is out of range [lastIndex(%d)]; was the log corrupted, truncated, or lost?", tocommit, last))
	}
	l.committed = tocommit
}

// acceptApplying records that entries up to i were handed out in a Ready.
func (l *raftLog) acceptApplying(i uint64) {
	l.applying = max(l.applying, i)
}

func (l *raftLog) appliedTo(i uint64) {
	if i == 0 {
		return
	}
	if l.committed < i || i < l.applied {
		panic(fmt.Sprintf("raft: applied(%d) is out of range [prevApplied(%d), committed(%d)]", i, l.applied, l.committed))
	}
	l.applied = i
	l.applying = max(l.applying, i)
}

func (l *raftLog) stableTo(i, t uint64) { l.unstable.stableTo(i, t) }

func (l *raftLog) stableSnapTo(i uint64) { l.unstable.stableSnapTo(i) }

func (l *raftLog) lastTerm() uint64 {
	t, err := l.term(l.lastIndex())
	if err != nil {
		panic(fmt.Sprintf("raft: unexpected error getting the last term: %v", err))
	}
	return t
}

// term returns the term of entry i. Indexes outside
// [firstIndex()-1, lastIndex()] return ErrCompacted or ErrUnavailable.
func (l *raftLog) term(i uint64) (uint64, error) {
	if t, ok := l.unstable.maybeTerm(i); ok {
		return t, nil
	}
	if i+1 < l.firstIndex() {
		return 0, ErrCompacted
	}
	if i > l.lastIndex() {
		return 0, ErrUnavailable
	}
	t, err := l.storage.Term(i)
	if err == nil || errors.Is(err, ErrCompacted) || errors.Is(err, ErrUnavailable) {
		return t, err
	}
	panic(err)
}

// entries returns entries from index i on, limited to maxSize bytes.
func (l *raftLog) entries(i, maxSize uint64) ([]*eraftpb.Entry, error) {
	if i > l.lastIndex() {
		return nil, nil
	}
	return l.slice(i, l.lastIndex()+1, maxSize)
}

// isUpToDate reports whether a log ending at (lasti, term) is at least as
// up-to-date as ours. Reference: Raft paper section 5.4.1.
func (l *raftLog) isUpToDate(lasti, term uint64) bool {
	lt := l.lastTerm()
	return term > lt || (term == lt && lasti >= l.lastIndex())
}

func (l *raftLog) matchTerm(i, term uint64) bool {
	t, err := l.term(i)
	return err == nil && t == term
}

// maybeCommit commits up to maxIndex if that entry is from term. Only
// entries of the leader's current term are committed by counting replicas.
// Reference: Raft paper section 5.4.2.
func (l *raftLog) maybeCommit(maxIndex, term uint64) bool {
	if maxIndex > l.committed && l.zeroTermOnErrCompacted(l.term(maxIndex)) == term {
		l.commitTo(maxIndex)
		return true
	}
	return false
}

func (l *raftLog) restore(s *eraftpb.Snapshot) {
	l.committed = s.Metadata.Index
	l.unstable.restore(s)
}

// slice returns entries in [lo, hi) limited to maxSize bytes (at least one).
func (l *raftLog) slice(lo, hi, maxSize uint64) ([]*eraftpb.Entry, error) {
	if err := l.mustCheckOutOfBounds(lo, hi); err != nil {
		return nil, err
	}
	if lo == hi {
		return nil, nil
	}
	if lo >= l.unstable.offset {
		return limitSize(l.unstable.slice(lo, hi), maxSize), nil
	}
	cut := min(hi, l.unstable.offset)
	ents, err := l.storage.Entries(lo, cut, maxSize)
	if errors.Is(err, ErrCompacted) {
		return nil, err
	}
	if errors.Is(err, ErrUnavailable) {
		panic(fmt.Sprintf("raft: entries[%d:%d) is unavailable from storage", lo, cut))
	}
	if err != nil {
		panic(err)
	}
	if hi <= l.unstable.offset || uint64(len(ents)) < cut-lo {
		return ents, nil
	}
	size := entsSize(ents)
	if size >= maxSize {
		return ents, nil
	}
	rest := limitSize(l.unstable.slice(l.unstable.offset, hi), maxSize-size)
	if len(rest) == 1 && size+entsSize(rest) > maxSize {
		return ents, nil
	}
	out := make([]*eraftpb.Entry, 0, len(ents)+len(rest))
	return append(append(out, ents...), rest...), nil
}

// mustCheckOutOfBounds checks firstIndex <= lo <= hi <= lastIndex+1.
func (l *raftLog) mustCheckOutOfBounds(lo, hi uint64) error {
	if lo > hi {
		panic(fmt.Sprintf("raft: invalid slice %d > %d", lo, hi))
	}
	if lo < l.firstIndex() {
		return ErrCompacted
	}
	if length := l.lastIndex() + 1 - l.firstIndex(); hi > l.firstIndex()+length {
		panic(fmt.Sprintf("raft: slice[%d,%d) out of bound [%d,%d]", lo, hi, l.firstIndex(), l.lastIndex()))
	}
	return nil
}

func (l *raftLog) zeroTermOnErrCompacted(t uint64, err error) uint64 {
	if err == nil {
		return t
	}
	if errors.Is(err, ErrCompacted) {
		return 0
	}
	panic(fmt.Sprintf("raft: unexpected error: %v", err))
}
