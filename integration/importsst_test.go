package integration

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pingcap/kvproto/pkg/errorpb"
	sst "github.com/pingcap/kvproto/pkg/import_sstpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// importClient talks import_sstpb to the cluster's store, the way TiDB's
// ingest (fast ADD INDEX, IMPORT INTO) does.
type importClient struct {
	sst   sst.ImportSSTClient
	store *storeClient
}

func (c *cluster) importClient(t *testing.T) *importClient {
	t.Helper()
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require(t, err, "dial store")
	t.Cleanup(func() { conn.Close() })
	return &importClient{sst: sst.NewImportSSTClient(conn), store: c.storeClient(t)}
}

// ingest writes pairs as one SST committed at commitTS and ingests it.
func (ic *importClient) ingest(t *testing.T, ctx context.Context, uuid string, commitTS uint64, kvs ...string) *errorpb.Error {
	t.Helper()
	return ic.ingestStaged(t, ctx, ic.write(t, ctx, uuid, commitTS, kvs...))
}

// write stages pairs as one SST committed at commitTS and returns its meta.
func (ic *importClient) write(t *testing.T, ctx context.Context, uuid string, commitTS uint64, kvs ...string) []*sst.SSTMeta {
	t.Helper()
	w, err := ic.sst.Write(ctx)
	require(t, err, "open write stream")
	meta := &sst.SSTMeta{Uuid: []byte(uuid), RegionId: ic.store.ctx.RegionId, RegionEpoch: ic.store.ctx.RegionEpoch}
	require(t, w.Send(&sst.WriteRequest{Chunk: &sst.WriteRequest_Meta{Meta: meta}}), "send meta")
	batch := &sst.WriteBatch{CommitTs: commitTS}
	for i := 0; i < len(kvs); i += 2 {
		batch.Pairs = append(batch.Pairs, &sst.Pair{Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
	}
	require(t, w.Send(&sst.WriteRequest{Chunk: &sst.WriteRequest_Batch{Batch: batch}}), "send batch")
	resp, err := w.CloseAndRecv()
	require(t, err, "close write stream")
	if resp.GetError() != nil || len(resp.GetMetas()) != 1 || resp.GetMetas()[0].GetTotalKvs() != uint64(len(kvs)/2) {
		t.Fatalf("write: %v", resp)
	}
	return resp.GetMetas()
}

// ingestStaged ingests staged SSTs into the store's region.
func (ic *importClient) ingestStaged(t *testing.T, ctx context.Context, metas []*sst.SSTMeta) *errorpb.Error {
	t.Helper()
	ingested, err := ic.sst.MultiIngest(ctx, &sst.MultiIngestRequest{Context: ic.store.ctx, Ssts: metas})
	require(t, err, "multi ingest")
	return ingested.GetError()
}

// duplicates runs DuplicateDetect over everything and returns the pairs as
// "key@commit_ts=value", or the first error of the stream.
func (ic *importClient) duplicates(t *testing.T, ctx context.Context, kvctx *kvrpcpb.Context, minCommitTS uint64) ([]string, *sst.DuplicateDetectResponse) {
	t.Helper()
	stream, err := ic.sst.DuplicateDetect(ctx, &sst.DuplicateDetectRequest{Context: kvctx, MinCommitTs: minCommitTS})
	require(t, err, "duplicate detect")
	var got []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		require(t, err, "duplicate detect stream")
		if resp.GetRegionError() != nil || resp.GetKeyError() != nil {
			return got, resp
		}
		for _, p := range resp.GetPairs() {
			got = append(got, fmt.Sprintf("%s@%d=%s", p.Key, p.CommitTs, p.Value))
		}
	}
}

// TestImportSSTIngestAndDuplicateDetect: pairs written and ingested through
// import_sstpb are committed versions that transactions read; DuplicateDetect
// reports the keys the import wrote over values committed before it, and a
// wrong region or a delete after the import are errors in their fields.
func TestImportSSTIngestAndDuplicateDetect(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	ic := c.importClient(t)
	s := ic.store

	before := c.tso(t, ctx)
	s.prewrite(t, ctx, before, []byte("a"), 3000, kvPut("a", "old-a"), kvPut("c", "old-c"))
	s.commit(t, ctx, before, before+1, []byte("a"), []byte("c"))

	importStart := c.tso(t, ctx)
	if err := ic.ingest(t, ctx, "sst-1", importStart+1, "a", "new-a", "b", "new-b"); err != nil {
		t.Fatalf("ingest: %v", err)
	}
	read := c.tso(t, ctx)
	got, err := s.tikv.KvBatchGet(ctx, &kvrpcpb.BatchGetRequest{Context: s.ctx, Keys: [][]byte{[]byte("a"), []byte("b"), []byte("c")}, Version: read})
	require(t, err, "batch get")
	if fmt.Sprint(got.GetPairs()) != fmt.Sprint([]*kvrpcpb.KvPair{
		{Key: []byte("a"), Value: []byte("new-a")}, {Key: []byte("b"), Value: []byte("new-b")}, {Key: []byte("c"), Value: []byte("old-c")},
	}) {
		t.Fatalf("read after ingest: %v", got.GetPairs())
	}

	dups, errResp := ic.duplicates(t, ctx, s.ctx, importStart)
	want := fmt.Sprintf("[a@%d=new-a a@%d=old-a]", importStart+1, before+1)
	if errResp != nil || fmt.Sprint(dups) != want {
		t.Fatalf("duplicates: %v %v, want %s", dups, errResp, want)
	}

	wrongRegion := &kvrpcpb.Context{RegionId: s.ctx.RegionId + 100, RegionEpoch: s.ctx.RegionEpoch, Peer: s.ctx.Peer}
	if _, errResp := ic.duplicates(t, ctx, wrongRegion, importStart); errResp.GetRegionError().GetRegionNotFound() == nil {
		t.Fatalf("unknown region: %v", errResp)
	}
	unknown, err := ic.sst.MultiIngest(ctx, &sst.MultiIngestRequest{Context: s.ctx, Ssts: []*sst.SSTMeta{{Uuid: []byte("never-written")}}})
	if err != nil || unknown.GetError() == nil {
		t.Fatalf("ingest of an unknown sst: %v %v, want an error in the response", unknown, err)
	}

	del := c.tso(t, ctx)
	s.prewrite(t, ctx, del, []byte("c"), 3000, &kvrpcpb.Mutation{Op: kvrpcpb.Op_Del, Key: []byte("c")})
	s.commit(t, ctx, del, del+1, []byte("c"))
	if _, errResp := ic.duplicates(t, ctx, s.ctx, importStart); errResp.GetKeyError().GetMessage() == "" {
		t.Fatalf("a delete after the import started: %v, want key_error", errResp)
	}
}

// TestImportSSTStagedDataSurvivesRestart: an SST acknowledged by Write is
// on disk, as in TiKV's import directory: the store can be killed between
// Write and Ingest, and the ingest afterwards commits every pair. Once
// ingested, the SST is gone: ingesting it again is an error in the response.
func TestImportSSTStagedDataSurvivesRestart(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	ic := c.importClient(t)
	commitTS := c.tso(t, ctx) + 1
	var kvs []string
	for i := range 10_000 { // more than one ingest batch
		kvs = append(kvs, fmt.Sprintf("key%05d", i), fmt.Sprintf("value%05d", i))
	}
	metas := ic.write(t, ctx, "sst-survives", commitTS, kvs...)

	c.restartStore()
	ic = c.importClient(t)
	if err := ic.ingestStaged(t, ctx, metas); err != nil {
		t.Fatalf("ingest after restart: %v", err)
	}
	s := ic.store
	read := c.tso(t, ctx)
	got, err := s.tikv.KvScan(ctx, &kvrpcpb.ScanRequest{Context: s.ctx, StartKey: []byte("key"), Limit: 20_000, Version: read})
	require(t, err, "scan")
	if len(got.GetPairs()) != len(kvs)/2 {
		t.Fatalf("scan after ingest: %d pairs, want %d", len(got.GetPairs()), len(kvs)/2)
	}
	for i, p := range got.GetPairs() {
		if string(p.Key) != kvs[2*i] || string(p.Value) != kvs[2*i+1] {
			t.Fatalf("pair %d: %s=%s, want %s=%s", i, p.Key, p.Value, kvs[2*i], kvs[2*i+1])
		}
	}
	if err := ic.ingestStaged(t, ctx, metas); err == nil {
		t.Fatal("second ingest of the same sst succeeded, want sst not found")
	}

	damaged := ic.write(t, ctx, "sst-damaged", c.tso(t, ctx)+1, "x", "1")
	path := filepath.Join(c.storeDir, "import", hex.EncodeToString([]byte("sst-damaged"))+".sst")
	data, err := os.ReadFile(path)
	require(t, err, "read staged file")
	data[0] ^= 0xff
	require(t, os.WriteFile(path, data, 0o644), "damage staged file")
	if err := ic.ingestStaged(t, ctx, damaged); err == nil || !strings.Contains(err.GetMessage(), "checksum") {
		t.Fatalf("ingest of a damaged sst: %v, want a checksum error in the response", err)
	}
}
