package raftstore

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/tinykv/tinykv/engine"
)

// proposal is a command a leader proposed at (index, term), waiting for the
// entry at index to apply. If the entry applied there has another term, the
// command was overwritten and is answered stale_command.
type proposal struct {
	index, term uint64
	// done is called once, with the command's response, after the entry's
	// effects are written.
	done func(*raft_cmdpb.RaftCmdResponse)
}

// applyTask carries committed entries to a region's applier, with the
// proposals they resolve (every proposal at or below the last entry's
// index).
type applyTask struct {
	entries   []*eraftpb.Entry
	proposals []proposal
	// snapshot, when set (and then alone in the task), replaces the
	// region's data and state with a received snapshot's.
	snapshot     *eraftpb.Snapshot
	snapshotData *raft_serverpb.RaftSnapshotData
	// destroy, when set (and then alone in the task), stops the applier:
	// its peer is stale and will be destroyed once the applier, having
	// applied everything sent before, reports destroyed.
	destroy bool
}

// applyResult tells the peer how far its applier got.
type applyResult struct {
	appliedIndex, appliedTerm uint64
	// truncated is the truncated state after a CompactLog applied in the
	// round, nil when none did.
	truncated *raft_serverpb.RaftTruncatedState
	// snapshotRegion is the region of a snapshot applied in the round, nil
	// when none was.
	snapshotRegion *metapb.Region
	// confChanges are the membership changes applied in the round.
	confChanges []confChangeResult
	// destroyed is set in the round that took a destroy task.
	destroyed bool
	// split is the split applied in the round, nil when none was (a split
	// changes the version, so a later one in the same round fails).
	split *splitResult
	// writtenBytes is the size of the keys and values the round wrote.
	writtenBytes uint64
}

// applier is a region's apply FSM: it owns the region's apply state and its
// view of the region as of the applied index, and writes committed commands
// to the KV engine together with the apply state that records them.
type applier struct {
	store    *Store
	regionID uint64
	peerID   uint64
	region   *metapb.Region
	state    *raft_serverpb.RaftApplyState
	// appliedTerm is the term of the entry at state.AppliedIndex.
	appliedTerm uint64
	// result collects what the current round reports to the peer.
	result applyResult
	// removed is set once the applier applied its own peer's removal or
	// took a destroy task; it applies and writes nothing after it.
	removed bool
}

// applySnapshot replaces the region's data by a snapshot's. What the round
// staged so far is written first, so that the snapshot's deletes see it.
func (s *Store) applySnapshot(a *applier, task applyTask, wb *engine.WriteBatch) {
	if err := writeBatch(s.cfg.KV, wb); err != nil {
		s.fatal("write applied entries to the kv engine", err, a.regionID)
	}
	wb.Reset()
	view := s.cfg.KV.Snapshot()
	state, err := stageSnapshot(view, task.snapshot, task.snapshotData, wb)
	view.Close()
	if err != nil {
		s.fatal("stage a snapshot", err, a.regionID)
	}
	a.state = state
	a.region = task.snapshotData.GetRegion()
	a.appliedTerm = task.snapshot.GetMetadata().GetTerm()
	a.result.snapshotRegion = a.region
}

// pendingResponse is a response to hand out once the apply round's batch is
// written.
type pendingResponse struct {
	done func(*raft_cmdpb.RaftCmdResponse)
	resp *raft_cmdpb.RaftCmdResponse
}

// applyRound applies the tasks of a batch of appliers in one KV write, then
// answers the proposals and reports to the peers.
func (s *Store) applyRound(batch []delivery[*applier, applyTask]) {
	wb := engine.NewWriteBatch()
	var responses []pendingResponse
	var results []*applier
	for _, d := range batch {
		a := d.fsm
		if a.removed {
			for _, task := range d.msgs {
				responses = answerRemoved(task.proposals, a, responses)
			}
			continue
		}
		a.result = applyResult{}
		for _, task := range d.msgs {
			switch {
			case a.removed:
				responses = answerRemoved(task.proposals, a, responses)
			case task.destroy:
				a.removed, a.result.destroyed = true, true
			case task.snapshot != nil:
				s.applySnapshot(a, task, wb)
			default:
				responses = a.applyTask(task, wb, responses)
			}
		}
		if err := putProto(wb, engine.CfRaft, applyStateKey(a.regionID), a.state); err != nil {
			s.fatal("encode apply state", err, a.regionID)
		}
		a.result.appliedIndex, a.result.appliedTerm = a.state.GetAppliedIndex(), a.appliedTerm
		results = append(results, a)
	}
	if err := writeBatch(s.cfg.KV, wb); err != nil {
		s.fatal("write applied entries to the kv engine", err, 0)
	}
	for _, r := range responses {
		r.done(r.resp)
	}
	for _, a := range results {
		s.sendPeer(a.regionID, peerMsg{kind: msgApplied, applied: a.result})
	}
}

