package tikvsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/kvproto/pkg/errorpb"
	sst "github.com/pingcap/kvproto/pkg/import_sstpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// regionFailingStorage is a standalone storage that fails its snapshots or
// its writes, with a region error as a replicated store does on a follower
// or after a split, or with any other error, and records the request
// contexts it is given.
type regionFailingStorage struct {
	storage.Storage

	mu                    sync.Mutex
	snapshotErr, writeErr error
	seen                  []*kvrpcpb.Context
}

func (s *regionFailingStorage) failWith(snapshotErr, writeErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshotErr, s.writeErr, s.seen = snapshotErr, writeErr, nil
}

// call records req and returns the error to fail with, if any.
func (s *regionFailingStorage) call(req *kvrpcpb.Context, write bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, req)
	if write {
		return s.writeErr
	}
	return s.snapshotErr
}

func (s *regionFailingStorage) contexts() []*kvrpcpb.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}

func (s *regionFailingStorage) Write(ctx context.Context, req *kvrpcpb.Context, modifies []storage.Modify) error {
	if err := s.call(req, true); err != nil {
		return fmt.Errorf("raftstore: propose %d modifies: %w", len(modifies), err)
	}
	return s.Storage.Write(ctx, req, modifies)
}

func (s *regionFailingStorage) Snapshot(ctx context.Context, req *kvrpcpb.Context) (storage.Snapshot, error) {
	if err := s.call(req, false); err != nil {
		return nil, fmt.Errorf("raftstore: read index: %w", err)
	}
	return s.Storage.Snapshot(ctx, req)
}

// regionErrorService is a Service over a regionFailingStorage, served over
// gRPC on a loopback port, with the clients of its two services.
type regionErrorService struct {
	storage *regionFailingStorage
	kv      tikvpb.TikvClient
	imports sst.ImportSSTClient
	// kvctx addresses the one region the service serves.
	kvctx *kvrpcpb.Context
}

func newRegionErrorService(t *testing.T) *regionErrorService {
	t.Helper()
	e, err := engine.Open(t.TempDir(), engine.Options{InMemory: true, MemTableSize: engine.MinMemTableSize, LockRank: mvcc.LockRank})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	fake := &regionFailingStorage{Storage: storage.NewStandalone(e)}
	region := &metapb.Region{Id: 4, RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: 3}, Peers: []*metapb.Peer{{Id: 5, StoreId: 1}}}
	svc, err := NewService(ServiceConfig{
		StoreID:   1,
		Regions:   []*metapb.Region{region},
		Storage:   fake,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		ImportDir: t.TempDir(),
	})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := NewGRPCServer(svc)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close()) })
	return &regionErrorService{
		storage: fake,
		kv:      tikvpb.NewTikvClient(conn),
		imports: sst.NewImportSSTClient(conn),
		kvctx:   &kvrpcpb.Context{RegionId: region.Id, RegionEpoch: region.RegionEpoch, Peer: region.Peers[0]},
	}
}

// regionErrorCall sends one request and returns the response's region
// error and a description of any other error field set, "" for none.
type regionErrorCall func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error)

// otherErrors describes the non-empty error fields given as name, value
// pairs.
func otherErrors(fields ...any) string {
	var out string
	for i := 0; i < len(fields); i += 2 {
		switch v := fields[i+1].(type) {
		case string:
			if v != "" {
				out += fmt.Sprintf("%s=%q ", fields[i], v)
			}
		default:
			if !isNilValue(v) {
				out += fmt.Sprintf("%s=%v ", fields[i], v)
			}
		}
	}
	return out
}

func isNilValue(v any) bool {
	switch v := v.(type) {
	case *kvrpcpb.KeyError:
		return v == nil
	case []*kvrpcpb.KeyError:
		return len(v) == 0
	case *kvrpcpb.LockInfo:
		return v == nil
	case *sst.Error:
		return v == nil
	case []*kvrpcpb.KvPair:
		for _, p := range v {
			if p.GetError() != nil {
				return false
			}
		}
		return true
	}
	panic(fmt.Sprintf("otherErrors: unexpected field type %T", v))
}

