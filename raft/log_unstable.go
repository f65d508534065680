package raft

import (
	"fmt"
	"slices"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// unstable holds log entries and a snapshot that have not yet been written
// to Storage. They are handed to the application in Ready.Entries and
// Ready.Snapshot and become stable when the application calls Advance.
type unstable struct {
	// snapshot is an incoming snapshot that is not yet persisted, or nil.
	snapshot *eraftpb.Snapshot
	// entries are the unpersisted entries.
	// Invariant: entries[i].Index == offset+i.
	entries []*eraftpb.Entry
	// offset is the index of entries[0] (or where it would be).
	// Invariant: snapshot == nil || offset == snapshot index + 1.
	offset uint64
}

// maybeFirstIndex returns the first index if there is an unstable snapshot.
func (u *unstable) maybeFirstIndex() (uint64, bool) {
	if u.snapshot != nil {
		return u.snapshot.Metadata.Index + 1, true
	}
	return 0, false
}

// maybeLastIndex returns the last index of the unstable part, if any.
func (u *unstable) maybeLastIndex() (uint64, bool) {
	if l := len(u.entries); l != 0 {
		return u.offset + uint64(l) - 1, true
	}
	if u.snapshot != nil {
		return u.snapshot.Metadata.Index, true
	}
	return 0, false
}

// maybeTerm returns the term of entry i if the unstable part knows it.
func (u *unstable) maybeTerm(i uint64) (uint64, bool) {
	if i < u.offset {
		if u.snapshot != nil && u.snapshot.Metadata.Index == i {
			return u.snapshot.Metadata.Term, true
		}
		return 0, false
	}
	last, ok := u.maybeLastIndex()
	if !ok || i > last {
		return 0, false
	}
	return u.entries[i-u.offset].Term, true
}

// stableTo marks entries up to (i, t) as persisted. It does nothing if the
// entry at i has since been replaced (different term).
func (u *unstable) stableTo(i, t uint64) {
	gt, ok := u.maybeTerm(i)
	if !ok || gt != t || i < u.offset {
		return
	}
	// The persisted prefix is not cleared in place (the application may
	// still hold it from a Ready), so the remaining entries move to a new
	// array and the old one, with every persisted entry, is released.
	if rest := u.entries[i+1-u.offset:]; len(rest) > 0 {
		u.entries = slices.Clone(rest)
	} else {
		u.entries = nil
	}
	u.offset = i + 1
}

// stableSnapTo marks the snapshot at index i as persisted.
func (u *unstable) stableSnapTo(i uint64) {
	if u.snapshot != nil && u.snapshot.Metadata.Index == i {
		u.snapshot = nil
	}
}

// restore replaces the unstable part with a snapshot.
func (u *unstable) restore(s *eraftpb.Snapshot) {
	u.offset = s.Metadata.Index + 1
	u.entries = nil
	u.snapshot = s
}

// truncateAndAppend appends ents, replacing any entries they overlap.
func (u *unstable) truncateAndAppend(ents []*eraftpb.Entry) {
	after := ents[0].Index
	switch {
	case after == u.offset+uint64(len(u.entries)):
		u.entries = append(u.entries, ents...)
	case after <= u.offset:
		// The new entries replace everything unstable (and possibly some
		// stable entries, which Storage.Append will truncate).
		u.offset = after
		u.entries = ents[:len(ents):len(ents)]
	default:
		// Keep [offset, after) and append. Copy so that slices handed out
		// earlier (e.g. in a Ready) are never overwritten.
		kept := u.slice(u.offset, after)
		u.entries = append(kept[:len(kept):len(kept)], ents...)
	}
}

// slice returns entries in [lo, hi), which must be within the unstable part.
func (u *unstable) slice(lo, hi uint64) []*eraftpb.Entry {
	upper := u.offset + uint64(len(u.entries))
	if lo > hi || lo < u.offset || hi > upper {
		panic(fmt.Sprintf("raft: unstable.slice[%d,%d) out of bound [%d,%d]", lo, hi, u.offset, upper))
	}
	return u.entries[lo-u.offset : hi-u.offset : hi-u.offset]
}
