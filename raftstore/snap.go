package raftstore

import (
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/tinykv/tinykv/engine"
)

// Snapshots carry a region's data inline: eraftpb.Snapshot.Data is a
// RaftSnapshotData (version snapshotVersion) whose region is the region as
// of the snapshot index and whose data lists every key of the region's
// data CFs. A KeyValue's key is the CF (its engine.CF value, one byte)
// followed by the key within the CF.
const snapshotVersion = 1

// ErrBadSnapshot is returned for snapshot data that cannot be applied.
var ErrBadSnapshot = errors.New("raftstore: bad snapshot")

// generateSnapshot builds a snapshot of a region from one consistent view
// of the KV engine: the data, the apply state (whose applied index the
// snapshot is at) and the region state all come from that view. raftDB is
// read for the term of the applied entry when it is not the truncated one.
func generateSnapshot(kv, raftDB *engine.Engine, regionID uint64) (*eraftpb.Snapshot, error) {
	view := kv.Snapshot()
	defer view.Close()
	apply := &raft_serverpb.RaftApplyState{}
	if err := getProto(view, applyStateKey(regionID), apply); err != nil {
		return nil, err
	}
	state := &raft_serverpb.RegionLocalState{}
	if err := getProto(view, regionStateKey(regionID), state); err != nil {
		return nil, err
	}
	if state.GetState() != raft_serverpb.PeerState_Normal {
		return nil, fmt.Errorf("raftstore: snapshot of region %d in state %s", regionID, state.GetState())
	}
	index := apply.GetAppliedIndex()
	term, err := appliedTerm(raftDB, regionID, apply)
	if err != nil {
		return nil, err
	}
	region := state.GetRegion()
	data := &raft_serverpb.RaftSnapshotData{Region: region, Version: snapshotVersion}
	for _, cf := range engine.AllCFs() {
		err := view.Scan(cf, engine.IterOptions{LowerBound: region.GetStartKey(), UpperBound: region.GetEndKey()},
			func(key, value []byte) bool {
				data.Data = append(data.Data, &raft_serverpb.KeyValue{Key: append([]byte{byte(cf)}, key...), Value: value})
				return true
			})
		if err != nil {
			return nil, fmt.Errorf("raftstore: snapshot of region %d: %w", regionID, err)
		}
	}
	payload, err := data.Marshal()
	if err != nil {
		return nil, fmt.Errorf("raftstore: encode snapshot of region %d: %w", regionID, err)
	}
	cs := confStateOf(region)
	return &eraftpb.Snapshot{
		Data:     payload,
		Metadata: &eraftpb.SnapshotMetadata{Index: index, Term: term, ConfState: &cs},
	}, nil
}

// appliedTerm is the term of the apply state's applied entry.
func appliedTerm(raftDB *engine.Engine, regionID uint64, apply *raft_serverpb.RaftApplyState) (uint64, error) {
	if apply.GetAppliedIndex() == apply.GetTruncatedState().GetIndex() {
		return apply.GetTruncatedState().GetTerm(), nil
	}
	raw, err := raftDB.Get(engine.CfDefault, raftLogKey(regionID, apply.GetAppliedIndex()))
	if err != nil {
		return 0, fmt.Errorf("raftstore: region %d: term of applied entry %d: %w", regionID, apply.GetAppliedIndex(), err)
	}
	e := &eraftpb.Entry{}
	if err := e.Unmarshal(raw); err != nil {
		return 0, fmt.Errorf("raftstore: region %d: decode entry %d: %w", regionID, apply.GetAppliedIndex(), err)
	}
	return e.Term, nil
}

func getProto(view *engine.Snapshot, key []byte, msg interface{ Unmarshal([]byte) error }) error {
	raw, err := view.Get(engine.CfRaft, key)
	if err != nil {
		return fmt.Errorf("raftstore: read %x: %w", key, err)
	}
	if err := msg.Unmarshal(raw); err != nil {
		return fmt.Errorf("raftstore: decode %x: %w", key, err)
	}
	return nil
}

