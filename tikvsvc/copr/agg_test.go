package copr

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/tidb/pkg/expression"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/stretchr/testify/require"
)

func aggExec(tp tipb.ExecType, funcs, groupBy []*tipb.Expr) *tipb.Executor {
	return &tipb.Executor{Tp: tp, Aggregation: &tipb.Aggregation{AggFunc: funcs, GroupBy: groupBy}}
}

func TestAggregation(t *testing.T) {
	p := newPlanner(t)
	funcs := []*tipb.Expr{
		p.agg(ast.AggFuncCount, intConst(1)),
		p.agg(ast.AggFuncSum, scoreCol),
		p.agg(ast.AggFuncAvg, scoreCol),
		p.agg(ast.AggFuncMin, nameCol),
		p.agg(ast.AggFuncMax, nameCol),
		p.agg(ast.AggFuncCount, ageCol),
	}
	// The partial sum of AVG takes the scale of AVG's type (2 + 4).
	tests := []struct {
		name    string
		groupBy []*tipb.Expr
		ranges  []*coprocessor.KeyRange
		want    [][]any
	}{
		{"group by age", p.pb(ageCol), tableRange(), [][]any{
			{int64(2), "18.25", int64(2), "18.250000", "alice", "dave", int64(2), int64(30)},
			{int64(2), "20.10", int64(2), "20.100000", "Bob", "frank", int64(2), int64(25)},
			{int64(1), "5.25", int64(1), "5.250000", "carol", "carol", int64(0), nil},
			{int64(1), "100.00", int64(1), "100.000000", "Eve", "Eve", int64(1), int64(41)},
		}},
		{"no group by", nil, tableRange(), [][]any{
			{int64(6), "143.60", int64(6), "143.600000", "alice", "frank", int64(5)},
		}},
		{"no group by, no rows", nil, []*coprocessor.KeyRange{handleRange(10, 20)}, [][]any{
			{int64(0), nil, int64(0), nil, nil, nil, int64(0)},
		}},
		{"group by, no rows", p.pb(ageCol), []*coprocessor.KeyRange{handleRange(10, 20)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dag := &tipb.DAGRequest{
				Executors:     []*tipb.Executor{tableScanExec(personTable(), false), aggExec(tipb.ExecType_TypeAggregation, funcs, tt.groupBy)},
				OutputOffsets: offsets(7 + len(tt.groupBy)),
			}
			rows, _ := runDAG(t, peopleStore(t), dag, tt.ranges)
			require.Equal(t, tt.want, rows)
		})
	}
}

func TestAggregationGroupsByCollation(t *testing.T) {
	p := newPlanner(t)
	s := newMemStore()
	loadPeople(t, s, personTable(), []person{
		{1, "ann", intPtr(1), "1.00"},
		{2, "ANN", intPtr(2), "2.00"},
		{3, "bo", intPtr(3), "3.00"},
		{4, "Ann", intPtr(4), "4.00"},
	})
	dag := &tipb.DAGRequest{
		Executors: []*tipb.Executor{tableScanExec(personTable(), false),
			aggExec(tipb.ExecType_TypeAggregation, []*tipb.Expr{p.agg(ast.AggFuncSum, ageCol)}, p.pb(nameCol))},
		OutputOffsets: offsets(2),
	}
	rows, _ := runDAG(t, s, dag, tableRange())
	require.Equal(t, [][]any{{"7", "ann"}, {"3", "bo"}}, rows)
}

func TestStreamAggOverIndex(t *testing.T) {
	p := newPlanner(t)
	tbl := personTable()
	ageOnIndex := col(0, longlongType(0))
	dag := &tipb.DAGRequest{
		Executors: []*tipb.Executor{indexScanExec(tbl, tbl.Indices[0], false, false),
			aggExec(tipb.ExecType_TypeStreamAgg, []*tipb.Expr{p.agg(ast.AggFuncCount, intConst(1))}, p.pb(ageOnIndex))},
		OutputOffsets: offsets(2),
	}
	rows, _ := runDAG(t, peopleStore(t), dag, indexRange(ageIndexID))
	require.Equal(t, [][]any{{int64(1), nil}, {int64(2), int64(25)}, {int64(2), int64(30)}, {int64(1), int64(41)}}, rows)
}

func TestSelectionThenAggregation(t *testing.T) {
	p := newPlanner(t)
	dag := &tipb.DAGRequest{
		Executors: []*tipb.Executor{
			tableScanExec(personTable(), false),
			selectionExec(p.pb(p.fn(ast.GE, boolType(), ageCol, intConst(30)))),
			aggExec(tipb.ExecType_TypeAggregation, []*tipb.Expr{p.agg(ast.AggFuncCount, intConst(1)), p.agg(ast.AggFuncMax, scoreCol)}, nil),
		},
		OutputOffsets: offsets(2),
	}
	rows, _ := runDAG(t, peopleStore(t), dag, tableRange())
	require.Equal(t, [][]any{{int64(3), "100.00"}}, rows)
}

// TestFastTableCheckShape runs the aggregate TiDB's ADMIN CHECK TABLE
// pushes down: bit_xor(crc32(md5(concat_ws(0x2, cols...)))) and count(*),
// grouped by a bucket of the handle.
func TestFastTableCheckShape(t *testing.T) {
	p := newPlanner(t)
	str := varcharType("utf8mb4_bin")
	sep := &expression.Constant{Value: types.NewStringDatum("\x02"), RetType: str}
	checksum := p.fn(ast.CRC32, longlongType(mysql.UnsignedFlag), p.fn(ast.MD5, str, p.fn(ast.ConcatWS, str, sep, idCol, nameCol)))
	bucket := p.fn(ast.IntDiv, longlongType(0), idCol, intConst(4))
	dag := &tipb.DAGRequest{
		Executors: []*tipb.Executor{tableScanExec(personTable(), false),
			aggExec(tipb.ExecType_TypeAggregation,
				[]*tipb.Expr{p.agg(ast.AggFuncBitXor, checksum), p.agg(ast.AggFuncCount, intConst(1))}, p.pb(bucket))},
		OutputOffsets: offsets(3),
	}
	rows, _ := runDAG(t, peopleStore(t), dag, tableRange())
	want := map[int64][]any{}
	for _, person := range samplePeople() {
		sum := md5.Sum([]byte(fmt.Sprintf("%d\x02%s", person.id, person.name)))
		crc := uint64(crc32.ChecksumIEEE([]byte(hex.EncodeToString(sum[:]))))
		b := person.id / 4
		if want[b] == nil {
			want[b] = []any{uint64(0), int64(0), b}
		}
		want[b][0] = want[b][0].(uint64) ^ crc
		want[b][1] = want[b][1].(int64) + 1
	}
	require.Equal(t, [][]any{want[0], want[1]}, rows)
}
