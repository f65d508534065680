package mvcc

import (
	"context"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/storage"
)

// harness drives a Store over an in-memory engine.
type harness struct {
	t     *testing.T
	ctx   context.Context
	store *Store
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	e, err := engine.Open(t.TempDir(), engine.Options{InMemory: true, MemTableSize: engine.MinMemTableSize, LockRank: LockRank})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	return &harness{t: t, ctx: context.Background(), store: NewStore(storage.NewStandalone(e), NewConcurrencyManager(1))}
}

func put(key, value string) *kvrpcpb.Mutation {
	return &kvrpcpb.Mutation{Op: kvrpcpb.Op_Put, Key: []byte(key), Value: []byte(value)}
}

func del(key string) *kvrpcpb.Mutation {
	return &kvrpcpb.Mutation{Op: kvrpcpb.Op_Del, Key: []byte(key)}
}

func lockOp(key string) *kvrpcpb.Mutation {
	return &kvrpcpb.Mutation{Op: kvrpcpb.Op_Lock, Key: []byte(key)}
}

func insert(key, value string) *kvrpcpb.Mutation {
	return &kvrpcpb.Mutation{Op: kvrpcpb.Op_Insert, Key: []byte(key), Value: []byte(value)}
}

func prewriteReq(primary string, startTS uint64, muts ...*kvrpcpb.Mutation) *kvrpcpb.PrewriteRequest {
	return &kvrpcpb.PrewriteRequest{
		Mutations:    muts,
		PrimaryLock:  []byte(primary),
		StartVersion: startTS,
		LockTtl:      3000,
		MinCommitTs:  startTS + 1,
	}
}

func (h *harness) prewrite(req *kvrpcpb.PrewriteRequest) *kvrpcpb.PrewriteResponse {
	h.t.Helper()
	resp, err := h.store.Prewrite(h.ctx, req)
	require.NoError(h.t, err)
	return resp
}

func (h *harness) mustPrewrite(req *kvrpcpb.PrewriteRequest) *kvrpcpb.PrewriteResponse {
	h.t.Helper()
	resp := h.prewrite(req)
	require.Empty(h.t, resp.Errors)
	return resp
}

func (h *harness) mustPrewritePut(primary string, startTS uint64, kvs ...string) {
	h.t.Helper()
	var muts []*kvrpcpb.Mutation
	for i := 0; i < len(kvs); i += 2 {
		muts = append(muts, put(kvs[i], kvs[i+1]))
	}
	h.mustPrewrite(prewriteReq(primary, startTS, muts...))
}

func (h *harness) commit(startTS, commitTS uint64, keys ...string) *kvrpcpb.KeyError {
	h.t.Helper()
	resp, err := h.store.Commit(h.ctx, &kvrpcpb.CommitRequest{
		StartVersion: startTS, CommitVersion: commitTS, Keys: rawKeys(keys),
	})
	require.NoError(h.t, err)
	return resp.Error
}

func (h *harness) mustCommit(startTS, commitTS uint64, keys ...string) {
	h.t.Helper()
	require.Nil(h.t, h.commit(startTS, commitTS, keys...))
}

func (h *harness) rollback(startTS uint64, keys ...string) *kvrpcpb.KeyError {
	h.t.Helper()
	resp, err := h.store.BatchRollback(h.ctx, &kvrpcpb.BatchRollbackRequest{StartVersion: startTS, Keys: rawKeys(keys)})
	require.NoError(h.t, err)
	return resp.Error
}

func (h *harness) get(key string, ts uint64) *kvrpcpb.GetResponse {
	h.t.Helper()
	resp, err := h.store.Get(h.ctx, &kvrpcpb.GetRequest{Context: &kvrpcpb.Context{}, Key: []byte(key), Version: ts})
	require.NoError(h.t, err)
	return resp
}

func (h *harness) mustGet(key string, ts uint64, want string) {
	h.t.Helper()
	resp := h.get(key, ts)
	require.Nil(h.t, resp.Error)
	require.False(h.t, resp.NotFound, "key %q at %d not found", key, ts)
	require.Equal(h.t, want, string(resp.Value))
}

func (h *harness) mustGetNone(key string, ts uint64) {
	h.t.Helper()
	resp := h.get(key, ts)
	require.Nil(h.t, resp.Error)
	require.True(h.t, resp.NotFound, "key %q at %d = %q", key, ts, resp.Value)
}

func (h *harness) mustGetLocked(key string, ts uint64) *kvrpcpb.LockInfo {
	h.t.Helper()
	resp := h.get(key, ts)
	require.NotNil(h.t, resp.Error)
	require.NotNil(h.t, resp.Error.Locked, "%v", resp.Error)
	return resp.Error.Locked
}

func (h *harness) info(key string) *kvrpcpb.MvccInfo {
	h.t.Helper()
	info, err := h.store.MvccGetByKey(h.ctx, nil, []byte(key))
	require.NoError(h.t, err)
	return info
}

func (h *harness) lockOf(key string) *kvrpcpb.MvccLock {
	h.t.Helper()
	return h.info(key).Lock
}

// writeAt returns the write record of key at commitTS, or nil.
func (h *harness) writeAt(key string, commitTS uint64) *kvrpcpb.MvccWrite {
	h.t.Helper()
	for _, w := range h.info(key).Writes {
		if w.CommitTs == commitTS {
			return w
		}
	}
	return nil
}

// loadLock returns the decoded lock on key, or nil.
func (h *harness) loadLock(key string) *Lock {
	h.t.Helper()
	var lock *Lock
	require.NoError(h.t, h.store.withReader(h.ctx, nil, func(r *Reader) (err error) {
		lock, err = r.LoadLock([]byte(key))
		return err
	}))
	return lock
}

func (h *harness) checkTxnStatus(req *kvrpcpb.CheckTxnStatusRequest) *kvrpcpb.CheckTxnStatusResponse {
	h.t.Helper()
	resp, err := h.store.CheckTxnStatus(h.ctx, req)
	require.NoError(h.t, err)
	return resp
}

func rawKeys(keys []string) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = []byte(k)
	}
	return out
}

// ts builds a timestamp with the given physical milliseconds.
func ts(physical uint64) uint64 { return ComposeTS(physical, 0) }
