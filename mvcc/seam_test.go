package mvcc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/storage"
)

// seamStorage is a standalone storage that records the request context of
// every Snapshot and Write, and fails them with a region error when told
// to, as a replicated store would.
type seamStorage struct {
	storage.Storage

	mu                    sync.Mutex
	seen                  []*kvrpcpb.Context
	snapshotErr, writeErr *errorpb.Error
}

func (s *seamStorage) record(req *kvrpcpb.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, req)
}

// take returns and forgets the contexts seen.
func (s *seamStorage) take() []*kvrpcpb.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := s.seen
	s.seen = nil
	return seen
}

func (s *seamStorage) fail(snapshotErr, writeErr *errorpb.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshotErr, s.writeErr = snapshotErr, writeErr
}

func (s *seamStorage) Write(ctx context.Context, req *kvrpcpb.Context, modifies []storage.Modify) error {
	s.record(req)
	s.mu.Lock()
	regionErr := s.writeErr
	s.mu.Unlock()
	if regionErr != nil {
		return fmt.Errorf("propose %d modifies: %w", len(modifies), &storage.RegionError{Err: regionErr})
	}
	return s.Storage.Write(ctx, req, modifies)
}

func (s *seamStorage) Snapshot(ctx context.Context, req *kvrpcpb.Context) (storage.Snapshot, error) {
	s.record(req)
	s.mu.Lock()
	regionErr := s.snapshotErr
	s.mu.Unlock()
	if regionErr != nil {
		return nil, &storage.RegionError{Err: regionErr}
	}
	return s.Storage.Snapshot(ctx, req)
}

func newSeamStore(t *testing.T) (*Store, *seamStorage) {
	t.Helper()
	e, err := engine.Open(t.TempDir(), engine.Options{InMemory: true, MemTableSize: engine.MinMemTableSize, LockRank: LockRank})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	seam := &seamStorage{Storage: storage.NewStandalone(e)}
	return NewStore(seam, NewConcurrencyManager(1)), seam
}

// seamStep is one command run with the request context rc.
type seamStep struct {
	name string
	run  func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error
}

// ignore drops a command's response, keeping its error.
func ignore[Resp any](_ Resp, err error) error { return err }

func prewriteStep(name string, startTS uint64, keys ...string) seamStep {
	return seamStep{name, func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		var muts []*kvrpcpb.Mutation
		for _, k := range keys {
			muts = append(muts, put(k, "v-"+k))
		}
		req := prewriteReq(keys[0], startTS, muts...)
		req.Context = rc
		resp, err := s.Prewrite(ctx, req)
		if err == nil && len(resp.Errors) > 0 {
			err = fmt.Errorf("prewrite: %v", resp.Errors)
		}
		return err
	}}
}

