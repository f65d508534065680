package mvcc

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
)

func TestCheckTxnStatus(t *testing.T) {
	start := ts(1000) // lock TTL 3000 ms from prewriteReq: expires after physical 4000
	tests := []struct {
		name  string
		setup func(h *harness)
		req   *kvrpcpb.CheckTxnStatusRequest
		check func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse)
	}{{
		name:  "alive lock reports ttl and lock info",
		setup: func(h *harness) { h.mustPrewritePut("p", start, "p", "v") },
		req:   &kvrpcpb.CheckTxnStatusRequest{CurrentTs: ts(2000), CallerStartTs: MaxTS},
		check: func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse) {
			require.Equal(t, kvrpcpb.Action_NoAction, resp.Action)
			require.Equal(t, uint64(3000), resp.LockTtl)
			require.Equal(t, start, resp.LockInfo.LockVersion)
			require.Equal(t, []byte("p"), resp.LockInfo.PrimaryLock)
		},
	}, {
		name:  "caller start ts pushes min commit ts",
		setup: func(h *harness) { h.mustPrewritePut("p", start, "p", "v") },
		req:   &kvrpcpb.CheckTxnStatusRequest{CurrentTs: ts(2000), CallerStartTs: ts(1500)},
		check: func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse) {
			require.Equal(t, kvrpcpb.Action_MinCommitTSPushed, resp.Action)
			require.Equal(t, ts(2000), h.loadLock("p").MinCommitTS, "pushed to max(caller+1, current_ts)")
			h.mustGetNone("p", ts(1500)) // the caller's read is no longer blocked
		},
	}, {
		name:  "expired lock is rolled back",
		setup: func(h *harness) { h.mustPrewritePut("p", start, "p", "v") },
		req:   &kvrpcpb.CheckTxnStatusRequest{CurrentTs: ts(5000)},
		check: func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse) {
			require.Equal(t, kvrpcpb.Action_TTLExpireRollback, resp.Action)
			require.Nil(t, h.lockOf("p"))
			require.Equal(t, kvrpcpb.Op_Rollback, h.writeAt("p", start).Type)
		},
	}, {
		name: "committed transaction",
		setup: func(h *harness) {
			h.mustPrewritePut("p", start, "p", "v")
			h.mustCommit(start, start+10, "p")
		},
		req: &kvrpcpb.CheckTxnStatusRequest{CurrentTs: ts(5000)},
		check: func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse) {
			require.Equal(t, start+10, resp.CommitVersion)
			require.Equal(t, kvrpcpb.Action_NoAction, resp.Action)
		},
	}, {
		name:  "missing lock with rollback_if_not_exist writes a protected rollback",
		setup: func(h *harness) {},
		req:   &kvrpcpb.CheckTxnStatusRequest{CurrentTs: ts(2000), RollbackIfNotExist: true},
		check: func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse) {
			require.Equal(t, kvrpcpb.Action_LockNotExistRollback, resp.Action)
			require.Equal(t, []byte("p"), h.writeAt("p", start).ShortValue)
			pw := h.prewrite(prewriteReq("p", start, put("p", "late")))
			require.Equal(t, kvrpcpb.WriteConflict_SelfRolledBack, pw.Errors[0].Conflict.Reason)
		},
	}, {
		name:  "missing lock without rollback_if_not_exist",
		setup: func(h *harness) {},
		req:   &kvrpcpb.CheckTxnStatusRequest{CurrentTs: ts(2000)},
		check: func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse) {
			require.Equal(t, &kvrpcpb.TxnNotFound{StartTs: start, PrimaryKey: []byte("p")}, resp.Error.TxnNotFound)
		},
	}, {
		name:  "already rolled back",
		setup: func(h *harness) { require.Nil(h.t, h.rollback(start, "p")) },
		req:   &kvrpcpb.CheckTxnStatusRequest{CurrentTs: ts(2000)},
		check: func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse) {
			require.Nil(t, resp.Error)
			require.Equal(t, kvrpcpb.Action_NoAction, resp.Action)
			require.Zero(t, resp.CommitVersion)
			require.Nil(t, resp.LockInfo)
		},
	}, {
		name:  "expired pessimistic primary while resolving a pessimistic lock",
		setup: func(h *harness) { h.mustPessimisticLock("p", start, start, "p") },
		req:   &kvrpcpb.CheckTxnStatusRequest{CurrentTs: ts(5000), ResolvingPessimisticLock: true},
		check: func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse) {
			require.Equal(t, kvrpcpb.Action_TTLExpirePessimisticRollback, resp.Action)
			require.Nil(t, h.lockOf("p"))
			require.Empty(t, h.info("p").Writes)
		},
	}, {
		name:  "missing lock while resolving a pessimistic lock",
		setup: func(h *harness) {},
		req:   &kvrpcpb.CheckTxnStatusRequest{CurrentTs: ts(5000), ResolvingPessimisticLock: true, RollbackIfNotExist: true},
		check: func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse) {
			require.Equal(t, kvrpcpb.Action_LockNotExistDoNothing, resp.Action)
			require.Empty(t, h.info("p").Writes)
		},
	}, {
		name: "expired async-commit lock is reported, not rolled back",
		setup: func(h *harness) {
			req := prewriteReq("p", start, put("p", "v"))
			req.UseAsyncCommit, req.Secondaries = true, [][]byte{[]byte("s")}
			h.mustPrewrite(req)
		},
		req: &kvrpcpb.CheckTxnStatusRequest{CurrentTs: ts(5000), CallerStartTs: ts(5000)},
		check: func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse) {
			require.Equal(t, kvrpcpb.Action_NoAction, resp.Action)
			require.True(t, resp.LockInfo.UseAsyncCommit)
			require.Equal(t, [][]byte{[]byte("s")}, resp.LockInfo.Secondaries)
			require.NotNil(t, h.lockOf("p"))
		},
	}, {
		name:  "primary mismatch",
		setup: func(h *harness) { h.mustPrewrite(prewriteReq("other", start, put("p", "v"))) },
		req:   &kvrpcpb.CheckTxnStatusRequest{CurrentTs: ts(2000), VerifyIsPrimary: true},
		check: func(t *testing.T, h *harness, resp *kvrpcpb.CheckTxnStatusResponse) {
			require.Equal(t, []byte("other"), resp.Error.PrimaryMismatch.LockInfo.PrimaryLock)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			tt.setup(h)
			tt.req.PrimaryKey, tt.req.LockTs = []byte("p"), start
			tt.check(t, h, h.checkTxnStatus(tt.req))
		})
	}
}

