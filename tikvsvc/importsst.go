package tikvsvc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pingcap/kvproto/pkg/errorpb"
	sst "github.com/pingcap/kvproto/pkg/import_sstpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ingestBatch is how many pairs one storage write of an ingest holds.
const ingestBatch = 4096

// importService implements import_sstpb.ImportSST the way TiDB's ingest
// (fast ADD INDEX, IMPORT INTO) uses it: Write streams stage key-value pairs
// under an SST uuid; MultiIngest/Ingest commits them into the region at the
// batch's commit ts. There are no real SST files: staged pairs are kept in
// the store's import directory until ingested.
type importService struct {
	sst.UnimplementedImportSSTServer
	svc *Service
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

// Write stages one SST: a meta message, then batches of pairs, all with one
// commit ts. Problems with the data are answered in the response's error.
func (s *importService) Write(stream sst.ImportSST_WriteServer) error {
	w, err := s.svc.staged.create()
	if err != nil {
		return status.Errorf(codes.Internal, "import: %v", err)
	}
	meta, commitTS, err := receiveStaged(stream, w)
	if err == nil {
		err = w.commit(s.svc.staged, meta.GetUuid(), commitTS)
	} else {
		err = errors.Join(err, w.abort())
	}
	var transport streamError
	switch {
	case errors.As(err, &transport):
		return transport.error
	case err != nil:
		return stream.SendAndClose(&sst.WriteResponse{Error: &sst.Error{Message: err.Error()}})
	}
	meta.TotalKvs, meta.TotalBytes = w.pairs, w.bytes
	return stream.SendAndClose(&sst.WriteResponse{Metas: []*sst.SSTMeta{meta}})
}

// streamError is a failure of the Write stream itself, as opposed to bad
// data in it.
type streamError struct{ error }

// receiveStaged reads a Write stream to its end into w and checks it.
func receiveStaged(stream sst.ImportSST_WriteServer, w *stagedWriter) (meta *sst.SSTMeta, commitTS uint64, err error) {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, streamError{err}
		}
		switch chunk := req.GetChunk().(type) {
		case *sst.WriteRequest_Meta:
			meta = chunk.Meta
		case *sst.WriteRequest_Batch:
			if err := stageBatch(w, chunk.Batch, &commitTS); err != nil {
				return nil, 0, err
			}
		}
	}
	switch {
	case meta == nil:
		return nil, 0, errors.New("write stream carried no meta")
	case len(meta.GetUuid()) == 0:
		return nil, 0, errors.New("sst meta has no uuid")
	}
	return meta, commitTS, nil
}

// stageBatch adds batch's pairs to w; every batch of a stream must carry
// the same, non-zero commit ts.
func stageBatch(w *stagedWriter, batch *sst.WriteBatch, commitTS *uint64) error {
	switch {
	case batch.GetCommitTs() == 0 && len(batch.GetPairs()) > 0:
		return errors.New("write batch has commit ts 0")
	case *commitTS != 0 && batch.GetCommitTs() != *commitTS && len(batch.GetPairs()) > 0:
		return fmt.Errorf("write batches have commit ts %d and %d", *commitTS, batch.GetCommitTs())
	}
	if len(batch.GetPairs()) > 0 {
		*commitTS = batch.GetCommitTs()
	}
	for _, p := range batch.GetPairs() {
		if p.GetOp() != sst.Pair_Put {
			return fmt.Errorf("unsupported pair op %s", p.GetOp())
		}
		if err := w.add(p.GetKey(), p.GetValue()); err != nil {
			return streamError{fmt.Errorf("import: stage: %w", err)}
		}
	}
	return nil
}

// MultiIngest commits the staged SSTs into the region named by the context.
// A region error from storage is answered in the response's error, which is
// the region error field of IngestResponse; the SST stays staged for the
// retry.
func (s *importService) MultiIngest(ctx context.Context, req *sst.MultiIngestRequest) (*sst.IngestResponse, error) {
	return s.ingest(ctx, req.GetContext(), req.GetSsts())
}

