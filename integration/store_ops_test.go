package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"github.com/tinykv/tinykv/mvcc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestGCRemovesOldVersions: once PD's GC safe point passes a key's later
// versions, the store's GC worker removes the older ones; reads at newer
// timestamps are unchanged.
func TestGCRemovesOldVersions(t *testing.T) {
	configPath := filepath.Join(t.TempDir(), "tikv.toml")
	require(t, os.WriteFile(configPath, []byte("[gc]\npoll-safe-point-interval = \"100ms\"\n"), 0o644), "write config")
	c := startCluster(t, "--config", configPath)
	ctx := ctxT(t)
	cli := c.txnClient()
	put := func(key, value string) {
		txn, err := cli.Begin()
		require(t, err, "begin")
		if value == "" {
			require(t, txn.Delete([]byte(key)), "delete")
		} else {
			require(t, txn.Set([]byte(key), []byte(value)), "set")
		}
		require(t, txn.Commit(ctx), "commit")
	}
	for _, v := range []string{"v1", "v2", strings.Repeat("v3", 200)} {
		put("gc/key", v)
	}
	put("gc/gone", "x")
	put("gc/gone", "")
	raw := c.storeClient(t)
	if n := len(raw.mvcc(t, ctx, "gc/key").GetWrites()); n != 3 {
		t.Fatalf("before GC: %d versions, want 3", n)
	}
	safePoint := c.tso(t, ctx)
	put("gc/key", "v4") // newer than the safe point: must survive
	_, err := stockPD(t, c.pd.client).UpdateGCSafePoint(ctx, safePoint)
	require(t, err, "update safe point")

	deadline := time.Now().Add(20 * time.Second)
	for {
		key, gone := raw.mvcc(t, ctx, "gc/key"), raw.mvcc(t, ctx, "gc/gone")
		if len(key.GetWrites()) == 2 && len(gone.GetWrites()) == 0 && len(key.GetValues()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GC did not run: gc/key %v; gc/gone %v", key, gone)
		}
		time.Sleep(100 * time.Millisecond)
	}
	reader, err := cli.Begin()
	require(t, err, "begin")
	if v, err := reader.Get(ctx, []byte("gc/key")); err != nil || string(v) != "v4" {
		t.Fatalf("latest version after GC: %q %v", v, err)
	}
	old := cli.GetSnapshot(safePoint)
	if v, err := old.Get(ctx, []byte("gc/key")); err != nil || !bytes.Equal(v, []byte(strings.Repeat("v3", 200))) {
		t.Fatalf("read at the safe point after GC: %q %v", v, err)
	}
}

func (s *storeClient) mvcc(t *testing.T, ctx context.Context, key string) *kvrpcpb.MvccInfo {
	t.Helper()
	resp, err := s.tikv.MvccGetByKey(ctx, &kvrpcpb.MvccGetByKeyRequest{Context: s.ctx, Key: []byte(key)})
	require(t, err, "mvcc get by key")
	if resp.GetRegionError() != nil || resp.GetError() != "" {
		t.Fatalf("mvcc get by key: %v %s", resp.GetRegionError(), resp.GetError())
	}
	return resp.GetInfo()
}

