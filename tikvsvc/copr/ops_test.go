package copr

import (
	"testing"

	"github.com/pingcap/tidb/pkg/expression"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/stretchr/testify/require"
)

// Columns of t as a table scan outputs them.
var (
	idCol    = col(0, longlongType(mysql.PriKeyFlag|mysql.NotNullFlag))
	nameCol  = col(1, varcharType("utf8mb4_general_ci"))
	ageCol   = col(2, longlongType(0))
	scoreCol = col(3, decimalType())
)

func boolType() *types.FieldType { return types.NewFieldType(mysql.TypeLonglong) }

func intConst(v int64) *expression.Constant {
	return &expression.Constant{Value: types.NewIntDatum(v), RetType: longlongType(0)}
}

func strConst(s, collation string) *expression.Constant {
	return &expression.Constant{Value: types.NewCollationStringDatum(s, collation), RetType: varcharType(collation)}
}

func decConst(s string) *expression.Constant {
	return &expression.Constant{Value: types.NewDecimalDatum(types.NewDecFromStringForTest(s)), RetType: decimalType()}
}

func binName() *expression.Column { return col(1, varcharType("utf8mb4_bin")) }

func TestSelection(t *testing.T) {
	p := newPlanner(t)
	tests := []struct {
		name string
		cond expression.Expression
		ids  []int64
	}{
		{"int greater", p.fn(ast.GT, boolType(), ageCol, intConst(26)), []int64{1, 4, 5}},
		{"is null", p.fn(ast.IsNull, boolType(), ageCol), []int64{3}},
		{"null never equals", p.fn(ast.NE, boolType(), ageCol, intConst(30)), []int64{2, 5, 6}},
		{"ci equal", p.fn(ast.EQ, boolType(), nameCol, strConst("BOB", "utf8mb4_general_ci")), []int64{2}},
		{"ci greater", p.fn(ast.GT, boolType(), nameCol, strConst("b", "utf8mb4_general_ci")), []int64{2, 3, 4, 5, 6}},
		{"bin greater", p.fn(ast.GT, boolType(), binName(), strConst("b", "utf8mb4_bin")), []int64{3, 4, 6}},
		{"decimal and int", p.fn(ast.LogicAnd, boolType(),
			p.fn(ast.GT, boolType(), ageCol, intConst(26)),
			p.fn(ast.LT, boolType(), scoreCol, decConst("50"))), []int64{1, 4}},
		{"like ci", p.fn(ast.Like, boolType(), nameCol, strConst("%E%", "utf8mb4_general_ci"), intConst('\\')), []int64{1, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dag := &tipb.DAGRequest{
				Executors:     []*tipb.Executor{tableScanExec(personTable(), false), selectionExec(p.pb(tt.cond))},
				OutputOffsets: []uint32{0},
			}
			rows, _ := runDAG(t, peopleStore(t), dag, tableRange())
			require.Equal(t, idRows(tt.ids), rows)
		})
	}
}

func idRows(ids []int64) [][]any {
	var rows [][]any
	for _, id := range ids {
		rows = append(rows, []any{id})
	}
	return rows
}

func TestProjection(t *testing.T) {
	p := newPlanner(t)
	exprs := []expression.Expression{
		idCol,
		p.fn(ast.Plus, longlongType(0), ageCol, intConst(1)),
		p.fn(ast.Upper, varcharType("utf8mb4_general_ci"), nameCol),
	}
	proj := &tipb.Executor{Tp: tipb.ExecType_TypeProjection, Projection: &tipb.Projection{Exprs: p.pb(exprs...)}}
	dag := &tipb.DAGRequest{
		Executors:     []*tipb.Executor{tableScanExec(personTable(), false), limitExec(3), proj},
		OutputOffsets: []uint32{0, 1, 2},
	}
	rows, _ := runDAG(t, peopleStore(t), dag, tableRange())
	require.Equal(t, [][]any{{int64(1), int64(31), "ALICE"}, {int64(2), int64(26), "BOB"}, {int64(3), nil, "CAROL"}}, rows)
}

func TestLimit(t *testing.T) {
	for _, n := range []uint64{0, 1, 4, 6, 100} {
		dag := &tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(personTable(), true), limitExec(n)}, OutputOffsets: []uint32{0}}
		rows, _ := runDAG(t, peopleStore(t), dag, tableRange())
		want := idRows([]int64{6, 5, 4, 3, 2, 1}[:min(int(n), 6)])
		require.Equal(t, want, rows, "limit %d", n)
	}
}

func TestTopN(t *testing.T) {
	p := newPlanner(t)
	item := func(e expression.Expression, desc bool) *tipb.ByItem {
		return &tipb.ByItem{Expr: p.pb(e)[0], Desc: desc}
	}
	tests := []struct {
		name  string
		items []*tipb.ByItem
		limit uint64
		ids   []int64
	}{
		{"decimal desc", []*tipb.ByItem{item(scoreCol, true)}, 3, []int64{5, 2, 1}},
		{"nulls first then tie-break", []*tipb.ByItem{item(ageCol, false), item(idCol, true)}, 4, []int64{3, 6, 2, 4}},
		{"ci strings", []*tipb.ByItem{item(nameCol, false)}, 3, []int64{1, 2, 3}},
		{"expression", []*tipb.ByItem{item(p.fn(ast.Mul, decimalType(), scoreCol, intConst(-1)), false)}, 2, []int64{5, 2}},
		{"limit above rows", []*tipb.ByItem{item(idCol, true)}, 10, []int64{6, 5, 4, 3, 2, 1}},
		{"limit zero", []*tipb.ByItem{item(idCol, true)}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topN := &tipb.Executor{Tp: tipb.ExecType_TypeTopN, TopN: &tipb.TopN{OrderBy: tt.items, Limit: tt.limit}}
			dag := &tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(personTable(), false), topN}, OutputOffsets: []uint32{0}}
			rows, _ := runDAG(t, peopleStore(t), dag, tableRange())
			require.Equal(t, idRows(tt.ids), rows)
		})
	}
}