// Ingest is MultiIngest for one SST.
func (s *importService) Ingest(ctx context.Context, req *sst.IngestRequest) (*sst.IngestResponse, error) {
	return s.ingest(ctx, req.GetContext(), []*sst.SSTMeta{req.GetSst()})
}

func (s *importService) ingest(ctx context.Context, kvctx *kvrpcpb.Context, metas []*sst.SSTMeta) (*sst.IngestResponse, error) {
	if _, regionErr := s.svc.regions.Check(kvctx); regionErr != nil {
		return &sst.IngestResponse{Error: regionErr}, nil
	}
	for _, meta := range metas {
		uuid := meta.GetUuid()
		r, err := s.svc.staged.open(uuid)
		if err != nil {
			// Missing, damaged or already being ingested: the client's
			// problem to retry, answered in the response as TiKV does.
			return &sst.IngestResponse{Error: &errorpb.Error{Message: fmt.Sprintf("sst %x: %v", uuid, err)}}, nil
		}
		if err := s.ingestOne(ctx, kvctx, uuid, r); err != nil {
			if regionErr, _ := splitRegionError(err); regionErr != nil {
				return &sst.IngestResponse{Error: regionErr}, nil
			}
			return nil, fmt.Errorf("import: ingest sst %x: %w", uuid, err)
		}
	}
	return &sst.IngestResponse{}, nil
}

// ingestOne applies the staged SST that r reads and deletes it; after a
// failure the SST stays for a retry.
func (s *importService) ingestOne(ctx context.Context, kvctx *kvrpcpb.Context, uuid []byte, r *stagedReader) error {
	err := s.apply(ctx, kvctx, r)
	r.file.Close()
	return errors.Join(err, s.svc.staged.release(uuid, err == nil))
}

// DuplicateDetect streams the versions that an import committed after
// min_commit_ts wrote twice or over an earlier value, in batches; a failure
// of the scan is sent as key_error, a region failure as region_error.
func (s *importService) DuplicateDetect(req *sst.DuplicateDetectRequest, stream sst.ImportSST_DuplicateDetectServer) error {
	if _, regionErr := s.svc.regions.Check(req.GetContext()); regionErr != nil {
		return stream.Send(&sst.DuplicateDetectResponse{RegionError: regionErr})
	}
	err := s.svc.txn.DetectDuplicates(stream.Context(), req.GetContext(), req.GetStartKey(), req.GetEndKey(),
		req.GetMinCommitTs(), req.GetKeyOnly(), func(versions []mvcc.DuplicateVersion) error {
			pairs := make([]*sst.KvPair, len(versions))
			for i, v := range versions {
				pairs[i] = &sst.KvPair{Key: v.Key, Value: v.Value, CommitTs: v.CommitTS}
			}
			return stream.Send(&sst.DuplicateDetectResponse{Pairs: pairs})
		})
	if err == nil || stream.Context().Err() != nil {
		return nil
	}
	regionErr, err := splitRegionError(err)
	if regionErr != nil {
		return stream.Send(&sst.DuplicateDetectResponse{RegionError: regionErr})
	}
	return stream.Send(&sst.DuplicateDetectResponse{KeyError: &sst.Error{Message: err.Error()}})
}

// apply writes the pairs of r as committed versions, in batches, for the
// region kvctx addresses.
func (s *importService) apply(ctx context.Context, kvctx *kvrpcpb.Context, r *stagedReader) error {
	s.svc.txn.ConcurrencyManager().UpdateMaxTS(r.commitTS)
	var mods []storage.Modify
	for {
		key, value, err := r.next()
		if errors.Is(err, io.EOF) {
			return s.write(ctx, kvctx, mods)
		}
		if err != nil {
			return err
		}
		mods = append(mods, mvcc.IngestPut(key, value, r.commitTS)...)
		if len(mods) >= ingestBatch {
			if err := s.write(ctx, kvctx, mods); err != nil {
				return err
			}
			mods = nil
		}
	}
}

func (s *importService) write(ctx context.Context, kvctx *kvrpcpb.Context, mods []storage.Modify) error {
	if len(mods) == 0 {
		return nil
	}
	return s.svc.txn.Storage().Write(ctx, kvctx, mods)
}