var snapshotCalls = map[string]regionErrorCall{
	"KvGet": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.KvGet(ctx, &kvrpcpb.GetRequest{Context: s.kvctx, Key: []byte("k"), Version: 10})
		return resp.GetRegionError(), otherErrors("error", resp.GetError()), err
	},
	"KvBatchGet": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.KvBatchGet(ctx, &kvrpcpb.BatchGetRequest{Context: s.kvctx, Keys: [][]byte{[]byte("k")}, Version: 10})
		return resp.GetRegionError(), otherErrors("error", resp.GetError(), "pairs", resp.GetPairs()), err
	},
	"KvScan": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.KvScan(ctx, &kvrpcpb.ScanRequest{Context: s.kvctx, StartKey: []byte("a"), Limit: 10, Version: 10})
		return resp.GetRegionError(), otherErrors("error", resp.GetError(), "pairs", resp.GetPairs()), err
	},
	"KvPrewrite": prewriteCall,
	"KvScanLock": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.KvScanLock(ctx, &kvrpcpb.ScanLockRequest{Context: s.kvctx, MaxVersion: 10, Limit: 10})
		return resp.GetRegionError(), otherErrors("error", resp.GetError()), err
	},
	"MvccGetByKey": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.MvccGetByKey(ctx, &kvrpcpb.MvccGetByKeyRequest{Context: s.kvctx, Key: []byte("k")})
		return resp.GetRegionError(), otherErrors("error", resp.GetError()), err
	},
	"RawGet": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.RawGet(ctx, &kvrpcpb.RawGetRequest{Context: s.kvctx, Key: []byte("k")})
		return resp.GetRegionError(), otherErrors("error", resp.GetError()), err
	},
	"RawBatchGet": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.RawBatchGet(ctx, &kvrpcpb.RawBatchGetRequest{Context: s.kvctx, Keys: [][]byte{[]byte("k")}})
		return resp.GetRegionError(), otherErrors("pairs", resp.GetPairs()), err
	},
	"RawScan": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.RawScan(ctx, &kvrpcpb.RawScanRequest{Context: s.kvctx, StartKey: []byte("a"), Limit: 10})
		return resp.GetRegionError(), otherErrors("kvs", resp.GetKvs()), err
	},
	"RawCompareAndSwap": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.RawCompareAndSwap(ctx, &kvrpcpb.RawCASRequest{Context: s.kvctx, Key: []byte("k"), Value: []byte("v"), PreviousNotExist: true})
		return resp.GetRegionError(), otherErrors("error", resp.GetError()), err
	},
	"RawChecksum": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.RawChecksum(ctx, &kvrpcpb.RawChecksumRequest{Context: s.kvctx,
			Ranges: []*kvrpcpb.KeyRange{{StartKey: []byte("a"), EndKey: []byte("z")}}})
		return resp.GetRegionError(), otherErrors("error", resp.GetError()), err
	},
	"Coprocessor": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		data, err := (&tipb.ChecksumRequest{Algorithm: tipb.ChecksumAlgorithm_Crc64_Xor}).Marshal()
		if err != nil {
			return nil, "", err
		}
		resp, err := s.kv.Coprocessor(ctx, &coprocessor.Request{Context: s.kvctx, Tp: 105, Data: data, StartTs: 10,
			Ranges: []*coprocessor.KeyRange{{Start: []byte("t"), End: []byte("u")}}})
		return resp.GetRegionError(), otherErrors("other_error", resp.GetOtherError(), "locked", resp.GetLocked()), err
	},
	"BatchCommands KvGet": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := batchGet(ctx, s)
		return resp.GetRegionError(), otherErrors("error", resp.GetError()), err
	},
	"DuplicateDetect": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		stream, err := s.imports.DuplicateDetect(ctx, &sst.DuplicateDetectRequest{Context: s.kvctx, StartKey: []byte("a")})
		if err != nil {
			return nil, "", err
		}
		resp, err := stream.Recv()
		return resp.GetRegionError(), otherErrors("key_error", resp.GetKeyError()), err
	},
}

