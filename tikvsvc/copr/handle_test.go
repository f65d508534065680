package copr

import (
	"context"
	"errors"
	"testing"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/tidb/pkg/expression"
	"github.com/pingcap/tidb/pkg/kv"
	"github.com/pingcap/tidb/pkg/meta/model"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/tablecodec"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/chunk"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/stretchr/testify/require"
)

func fullScanDAG() *tipb.DAGRequest {
	return &tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(personTable(), false)}, OutputOffsets: []uint32{0}}
}

func TestLockBecomesLocked(t *testing.T) {
	for _, asPair := range []bool{false, true} {
		s := peopleStore(t)
		s.lockAsPairError = asPair
		key := tablecodec.EncodeRowKeyWithHandle(tableID, kv.IntHandle(3))
		s.lock(key, 90)
		resp := Handle(context.Background(), s.scan, dagRequest(t, fullScanDAG(), tableRange()))
		require.NotNil(t, resp.Locked, "lock as pair error: %v", asPair)
		require.Equal(t, uint64(90), resp.Locked.LockVersion)
		require.Equal(t, []byte(key), resp.Locked.Key)
		require.Empty(t, resp.OtherError)
		require.Empty(t, resp.Data)
	}
}

func TestLockAfterStartTSIsInvisible(t *testing.T) {
	s := peopleStore(t)
	s.lock(tablecodec.EncodeRowKeyWithHandle(tableID, kv.IntHandle(3)), startTS+1)
	rows, _ := runDAG(t, s, fullScanDAG(), tableRange())
	require.Len(t, rows, 6)
}

func TestScanFailures(t *testing.T) {
	notLeader := &errorpb.Error{Message: "not leader", NotLeader: &errorpb.NotLeader{RegionId: 1}}
	tests := []struct {
		name  string
		scan  ScanFunc
		check func(t *testing.T, resp *coprocessor.Response)
	}{
		{"region error", func(context.Context, *kvrpcpb.ScanRequest) (*kvrpcpb.ScanResponse, error) {
			return &kvrpcpb.ScanResponse{RegionError: notLeader}, nil
		}, func(t *testing.T, resp *coprocessor.Response) {
			require.Equal(t, notLeader, resp.RegionError)
			require.Empty(t, resp.OtherError)
		}},
		{"scan error", func(context.Context, *kvrpcpb.ScanRequest) (*kvrpcpb.ScanResponse, error) {
			return nil, errors.New("disk on fire")
		}, func(t *testing.T, resp *coprocessor.Response) {
			require.Contains(t, resp.OtherError, "disk on fire")
		}},
		{"key error", func(context.Context, *kvrpcpb.ScanRequest) (*kvrpcpb.ScanResponse, error) {
			return &kvrpcpb.ScanResponse{Error: &kvrpcpb.KeyError{Abort: "aborted"}}, nil
		}, func(t *testing.T, resp *coprocessor.Response) {
			require.Contains(t, resp.OtherError, "aborted")
		}},
		{"corrupt row", func(context.Context, *kvrpcpb.ScanRequest) (*kvrpcpb.ScanResponse, error) {
			key := tablecodec.EncodeRowKeyWithHandle(tableID, kv.IntHandle(1))
			return &kvrpcpb.ScanResponse{Pairs: []*kvrpcpb.KvPair{{Key: key, Value: []byte{128, 0, 9}}}}, nil
		}, func(t *testing.T, resp *coprocessor.Response) {
			var sel tipb.SelectResponse
			require.NoError(t, sel.Unmarshal(resp.Data))
			require.NotNil(t, sel.Error)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, Handle(context.Background(), tt.scan, dagRequest(t, fullScanDAG(), tableRange())))
		})
	}
}

