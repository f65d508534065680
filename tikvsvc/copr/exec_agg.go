package copr

import (
	"fmt"

	"github.com/pingcap/tidb/pkg/expression"
	"github.com/pingcap/tidb/pkg/expression/aggregation"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/chunk"
	"github.com/pingcap/tidb/pkg/util/codec"
	"github.com/pingcap/tidb/pkg/util/collate"
	"github.com/pingcap/tipb/go-tipb"
)

// aggregate computes partial aggregates per group, as TiKV does for both
// hash and stream aggregation: each output row holds the partial results of
// every function (AVG: count, then sum) followed by the group-by values.
// Groups are emitted in the order they are first met, so sorted input (a
// stream aggregation) gives sorted output. Without group-by items there is
// exactly one output row, even for empty input.
type aggregate struct {
	env       *evalEnv
	child     executor
	funcs     []aggregation.Aggregation
	groupBy   []expression.Expression
	collators []collate.Collator
	fts       []*types.FieldType
	groups    map[string]*aggGroup
	order     []*aggGroup
	done      bool
}

// aggGroup is one group: its group-by values and function states.
type aggGroup struct {
	values []types.Datum
	states []*aggregation.AggEvaluateContext
}

func newAggregate(env *evalEnv, pb *tipb.Aggregation, child executor) (*aggregate, error) {
	a := &aggregate{env: env, child: child, groups: make(map[string]*aggGroup)}
	for i, f := range pb.GetAggFunc() {
		if err := a.addFunc(f); err != nil {
			return nil, fmt.Errorf("aggregate function %d: %w", i, err)
		}
	}
	for i, g := range pb.GetGroupBy() {
		e, err := expression.PBToExpr(env.exprCtx, g, child.fieldTypes())
		if err != nil {
			return nil, fmt.Errorf("group-by item %d: %w", i, err)
		}
		ft := e.GetType(env.evalCtx)
		a.groupBy = append(a.groupBy, e)
		a.collators = append(a.collators, collate.GetCollator(ft.GetCollate()))
		a.fts = append(a.fts, ft)
	}
	return a, nil
}

// addFunc builds one aggregate function and the types of its partial
// results.
func (a *aggregate) addFunc(f *tipb.Expr) error {
	if f.GetHasDistinct() {
		return fmt.Errorf("DISTINCT aggregates are not supported")
	}
	if f.AggFuncMode == nil {
		mode := tipb.AggFunctionMode_Partial1Mode
		f.AggFuncMode = &mode
	}
	if f.GetFieldType() == nil {
		return fmt.Errorf("missing field type")
	}
	fn, _, err := aggregation.NewDistAggFunc(f, a.child.fieldTypes(), a.env.exprCtx)
	if err != nil {
		return err
	}
	ft := expression.PbTypeToFieldType(f.GetFieldType())
	if f.GetTp() == tipb.ExprType_Avg {
		a.fts = append(a.fts, types.NewFieldType(mysql.TypeLonglong))
	}
	if f.GetTp() == tipb.ExprType_Count {
		ft = types.NewFieldType(mysql.TypeLonglong)
	}
	a.funcs = append(a.funcs, fn)
	a.fts = append(a.fts, ft)
	return nil
}

func (a *aggregate) fieldTypes() []*types.FieldType { return a.fts }

func (a *aggregate) next() (*chunk.Chunk, error) {
	if a.done {
		return nil, nil
	}
	a.done = true
	if len(a.groupBy) == 0 {
		a.group("", nil)
	}
	if err := a.consume(); err != nil {
		return nil, err
	}
	return a.output()
}

func (a *aggregate) consume() error {
	for {
		chk, err := a.child.next()
		if err != nil || chk == nil {
			return err
		}
		for i := 0; i < chk.NumRows(); i++ {
			if err := a.update(chk.GetRow(i)); err != nil {
				return err
			}
		}
	}
}

func (a *aggregate) update(row chunk.Row) error {
	key, values, err := a.groupKey(row)
	if err != nil {
		return err
	}
	g := a.group(key, values)
	for i, fn := range a.funcs {
		if err := fn.Update(g.states[i], a.env.sc, row); err != nil {
			return fmt.Errorf("update aggregate function %d: %w", i, err)
		}
	}
	return nil
}