// seamSteps covers every Store method that reads or writes storage, in an
// order in which each finds what it works on.
var seamSteps = []seamStep{
	prewriteStep("Prewrite", 10, "a", "b"),
	{"Get", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.Get(ctx, &kvrpcpb.GetRequest{Context: rc, Key: []byte("a"), Version: 5}))
	}},
	{"BatchGet", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.BatchGet(ctx, &kvrpcpb.BatchGetRequest{Context: rc, Keys: rawKeys([]string{"a", "b"}), Version: 5}))
	}},
	{"Scan", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.Scan(ctx, &kvrpcpb.ScanRequest{Context: rc, StartKey: []byte("a"), Limit: 10, Version: 5}))
	}},
	{"ScanLock", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.ScanLock(ctx, &kvrpcpb.ScanLockRequest{Context: rc, MaxVersion: 100, Limit: 10}))
	}},
	{"TxnHeartBeat", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.TxnHeartBeat(ctx, &kvrpcpb.TxnHeartBeatRequest{Context: rc, PrimaryLock: []byte("a"), StartVersion: 10, AdviseLockTtl: 5000}))
	}},
	{"CheckTxnStatus", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.CheckTxnStatus(ctx, &kvrpcpb.CheckTxnStatusRequest{Context: rc, PrimaryKey: []byte("a"), LockTs: 10, CallerStartTs: 11, CurrentTs: 11}))
	}},
	{"CheckSecondaryLocks", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.CheckSecondaryLocks(ctx, &kvrpcpb.CheckSecondaryLocksRequest{Context: rc, Keys: rawKeys([]string{"b"}), StartVersion: 10}))
	}},
	{"Commit", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.Commit(ctx, &kvrpcpb.CommitRequest{Context: rc, Keys: rawKeys([]string{"a", "b"}), StartVersion: 10, CommitVersion: 20}))
	}},
	{"PessimisticLock", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.PessimisticLock(ctx, &kvrpcpb.PessimisticLockRequest{Context: rc,
			Mutations:   []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_PessimisticLock, Key: []byte("c")}},
			PrimaryLock: []byte("c"), StartVersion: 30, ForUpdateTs: 30, LockTtl: 3000}))
	}},
	{"PessimisticRollback", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.PessimisticRollback(ctx, &kvrpcpb.PessimisticRollbackRequest{Context: rc, Keys: rawKeys([]string{"c"}), StartVersion: 30, ForUpdateTs: 30}))
	}},
	prewriteStep("Prewrite for Cleanup", 40, "d"),
	{"Cleanup", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.Cleanup(ctx, &kvrpcpb.CleanupRequest{Context: rc, Key: []byte("d"), StartVersion: 40}))
	}},
	prewriteStep("Prewrite for BatchRollback", 50, "e"),
	{"BatchRollback", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.BatchRollback(ctx, &kvrpcpb.BatchRollbackRequest{Context: rc, Keys: rawKeys([]string{"e"}), StartVersion: 50}))
	}},
	prewriteStep("Prewrite for ResolveLock", 60, "f", "g"),
	{"ResolveLock by keys", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.ResolveLock(ctx, &kvrpcpb.ResolveLockRequest{Context: rc, Keys: rawKeys([]string{"f"}), StartVersion: 60, CommitVersion: 70}))
	}},
	{"ResolveLock by scan", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.ResolveLock(ctx, &kvrpcpb.ResolveLockRequest{Context: rc, StartVersion: 60, CommitVersion: 70}))
	}},
	{"Flush", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.Flush(ctx, flushReqWith(rc)))
	}},
	{"BufferBatchGet", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.BufferBatchGet(ctx, &kvrpcpb.BufferBatchGetRequest{Context: rc, Keys: rawKeys([]string{"h"}), Version: 80}))
	}},
	{"MvccGetByKey", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return ignore(s.MvccGetByKey(ctx, rc, []byte("a")))
	}},
	{"MvccGetByStartTs", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		_, _, err := s.MvccGetByStartTs(ctx, rc, 10)
		return err
	}},
	{"DetectDuplicates", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return s.DetectDuplicates(ctx, rc, nil, nil, 0, true, func([]DuplicateVersion) error { return nil })
	}},
	{"PrepareFlashback", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return s.PrepareFlashback(ctx, rc, []byte("a"), []byte("z"), 90, 15)
	}},
	{"Flashback", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return s.Flashback(ctx, rc, []byte("a"), []byte("z"), 90, 100, 15)
	}},
	{"GC", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return s.GC(ctx, rc, nil, nil, 50)
	}},
	{"DeleteRange", func(ctx context.Context, s *Store, rc *kvrpcpb.Context) error {
		return s.DeleteRange(ctx, rc, []byte("a"), []byte("b"))
	}},
}

// readOnlySteps are the steps that never write, not even an empty batch.
var readOnlySteps = map[string]bool{
	"Get": true, "BatchGet": true, "Scan": true, "ScanLock": true, "BufferBatchGet": true,
	"MvccGetByKey": true, "MvccGetByStartTs": true, "DetectDuplicates": true,
}

