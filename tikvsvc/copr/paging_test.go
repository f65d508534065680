package copr

import (
	"bytes"
	"context"
	"testing"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/stretchr/testify/require"
)

// remainingRanges drops what a paged response read from ranges, as TiDB
// does before it asks for the next page.
func remainingRanges(ranges []*coprocessor.KeyRange, read *coprocessor.KeyRange, desc bool) []*coprocessor.KeyRange {
	var rest []*coprocessor.KeyRange
	for _, r := range ranges {
		r = &coprocessor.KeyRange{Start: r.Start, End: r.End}
		if desc {
			if bytes.Compare(r.Start, read.Start) >= 0 {
				continue
			}
			if bytes.Compare(r.End, read.Start) > 0 {
				r.End = read.Start
			}
		} else {
			if bytes.Compare(r.End, read.End) <= 0 {
				continue
			}
			if bytes.Compare(r.Start, read.End) < 0 {
				r.Start = read.End
			}
		}
		rest = append(rest, r)
	}
	return rest
}

// runPaged runs dag page by page with pagingSize until a response comes
// without Range, and returns all rows and the number of pages.
func runPaged(t *testing.T, s *memStore, dag *tipb.DAGRequest, ranges []*coprocessor.KeyRange, desc bool, pagingSize uint64) ([][]any, int) {
	var all [][]any
	for pages := 1; ; pages++ {
		req := dagRequest(t, dag, ranges)
		req.PagingSize = pagingSize
		resp := Handle(context.Background(), s.scan, req)
		require.Empty(t, resp.OtherError)
		var sel tipb.SelectResponse
		require.NoError(t, sel.Unmarshal(resp.Data))
		for _, chk := range sel.Chunks {
			for data := chk.RowsData; len(data) > 0; {
				var row []any
				row, data = decodeRow(t, data, len(dag.OutputOffsets))
				all = append(all, row)
			}
		}
		if resp.Range == nil {
			return all, pages
		}
		require.Less(t, pages, 100, "paging does not end")
		ranges = remainingRanges(ranges, resp.Range, desc)
		if len(ranges) == 0 {
			return all, pages
		}
	}
}

// TestPagingReturnsEveryRowOnce: a client that follows Response.Range page
// by page gets the rows of one unpaged request, in order, over several
// pages, forward and backward, with filters and several ranges; a plan
// with an aggregation answers in one page.
func TestPagingReturnsEveryRowOnce(t *testing.T) {
	tbl := personTable()
	s := peopleStore(t)
	p := newPlanner(t)
	ageOver26 := p.pb(p.fn(ast.GT, boolType(), col(2, longlongType(0)), intConst(26)))
	tests := []struct {
		name   string
		desc   bool
		ranges []*coprocessor.KeyRange
		extra  []*tipb.Executor
		pages  int
	}{
		{"full", false, tableRange(), nil, 4},
		{"full desc", true, tableRange(), nil, 4},
		{"two ranges", false, []*coprocessor.KeyRange{handleRange(1, 3), handleRange(4, 7)}, nil, 3},
		{"two ranges desc", true, []*coprocessor.KeyRange{handleRange(1, 3), handleRange(4, 7)}, nil, 2},
		{"selection", false, tableRange(), []*tipb.Executor{selectionExec(ageOver26)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dag := &tipb.DAGRequest{
				Executors:     append([]*tipb.Executor{tableScanExec(tbl, tt.desc)}, tt.extra...),
				OutputOffsets: offsets(4),
			}
			want, _ := runDAG(t, s, dag, tt.ranges)
			got, pages := runPaged(t, s, dag, tt.ranges, tt.desc, 2)
			require.Equal(t, want, got)
			require.Equal(t, tt.pages, pages)
		})
	}

	// Each page applies the limit anew, as in TiKV; TiDB limits the rows
	// again above the pages.
	dag := &tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(tbl, false), limitExec(3)}, OutputOffsets: offsets(4)}
	want, _ := runDAG(t, s, dag, tableRange())
	got, _ := runPaged(t, s, dag, tableRange(), false, 2)
	require.Equal(t, want, got[:3])

	count := &tipb.Executor{Tp: tipb.ExecType_TypeAggregation, Aggregation: &tipb.Aggregation{AggFunc: []*tipb.Expr{p.agg(ast.AggFuncCount, intConst(1))}}}
	dag = &tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(tbl, false), count}, OutputOffsets: offsets(1)}
	got, pages := runPaged(t, s, dag, tableRange(), false, 2)
	require.Equal(t, [][]any{{int64(6)}}, got)
	require.Equal(t, 1, pages, "an aggregation reads everything in one page")
}