// group finds or creates the group of key.
func (a *aggregate) group(key string, values []types.Datum) *aggGroup {
	if g, ok := a.groups[key]; ok {
		return g
	}
	g := &aggGroup{values: values, states: make([]*aggregation.AggEvaluateContext, len(a.funcs))}
	for i, fn := range a.funcs {
		g.states[i] = fn.CreateContext(a.env.evalCtx)
	}
	a.groups[key] = g
	a.order = append(a.order, g)
	return g
}

// groupKey evaluates the group-by items of row. Strings are keyed by their
// collation key, so values equal under the collation share a group.
func (a *aggregate) groupKey(row chunk.Row) (string, []types.Datum, error) {
	if len(a.groupBy) == 0 {
		return "", nil, nil
	}
	values := make([]types.Datum, len(a.groupBy))
	var key []byte
	for i, e := range a.groupBy {
		d, err := e.Eval(a.env.evalCtx, row)
		if err != nil {
			return "", nil, fmt.Errorf("evaluate group-by item %d: %w", i, err)
		}
		d.Copy(&values[i])
		k := d
		if k.Kind() == types.KindString || k.Kind() == types.KindBytes {
			k = types.NewBytesDatum(a.collators[i].Key(d.GetString()))
		}
		key, err = codec.EncodeValue(a.env.loc, key, k)
		if err != nil {
			return "", nil, fmt.Errorf("encode group-by item %d: %w", i, err)
		}
	}
	return string(key), values, nil
}

// output emits one row per group.
func (a *aggregate) output() (*chunk.Chunk, error) {
	if len(a.order) == 0 {
		return nil, nil
	}
	chk := chunk.NewChunkWithCapacity(a.fts, len(a.order))
	row := make([]types.Datum, 0, len(a.fts))
	for _, g := range a.order {
		row = row[:0]
		for i, fn := range a.funcs {
			row = append(row, fn.GetPartialResult(g.states[i])...)
		}
		row = append(row, g.values...)
		if err := appendDatums(a.env, chk, a.fts, row); err != nil {
			return nil, err
		}
	}
	return chk, nil
}

// appendDatums appends one row, converting each datum whose kind does not
// match its column type so the chunk's column layout stays valid.
func appendDatums(env *evalEnv, chk *chunk.Chunk, fts []*types.FieldType, row []types.Datum) error {
	if len(row) != len(fts) {
		return fmt.Errorf("row has %d values for %d columns", len(row), len(fts))
	}
	for i := range row {
		d := row[i]
		if !d.IsNull() && !kindFits(d.Kind(), fts[i]) {
			var err error
			if d, err = d.ConvertTo(env.sc.TypeCtx(), fts[i]); err != nil {
				return fmt.Errorf("convert column %d: %w", i, err)
			}
		}
		chk.AppendDatum(i, &d)
	}
	return nil
}

// kindFits reports whether a datum of kind k is stored the way ft's chunk
// column expects.
func kindFits(k byte, ft *types.FieldType) bool {
	switch ft.GetType() {
	case mysql.TypeTiny, mysql.TypeShort, mysql.TypeInt24, mysql.TypeLong, mysql.TypeLonglong, mysql.TypeYear:
		return k == types.KindInt64 || k == types.KindUint64
	case mysql.TypeFloat:
		return k == types.KindFloat32
	case mysql.TypeDouble:
		return k == types.KindFloat64
	case mysql.TypeNewDecimal:
		return k == types.KindMysqlDecimal
	case mysql.TypeDate, mysql.TypeDatetime, mysql.TypeTimestamp:
		return k == types.KindMysqlTime
	case mysql.TypeDuration:
		return k == types.KindMysqlDuration
	case mysql.TypeJSON:
		return k == types.KindMysqlJSON
	case mysql.TypeEnum:
		return k == types.KindMysqlEnum
	case mysql.TypeSet:
		return k == types.KindMysqlSet
	case mysql.TypeNull:
		return true
	default:
		return k == types.KindString || k == types.KindBytes || k == types.KindBinaryLiteral || k == types.KindMysqlBit
	}
}