var writeCalls = map[string]regionErrorCall{
	"KvPrewrite": prewriteCall,
	"KvPessimisticLock": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.KvPessimisticLock(ctx, &kvrpcpb.PessimisticLockRequest{Context: s.kvctx,
			Mutations:   []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_PessimisticLock, Key: []byte("k")}},
			PrimaryLock: []byte("k"), StartVersion: 10, ForUpdateTs: 10, LockTtl: 3000})
		return resp.GetRegionError(), otherErrors("errors", resp.GetErrors()), err
	},
	"KvDeleteRange": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.KvDeleteRange(ctx, &kvrpcpb.DeleteRangeRequest{Context: s.kvctx, StartKey: []byte("a"), EndKey: []byte("z")})
		return resp.GetRegionError(), otherErrors("error", resp.GetError()), err
	},
	"RawPut": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.RawPut(ctx, &kvrpcpb.RawPutRequest{Context: s.kvctx, Key: []byte("k"), Value: []byte("v")})
		return resp.GetRegionError(), otherErrors("error", resp.GetError()), err
	},
	"RawBatchDelete": func(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
		resp, err := s.kv.RawBatchDelete(ctx, &kvrpcpb.RawBatchDeleteRequest{Context: s.kvctx, Keys: [][]byte{[]byte("k")}})
		return resp.GetRegionError(), otherErrors("error", resp.GetError()), err
	},
}

func prewriteCall(ctx context.Context, s *regionErrorService) (*errorpb.Error, string, error) {
	resp, err := s.kv.KvPrewrite(ctx, &kvrpcpb.PrewriteRequest{Context: s.kvctx,
		Mutations:   []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_Put, Key: []byte("k"), Value: []byte("v")}},
		PrimaryLock: []byte("k"), StartVersion: 10, LockTtl: 3000})
	return resp.GetRegionError(), otherErrors("errors", resp.GetErrors()), err
}

// batchGet sends one KvGet through a BatchCommands stream.
func batchGet(ctx context.Context, s *regionErrorService) (*kvrpcpb.GetResponse, error) {
	stream, err := s.kv.BatchCommands(ctx)
	if err != nil {
		return nil, err
	}
	err = stream.Send(&tikvpb.BatchCommandsRequest{RequestIds: []uint64{1}, Requests: []*tikvpb.BatchCommandsRequest_Request{{
		Cmd: &tikvpb.BatchCommandsRequest_Request_Get{Get: &kvrpcpb.GetRequest{Context: s.kvctx, Key: []byte("k"), Version: 10}},
	}}})
	if err != nil {
		return nil, err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		if got := resp.GetResponses(); len(got) > 0 {
			return got[0].GetGet(), stream.CloseSend()
		}
	}
}

// TestRegionErrorsFromStorageReachTheClient: a region error that storage
// returns from a snapshot or a write reaches the client in the response's
// region_error field, with the errorpb content storage gave, and in no
// other error field, through every kind of handler; the request's context
// reaches storage as the client sent it.
func TestRegionErrorsFromStorageReachTheClient(t *testing.T) {
	notLeader := &errorpb.Error{
		Message:   "peer is not leader for region 4",
		NotLeader: &errorpb.NotLeader{RegionId: 4, Leader: &metapb.Peer{Id: 7, StoreId: 2}},
	}
	epochNotMatch := &errorpb.Error{
		Message: "epoch not match",
		EpochNotMatch: &errorpb.EpochNotMatch{CurrentRegions: []*metapb.Region{
			{Id: 4, EndKey: []byte("m"), RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: 4}},
			{Id: 9, StartKey: []byte("m"), RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: 4}},
		}},
	}
	s := newRegionErrorService(t)
	ctx := context.Background()
	for _, mode := range []struct {
		name                  string
		calls                 map[string]regionErrorCall
		want                  *errorpb.Error
		snapshotErr, writeErr error
	}{
		{"snapshot", snapshotCalls, notLeader, &storage.RegionError{Err: notLeader}, nil},
		{"write", writeCalls, epochNotMatch, nil, &storage.RegionError{Err: epochNotMatch}},
	} {
		want := mode.want
		for name, call := range mode.calls {
			t.Run(mode.name+"/"+name, func(t *testing.T) {
				s.storage.failWith(mode.snapshotErr, mode.writeErr)
				regionErr, other, err := call(ctx, s)
				require.NoError(t, err, "a region error is no gRPC error")
				require.Empty(t, other, "a region error is reported in region_error only")
				require.True(t, proto.Equal(want, regionErr), "region_error %v, want %v", regionErr, want)
				seen := s.storage.contexts()
				require.NotEmpty(t, seen)
				for _, got := range seen {
					require.Equal(t, s.kvctx.GetRegionId(), got.GetRegionId())
					require.True(t, proto.Equal(s.kvctx.GetRegionEpoch(), got.GetRegionEpoch()), "epoch %v", got.GetRegionEpoch())
					require.True(t, proto.Equal(s.kvctx.GetPeer(), got.GetPeer()), "peer %v", got.GetPeer())
				}
			})
		}
	}
}