// TestStatusServer: /status, /metrics in Prometheus text, /config as TiKV's
// nested JSON, POST /config for known keys only, /debug/pprof/.
func TestStatusServer(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	raw := c.rawClient()
	require(t, raw.Put(ctx, []byte("m"), []byte("v")), "put")

	body := func(method, path, payload string) (int, string) {
		req, err := http.NewRequest(method, "http://"+c.status+path, strings.NewReader(payload))
		require(t, err, "request")
		resp, err := http.DefaultClient.Do(req)
		require(t, err, method+" "+path)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := body("GET", "/status", ""); code != http.StatusOK {
		t.Fatalf("/status: %d", code)
	}
	if code, metrics := body("GET", "/metrics", ""); code != http.StatusOK || !strings.Contains(metrics, `tikv_grpc_msg_total{type="RawPut"}`) {
		t.Fatalf("/metrics: %d\n%s", code, metrics)
	}
	writes := c.metric(t, `tinykv_engine_commit_writes_total{db="kv"}`)
	// The raft log is what syncs: the KV engine's writes are applied
	// again from it after a crash.
	syncs := c.metric(t, `tinykv_engine_wal_syncs_total{db="raft"}`)
	require(t, raw.Put(ctx, []byte("m2"), []byte("v")), "put")
	if got := c.metric(t, `tinykv_engine_commit_writes_total{db="kv"}`); got < writes+1 {
		t.Fatalf("kv engine writes went from %v to %v across a put", writes, got)
	}
	if got := c.metric(t, `tinykv_engine_wal_syncs_total{db="raft"}`); got < syncs+1 {
		t.Fatalf("raft engine log syncs went from %v to %v across a put", syncs, got)
	}
	code, cfgText := body("GET", "/config", "")
	var cfg struct {
		Storage     map[string]any `json:"storage"`
		Coprocessor map[string]any `json:"coprocessor"`
	}
	require(t, json.Unmarshal([]byte(cfgText), &cfg), "decode /config")
	if code != http.StatusOK || cfg.Storage["api-version"] != float64(1) || cfg.Storage["engine"] != "raft-kv" ||
		cfg.Coprocessor["region-split-size"] != "96MiB" {
		t.Fatalf("/config: %d %s", code, cfgText)
	}
	if code, index := body("GET", "/debug/pprof/", ""); code != http.StatusOK || !strings.Contains(index, "goroutine") {
		t.Fatalf("/debug/pprof/: %d", code)
	}
	if code, _ := body("POST", "/config", `{"storage.max-key-size": 4096}`); code != http.StatusOK {
		t.Fatalf("POST known key: %d", code)
	}
	if _, after := body("GET", "/config", ""); !strings.Contains(after, `"max-key-size":4096`) {
		t.Fatalf("config after POST: %s", after)
	}
	if code, _ := body("POST", "/config", `{"no.such.key": 1}`); code != http.StatusBadRequest {
		t.Fatalf("POST unknown key: %d", code)
	}
	if code, _ := body("POST", "/config", `not json`); code != http.StatusBadRequest {
		t.Fatalf("POST bad json: %d", code)
	}
	if err := c.store.stop(); err != nil {
		t.Fatalf("store exit after SIGTERM: %v", err)
	}
}

// TestTxnBadInput: malformed or out-of-order transactional requests get
// TiKV's errors in the response, and the store keeps serving.
func TestTxnBadInput(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	s := c.storeClient(t)

	commit, err := s.tikv.KvCommit(ctx, &kvrpcpb.CommitRequest{Context: s.ctx, StartVersion: c.tso(t, ctx),
		CommitVersion: c.tso(t, ctx), Keys: [][]byte{[]byte("never-prewritten")}})
	require(t, err, "commit")
	if commit.GetError() == nil {
		t.Fatalf("commit without prewrite succeeded")
	}

	start := c.tso(t, ctx)
	s.prewrite(t, ctx, start, []byte("rb"), 3000, kvPut("rb", "v"))
	rb, err := s.tikv.KvBatchRollback(ctx, &kvrpcpb.BatchRollbackRequest{Context: s.ctx, StartVersion: start, Keys: [][]byte{[]byte("rb")}})
	require(t, err, "rollback")
	if rb.GetError() != nil {
		t.Fatalf("rollback: %v", rb.GetError())
	}
	commit, err = s.tikv.KvCommit(ctx, &kvrpcpb.CommitRequest{Context: s.ctx, StartVersion: start,
		CommitVersion: c.tso(t, ctx), Keys: [][]byte{[]byte("rb")}})
	require(t, err, "commit after rollback")
	if commit.GetError() == nil {
		t.Fatalf("commit after rollback succeeded")
	}

	zero, err := s.tikv.KvCommit(ctx, &kvrpcpb.CommitRequest{Context: s.ctx, StartVersion: 0, CommitVersion: 0, Keys: [][]byte{[]byte("z")}})
	require(t, err, "commit at ts 0")
	if zero.GetError() == nil {
		t.Fatalf("commit at ts 0 succeeded")
	}

	huge := &kvrpcpb.Mutation{Op: kvrpcpb.Op_Put, Key: []byte("huge"), Value: bytes.Repeat([]byte("x"), 8<<20)}
	big, err := s.tikv.KvPrewrite(ctx, &kvrpcpb.PrewriteRequest{Context: s.ctx, Mutations: []*kvrpcpb.Mutation{huge},
		PrimaryLock: []byte("huge"), StartVersion: c.tso(t, ctx), LockTtl: 3000})
	require(t, err, "prewrite 8 MiB")
	if big.GetRegionError().GetRaftEntryTooLarge() == nil {
		t.Fatalf("8 MiB prewrite: %v", big.GetRegionError())
	}

	wrongRegion := *s.ctx
	wrongRegion.RegionId++
	get, err := s.tikv.KvGet(ctx, &kvrpcpb.GetRequest{Context: &wrongRegion, Key: []byte("k"), Version: c.tso(t, ctx)})
	require(t, err, "get with a wrong region")
	if get.GetRegionError().GetRegionNotFound() == nil {
		t.Fatalf("wrong region id: %v", get.GetRegionError())
	}
	stale := *s.ctx
	stale.RegionEpoch = &metapb.RegionEpoch{}
	get, err = s.tikv.KvGet(ctx, &kvrpcpb.GetRequest{Context: &stale, Key: []byte("k"), Version: c.tso(t, ctx)})
	require(t, err, "get with a stale epoch")
	if len(get.GetRegionError().GetEpochNotMatch().GetCurrentRegions()) != 1 {
		t.Fatalf("stale epoch: %v", get.GetRegionError())
	}

	emptyKey := s.prewriteErr(t, ctx, c.tso(t, ctx), []byte{}, 3000, kvPut("", "v"))
	t.Logf("prewrite of an empty key answered %v", emptyKey)

	if _, err := s.tikv.KvImport(ctx, &kvrpcpb.ImportRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown RPC: %v", err)
	}
	s.prewrite(t, ctx, c.tso(t, ctx), []byte("still"), 3000, kvPut("still", "serving"))
}

// TestSafeTS: the store's safe ts (GetStoreSafeTS, and PD's
// /min-resolved-ts from the store's reports) advances with time but stays
// below the start ts of a pending lock until that lock is gone.
func TestSafeTS(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	s := c.storeClient(t)
	safeTS := func() uint64 { return s.safeTS(t, ctx) }
	before := c.tso(t, ctx)
	waitFor(t, "safe ts to pass a fresh timestamp", func() bool { return safeTS() > before })

	start := c.tso(t, ctx)
	s.prewrite(t, ctx, start, []byte("pending"), 60_000, kvPut("pending", "v"))
	time.Sleep(2500 * time.Millisecond)
	if got := safeTS(); got >= start {
		t.Fatalf("safe ts %d reached a pending lock's start ts %d", got, start)
	}
	pdMin := pdMinResolvedTS(t, c)
	if pdMin == 0 || pdMin >= start {
		t.Fatalf("PD min resolved ts %d, want in (0, %d)", pdMin, start)
	}
	rb, err := s.tikv.KvBatchRollback(ctx, &kvrpcpb.BatchRollbackRequest{Context: s.ctx, StartVersion: start, Keys: [][]byte{[]byte("pending")}})
	require(t, err, "rollback")
	if rb.GetError() != nil {
		t.Fatalf("rollback: %v", rb.GetError())
	}
	waitFor(t, "safe ts to pass the rolled-back lock", func() bool { return safeTS() > start })
}

// TestPipelinedLocksAndSafeTS: a pipelined-DML lock holds the safe ts
// below its start ts until the client broadcasts the transaction's status;
// then only up to its min_commit_ts while it runs, and not at all once it
// is committed, though its secondary locks are still being resolved.
func TestPipelinedLocksAndSafeTS(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	s := c.storeClient(t)
	broadcast := func(status *kvrpcpb.TxnStatus) {
		t.Helper()
		_, err := s.tikv.BroadcastTxnStatus(ctx, &kvrpcpb.BroadcastTxnStatusRequest{
			Context: s.ctx, TxnStatus: []*kvrpcpb.TxnStatus{status}})
		require(t, err, "broadcast txn status")
	}
	start := c.tso(t, ctx)
	flush, err := s.tikv.KvFlush(ctx, &kvrpcpb.FlushRequest{
		Context: s.ctx, Mutations: []*kvrpcpb.Mutation{kvPut("pk", "1"), kvPut("sk", "2")},
		PrimaryKey: []byte("pk"), StartTs: start, MinCommitTs: start + 1, Generation: 1, LockTtl: 60_000})
	require(t, err, "flush")
	if flush.GetRegionError() != nil || len(flush.GetErrors()) > 0 {
		t.Fatalf("flush: %v %v", flush.GetRegionError(), flush.GetErrors())
	}
	buffered, err := s.tikv.KvBufferBatchGet(ctx, &kvrpcpb.BufferBatchGetRequest{
		Context: s.ctx, Keys: [][]byte{[]byte("sk"), []byte("pk"), []byte("none")}, Version: start})
	require(t, err, "buffer batch get")
	if pairs := buffered.GetPairs(); len(pairs) != 2 || string(pairs[0].GetValue()) != "1" || string(pairs[1].GetValue()) != "2" {
		t.Fatalf("buffer batch get: %v", buffered)
	}

	time.Sleep(2500 * time.Millisecond)
	if got := s.safeTS(t, ctx); got >= start {
		t.Fatalf("safe ts %d passed a pipelined lock of %d nobody reported on", got, start)
	}
	minCommit := c.tso(t, ctx)
	broadcast(&kvrpcpb.TxnStatus{StartTs: start, MinCommitTs: minCommit})
	waitFor(t, "safe ts to pass the running transaction's start ts", func() bool { return s.safeTS(t, ctx) >= start })
	time.Sleep(2500 * time.Millisecond)
	if got := s.safeTS(t, ctx); got >= minCommit {
		t.Fatalf("safe ts %d passed the running transaction's min_commit_ts %d", got, minCommit)
	}

	commitTS := c.tso(t, ctx)
	s.commit(t, ctx, start, commitTS, []byte("pk"))
	broadcast(&kvrpcpb.TxnStatus{StartTs: start, MinCommitTs: minCommit, CommitTs: commitTS})
	waitFor(t, "safe ts to pass the committed transaction", func() bool { return s.safeTS(t, ctx) > commitTS })
	if locks := c.scanLocks(t, ctx); len(locks) != 1 || string(locks[0].GetKey()) != "sk" {
		t.Fatalf("the secondary lock should still be there: %v", locks)
	}
	resolved, err := s.tikv.KvResolveLock(ctx, &kvrpcpb.ResolveLockRequest{Context: s.ctx, StartVersion: start, CommitVersion: commitTS})
	require(t, err, "resolve lock")
	if resolved.GetError() != nil {
		t.Fatalf("resolve lock: %v", resolved.GetError())
	}
	broadcast(&kvrpcpb.TxnStatus{StartTs: start, CommitTs: commitTS, IsCompleted: true})
	get, err := s.tikv.KvGet(ctx, &kvrpcpb.GetRequest{Context: s.ctx, Key: []byte("sk"), Version: c.tso(t, ctx)})
	require(t, err, "get")
	if string(get.GetValue()) != "2" {
		t.Fatalf("committed secondary: %v", get)
	}
}

func pdMinResolvedTS(t *testing.T, c *cluster) uint64 {
	t.Helper()
	resp, err := http.Get("http://" + c.pd.client + "/pd/api/v1/min-resolved-ts")
	require(t, err, "min-resolved-ts")
	defer resp.Body.Close()
	var body struct {
		MinResolvedTS uint64 `json:"min_resolved_ts"`
		IsRealTime    bool   `json:"is_real_time"`
	}
	require(t, json.NewDecoder(resp.Body).Decode(&body), "decode min-resolved-ts")
	if !body.IsRealTime {
		t.Fatalf("min-resolved-ts is not real time")
	}
	return body.MinResolvedTS
}

// TestSplitRegion: the SplitRegion RPC splits the region through Raft and
// answers the regions it became; a stale epoch is refused with
// EpochNotMatch; PD learns the new regions from their heartbeats; and
// client-go's SplitRegions and transactions work across the regions.
func TestSplitRegion(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	s := c.storeClient(t)
	resp, err := s.tikv.SplitRegion(ctx, &kvrpcpb.SplitRegionRequest{Context: s.ctx, SplitKeys: [][]byte{[]byte("m")}})
	require(t, err, "split region")
	regions := resp.GetRegions()
	if resp.GetRegionError() != nil || len(regions) != 2 {
		t.Fatalf("split: %v", resp)
	}
	if mid := mvcc.EncodeKey([]byte("m")); !bytes.Equal(regions[0].GetEndKey(), mid) || !bytes.Equal(regions[1].GetStartKey(), mid) {
		t.Fatalf("split at m made %v", regions)
	}
	resp, err = s.tikv.SplitRegion(ctx, &kvrpcpb.SplitRegionRequest{Context: s.ctx, SplitKeys: [][]byte{[]byte("c")}})
	require(t, err, "split with a stale epoch")
	if resp.GetRegionError().GetEpochNotMatch() == nil {
		t.Fatalf("stale split: %v", resp)
	}
	pdCli := stockPD(t, c.pd.client)
	waitFor(t, "PD to learn the split", func() bool {
		r, err := pdCli.GetRegion(ctx, []byte("z"))
		return err == nil && r.Meta.GetId() != regions[0].GetId() && r.Leader != nil
	})

	cli := c.txnClient()
	if _, err := cli.KVStore.SplitRegions(ctx, [][]byte{[]byte("a"), []byte("z")}, false, nil); err != nil {
		t.Fatalf("client-go SplitRegions: %v", err)
	}
	txn, err := cli.Begin()
	require(t, err, "begin")
	for _, k := range []string{"0", "b", "n", "zz"} {
		require(t, txn.Set([]byte(k), []byte("v"+k)), "set")
	}
	require(t, txn.Commit(ctx), "commit across regions")
	read, err := cli.Begin()
	require(t, err, "begin")
	it, err := read.Iter(nil, nil)
	require(t, err, "scan")
	var got []string
	for ; it.Valid(); require(t, it.Next(), "next") {
		got = append(got, string(it.Key()))
	}
	it.Close()
	if strings.Join(got, ",") != "0,b,n,zz" {
		t.Fatalf("scan across regions: %v", got)
	}
}

// TestUnsafeDestroyRange: what TiDB's GC sends for a dropped table removes
// every version and lock of the range, and nothing outside it.
func TestUnsafeDestroyRange(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.txnClient()
	txn, err := cli.Begin()
	require(t, err, "begin")
	for i := range 300 {
		require(t, txn.Set([]byte(fmt.Sprintf("t\x80drop%04d", i)), []byte("v")), "set")
	}
	require(t, txn.Set([]byte("t\x81keep"), []byte("v")), "set")
	require(t, txn.Commit(ctx), "commit")
	s := c.storeClient(t)
	s.prewrite(t, ctx, c.tso(t, ctx), []byte("t\x80drop9999"), 60_000, kvPut("t\x80drop9999", "locked"))

	resp, err := s.tikv.UnsafeDestroyRange(ctx, &kvrpcpb.UnsafeDestroyRangeRequest{StartKey: []byte("t\x80"), EndKey: []byte("t\x81")})
	require(t, err, "unsafe destroy range")
	if resp.GetError() != "" {
		t.Fatalf("unsafe destroy range: %s", resp.GetError())
	}
	if info := s.mvcc(t, ctx, "t\x80drop0007"); len(info.GetWrites()) != 0 || len(info.GetValues()) != 0 {
		t.Fatalf("destroyed key still has data: %v", info)
	}
	if info := s.mvcc(t, ctx, "t\x80drop9999"); info.GetLock() != nil {
		t.Fatalf("destroyed range still has a lock: %v", info.GetLock())
	}
	reader, err := cli.Begin()
	require(t, err, "begin")
	if v, err := reader.Get(ctx, []byte("t\x81keep")); err != nil || string(v) != "v" {
		t.Fatalf("key outside the range: %q %v", v, err)
	}
}

// TestBatchCommandsAnswersInvalidRequests: a batched request without a
// command gets an empty response under its ID, as TiKV answers invalid
// requests, and the stream goes on serving the requests around it.
func TestBatchCommandsAnswersInvalidRequests(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	s := c.storeClient(t)
	stream, err := s.tikv.BatchCommands(ctx)
	require(t, err, "open batch stream")
	get := &tikvpb.BatchCommandsRequest_Request{Cmd: &tikvpb.BatchCommandsRequest_Request_Get{
		Get: &kvrpcpb.GetRequest{Context: s.ctx, Key: []byte("k"), Version: c.tso(t, ctx)}}}
	send := func(ids []uint64, reqs ...*tikvpb.BatchCommandsRequest_Request) {
		t.Helper()
		require(t, stream.Send(&tikvpb.BatchCommandsRequest{RequestIds: ids, Requests: reqs}), "send batch")
	}
	receive := func(want int) map[uint64]*tikvpb.BatchCommandsResponse_Response {
		t.Helper()
		got := map[uint64]*tikvpb.BatchCommandsResponse_Response{}
		for len(got) < want {
			resp, err := stream.Recv()
			require(t, err, "receive batch")
			for i, id := range resp.GetRequestIds() {
				got[id] = resp.GetResponses()[i]
			}
		}
		return got
	}

	send([]uint64{1, 2}, &tikvpb.BatchCommandsRequest_Request{}, get)
	got := receive(2)
	if got[1] == nil || got[1].GetCmd() != nil {
		t.Fatalf("invalid request answered with %v, want an empty response", got[1])
	}
	if g := got[2].GetGet(); g == nil || g.GetRegionError() != nil || g.GetError() != nil || !g.GetNotFound() {
		t.Fatalf("get beside the invalid request: %v", got[2])
	}
	send([]uint64{3}, get)
	if g := receive(1)[3].GetGet(); g == nil || !g.GetNotFound() {
		t.Fatalf("get after the invalid request: %v", g)
	}
}

// TestHealthFeedback checks the store's health feedback as client-go reads
// it: GetHealthFeedback answers with the store's ID, a slow score from 1
// (a healthy disk) to 100 and a sequence number; on a BatchCommands stream
// the first batch carries feedback unasked, and the batch answering a
// batched GetHealthFeedback carries that answer's feedback.
func TestHealthFeedback(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	s := c.storeClient(t)
	storeID := s.ctx.GetPeer().GetStoreId()
	check := func(what string, f *kvrpcpb.HealthFeedback) {
		t.Helper()
		if f.GetStoreId() != storeID || f.GetSlowScore() < 1 || f.GetSlowScore() > 100 || f.GetFeedbackSeqNo() == 0 {
			t.Fatalf("%s: feedback %v, want store %d and a slow score in [1, 100]", what, f, storeID)
		}
	}
	unary, err := s.tikv.GetHealthFeedback(ctx, &kvrpcpb.GetHealthFeedbackRequest{Context: s.ctx})
	require(t, err, "GetHealthFeedback")
	check("unary", unary.GetHealthFeedback())

	stream, err := s.tikv.BatchCommands(ctx)
	require(t, err, "open batch stream")
	exchange := func(id uint64, req *tikvpb.BatchCommandsRequest_Request) *tikvpb.BatchCommandsResponse {
		t.Helper()
		require(t, stream.Send(&tikvpb.BatchCommandsRequest{RequestIds: []uint64{id}, Requests: []*tikvpb.BatchCommandsRequest_Request{req}}), "send")
		resp, err := stream.Recv()
		require(t, err, "receive")
		if len(resp.GetRequestIds()) != 1 || resp.GetRequestIds()[0] != id {
			t.Fatalf("response ids %v, want [%d]", resp.GetRequestIds(), id)
		}
		return resp
	}
	empty := exchange(1, &tikvpb.BatchCommandsRequest_Request{Cmd: &tikvpb.BatchCommandsRequest_Request_Empty{
		Empty: &tikvpb.BatchCommandsEmptyRequest{TestId: 7}}})
	check("first batch", empty.GetHealthFeedback())
	asked := exchange(2, &tikvpb.BatchCommandsRequest_Request{Cmd: &tikvpb.BatchCommandsRequest_Request_GetHealthFeedback{
		GetHealthFeedback: &kvrpcpb.GetHealthFeedbackRequest{Context: s.ctx}}})
	answer := asked.GetResponses()[0].GetGetHealthFeedback().GetHealthFeedback()
	check("batched answer", answer)
	if !proto.Equal(asked.GetHealthFeedback(), answer) {
		t.Fatalf("batch answering GetHealthFeedback carries %v, want the answer's %v", asked.GetHealthFeedback(), answer)
	}
	if answer.GetFeedbackSeqNo() <= empty.GetHealthFeedback().GetFeedbackSeqNo() {
		t.Fatalf("feedback seq went from %d to %d", empty.GetHealthFeedback().GetFeedbackSeqNo(), answer.GetFeedbackSeqNo())
	}
}

// TestStorageFailureIsAKeyError checks that a transactional command failing
// in storage is answered as TiKV answers it, with a key error whose abort
// says why, and that a batched one leaves its stream serving. The failure is
// a damaged write record: a raw put into the write column family, which
// mixing raw and transactional use of one range (unsupported, as in TiKV's
// API V1) can leave behind.
func TestStorageFailureIsAKeyError(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	s := c.storeClient(t)
	put, err := s.tikv.RawPut(ctx, &kvrpcpb.RawPutRequest{Context: s.ctx, Key: []byte("k"), Value: []byte("v"), Cf: "write"})
	if err != nil || put.GetError() != "" || put.GetRegionError() != nil {
		t.Fatalf("raw put into the write CF: %v, %v", put, err)
	}
	scan := &kvrpcpb.ScanRequest{Context: s.ctx, StartKey: []byte("a"), Limit: 10, Version: c.tso(t, ctx)}
	unary, err := s.tikv.KvScan(ctx, scan)
	require(t, err, "scan over the damaged record")
	if !strings.Contains(unary.GetError().GetAbort(), "corrupt") || unary.GetRegionError() != nil {
		t.Fatalf("scan over the damaged record answered %v, want a key error that aborts", unary)
	}

	stream, err := s.tikv.BatchCommands(ctx)
	require(t, err, "open batch stream")
	get := &kvrpcpb.GetRequest{Context: s.ctx, Key: []byte("other"), Version: scan.Version}
	for i, req := range []*tikvpb.BatchCommandsRequest_Request{
		{Cmd: &tikvpb.BatchCommandsRequest_Request_Scan{Scan: scan}},
		{Cmd: &tikvpb.BatchCommandsRequest_Request_Get{Get: get}},
	} {
		require(t, stream.Send(&tikvpb.BatchCommandsRequest{RequestIds: []uint64{uint64(i)}, Requests: []*tikvpb.BatchCommandsRequest_Request{req}}), "send")
		resp, err := stream.Recv()
		require(t, err, "receive")
		got := resp.GetResponses()[0]
		if i == 0 && !strings.Contains(got.GetScan().GetError().GetAbort(), "corrupt") {
			t.Fatalf("batched scan over the damaged record answered %v, want a key error that aborts", got)
		}
		if i == 1 && !got.GetGet().GetNotFound() {
			t.Fatalf("get after the failed scan answered %v", got)
		}
	}
}
