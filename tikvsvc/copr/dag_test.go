package copr

import (
	"testing"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/stretchr/testify/require"
)

func peopleStore(t *testing.T) *memStore {
	s := newMemStore()
	loadPeople(t, s, personTable(), samplePeople())
	return s
}

func TestTableScan(t *testing.T) {
	tbl := personTable()
	all := [][]any{
		{int64(1), "alice", int64(30), "10.50"},
		{int64(2), "Bob", int64(25), "20.00"},
		{int64(3), "carol", nil, "5.25"},
		{int64(4), "dave", int64(30), "7.75"},
		{int64(5), "Eve", int64(41), "100.00"},
		{int64(6), "frank", int64(25), "0.10"},
	}
	tests := []struct {
		name   string
		desc   bool
		ranges []*coprocessor.KeyRange
		want   [][]any
	}{
		{"full", false, tableRange(), all},
		{"full desc", true, tableRange(), reversed(all)},
		{"handle ranges", false, []*coprocessor.KeyRange{handleRange(2, 4), handleRange(5, 6)}, [][]any{all[1], all[2], all[4]}},
		{"handle ranges desc", true, []*coprocessor.KeyRange{handleRange(2, 4), handleRange(5, 6)}, [][]any{all[4], all[2], all[1]}},
		{"empty range", false, []*coprocessor.KeyRange{handleRange(7, 9)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dag := &tipb.DAGRequest{Executors: []*tipb.Executor{tableScanExec(tbl, tt.desc)}, OutputOffsets: offsets(4)}
			rows, _ := runDAG(t, peopleStore(t), dag, tt.ranges)
			require.Equal(t, tt.want, rows)
		})
	}
}

func reversed(rows [][]any) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[len(rows)-1-i] = r
	}
	return out
}

func TestIndexScan(t *testing.T) {
	tbl := personTable()
	ageIdx, nameIdx := tbl.Indices[0], tbl.Indices[1]
	byAge := [][]any{{nil, int64(3)}, {int64(25), int64(2)}, {int64(25), int64(6)}, {int64(30), int64(1)}, {int64(30), int64(4)}, {int64(41), int64(5)}}
	tests := []struct {
		name   string
		exec   *tipb.Executor
		width  int
		ranges []*coprocessor.KeyRange
		want   [][]any
	}{
		{"non-unique with handle", indexScanExec(tbl, ageIdx, true, false), 2, indexRange(ageIndexID), byAge},
		{"non-unique desc", indexScanExec(tbl, ageIdx, true, true), 2, indexRange(ageIndexID), reversed(byAge)},
		{"covering, no handle", indexScanExec(tbl, ageIdx, false, false), 1, indexRange(ageIndexID),
			[][]any{{nil}, {int64(25)}, {int64(25)}, {int64(30)}, {int64(30)}, {int64(41)}}},
		{"unique ci with handle", indexScanExec(tbl, nameIdx, true, false), 2, indexRange(nameIdxID),
			[][]any{{"alice", int64(1)}, {"Bob", int64(2)}, {"carol", int64(3)}, {"dave", int64(4)}, {"Eve", int64(5)}, {"frank", int64(6)}}},
		{"unique desc", indexScanExec(tbl, nameIdx, true, true), 2, indexRange(nameIdxID),
			[][]any{{"frank", int64(6)}, {"Eve", int64(5)}, {"dave", int64(4)}, {"carol", int64(3)}, {"Bob", int64(2)}, {"alice", int64(1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dag := &tipb.DAGRequest{Executors: []*tipb.Executor{tt.exec}, OutputOffsets: offsets(tt.width)}
			rows, _ := runDAG(t, peopleStore(t), dag, tt.ranges)
			require.Equal(t, tt.want, rows)
		})
	}
}
