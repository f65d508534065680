package copr

import (
	"context"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/tidb/pkg/expression"
	"github.com/pingcap/tidb/pkg/expression/aggregation"
	"github.com/pingcap/tidb/pkg/expression/exprstatic"
	"github.com/pingcap/tidb/pkg/kv"
	"github.com/pingcap/tidb/pkg/meta/model"
	pmodel "github.com/pingcap/tidb/pkg/parser/model"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/tablecodec"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util"
	"github.com/pingcap/tidb/pkg/util/codec"
	"github.com/pingcap/tidb/pkg/util/rowcodec"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/stretchr/testify/require"
)

const (
	tableID    = 100
	ageIndexID = 1 // non-unique index on age
	nameIdxID  = 2 // unique index on name
	startTS    = 100
)

// person is one row of table t (id BIGINT PRIMARY KEY, name VARCHAR(32)
// COLLATE utf8mb4_general_ci, age INT NULL, score DECIMAL(10,2)).
type person struct {
	id    int64
	name  string
	age   *int64
	score string
}

func intPtr(v int64) *int64 { return &v }

func longlongType(flag uint) *types.FieldType {
	ft := types.NewFieldType(mysql.TypeLonglong)
	ft.SetFlag(flag)
	ft.SetFlen(20)
	return ft
}

func varcharType(collation string) *types.FieldType {
	ft := types.NewFieldType(mysql.TypeVarchar)
	ft.SetFlen(32)
	ft.SetCharset("utf8mb4")
	ft.SetCollate(collation)
	return ft
}

func decimalType() *types.FieldType {
	ft := types.NewFieldType(mysql.TypeNewDecimal)
	ft.SetFlen(10)
	ft.SetDecimal(2)
	return ft
}

func column(id int64, name string, offset int, ft *types.FieldType) *model.ColumnInfo {
	return &model.ColumnInfo{ID: id, Name: pmodel.NewCIStr(name), Offset: offset, FieldType: *ft, State: model.StatePublic}
}

// personTable describes t; its primary key is the int handle.
func personTable() *model.TableInfo {
	cols := []*model.ColumnInfo{
		column(1, "id", 0, longlongType(mysql.PriKeyFlag|mysql.NotNullFlag)),
		column(2, "name", 1, varcharType("utf8mb4_general_ci")),
		column(3, "age", 2, longlongType(0)),
		column(4, "score", 3, decimalType()),
	}
	return &model.TableInfo{
		ID: tableID, Name: pmodel.NewCIStr("t"), Columns: cols, PKIsHandle: true, State: model.StatePublic,
		Indices: []*model.IndexInfo{
			{ID: ageIndexID, Name: pmodel.NewCIStr("idx_age"), Columns: []*model.IndexColumn{{Name: cols[2].Name, Offset: 2, Length: -1}}, State: model.StatePublic},
			{ID: nameIdxID, Name: pmodel.NewCIStr("uk_name"), Unique: true, Columns: []*model.IndexColumn{{Name: cols[1].Name, Offset: 1, Length: -1}}, State: model.StatePublic},
		},
	}
}

func (p person) datums() []types.Datum {
	age := types.NewDatum(nil)
	if p.age != nil {
		age = types.NewIntDatum(*p.age)
	}
	score := types.NewDecimalDatum(types.NewDecFromStringForTest(p.score))
	score.SetFrac(2)
	score.SetLength(10)
	return []types.Datum{types.NewIntDatum(p.id), types.NewCollationStringDatum(p.name, "utf8mb4_general_ci"), age, score}
}