// answerRemoved answers proposals that reach an applier after its peer was
// removed: the region is not on this store any more.
func answerRemoved(props []proposal, a *applier, responses []pendingResponse) []pendingResponse {
	for _, p := range props {
		responses = append(responses, pendingResponse{done: p.done, resp: errorResponse(errRegionNotFound(a.regionID), a.appliedTerm)})
	}
	return responses
}

// applyTask stages the task's entries in order and collects the responses
// to its proposals.
func (a *applier) applyTask(task applyTask, wb *engine.WriteBatch, responses []pendingResponse) []pendingResponse {
	props := task.proposals
	for _, e := range task.entries {
		if e.Index <= a.state.GetAppliedIndex() {
			continue
		}
		if a.removed {
			break
		}
		resp := a.applyEntry(e, wb)
		for len(props) > 0 && props[0].index <= e.Index {
			p := props[0]
			props = props[1:]
			if p.index == e.Index && p.term == e.Term {
				responses = append(responses, pendingResponse{done: p.done, resp: resp})
			} else {
				responses = append(responses, pendingResponse{done: p.done, resp: errorResponse(errStaleCommand(), e.Term)})
			}
		}
		a.state.AppliedIndex = e.Index
		a.appliedTerm = e.Term
	}
	if a.removed {
		return answerRemoved(props, a, responses)
	}
	for _, p := range props {
		responses = append(responses, pendingResponse{done: p.done, resp: errorResponse(errStaleCommand(), a.appliedTerm)})
	}
	return responses
}

// applyEntry stages one committed entry and returns the response for its
// proposer.
func (a *applier) applyEntry(e *eraftpb.Entry, wb *engine.WriteBatch) *raft_cmdpb.RaftCmdResponse {
	switch e.EntryType {
	case eraftpb.EntryType_EntryConfChange:
		resp := a.applyConfChange(e, wb)
		a.removed = peerByID(a.region, a.peerID) == nil
		return resp
	case eraftpb.EntryType_EntryNormal:
	default:
		return errorResponse(&errorpb.Error{Message: fmt.Sprintf("raftstore: %s entries are not supported", e.EntryType)}, e.Term)
	}
	if len(e.Data) == 0 {
		// A new leader's empty entry.
		return errorResponse(errStaleCommand(), e.Term)
	}
	req := &raft_cmdpb.RaftCmdRequest{}
	if err := req.Unmarshal(e.Data); err != nil {
		return errorResponse(&errorpb.Error{Message: fmt.Sprintf("raftstore: entry %d is not a command: %v", e.Index, err)}, e.Term)
	}
	if admin := req.GetAdminRequest(); admin != nil {
		return a.applyAdmin(admin, req.GetHeader(), e, wb)
	}
	if rerr := checkRegion(req.GetHeader(), a.region, false); rerr != nil {
		return errorResponse(rerr, e.Term)
	}
	written, err := stageWrites(req.GetRequests(), a.region, wb)
	if err != nil {
		return errorResponse(err, e.Term)
	}
	a.result.writtenBytes += written
	resp := &raft_cmdpb.RaftCmdResponse{Header: &raft_cmdpb.RaftResponseHeader{CurrentTerm: e.Term}}
	for _, r := range req.GetRequests() {
		resp.Responses = append(resp.Responses, &raft_cmdpb.Response{CmdType: r.GetCmdType()})
	}
	return resp
}