// decodeSnapshot checks a received snapshot against the region it is for
// and returns its data.
func decodeSnapshot(snap *eraftpb.Snapshot, region *metapb.Region) (*raft_serverpb.RaftSnapshotData, error) {
	data := &raft_serverpb.RaftSnapshotData{}
	if err := data.Unmarshal(snap.GetData()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	got := data.GetRegion()
	switch {
	case data.GetVersion() != snapshotVersion:
		return nil, fmt.Errorf("%w: version %d", ErrBadSnapshot, data.GetVersion())
	case got.GetId() != region.GetId():
		return nil, fmt.Errorf("%w: for region %d, not %d", ErrBadSnapshot, got.GetId(), region.GetId())
	case isEpochStale(got.GetRegionEpoch(), region.GetRegionEpoch()):
		return nil, fmt.Errorf("%w: epoch %v is older than %v", ErrBadSnapshot, got.GetRegionEpoch(), region.GetRegionEpoch())
	case len(region.GetPeers()) > 0 &&
		(string(got.GetStartKey()) != string(region.GetStartKey()) || string(got.GetEndKey()) != string(region.GetEndKey())):
		return nil, fmt.Errorf("%w: range [%q, %q) is not the region's", ErrBadSnapshot, got.GetStartKey(), got.GetEndKey())
	}
	for _, kv := range data.GetData() {
		if len(kv.GetKey()) == 0 || !isDataCF(engine.CF(kv.GetKey()[0])) || !keyInRegion(kv.GetKey()[1:], got) {
			return nil, fmt.Errorf("%w: key %q outside the region's data", ErrBadSnapshot, kv.GetKey())
		}
	}
	return data, nil
}

func isDataCF(cf engine.CF) bool {
	for _, data := range engine.AllCFs() {
		if cf == data {
			return true
		}
	}
	return false
}

// isEpochStale reports whether epoch a is older than b in either field
// (TiKV's is_epoch_stale).
func isEpochStale(a, b *metapb.RegionEpoch) bool {
	return a.GetVersion() < b.GetVersion() || a.GetConfVer() < b.GetConfVer()
}

// stageSnapshot stages into wb the replacement of the region's data by the
// snapshot's, with the apply state (applied and truncated at the snapshot)
// and the region state that go with it. view is the KV engine as of the
// call; every data key of the region in it is deleted first.
func stageSnapshot(view *engine.Snapshot, snap *eraftpb.Snapshot, data *raft_serverpb.RaftSnapshotData,
	wb *engine.WriteBatch) (*raft_serverpb.RaftApplyState, error) {
	region := data.GetRegion()
	for _, cf := range engine.AllCFs() {
		err := view.Scan(cf, engine.IterOptions{LowerBound: region.GetStartKey(), UpperBound: region.GetEndKey(), KeyOnly: true},
			func(key, _ []byte) bool {
				wb.Delete(cf, key)
				return true
			})
		if err != nil {
			return nil, fmt.Errorf("raftstore: clear region %d for a snapshot: %w", region.GetId(), err)
		}
	}
	for _, kv := range data.GetData() {
		wb.Put(engine.CF(kv.GetKey()[0]), kv.GetKey()[1:], kv.GetValue())
	}
	meta := snap.GetMetadata()
	apply := &raft_serverpb.RaftApplyState{
		AppliedIndex:   meta.GetIndex(),
		TruncatedState: &raft_serverpb.RaftTruncatedState{Index: meta.GetIndex(), Term: meta.GetTerm()},
	}
	if err := putProto(wb, engine.CfRaft, applyStateKey(region.GetId()), apply); err != nil {
		return nil, err
	}
	state := &raft_serverpb.RegionLocalState{State: raft_serverpb.PeerState_Normal, Region: region}
	if err := putProto(wb, engine.CfRaft, regionStateKey(region.GetId()), state); err != nil {
		return nil, err
	}
	return apply, nil
}
