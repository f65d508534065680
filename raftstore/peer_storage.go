package raftstore

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/raft"
)

// Bootstrapped and split peers start their log here, as TiKV's do
// (RAFT_INIT_LOG_TERM and RAFT_INIT_LOG_INDEX): the log is empty, truncated
// at (5, 5), and everything up to 5 counts as applied.
const (
	initLogTerm  = 5
	initLogIndex = 5
)

// entryCacheLimit is how many entries a peer keeps in memory beyond its
// applied index, so that replication rarely reads the raft engine.
const entryCacheLimit = 1024

// peerStorage is a peer's raft log and raft state: raft.Storage over the
// raft engine, with a cache of the newest entries. It is owned by the
// peer's goroutine of the moment (one poller at a time).
type peerStorage struct {
	regionID uint64
	raftDB   *engine.Engine
	// raftState is the hard state and last index as of the last append,
	// written to the raft engine with every Ready that changes them.
	raftState *raft_serverpb.RaftLocalState
	// truncated is the index and term of the last compacted entry; the log
	// holds the entries after it.
	truncated *raft_serverpb.RaftTruncatedState
	// confState is the membership the region state describes.
	confState eraftpb.ConfState
	// cache holds consecutive entries ending at raftState.LastIndex (or is
	// empty), all after truncated. Invariant: cache[i].Index ==
	// cache[0].Index + i.
	cache []*eraftpb.Entry

	// generate starts building a snapshot of the region in the background;
	// its result comes back through snapshotGenerated.
	generate func()
	// generating is true while a snapshot is being built.
	generating bool
	// snap is the last snapshot built; it is handed to raft while it is not
	// older than the truncated index.
	snap *eraftpb.Snapshot
}

// loadPeerStorage reads a region's raft state from the raft engine, given
// the region and apply state read from the KV engine.
func loadPeerStorage(raftDB *engine.Engine, region *metapb.Region, apply *raft_serverpb.RaftApplyState) (*peerStorage, error) {
	state := &raft_serverpb.RaftLocalState{}
	found, err := loadProto(raftDB, engine.CfDefault, raftStateKey(region.GetId()), state)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("raftstore: region %d has no raft state", region.GetId())
	}
	if state.GetHardState() == nil {
		state.HardState = &eraftpb.HardState{}
	}
	truncated := apply.GetTruncatedState()
	if truncated == nil {
		return nil, fmt.Errorf("raftstore: region %d has no truncated state", region.GetId())
	}
	ps := &peerStorage{
		regionID:  region.GetId(),
		raftDB:    raftDB,
		raftState: state,
		truncated: proto.Clone(truncated).(*raft_serverpb.RaftTruncatedState),
		confState: confStateOf(region),
	}
	if err := ps.recoverAfterSnapshot(); err != nil {
		return nil, err
	}
	return ps, nil
}

// recoverAfterSnapshot mends the raft state after a crash between the two
// writes of a received snapshot: the KV engine (data, and the apply state
// truncated at the snapshot) is written first, the raft engine (log cleared
// at the snapshot) second. If the log does not continue the snapshot —
// it ends before it, or holds another term at its index — the log is empty
// after the snapshot, and the commit index is at least there.
func (ps *peerStorage) recoverAfterSnapshot() error {
	t := ps.truncated
	valid := ps.lastIndex() >= t.GetIndex()
	if valid && ps.lastIndex() > t.GetIndex() {
		term, err := ps.storedTerm(t.GetIndex())
		if err != nil {
			return err
		}
		valid = term == 0 || term == t.GetTerm()
	}
	if !valid {
		ps.raftState.LastIndex = t.GetIndex()
	}
	hs := ps.raftState.GetHardState()
	hs.Commit = max(hs.GetCommit(), t.GetIndex())
	hs.Term = max(hs.GetTerm(), t.GetTerm())
	return nil
}