// applyAdmin applies an admin command entry: CompactLog or BatchSplit.
func (a *applier) applyAdmin(admin *raft_cmdpb.AdminRequest, header *raft_cmdpb.RaftRequestHeader, e *eraftpb.Entry,
	wb *engine.WriteBatch) *raft_cmdpb.RaftCmdResponse {
	if header.GetRegionId() != a.regionID {
		return errorResponse(errRegionNotFound(header.GetRegionId()), e.Term)
	}
	switch admin.GetCmdType() {
	case raft_cmdpb.AdminCmdType_CompactLog:
	case raft_cmdpb.AdminCmdType_BatchSplit:
		return a.applyBatchSplit(header, admin.GetSplits(), wb, e.Term)
	default:
		return errorResponse(&errorpb.Error{Message: fmt.Sprintf("raftstore: admin command %s is not supported yet", admin.GetCmdType())}, e.Term)
	}
	compact := admin.GetCompactLog()
	truncated := a.state.GetTruncatedState()
	switch {
	case compact.GetCompactIndex() <= truncated.GetIndex():
		// Already compacted further.
	case compact.GetCompactIndex() > a.state.GetAppliedIndex():
		return errorResponse(&errorpb.Error{Message: fmt.Sprintf("raftstore: compact index %d is beyond the applied index %d",
			compact.GetCompactIndex(), a.state.GetAppliedIndex())}, e.Term)
	default:
		a.state.TruncatedState = &raft_serverpb.RaftTruncatedState{Index: compact.GetCompactIndex(), Term: compact.GetCompactTerm()}
		a.result.truncated = a.state.TruncatedState
	}
	return &raft_cmdpb.RaftCmdResponse{
		Header:        &raft_cmdpb.RaftResponseHeader{CurrentTerm: e.Term},
		AdminResponse: &raft_cmdpb.AdminResponse{CmdType: admin.GetCmdType(), CompactLog: &raft_cmdpb.CompactLogResponse{}},
	}
}

// stageWrites checks every request of a write command, then stages them
// all: a command applies entirely or not at all.
// It returns the size of the keys and values written.
func stageWrites(reqs []*raft_cmdpb.Request, region *metapb.Region, wb *engine.WriteBatch) (uint64, *errorpb.Error) {
	type write struct {
		cf     engine.CF
		key    []byte
		value  []byte
		delete bool
	}
	writes := make([]write, 0, len(reqs))
	for _, r := range reqs {
		var w write
		var cfName string
		switch r.GetCmdType() {
		case raft_cmdpb.CmdType_Put:
			cfName, w.key, w.value = r.GetPut().GetCf(), r.GetPut().GetKey(), r.GetPut().GetValue()
		case raft_cmdpb.CmdType_Delete:
			cfName, w.key, w.delete = r.GetDelete().GetCf(), r.GetDelete().GetKey(), true
		default:
			return 0, &errorpb.Error{Message: fmt.Sprintf("raftstore: %s is not a write command", r.GetCmdType())}
		}
		cf, err := engine.ParseCF(cfName)
		if err != nil {
			return 0, &errorpb.Error{Message: err.Error()}
		}
		if !keyInRegion(w.key, region) {
			return 0, errKeyNotInRegion(w.key, region)
		}
		w.cf = cf
		writes = append(writes, w)
	}
	var written uint64
	for _, w := range writes {
		written += uint64(len(w.key) + len(w.value))
		if w.delete {
			wb.Delete(w.cf, w.key)
		} else {
			wb.Put(w.cf, w.key, w.value)
		}
	}
	return written, nil
}

// keyInRegion reports whether a data key lies in the region. Versioned keys
// (an encoded key and a timestamp) compare with the region's encoded bounds
// as their encoded key does, since the encoding is prefix-free.
func keyInRegion(key []byte, region *metapb.Region) bool {
	return bytes.Compare(key, region.GetStartKey()) >= 0 &&
		(len(region.GetEndKey()) == 0 || bytes.Compare(key, region.GetEndKey()) < 0)
}

func errorResponse(err *errorpb.Error, term uint64) *raft_cmdpb.RaftCmdResponse {
	return &raft_cmdpb.RaftCmdResponse{Header: &raft_cmdpb.RaftResponseHeader{Error: err, CurrentTerm: term}}
}

// writeBatch writes wb atomically when it fits one commit, otherwise in
// order in several. Split batches stay safe to replay after a crash: each
// region's apply state (or raft state) follows the data it describes, and
// replaying blind puts and deletes over a prefix of them ends in the same
// state.
func writeBatch(db *engine.Engine, wb *engine.WriteBatch) error {
	err := db.Write(wb)
	if errors.Is(err, engine.ErrBatchTooLarge) {
		err = db.WriteNonAtomic(wb)
	}
	return err
}