// loadPeople writes the rows of t and both of its indexes the way TiDB
// encodes them.
func loadPeople(t testing.TB, s *memStore, tbl *model.TableInfo, people []person) {
	var enc rowcodec.Encoder
	for _, p := range people {
		d := p.datums()
		h := kv.IntHandle(p.id)
		value, err := enc.Encode(time.UTC, []int64{2, 3, 4}, d[1:], nil, nil)
		require.NoError(t, err)
		s.put(tablecodec.EncodeRowKeyWithHandle(tableID, h), value)
		for _, idx := range tbl.Indices {
			vals := []types.Datum{d[idx.Columns[0].Offset]}
			key, distinct, err := tablecodec.GenIndexKey(time.UTC, tbl, idx, tableID, vals, h, nil)
			require.NoError(t, err)
			restore := idx.ID == nameIdxID // ci strings keep their original value
			var restored []types.Datum
			if restore {
				restored = vals
			}
			ival, err := tablecodec.GenIndexValuePortal(time.UTC, tbl, idx, restore, distinct, false, vals, h, 0, restored, nil)
			require.NoError(t, err)
			s.put(key, ival)
		}
	}
}

func samplePeople() []person {
	return []person{
		{1, "alice", intPtr(30), "10.50"},
		{2, "Bob", intPtr(25), "20.00"},
		{3, "carol", nil, "5.25"},
		{4, "dave", intPtr(30), "7.75"},
		{5, "Eve", intPtr(41), "100.00"},
		{6, "frank", intPtr(25), "0.10"},
	}
}

// pushClient lets TiDB's expression-to-pb converters push everything.
type pushClient struct{ kv.Client }

func (pushClient) IsRequestTypeSupported(int64, int64) bool { return true }

// planner builds pushed-down plans with TiDB's own converters.
type planner struct {
	t   testing.TB
	ctx *exprstatic.ExprContext
}

func newPlanner(t testing.TB) *planner {
	return &planner{t: t, ctx: exprstatic.NewExprContext()}
}

func col(i int, ft *types.FieldType) *expression.Column {
	return &expression.Column{Index: i, RetType: ft}
}

func (p *planner) fn(name string, ret *types.FieldType, args ...expression.Expression) expression.Expression {
	e, err := expression.NewFunction(p.ctx, name, ret, args...)
	require.NoError(p.t, err)
	return e
}

func (p *planner) pb(exprs ...expression.Expression) []*tipb.Expr {
	out, err := expression.ExpressionsToPBList(p.ctx.GetEvalCtx(), exprs, pushClient{})
	require.NoError(p.t, err)
	require.Len(p.t, out, len(exprs))
	return out
}

func (p *planner) agg(name string, args ...expression.Expression) *tipb.Expr {
	desc, err := aggregation.NewAggFuncDesc(p.ctx, name, args, false)
	require.NoError(p.t, err)
	desc.Mode = aggregation.Partial1Mode
	pushCtx := expression.NewPushDownContext(p.ctx.GetEvalCtx(), pushClient{}, false, nil, nil, 0)
	e, err := aggregation.AggFuncToPBExpr(pushCtx, desc, kv.TiKV)
	require.NoError(p.t, err)
	return e
}

func tableScanExec(tbl *model.TableInfo, desc bool) *tipb.Executor {
	return &tipb.Executor{Tp: tipb.ExecType_TypeTableScan, TblScan: &tipb.TableScan{
		TableId: tbl.ID, Columns: util.ColumnsToProto(tbl.Columns, tbl.PKIsHandle, false, false), Desc: desc,
	}}
}

// indexScanExec reads idx and, with handle set, the int handle after it.
func indexScanExec(tbl *model.TableInfo, idx *model.IndexInfo, handle, desc bool) *tipb.Executor {
	cols := make([]*model.ColumnInfo, 0, len(idx.Columns)+1)
	for _, c := range idx.Columns {
		cols = append(cols, tbl.Columns[c.Offset])
	}
	if handle {
		cols = append(cols, tbl.Columns[0])
	}
	return &tipb.Executor{Tp: tipb.ExecType_TypeIndexScan, IdxScan: &tipb.IndexScan{
		TableId: tbl.ID, IndexId: idx.ID, Columns: util.ColumnsToProto(cols, tbl.PKIsHandle, true, false),
		Desc: desc, Unique: &idx.Unique,
	}}
}