// storedTerm reads the term of the stored entry at index, 0 when none is
// stored (it was deleted by log GC).
func (ps *peerStorage) storedTerm(index uint64) (uint64, error) {
	raw, err := ps.raftDB.Get(engine.CfDefault, raftLogKey(ps.regionID, index))
	if errors.Is(err, engine.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("raftstore: region %d: read entry %d: %w", ps.regionID, index, err)
	}
	e := &eraftpb.Entry{}
	if err := e.Unmarshal(raw); err != nil {
		return 0, fmt.Errorf("raftstore: region %d: decode entry %d: %w", ps.regionID, index, err)
	}
	return e.Term, nil
}

// newEmptyPeerStorage is the storage of a peer created by a message: no log,
// no membership, nothing applied, until the leader's snapshot arrives.
// Nothing of it is written before then.
func newEmptyPeerStorage(raftDB *engine.Engine, regionID uint64) *peerStorage {
	return &peerStorage{
		regionID:  regionID,
		raftDB:    raftDB,
		raftState: &raft_serverpb.RaftLocalState{HardState: &eraftpb.HardState{}},
		truncated: &raft_serverpb.RaftTruncatedState{},
	}
}

// confStateOf is the raft membership of a region's peers. While joint, the
// incoming voters are the voters and incoming voters, the outgoing ones the
// voters and demoting voters; demoting voters become learners on leaving.
func confStateOf(region *metapb.Region) eraftpb.ConfState {
	var cs eraftpb.ConfState
	joint := false
	for _, p := range region.GetPeers() {
		joint = joint || p.GetRole() == metapb.PeerRole_IncomingVoter || p.GetRole() == metapb.PeerRole_DemotingVoter
	}
	for _, p := range region.GetPeers() {
		switch p.GetRole() {
		case metapb.PeerRole_Learner:
			cs.Learners = append(cs.Learners, p.GetId())
		case metapb.PeerRole_IncomingVoter:
			cs.Voters = append(cs.Voters, p.GetId())
		case metapb.PeerRole_DemotingVoter:
			cs.VotersOutgoing = append(cs.VotersOutgoing, p.GetId())
			cs.LearnersNext = append(cs.LearnersNext, p.GetId())
		default:
			cs.Voters = append(cs.Voters, p.GetId())
			if joint {
				cs.VotersOutgoing = append(cs.VotersOutgoing, p.GetId())
			}
		}
	}
	return cs
}

func (ps *peerStorage) InitialState() (eraftpb.HardState, eraftpb.ConfState, error) {
	return *ps.raftState.GetHardState(), ps.confState, nil
}

func (ps *peerStorage) firstIndex() uint64 { return ps.truncated.GetIndex() + 1 }
func (ps *peerStorage) lastIndex() uint64  { return ps.raftState.GetLastIndex() }

func (ps *peerStorage) FirstIndex() (uint64, error) { return ps.firstIndex(), nil }
func (ps *peerStorage) LastIndex() (uint64, error)  { return ps.lastIndex(), nil }

func (ps *peerStorage) Term(i uint64) (uint64, error) {
	switch {
	case i == ps.truncated.GetIndex():
		return ps.truncated.GetTerm(), nil
	case i < ps.truncated.GetIndex():
		return 0, raft.ErrCompacted
	case i > ps.lastIndex():
		return 0, raft.ErrUnavailable
	}
	if e := ps.cached(i); e != nil {
		return e.Term, nil
	}
	ents, err := ps.readEntries(i, i+1, 0)
	if err != nil {
		return 0, err
	}
	return ents[0].Term, nil
}

func (ps *peerStorage) Entries(lo, hi, maxSize uint64) ([]*eraftpb.Entry, error) {
	switch {
	case lo <= ps.truncated.GetIndex():
		return nil, raft.ErrCompacted
	case hi > ps.lastIndex()+1:
		return nil, raft.ErrUnavailable
	case lo >= hi:
		return nil, nil
	}
	if len(ps.cache) > 0 && lo >= ps.cache[0].Index {
		// A copy: raft keeps the slice in messages while trimCache and
		// append reuse the cache's array in place.
		first := ps.cache[0].Index
		return slices.Clone(limitSize(ps.cache[lo-first:hi-first], maxSize)), nil
	}
	return ps.readEntries(lo, hi, maxSize)
}