func TestMalformedRequestsNeverPanic(t *testing.T) {
	s := peopleStore(t)
	good := dagRequest(t, fullScanDAG(), tableRange())
	withDAG := func(dag *tipb.DAGRequest) *coprocessor.Request { return dagRequest(t, dag, tableRange()) }
	tests := []struct {
		name string
		req  *coprocessor.Request
	}{
		{"unknown type", &coprocessor.Request{Tp: 101, Data: good.Data, Ranges: good.Ranges}},
		{"garbage DAG", &coprocessor.Request{Tp: ReqTypeDAG, Data: []byte{0xff, 0xff, 0x01}}},
		{"garbage analyze", &coprocessor.Request{Tp: ReqTypeAnalyze, Data: []byte{0xff, 0xff, 0x01}}},
		{"garbage checksum", &coprocessor.Request{Tp: ReqTypeChecksum, Data: []byte{0xff, 0xff, 0x01}}},
		{"no executors", withDAG(&tipb.DAGRequest{})},
		{"scan not first", withDAG(&tipb.DAGRequest{Executors: []*tipb.Executor{limitExec(1)}})},
		{"nil table scan", withDAG(&tipb.DAGRequest{Executors: []*tipb.Executor{{Tp: tipb.ExecType_TypeTableScan}}})},
		{"nil index scan", withDAG(&tipb.DAGRequest{Executors: []*tipb.Executor{{Tp: tipb.ExecType_TypeIndexScan}}})},
		{"nil selection", withDAG(&tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(personTable(), false), {Tp: tipb.ExecType_TypeSelection}}})},
		{"nil aggregation", withDAG(&tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(personTable(), false), {Tp: tipb.ExecType_TypeAggregation}}})},
		{"bad column ref", withDAG(&tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(personTable(), false),
			selectionExec([]*tipb.Expr{{Tp: tipb.ExprType_ColumnRef, Val: []byte{1}}})}})},
		{"join", withDAG(&tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(personTable(), false), {Tp: tipb.ExecType_TypeJoin}}})},
		{"output offset out of range", withDAG(&tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(personTable(), false)}, OutputOffsets: []uint32{9}})},
		{"inverted range", dagRequest(t, fullScanDAG(), []*coprocessor.KeyRange{handleRange(5, 2)})},
		{"empty analyze", &coprocessor.Request{Tp: ReqTypeAnalyze}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := Handle(context.Background(), s.scan, tt.req)
			require.NotEmpty(t, resp.OtherError)
			require.NotContains(t, resp.OtherError, "panic")
		})
	}
}

func TestExecutionSummariesAndRangeCounts(t *testing.T) {
	collect := true
	dag := &tipb.DAGRequest{
		Executors:                 []*tipb.Executor{tableScanExec(personTable(), false), limitExec(4)},
		OutputOffsets:             []uint32{0},
		CollectExecutionSummaries: &collect,
		CollectRangeCounts:        &collect,
	}
	_, sel := runDAG(t, peopleStore(t), dag, []*coprocessor.KeyRange{handleRange(1, 3), handleRange(3, 7)})
	require.Len(t, sel.ExecutionSummaries, 2)
	require.Equal(t, uint64(6), sel.ExecutionSummaries[0].GetNumProducedRows())
	require.Equal(t, uint64(4), sel.ExecutionSummaries[1].GetNumProducedRows())
	for _, s := range sel.ExecutionSummaries {
		require.NotNil(t, s.TimeProcessedNs)
		require.NotNil(t, s.NumIterations)
	}
	require.Equal(t, []int64{2, 4}, sel.OutputCounts)
}

func TestChunkEncoding(t *testing.T) {
	dag := &tipb.DAGRequest{
		Executors:     []*tipb.Executor{tableScanExec(personTable(), true)},
		OutputOffsets: []uint32{3, 1, 2},
		EncodeType:    tipb.EncodeType_TypeChunk,
	}
	resp := Handle(context.Background(), peopleStore(t).scan, dagRequest(t, dag, tableRange()))
	require.Empty(t, resp.OtherError)
	var sel tipb.SelectResponse
	require.NoError(t, sel.Unmarshal(resp.Data))
	require.Equal(t, tipb.EncodeType_TypeChunk, sel.EncodeType)
	fts := []*types.FieldType{decimalType(), varcharType("utf8mb4_general_ci"), longlongType(0)}
	var rows [][]any
	for _, c := range sel.Chunks {
		chk := chunk.NewChunkWithCapacity(fts, 8)
		chunk.NewCodec(fts).DecodeToChunk(c.RowsData, chk)
		for i := 0; i < chk.NumRows(); i++ {
			row := chk.GetRow(i)
			rows = append(rows, []any{plain(row.GetDatum(0, fts[0])), plain(row.GetDatum(1, fts[1])), plain(row.GetDatum(2, fts[2]))})
		}
	}
	require.Equal(t, [][]any{
		{"0.10", "frank", int64(25)}, {"100.00", "Eve", int64(41)}, {"7.75", "dave", int64(30)},
		{"5.25", "carol", nil}, {"20.00", "Bob", int64(25)}, {"10.50", "alice", int64(30)},
	}, rows)
}

