package copr

import (
	"errors"
	"fmt"
	"time"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/terror"
	"github.com/pingcap/tipb/go-tipb"
)

// handleDAG executes a DAG request and answers with a SelectResponse.
func handleDAG(p scanParams, req *coprocessor.Request) *coprocessor.Response {
	start := time.Now()
	dag := new(tipb.DAGRequest)
	if err := dag.Unmarshal(req.GetData()); err != nil {
		return errorResponse(fmt.Errorf("decode DAG request: %w", err))
	}
	env := dagEnv(dag)
	pl, err := buildPlan(env, p, dag, req.GetRanges())
	if err != nil {
		return errorResponse(fmt.Errorf("build DAG: %w", err))
	}
	enc, err := newEncoder(env, dag, pl)
	if err != nil {
		return errorResponse(err)
	}
	pagingSize := p.pagingSize
	if pl.blocking() {
		pagingSize = 0
	}
	paged, err := run(pl, enc, pagingSize)
	if err != nil {
		if isStorageFailure(err) {
			return errorResponse(err)
		}
		enc.fail(err)
	}
	resp := selectResponse(env, dag, pl, enc, time.Since(start))
	if paged && err == nil {
		resp.Range = pl.scanner.scannedRange()
	}
	return resp
}

// run moves the root executor's rows into the encoder until it is drained,
// or with paging (pagingSize > 0) until at least pagingSize rows are
// encoded; paged reports that it stopped for paging, as TiKV does even when
// nothing is left to read.
func run(pl *plan, enc *encoder, pagingSize uint64) (paged bool, err error) {
	root := pl.root()
	for {
		if pagingSize > 0 && enc.rows >= pagingSize {
			return true, nil
		}
		chk, err := root.next()
		if err != nil || chk == nil {
			return false, err
		}
		if err := enc.add(chk); err != nil {
			return false, err
		}
	}
}

// selectResponse wraps the encoded rows and the execution details.
func selectResponse(env *evalEnv, dag *tipb.DAGRequest, pl *plan, enc *encoder, elapsed time.Duration) *coprocessor.Response {
	sel := &tipb.SelectResponse{
		Error:      enc.err,
		Chunks:     enc.chunks,
		EncodeType: enc.encodeType,
		Warnings:   env.warnings(),
	}
	count := int64(len(sel.Warnings))
	sel.WarningCount = &count
	if limit := dag.GetMaxWarningCount(); limit > 0 && uint64(len(sel.Warnings)) > limit {
		sel.Warnings = sel.Warnings[:limit]
	}
	if dag.GetCollectRangeCounts() {
		sel.OutputCounts = pl.scanner.counts
	}
	if dag.GetCollectExecutionSummaries() {
		for _, e := range pl.execs {
			sel.ExecutionSummaries = append(sel.ExecutionSummaries, e.summary())
		}
	}
	data, err := sel.Marshal()
	if err != nil {
		return errorResponse(fmt.Errorf("encode select response: %w", err))
	}
	return &coprocessor.Response{Data: data, ExecDetailsV2: execDetails(pl.scanner, elapsed)}
}

func execDetails(s *rangeScanner, elapsed time.Duration) *kvrpcpb.ExecDetailsV2 {
	ms := uint64(elapsed.Milliseconds())
	return &kvrpcpb.ExecDetailsV2{
		TimeDetail: &kvrpcpb.TimeDetail{ProcessWallTimeMs: ms},
		ScanDetailV2: &kvrpcpb.ScanDetailV2{
			ProcessedVersions:     s.scanned,
			ProcessedVersionsSize: s.bytes,
			TotalVersions:         s.scanned,
		},
	}
}

// toPBError converts an evaluation error to the form TiDB reports to the
// client, keeping MySQL error codes.
func toPBError(err error) *tipb.Error {
	var tErr *terror.Error
	if errors.As(err, &tErr) {
		sqlErr := terror.ToSQLError(tErr)
		return &tipb.Error{Code: int32(sqlErr.Code), Msg: sqlErr.Message}
	}
	var sqlErr *mysql.SQLError
	if errors.As(err, &sqlErr) {
		return &tipb.Error{Code: int32(sqlErr.Code), Msg: sqlErr.Message}
	}
	return &tipb.Error{Code: int32(mysql.ErrUnknown), Msg: err.Error()}
}