// Snapshot returns the last snapshot built if it is still usable (not
// older than the truncated index, so the log continues it); otherwise it
// starts building one and answers that none is available yet, and raft
// asks again later.
func (ps *peerStorage) Snapshot() (eraftpb.Snapshot, error) {
	if ps.snap != nil && ps.snap.GetMetadata().GetIndex() >= ps.truncated.GetIndex() {
		return *ps.snap, nil
	}
	ps.snap = nil
	if !ps.generating {
		ps.generating = true
		ps.generate()
	}
	return eraftpb.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
}

// snapshotGenerated records a snapshot built in the background.
func (ps *peerStorage) snapshotGenerated(snap *eraftpb.Snapshot) {
	ps.generating = false
	if snap != nil {
		ps.snap = snap
	}
}

// compactTo moves the truncated state forward after a CompactLog applied;
// the entries up to it are dropped from the cache (the caller deletes them
// from the raft engine). It reports whether anything moved.
func (ps *peerStorage) compactTo(truncated *raft_serverpb.RaftTruncatedState) bool {
	if truncated.GetIndex() <= ps.truncated.GetIndex() {
		return false
	}
	ps.truncated = truncated
	for len(ps.cache) > 0 && ps.cache[0].Index <= truncated.GetIndex() {
		ps.cache[0] = nil
		ps.cache = ps.cache[1:]
	}
	return true
}

// applySnapshot stages into wb the raft side of a received snapshot, once
// the KV side is written: the log is emptied and continues at the
// snapshot.
func (ps *peerStorage) applySnapshot(snap *eraftpb.Snapshot, wb *engine.WriteBatch) {
	meta := snap.GetMetadata()
	for i := ps.firstIndex(); i <= ps.lastIndex(); i++ {
		wb.Delete(engine.CfDefault, raftLogKey(ps.regionID, i))
	}
	ps.truncated = &raft_serverpb.RaftTruncatedState{Index: meta.GetIndex(), Term: meta.GetTerm()}
	ps.raftState.LastIndex = meta.GetIndex()
	ps.confState = *meta.GetConfState()
	clear(ps.cache)
	ps.cache = nil
	ps.snap = nil
}

func (ps *peerStorage) cached(i uint64) *eraftpb.Entry {
	if len(ps.cache) == 0 || i < ps.cache[0].Index || i > ps.cache[len(ps.cache)-1].Index {
		return nil
	}
	return ps.cache[i-ps.cache[0].Index]
}

