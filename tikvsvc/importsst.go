package tikvsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/pingcap/kvproto/pkg/errorpb"
	sst "github.com/pingcap/kvproto/pkg/import_sstpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/mvcc"
)

// maxStagedBytes bounds the data written but not yet ingested.
const maxStagedBytes = 1 << 30

// ingestBatch is how many pairs one storage write of an ingest holds.
const ingestBatch = 4096

// staged is the data of one written "SST": raw transactional pairs that an
// ingest will commit at commitTS.
type staged struct {
	commitTS uint64
	pairs    []*sst.Pair
	bytes    int
}

// importService implements import_sstpb.ImportSST the way TiDB's ingest
// (fast ADD INDEX, IMPORT INTO) uses it: Write streams stage key-value pairs
// under an SST uuid; MultiIngest/Ingest commits them into the region at the
// batch's commit ts. There are no SST files: staged data is kept in memory
// until ingested.
type importService struct {
	sst.UnimplementedImportSSTServer
	svc *Service

	mu sync.Mutex
	// byUUID holds the staged SSTs; Invariant: stagedBytes is the sum of
	// their bytes.
	byUUID      map[string]*staged
	stagedBytes int
}

func newImportService(svc *Service) *importService {
	return &importService{svc: svc, byUUID: make(map[string]*staged)}
}

// SwitchMode accepts import and normal mode; the engine needs no tuning.
func (s *importService) SwitchMode(context.Context, *sst.SwitchModeRequest) (*sst.SwitchModeResponse, error) {
	return &sst.SwitchModeResponse{}, nil
}

// AddForcePartitionRange accepts the hint; there is no compaction to steer.
func (s *importService) AddForcePartitionRange(context.Context, *sst.AddPartitionRangeRequest) (*sst.AddPartitionRangeResponse, error) {
	return &sst.AddPartitionRangeResponse{}, nil
}

// RemoveForcePartitionRange is the counterpart of AddForcePartitionRange.
func (s *importService) RemoveForcePartitionRange(context.Context, *sst.RemovePartitionRangeRequest) (*sst.RemovePartitionRangeResponse, error) {
	return &sst.RemovePartitionRangeResponse{}, nil
}

// Write stages one SST: a meta message, then batches of pairs.
func (s *importService) Write(stream sst.ImportSST_WriteServer) error {
	var meta *sst.SSTMeta
	data := &staged{}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch chunk := req.GetChunk().(type) {
		case *sst.WriteRequest_Meta:
			meta = chunk.Meta
		case *sst.WriteRequest_Batch:
			data.commitTS = chunk.Batch.GetCommitTs()
			for _, p := range chunk.Batch.GetPairs() {
				data.pairs = append(data.pairs, p)
				data.bytes += len(p.GetKey()) + len(p.GetValue())
			}
		}
	}
	if err := s.stage(meta, data); err != nil {
		return stream.SendAndClose(&sst.WriteResponse{Error: &sst.Error{Message: err.Error()}})
	}
	meta.TotalKvs, meta.TotalBytes = uint64(len(data.pairs)), uint64(data.bytes)
	return stream.SendAndClose(&sst.WriteResponse{Metas: []*sst.SSTMeta{meta}})
}

