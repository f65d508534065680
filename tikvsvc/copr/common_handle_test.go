package copr

import (
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/coprocessor"
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
	clusteredID = 200
	vIndexID    = 2
)

// clusteredTable is c (code VARCHAR(16) COLLATE utf8mb4_bin PRIMARY KEY
// CLUSTERED, v BIGINT, KEY idx_v (v)).
func clusteredTable() *model.TableInfo {
	cols := []*model.ColumnInfo{
		column(1, "code", 0, varcharType("utf8mb4_bin")),
		column(2, "v", 1, longlongType(0)),
	}
	cols[0].AddFlag(mysql.PriKeyFlag | mysql.NotNullFlag)
	return &model.TableInfo{
		ID: clusteredID, Name: pmodel.NewCIStr("c"), Columns: cols, IsCommonHandle: true, CommonHandleVersion: 1,
		State: model.StatePublic,
		Indices: []*model.IndexInfo{
			{ID: 1, Name: pmodel.NewCIStr("primary"), Primary: true, Unique: true, State: model.StatePublic,
				Columns: []*model.IndexColumn{{Name: cols[0].Name, Offset: 0, Length: -1}}},
			{ID: vIndexID, Name: pmodel.NewCIStr("idx_v"), State: model.StatePublic,
				Columns: []*model.IndexColumn{{Name: cols[1].Name, Offset: 1, Length: -1}}},
		},
	}
}

func loadClustered(t *testing.T, s *memStore, rows map[string]int64) {
	tbl := clusteredTable()
	var enc rowcodec.Encoder
	for code, v := range rows {
		d := []types.Datum{types.NewCollationStringDatum(code, "utf8mb4_bin"), types.NewIntDatum(v)}
		encoded, err := codec.EncodeKey(time.UTC, nil, d[0])
		require.NoError(t, err)
		h, err := kv.NewCommonHandle(encoded)
		require.NoError(t, err)
		value, err := enc.Encode(time.UTC, []int64{1, 2}, d, nil, nil)
		require.NoError(t, err)
		s.put(tablecodec.EncodeRowKeyWithHandle(clusteredID, h), value)
		idx := tbl.Indices[1]
		key, distinct, err := tablecodec.GenIndexKey(time.UTC, tbl, idx, clusteredID, d[1:], h, nil)
		require.NoError(t, err)
		ival, err := tablecodec.GenIndexValuePortal(time.UTC, tbl, idx, false, distinct, false, d[1:], h, 0, nil, nil)
		require.NoError(t, err)
		s.put(key, ival)
	}
}

func clusteredStore(t *testing.T) *memStore {
	s := newMemStore()
	loadClustered(t, s, map[string]int64{"k1": 30, "a9": 10, "m": 20, "b": 10})
	return s
}

func clusteredRange() []*coprocessor.KeyRange {
	start, end := tablecodec.GetTableHandleKeyRange(clusteredID)
	return []*coprocessor.KeyRange{{Start: start, End: end}}
}

func TestCommonHandleTableScan(t *testing.T) {
	tbl := clusteredTable()
	exec := &tipb.Executor{Tp: tipb.ExecType_TypeTableScan, TblScan: &tipb.TableScan{
		TableId: clusteredID, Columns: util.ColumnsToProto(tbl.Columns, false, false, false), PrimaryColumnIds: []int64{1},
	}}
	dag := &tipb.DAGRequest{Executors: []*tipb.Executor{exec}, OutputOffsets: []uint32{0, 1}}
	rows, _ := runDAG(t, clusteredStore(t), dag, clusteredRange())
	require.Equal(t, [][]any{{"a9", int64(10)}, {"b", int64(10)}, {"k1", int64(30)}, {"m", int64(20)}}, rows)
}

func TestCommonHandleIndexScan(t *testing.T) {
	tbl := clusteredTable()
	for _, desc := range []bool{false, true} {
		exec := &tipb.Executor{Tp: tipb.ExecType_TypeIndexScan, IdxScan: &tipb.IndexScan{
			TableId: clusteredID, IndexId: vIndexID, Desc: desc, PrimaryColumnIds: []int64{1},
			Columns: util.ColumnsToProto([]*model.ColumnInfo{tbl.Columns[1], tbl.Columns[0]}, false, true, false),
		}}
		prefix := tablecodec.EncodeTableIndexPrefix(clusteredID, vIndexID)
		dag := &tipb.DAGRequest{Executors: []*tipb.Executor{exec}, OutputOffsets: []uint32{0, 1}}
		rows, _ := runDAG(t, clusteredStore(t), dag, []*coprocessor.KeyRange{{Start: prefix, End: prefix.PrefixNext()}})
		want := [][]any{{int64(10), "a9"}, {int64(10), "b"}, {int64(20), "m"}, {int64(30), "k1"}}
		if desc {
			want = reversed(want)
		}
		require.Equal(t, want, rows, "desc %v", desc)
	}
}

func TestAnalyzeCommonHandle(t *testing.T) {
	areq := &tipb.AnalyzeReq{
		Tp:     tipb.AnalyzeType_TypeCommonHandle,
		IdxReq: &tipb.AnalyzeIndexReq{BucketSize: 8, NumColumns: 1},
	}
	var resp tipb.AnalyzeIndexResp
	require.NoError(t, resp.Unmarshal(runAnalyze(t, clusteredStore(t), areq, clusteredRange())))
	require.Equal(t, int64(4), resp.Hist.Buckets[len(resp.Hist.Buckets)-1].Count)
	require.Equal(t, int64(4), resp.Hist.Ndv)
}
