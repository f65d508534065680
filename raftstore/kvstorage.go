package raftstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/storage"
)

// ErrNoRegion is returned for a write through the storage seam that
// addresses no region: on a replicated store every write is a proposal to
// one region's leader.
var ErrNoRegion = errors.New("raftstore: write addresses no region")

// Storage returns the store as the storage seam the transaction layer and
// raw KV use. A write is proposed to the leader of the region its request
// context addresses and returns once applied there; a snapshot is a read of
// that region confirmed by the leader's lease or a ReadIndex round, bounded
// by the region's range. Region problems come back as *storage.RegionError.
//
// A snapshot without a request context (background work that serves no
// request) is a local view of everything this store holds, confirmed by
// nothing; a write without one fails with ErrNoRegion.
//
// The KV engine must rank its locks (engine.Options.LockRank), as
// storage.Snapshot's NextLockByStartTS needs; Storage returns ErrConfig
// otherwise.
func (s *Store) Storage() (storage.Storage, error) {
	if !s.cfg.KV.RanksLocks() {
		return nil, fmt.Errorf("%w: the KV engine must be opened with Options.LockRank", ErrConfig)
	}
	return kvStorage{store: s}, nil
}

type kvStorage struct{ store *Store }

func (k kvStorage) Write(ctx context.Context, req *kvrpcpb.Context, modifies []storage.Modify) error {
	if req == nil {
		return ErrNoRegion
	}
	cmd := &raft_cmdpb.RaftCmdRequest{Header: requestHeader(req), Requests: writeRequests(modifies)}
	if _, err := k.store.Propose(ctx, cmd); err != nil {
		return fmt.Errorf("raftstore: write %d modifies to region %d: %w", len(modifies), req.GetRegionId(), err)
	}
	return nil
}

func (k kvStorage) Snapshot(ctx context.Context, req *kvrpcpb.Context) (storage.Snapshot, error) {
	if req == nil {
		return localSnapshot{snap: k.store.cfg.KV.Snapshot()}, nil
	}
	snap, err := k.store.Snapshot(ctx, requestHeader(req))
	if err != nil {
		return nil, fmt.Errorf("raftstore: read region %d: %w", req.GetRegionId(), err)
	}
	return seamSnapshot{region: snap}, nil
}

// DestroyRange deletes the range from this store's KV engine directly,
// whatever regions it holds: UnsafeDestroyRange is sent to every store and
// is not replicated.
func (k kvStorage) DestroyRange(ctx context.Context, start, end []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := k.store.cfg.KV.DeleteRangeAllCFs(start, end); err != nil {
		return fmt.Errorf("raftstore: destroy range: %w", err)
	}
	return nil
}

// requestHeader addresses a raft command as the client's request context
// addresses the region. A stale read is served as a replica read: by the
// leader's read index on a follower, which sees at least what a read at
// the region's safe ts would (TiKV serves it from the safe ts without
// asking the leader).
func requestHeader(req *kvrpcpb.Context) *raft_cmdpb.RaftRequestHeader {
	return &raft_cmdpb.RaftRequestHeader{
		RegionId:    req.GetRegionId(),
		Peer:        req.GetPeer(),
		RegionEpoch: req.GetRegionEpoch(),
		ReplicaRead: req.GetReplicaRead() || req.GetStaleRead(),
	}
}

// writeRequests turns the seam's modifies into raft commands, one for one.
func writeRequests(modifies []storage.Modify) []*raft_cmdpb.Request {
	reqs := make([]*raft_cmdpb.Request, len(modifies))
	for i, m := range modifies {
		if m.Delete {
			reqs[i] = &raft_cmdpb.Request{CmdType: raft_cmdpb.CmdType_Delete,
				Delete: &raft_cmdpb.DeleteRequest{Cf: m.CF.String(), Key: m.Key}}
			continue
		}
		reqs[i] = &raft_cmdpb.Request{CmdType: raft_cmdpb.CmdType_Put,
			Put: &raft_cmdpb.PutRequest{Cf: m.CF.String(), Key: m.Key, Value: m.Value}}
	}
	return reqs
}

// seamSnapshot is a region snapshot as the storage seam reads it.
type seamSnapshot struct{ region *RegionSnapshot }

func (s seamSnapshot) Get(cf engine.CF, key []byte) ([]byte, error) {
	return absentAsNil(s.region.Get(cf, key))
}

func (s seamSnapshot) NewIterator(cf engine.CF, opts engine.IterOptions) storage.Iterator {
	return s.region.NewIterator(cf, opts)
}

func (s seamSnapshot) NextLockByStartTS(from uint64) ([]byte, bool) {
	return nextLock(s.region.snap, from)
}

func (s seamSnapshot) Close() { s.region.Close() }

// localSnapshot is an unconfirmed view of the whole KV engine, for work
// that serves no request.
type localSnapshot struct{ snap *engine.Snapshot }

func (s localSnapshot) Get(cf engine.CF, key []byte) ([]byte, error) {
	return absentAsNil(s.snap.Get(cf, key))
}

func (s localSnapshot) NewIterator(cf engine.CF, opts engine.IterOptions) storage.Iterator {
	return s.snap.NewIterator(cf, opts)
}

func (s localSnapshot) NextLockByStartTS(from uint64) ([]byte, bool) { return nextLock(s.snap, from) }

func (s localSnapshot) Close() { s.snap.Close() }

// absentAsNil maps the engine's not-found to the seam's nil value.
func absentAsNil(value []byte, err error) ([]byte, error) {
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil
	}
	return value, err
}

func nextLock(snap *engine.Snapshot, from uint64) ([]byte, bool) {
	_, lock, ok := snap.NextRankedLock(from)
	return lock, ok
}