// TestStorageFailuresOtherThanRegionErrorsStayKeyErrors: a storage failure
// that carries no region error is answered as before, with no
// region_error: an abort key error for a transactional command, the error
// message for a raw one.
func TestStorageFailuresOtherThanRegionErrorsStayKeyErrors(t *testing.T) {
	s := newRegionErrorService(t)
	ctx := context.Background()
	s.storage.failWith(errors.New("disk on fire"), errors.New("disk on fire"))

	get, err := s.kv.KvGet(ctx, &kvrpcpb.GetRequest{Context: s.kvctx, Key: []byte("k"), Version: 10})
	require.NoError(t, err)
	require.Nil(t, get.GetRegionError())
	require.Contains(t, get.GetError().GetAbort(), "disk on fire")

	raw, err := s.kv.RawPut(ctx, &kvrpcpb.RawPutRequest{Context: s.kvctx, Key: []byte("k"), Value: []byte("v")})
	require.NoError(t, err)
	require.Nil(t, raw.GetRegionError())
	require.Contains(t, raw.GetError(), "disk on fire")
}

// stage writes one pair as the SST uuid, committed at commitTS, through the
// import service's Write stream.
func (s *regionErrorService) stage(t *testing.T, ctx context.Context, uuid string, commitTS uint64, key, value string) []*sst.SSTMeta {
	t.Helper()
	w, err := s.imports.Write(ctx)
	require.NoError(t, err)
	meta := &sst.SSTMeta{Uuid: []byte(uuid), RegionId: s.kvctx.GetRegionId(), RegionEpoch: s.kvctx.GetRegionEpoch()}
	require.NoError(t, w.Send(&sst.WriteRequest{Chunk: &sst.WriteRequest_Meta{Meta: meta}}))
	batch := &sst.WriteBatch{CommitTs: commitTS, Pairs: []*sst.Pair{{Key: []byte(key), Value: []byte(value)}}}
	require.NoError(t, w.Send(&sst.WriteRequest{Chunk: &sst.WriteRequest_Batch{Batch: batch}}))
	resp, err := w.CloseAndRecv()
	require.NoError(t, err)
	require.Nil(t, resp.GetError())
	return resp.GetMetas()
}

// TestIngestAnswersRegionErrorsAndKeepsTheSST: an ingest whose write fails
// with a region error answers it in the response's error (IngestResponse's
// region error field), not as a gRPC failure, and leaves the SST staged,
// so that the retry ingests it.
func TestIngestAnswersRegionErrorsAndKeepsTheSST(t *testing.T) {
	s := newRegionErrorService(t)
	ctx := context.Background()
	metas := s.stage(t, ctx, "0123456789abcdef", 20, "k", "imported")
	notLeader := &errorpb.Error{Message: "not leader", NotLeader: &errorpb.NotLeader{RegionId: 4}}

	s.storage.failWith(nil, &storage.RegionError{Err: notLeader})
	resp, err := s.imports.MultiIngest(ctx, &sst.MultiIngestRequest{Context: s.kvctx, Ssts: metas})
	require.NoError(t, err)
	require.True(t, proto.Equal(notLeader, resp.GetError()), "error %v", resp.GetError())

	s.storage.failWith(nil, nil)
	resp, err = s.imports.MultiIngest(ctx, &sst.MultiIngestRequest{Context: s.kvctx, Ssts: metas})
	require.NoError(t, err)
	require.Nil(t, resp.GetError())
	get, err := s.kv.KvGet(ctx, &kvrpcpb.GetRequest{Context: s.kvctx, Key: []byte("k"), Version: 30})
	require.NoError(t, err)
	require.Equal(t, "imported", string(get.GetValue()))
}
