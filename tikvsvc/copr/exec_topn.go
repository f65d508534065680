package copr

import (
	"container/heap"
	"fmt"

	"github.com/pingcap/tidb/pkg/expression"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/chunk"
	"github.com/pingcap/tidb/pkg/util/collate"
	"github.com/pingcap/tipb/go-tipb"
)

// topN returns the first n rows in the order of its order-by items. It
// keeps at most n rows in a heap whose top is the worst row kept.
type topN struct {
	env       *evalEnv
	child     executor
	keys      []expression.Expression
	desc      []bool
	collators []collate.Collator
	n         uint64
	kept      sortedRows
	done      bool
}

// sortedRow is a row with its evaluated order-by keys.
type sortedRow struct {
	row  chunk.Row
	keys []types.Datum
}

func newTopN(env *evalEnv, pb *tipb.TopN, child executor) (*topN, error) {
	items := pb.GetOrderBy()
	t := &topN{env: env, child: child, n: pb.GetLimit()}
	for _, item := range items {
		e, err := expression.PBToExpr(env.exprCtx, item.GetExpr(), child.fieldTypes())
		if err != nil {
			return nil, fmt.Errorf("order-by item: %w", err)
		}
		t.keys = append(t.keys, e)
		t.desc = append(t.desc, item.GetDesc())
		t.collators = append(t.collators, collate.GetCollator(e.GetType(env.evalCtx).GetCollate()))
	}
	t.kept.less = t.worse
	return t, nil
}

func (t *topN) fieldTypes() []*types.FieldType { return t.child.fieldTypes() }

func (t *topN) next() (*chunk.Chunk, error) {
	if t.done || t.n == 0 {
		return nil, nil
	}
	t.done = true
	if err := t.consume(); err != nil {
		return nil, err
	}
	return t.output()
}

// consume reads all input and keeps the best n rows.
func (t *topN) consume() error {
	for {
		chk, err := t.child.next()
		if err != nil || chk == nil {
			return err
		}
		for i := 0; i < chk.NumRows(); i++ {
			if err := t.offer(chk.GetRow(i)); err != nil {
				return err
			}
		}
	}
}

func (t *topN) offer(row chunk.Row) error {
	r := sortedRow{row: row, keys: make([]types.Datum, len(t.keys))}
	for i, e := range t.keys {
		d, err := e.Eval(t.env.evalCtx, row)
		if err != nil {
			return fmt.Errorf("evaluate order-by item %d: %w", i, err)
		}
		d.Copy(&r.keys[i])
	}
	if uint64(t.kept.Len()) < t.n {
		heap.Push(&t.kept, r)
		return t.kept.err
	}
	if t.compare(r, t.kept.rows[0]) < 0 {
		t.kept.rows[0] = r
		heap.Fix(&t.kept, 0)
	}
	return t.kept.err
}

// output empties the heap worst-first and emits the rows best-first.
func (t *topN) output() (*chunk.Chunk, error) {
	n := t.kept.Len()
	if n == 0 {
		return nil, nil
	}
	rows := make([]chunk.Row, n)
	for i := n - 1; i >= 0; i-- {
		rows[i] = heap.Pop(&t.kept).(sortedRow).row
	}
	if t.kept.err != nil {
		return nil, t.kept.err
	}
	chk := chunk.NewChunkWithCapacity(t.fieldTypes(), n)
	chk.AppendRows(rows)
	return chk, nil
}

// worse orders the heap: the worst row kept is on top.
func (t *topN) worse(a, b sortedRow) bool { return t.compare(a, b) > 0 }

// compare orders rows by the order-by items; a comparison error is kept in
// the heap and reported by offer.
func (t *topN) compare(a, b sortedRow) int {
	for i := range t.keys {
		c, err := a.keys[i].Compare(t.env.sc.TypeCtx(), &b.keys[i], t.collators[i])
		if err != nil {
			t.kept.err = fmt.Errorf("compare order-by item %d: %w", i, err)
			return 0
		}
		if c != 0 {
			if t.desc[i] {
				return -c
			}
			return c
		}
	}
	return 0
}

// sortedRows is a heap of rows ordered by less.
type sortedRows struct {
	rows []sortedRow
	less func(a, b sortedRow) bool
	err  error
}

func (h *sortedRows) Len() int           { return len(h.rows) }
func (h *sortedRows) Less(i, j int) bool { return h.less(h.rows[i], h.rows[j]) }
func (h *sortedRows) Swap(i, j int)      { h.rows[i], h.rows[j] = h.rows[j], h.rows[i] }
func (h *sortedRows) Push(x any)         { h.rows = append(h.rows, x.(sortedRow)) }

func (h *sortedRows) Pop() any {
	last := h.rows[len(h.rows)-1]
	h.rows = h.rows[:len(h.rows)-1]
	return last
}