func selectionExec(conds []*tipb.Expr) *tipb.Executor {
	return &tipb.Executor{Tp: tipb.ExecType_TypeSelection, Selection: &tipb.Selection{Conditions: conds}}
}

func limitExec(n uint64) *tipb.Executor {
	return &tipb.Executor{Tp: tipb.ExecType_TypeLimit, Limit: &tipb.Limit{Limit: n}}
}

func tableRange() []*coprocessor.KeyRange {
	start, end := tablecodec.GetTableHandleKeyRange(tableID)
	return []*coprocessor.KeyRange{{Start: start, End: end}}
}

func handleRange(from, to int64) *coprocessor.KeyRange {
	return &coprocessor.KeyRange{
		Start: tablecodec.EncodeRowKeyWithHandle(tableID, kv.IntHandle(from)),
		End:   tablecodec.EncodeRowKeyWithHandle(tableID, kv.IntHandle(to)),
	}
}

func indexRange(indexID int64) []*coprocessor.KeyRange {
	prefix := tablecodec.EncodeTableIndexPrefix(tableID, indexID)
	return []*coprocessor.KeyRange{{Start: prefix, End: prefix.PrefixNext()}}
}

// dagRequest wraps a DAG the way TiDB's distsql layer does.
func dagRequest(t testing.TB, dag *tipb.DAGRequest, ranges []*coprocessor.KeyRange) *coprocessor.Request {
	if dag.Flags == 0 {
		dag.Flags = model.FlagInSelectStmt
	}
	data, err := dag.Marshal()
	require.NoError(t, err)
	return &coprocessor.Request{
		Context: &kvrpcpb.Context{RegionId: 1},
		Tp:      ReqTypeDAG,
		Data:    data,
		Ranges:  ranges,
		StartTs: startTS,
	}
}

// runDAG executes a DAG and returns its decoded rows, each column turned
// into a comparable Go value.
func runDAG(t testing.TB, s *memStore, dag *tipb.DAGRequest, ranges []*coprocessor.KeyRange) ([][]any, *tipb.SelectResponse) {
	resp := Handle(context.Background(), s.scan, dagRequest(t, dag, ranges))
	require.Empty(t, resp.OtherError)
	require.Nil(t, resp.Locked)
	var sel tipb.SelectResponse
	require.NoError(t, sel.Unmarshal(resp.Data))
	require.Nil(t, sel.Error, "select error")
	require.Equal(t, tipb.EncodeType_TypeDefault, sel.EncodeType)
	var rows [][]any
	for _, chk := range sel.Chunks {
		data := chk.RowsData
		for len(data) > 0 {
			row, rest := decodeRow(t, data, len(dag.OutputOffsets))
			rows = append(rows, row)
			data = rest
		}
	}
	return rows, &sel
}

// decodeRow decodes n datums, as TiDB does for TypeDefault rows.
func decodeRow(t testing.TB, data []byte, n int) ([]any, []byte) {
	row := make([]any, n)
	for i := range row {
		var d types.Datum
		var err error
		data, d, err = codec.DecodeOne(data)
		require.NoError(t, err)
		row[i] = plain(d)
	}
	return row, data
}

// plain turns a datum into a Go value that compares with ==.
func plain(d types.Datum) any {
	switch d.Kind() {
	case types.KindNull:
		return nil
	case types.KindInt64:
		return d.GetInt64()
	case types.KindUint64:
		return d.GetUint64()
	case types.KindFloat64:
		return d.GetFloat64()
	case types.KindMysqlDecimal:
		return d.GetMysqlDecimal().String()
	case types.KindString, types.KindBytes:
		return d.GetString()
	default:
		return d.String()
	}
}

func offsets(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i)
	}
	return out
}