func (s *importService) stage(meta *sst.SSTMeta, data *staged) error {
	switch {
	case meta == nil:
		return errors.New("write stream carried no meta")
	case len(meta.GetUuid()) == 0:
		return errors.New("sst meta has no uuid")
	case data.commitTS == 0 && len(data.pairs) > 0:
		return errors.New("write batch has commit ts 0")
	}
	for _, p := range data.pairs {
		if p.GetOp() != sst.Pair_Put {
			return fmt.Errorf("unsupported pair op %s", p.GetOp())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stagedBytes+data.bytes > maxStagedBytes {
		return fmt.Errorf("import: %d bytes already staged, limit %d", s.stagedBytes, maxStagedBytes)
	}
	if old := s.byUUID[string(meta.GetUuid())]; old != nil {
		s.stagedBytes -= old.bytes
	}
	s.byUUID[string(meta.GetUuid())] = data
	s.stagedBytes += data.bytes
	return nil
}

// MultiIngest commits the staged SSTs into the region named by the context.
func (s *importService) MultiIngest(ctx context.Context, req *sst.MultiIngestRequest) (*sst.IngestResponse, error) {
	return s.ingest(ctx, req.GetContext(), req.GetSsts())
}

// Ingest is MultiIngest for one SST.
func (s *importService) Ingest(ctx context.Context, req *sst.IngestRequest) (*sst.IngestResponse, error) {
	return s.ingest(ctx, req.GetContext(), []*sst.SSTMeta{req.GetSst()})
}

func (s *importService) ingest(ctx context.Context, kvctx *kvrpcpb.Context, metas []*sst.SSTMeta) (*sst.IngestResponse, error) {
	if _, regionErr := s.svc.regions.check(kvctx); regionErr != nil {
		return &sst.IngestResponse{Error: regionErr}, nil
	}
	for _, meta := range metas {
		data := s.take(meta.GetUuid())
		if data == nil {
			return &sst.IngestResponse{Error: &errorpb.Error{Message: fmt.Sprintf("sst %x not found", meta.GetUuid())}}, nil
		}
		if err := s.apply(ctx, data); err != nil {
			return nil, fmt.Errorf("import: ingest sst %x: %w", meta.GetUuid(), err)
		}
	}
	return &sst.IngestResponse{}, nil
}

// DuplicateDetect streams the versions that an import committed after
// min_commit_ts wrote twice or over an earlier value, in batches; a failure
// of the scan is sent as key_error, a region failure as region_error.
func (s *importService) DuplicateDetect(req *sst.DuplicateDetectRequest, stream sst.ImportSST_DuplicateDetectServer) error {
	if _, regionErr := s.svc.regions.check(req.GetContext()); regionErr != nil {
		return stream.Send(&sst.DuplicateDetectResponse{RegionError: regionErr})
	}
	err := s.svc.txn.DetectDuplicates(stream.Context(), req.GetStartKey(), req.GetEndKey(), req.GetMinCommitTs(), req.GetKeyOnly(),
		func(versions []mvcc.DuplicateVersion) error {
			pairs := make([]*sst.KvPair, len(versions))
			for i, v := range versions {
				pairs[i] = &sst.KvPair{Key: v.Key, Value: v.Value, CommitTs: v.CommitTS}
			}
			return stream.Send(&sst.DuplicateDetectResponse{Pairs: pairs})
		})
	if err != nil && stream.Context().Err() == nil {
		return stream.Send(&sst.DuplicateDetectResponse{KeyError: &sst.Error{Message: err.Error()}})
	}
	return nil
}

// take removes and returns the staged SST with uuid, or nil.
func (s *importService) take(uuid []byte) *staged {
	s.mu.Lock()
	defer s.mu.Unlock()
	data := s.byUUID[string(uuid)]
	if data != nil {
		delete(s.byUUID, string(uuid))
		s.stagedBytes -= data.bytes
	}
	return data
}

// apply writes the pairs as committed versions, in batches.
func (s *importService) apply(ctx context.Context, data *staged) error {
	s.svc.txn.ConcurrencyManager().UpdateMaxTS(data.commitTS)
	for start := 0; start < len(data.pairs); start += ingestBatch {
		var mods []mvcc.Modify
		for _, p := range data.pairs[start:min(start+ingestBatch, len(data.pairs))] {
			mods = append(mods, mvcc.IngestPut(p.GetKey(), p.GetValue(), data.commitTS)...)
		}
		if err := s.svc.txn.Storage().Write(ctx, mods); err != nil {
			return err
		}
	}
	return nil
}