func TestTxnHeartBeat(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("p", 10, "p", "v")
	beat := func(ttl uint64) *kvrpcpb.TxnHeartBeatResponse {
		resp, err := h.store.TxnHeartBeat(h.ctx, &kvrpcpb.TxnHeartBeatRequest{
			PrimaryLock: []byte("p"), StartVersion: 10, AdviseLockTtl: ttl,
		})
		require.NoError(t, err)
		return resp
	}
	require.Equal(t, uint64(5000), beat(5000).LockTtl)
	require.Equal(t, uint64(5000), beat(1000).LockTtl, "never lowered")
	require.Equal(t, uint64(5000), h.lockOf("p").Ttl)
	h.mustCommit(10, 20, "p")
	require.NotNil(t, beat(6000).Error.TxnNotFound)
}

func TestResolveLock(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "1", "b", "2")
	h.mustPrewritePut("c", 30, "c", "3")
	h.mustPrewritePut("d", 40, "d", "4")

	resolve := func(req *kvrpcpb.ResolveLockRequest) {
		resp, err := h.store.ResolveLock(h.ctx, req)
		require.NoError(t, err)
		require.Nil(t, resp.Error)
	}
	resolve(&kvrpcpb.ResolveLockRequest{StartVersion: 10, CommitVersion: 20})
	h.mustGet("a", 20, "1")
	h.mustGet("b", 20, "2")
	require.NotNil(t, h.lockOf("c"), "other transactions untouched")

	resolve(&kvrpcpb.ResolveLockRequest{StartVersion: 30})
	h.mustGetNone("c", 50)
	require.Equal(t, kvrpcpb.Op_Rollback, h.writeAt("c", 30).Type)

	h.mustPrewritePut("e", 50, "e", "5")
	resolve(&kvrpcpb.ResolveLockRequest{TxnInfos: []*kvrpcpb.TxnInfo{{Txn: 40, Status: 45}, {Txn: 50, Status: 0}}})
	h.mustGet("d", 45, "4")
	h.mustGetNone("e", 60)

	h.mustPrewritePut("f", 60, "f", "6", "g", "7")
	resolve(&kvrpcpb.ResolveLockRequest{StartVersion: 60, CommitVersion: 70, Keys: rawKeys([]string{"g"})})
	h.mustGet("g", 70, "7")
	require.NotNil(t, h.lockOf("f"), "lite resolve touches only its keys")

	resp, err := h.store.ScanLock(h.ctx, &kvrpcpb.ScanLockRequest{MaxVersion: 100})
	require.NoError(t, err)
	require.Len(t, resp.Locks, 1)
	require.Equal(t, []byte("f"), resp.Locks[0].Key)
}

func TestScanLock(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "1", "b", "1", "c", "1")
	h.mustPrewritePut("d", 30, "d", "1")
	scan := func(req *kvrpcpb.ScanLockRequest) []string {
		resp, err := h.store.ScanLock(h.ctx, req)
		require.NoError(t, err)
		var keys []string
		for _, l := range resp.Locks {
			keys = append(keys, string(l.Key))
		}
		return keys
	}
	require.Equal(t, []string{"a", "b", "c", "d"}, scan(&kvrpcpb.ScanLockRequest{MaxVersion: 30}))
	require.Equal(t, []string{"a", "b", "c"}, scan(&kvrpcpb.ScanLockRequest{MaxVersion: 29}))
	require.Equal(t, []string{"b", "c"}, scan(&kvrpcpb.ScanLockRequest{MaxVersion: 30, StartKey: []byte("b"), EndKey: []byte("d")}))
	require.Equal(t, []string{"a", "b"}, scan(&kvrpcpb.ScanLockRequest{MaxVersion: 30, Limit: 2}))
}