// TestPaging checks that ranges are read a page at a time, forward and in
// reverse, and that a Limit stops the scan after the first page.
func TestPaging(t *testing.T) {
	const n = 2*pageSize + 17
	people := make([]person, n)
	for i := range people {
		people[i] = person{id: int64(i + 1), name: "p", age: intPtr(int64(i % 7)), score: "1.00"}
	}
	for _, desc := range []bool{false, true} {
		s := newMemStore()
		loadPeople(t, s, personTable(), people)
		dag := &tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(personTable(), desc)}, OutputOffsets: []uint32{0}}
		rows, _ := runDAG(t, s, dag, tableRange())
		require.Len(t, rows, n)
		for i, r := range rows {
			want := int64(i + 1)
			if desc {
				want = int64(n - i)
			}
			require.Equal(t, want, r[0])
		}
		require.Len(t, s.requests, 3)
		for _, req := range s.requests {
			require.Equal(t, desc, req.Reverse)
			require.Equal(t, uint32(pageSize), req.Limit)
			require.Equal(t, uint64(startTS), req.Version)
			require.True(t, req.KeyOnly == false)
		}
	}
	s := newMemStore()
	loadPeople(t, s, personTable(), people)
	dag := &tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(personTable(), false), limitExec(10)}, OutputOffsets: []uint32{0}}
	rows, _ := runDAG(t, s, dag, tableRange())
	require.Len(t, rows, 10)
	require.Len(t, s.requests, 1)
}

func TestHandleOnlyScanIsKeyOnly(t *testing.T) {
	tbl := personTable()
	s := peopleStore(t)
	exec := tableScanExec(tbl, false)
	exec.TblScan.Columns = exec.TblScan.Columns[:1]
	dag := &tipb.DAGRequest{Executors: []*tipb.Executor{exec}, OutputOffsets: []uint32{0}}
	rows, _ := runDAG(t, s, dag, tableRange())
	require.Equal(t, idRows([]int64{1, 2, 3, 4, 5, 6}), rows)
	require.True(t, s.requests[0].KeyOnly)
}

// TestEvaluationErrorsAndWarnings casts names to integers: TiDB's SELECT
// flags turn the truncation into warnings, strict flags into an error in
// SelectResponse.error.
func TestEvaluationErrorsAndWarnings(t *testing.T) {
	p := newPlanner(t)
	cast := expression.BuildCastFunction(p.ctx, nameCol, longlongType(0))
	cond := p.pb(p.fn(ast.GE, boolType(), cast, intConst(0)))

	warnDAG := &tipb.DAGRequest{
		Executors:     []*tipb.Executor{tableScanExec(personTable(), false), selectionExec(cond)},
		OutputOffsets: []uint32{0},
		Flags:         model.FlagInSelectStmt | model.FlagTruncateAsWarning,
	}
	rows, sel := runDAG(t, peopleStore(t), warnDAG, tableRange())
	require.Len(t, rows, 6)
	require.Len(t, sel.Warnings, 6)
	require.Equal(t, int64(6), sel.GetWarningCount())
	require.Contains(t, sel.Warnings[0].Msg, "Truncated incorrect")

	strictDAG := &tipb.DAGRequest{
		Executors:     []*tipb.Executor{tableScanExec(personTable(), false), selectionExec(cond)},
		OutputOffsets: []uint32{0},
		Flags:         model.FlagInInsertStmt,
	}
	resp := Handle(context.Background(), peopleStore(t).scan, dagRequest(t, strictDAG, tableRange()))
	require.Empty(t, resp.OtherError)
	var strict tipb.SelectResponse
	require.NoError(t, strict.Unmarshal(resp.Data))
	require.NotNil(t, strict.Error)
	require.Contains(t, strict.Error.Msg, "Truncated incorrect")
	require.Equal(t, int32(mysql.ErrTruncatedWrongValue), strict.Error.Code)
	require.Empty(t, strict.Chunks)
}

func TestStuckScanFails(t *testing.T) {
	key := tablecodec.EncodeRowKeyWithHandle(tableID, kv.IntHandle(1))
	page := make([]*kvrpcpb.KvPair, pageSize)
	for i := range page {
		page[i] = &kvrpcpb.KvPair{Key: key, Value: []byte{128, 0, 0, 0, 0, 0}}
	}
	stuck := func(context.Context, *kvrpcpb.ScanRequest) (*kvrpcpb.ScanResponse, error) {
		return &kvrpcpb.ScanResponse{Pairs: page}, nil
	}
	exec := tableScanExec(personTable(), false)
	exec.TblScan.Columns = exec.TblScan.Columns[:1]
	dag := &tipb.DAGRequest{Executors: []*tipb.Executor{exec}, OutputOffsets: []uint32{0}}
	resp := Handle(context.Background(), stuck, dagRequest(t, dag, tableRange()))
	require.Contains(t, resp.OtherError, "did not advance")
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp := Handle(ctx, peopleStore(t).scan, dagRequest(t, fullScanDAG(), tableRange()))
	require.Contains(t, resp.OtherError, "canceled")
}
