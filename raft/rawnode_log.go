package raft

// LastIndex returns the index of the last entry in the node's log, stable or
// not. Right after a successful Propose on a leader it is the index of the
// proposed entry, which an application uses to match the proposal with the
// committed entry (together with the term from BasicStatus).
func (rn *RawNode) LastIndex() uint64 { return rn.raft.raftLog.lastIndex() }

// HasPendingConfChange reports whether a leader may have a conf change in
// its log that is not applied yet (the last index at its election counts,
// as it may hold one); a leadership transfer should wait for it.
func (rn *RawNode) HasPendingConfChange() bool {
	r := rn.raft
	return r.state == StateLeader && r.pendingConfIndex > r.raftLog.applied
}