func flushReqWith(rc *kvrpcpb.Context) *kvrpcpb.FlushRequest {
	req := flushReq("h", 80, 1, put("h", "flushed"))
	req.Context = rc
	return req
}

// TestCommandsAddressStorageWithTheirRequestContext: every snapshot and
// write of a command is taken for the kvrpcpb.Context of its request, the
// very one the caller passed; LockedTxns, which serves no request, passes
// nil.
func TestCommandsAddressStorageWithTheirRequestContext(t *testing.T) {
	s, seam := newSeamStore(t)
	ctx := context.Background()
	for i, step := range seamSteps {
		rc := &kvrpcpb.Context{RegionId: uint64(i + 1), RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: 1}}
		require.NoError(t, step.run(ctx, s, rc), step.name)
		seen := seam.take()
		require.NotEmpty(t, seen, "%s reached no storage", step.name)
		for _, got := range seen {
			require.Same(t, rc, got, "%s addressed storage with another context", step.name)
		}
	}
	require.NoError(t, s.LockedTxns(ctx, 100, func(uint64, uint64) {}))
	require.Equal(t, []*kvrpcpb.Context{nil}, seam.take())
}

// TestRegionErrorsPassThroughUntouched: a region error from a snapshot or
// from a write comes back from every command that reaches the failing call
// as the error it returns, still carrying the very errorpb.Error storage
// gave, never as a key error in a response; once storage recovers, the
// command succeeds.
func TestRegionErrorsPassThroughUntouched(t *testing.T) {
	notLeader := &errorpb.Error{Message: "not leader", NotLeader: &errorpb.NotLeader{RegionId: 1, Leader: &metapb.Peer{Id: 3, StoreId: 2}}}
	epoch := &errorpb.Error{Message: "epoch not match", EpochNotMatch: &errorpb.EpochNotMatch{}}
	ctx := context.Background()
	for _, mode := range []struct {
		name                  string
		snapshotErr, writeErr *errorpb.Error
	}{
		{"snapshot", notLeader, nil},
		{"write", nil, epoch},
	} {
		t.Run(mode.name, func(t *testing.T) {
			s, seam := newSeamStore(t)
			want := mode.snapshotErr
			if want == nil {
				want = mode.writeErr
			}
			for _, step := range seamSteps {
				rc := &kvrpcpb.Context{RegionId: 1}
				seam.fail(mode.snapshotErr, mode.writeErr)
				err := step.run(ctx, s, rc)
				if mode.writeErr != nil && readOnlySteps[step.name] {
					require.NoError(t, err, "%s writes nothing", step.name)
					continue
				}
				require.Error(t, err, step.name)
				require.Same(t, want, storage.AsRegionError(err), "%s: %v", step.name, err)
				_, isKeyErr := ToKeyError(err)
				require.False(t, isKeyErr, "%s turned the region error into a key error", step.name)
				seam.fail(nil, nil)
				require.NoError(t, step.run(ctx, s, rc), "%s once storage recovers", step.name)
			}
		})
	}
}

// TestSplitKeyErrorPutsRegionErrorsFirst: a failure that carries both a
// region error and a key error is a region error.
func TestSplitKeyErrorPutsRegionErrorsFirst(t *testing.T) {
	regionErr := &storage.RegionError{Err: &errorpb.Error{Message: "not leader", NotLeader: &errorpb.NotLeader{RegionId: 1}}}
	both := errors.Join(errKeyIsLocked(&kvrpcpb.LockInfo{Key: []byte("k")}), regionErr)
	keyErr, err := splitKeyError(both)
	require.Nil(t, keyErr)
	require.Same(t, regionErr.Err, storage.AsRegionError(err))

	keyErr, err = splitKeyError(errKeyIsLocked(&kvrpcpb.LockInfo{Key: []byte("k")}))
	require.NoError(t, err)
	require.Equal(t, []byte("k"), keyErr.GetLocked().GetKey())
}