// readEntries reads [lo, hi) from the raft engine; every index in it must
// be stored.
func (ps *peerStorage) readEntries(lo, hi, maxSize uint64) ([]*eraftpb.Entry, error) {
	var ents []*eraftpb.Entry
	var size uint64
	var decodeErr error
	opts := engine.IterOptions{LowerBound: raftLogKey(ps.regionID, lo), UpperBound: raftLogKey(ps.regionID, hi)}
	err := ps.raftDB.Scan(engine.CfDefault, opts, func(_, value []byte) bool {
		e := &eraftpb.Entry{}
		if decodeErr = e.Unmarshal(value); decodeErr != nil {
			return false
		}
		size += uint64(e.Size())
		if len(ents) > 0 && maxSize > 0 && size > maxSize {
			return false
		}
		ents = append(ents, e)
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: region %d: read entries [%d, %d): %w", ps.regionID, lo, hi, err)
	}
	if len(ents) == 0 || ents[0].Index != lo || ents[len(ents)-1].Index-lo != uint64(len(ents)-1) {
		return nil, fmt.Errorf("raftstore: region %d: entries [%d, %d) missing from the raft engine", ps.regionID, lo, hi)
	}
	return ents, nil
}

// limitSize returns the longest prefix of ents within maxSize bytes, at
// least one entry; 0 means no limit.
func limitSize(ents []*eraftpb.Entry, maxSize uint64) []*eraftpb.Entry {
	if maxSize == 0 || len(ents) == 0 {
		return ents
	}
	size := uint64(ents[0].Size())
	n := 1
	for ; n < len(ents); n++ {
		size += uint64(ents[n].Size())
		if size > maxSize {
			break
		}
	}
	return ents[:n]
}

// append stages entries (consecutive, starting at most at lastIndex+1) into
// wb, replacing the stored entries at and after the first of them, as the
// Ready contract requires.
func (ps *peerStorage) append(entries []*eraftpb.Entry, wb *engine.WriteBatch) error {
	if len(entries) == 0 {
		return nil
	}
	first, last := entries[0].Index, entries[len(entries)-1].Index
	if first <= ps.truncated.GetIndex() || first > ps.lastIndex()+1 {
		return fmt.Errorf("raftstore: region %d: append at %d, log is (%d, %d]",
			ps.regionID, first, ps.truncated.GetIndex(), ps.lastIndex())
	}
	for _, e := range entries {
		data, err := e.Marshal()
		if err != nil {
			return fmt.Errorf("raftstore: region %d: encode entry %d: %w", ps.regionID, e.Index, err)
		}
		wb.Put(engine.CfDefault, raftLogKey(ps.regionID, e.Index), data)
	}
	for i := last + 1; i <= ps.lastIndex(); i++ {
		wb.Delete(engine.CfDefault, raftLogKey(ps.regionID, i))
	}
	ps.raftState.LastIndex = last
	ps.cacheAppend(entries)
	return nil
}

func (ps *peerStorage) cacheAppend(entries []*eraftpb.Entry) {
	first := entries[0].Index
	if len(ps.cache) > 0 && first >= ps.cache[0].Index && first <= ps.cache[len(ps.cache)-1].Index+1 {
		ps.cache = append(ps.cache[:first-ps.cache[0].Index], entries...)
		return
	}
	ps.cache = append([]*eraftpb.Entry(nil), entries...)
}

// trimCache drops cached entries at or below applied while the cache is
// over its limit; they remain readable from the raft engine.
func (ps *peerStorage) trimCache(applied uint64) {
	for len(ps.cache) > entryCacheLimit && ps.cache[0].Index <= applied {
		ps.cache[0] = nil
		ps.cache = ps.cache[1:]
	}
}

// saveRaftState stages the raft state, with hs if it is not empty.
func (ps *peerStorage) saveRaftState(hs eraftpb.HardState, wb *engine.WriteBatch) error {
	if !raft.IsEmptyHardState(hs) {
		ps.raftState.HardState = &hs
	}
	data, err := ps.raftState.Marshal()
	if err != nil {
		return fmt.Errorf("raftstore: region %d: encode raft state: %w", ps.regionID, err)
	}
	wb.Put(engine.CfDefault, raftStateKey(ps.regionID), data)
	return nil
}

// loadProto reads a message from e; found is false when the key is absent.
func loadProto(e *engine.Engine, cf engine.CF, key []byte, msg proto.Message) (found bool, err error) {
	raw, err := e.Get(cf, key)
	if errors.Is(err, engine.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("raftstore: load %x: %w", key, err)
	}
	if err := proto.Unmarshal(raw, msg); err != nil {
		return false, fmt.Errorf("raftstore: decode %x: %w", key, err)
	}
	return true, nil
}

// putProto stages msg under key in wb.
func putProto(wb *engine.WriteBatch, cf engine.CF, key []byte, msg proto.Message) error {
	raw, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("raftstore: encode %x: %w", key, err)
	}
	wb.Put(cf, key, raw)
	return nil
}
