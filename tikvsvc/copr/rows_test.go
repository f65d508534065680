package copr

import (
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/tidb/pkg/kv"
	"github.com/pingcap/tidb/pkg/meta/model"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/tablecodec"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/stretchr/testify/require"
)

// TestOldRowFormatAndDefaults reads a row written in the original datum
// format next to a new-format row, and a column absent from both rows
// (added later), which takes its original default.
func TestOldRowFormatAndDefaults(t *testing.T) {
	tbl := personTable()
	s := newMemStore()
	loadPeople(t, s, tbl, samplePeople()[:1])
	old := person{id: 2, name: "old", age: intPtr(50), score: "1.50"}.datums()
	value, err := tablecodec.EncodeOldRow(time.UTC, old[1:], []int64{2, 3, 4}, nil, nil)
	require.NoError(t, err)
	s.put(tablecodec.EncodeRowKeyWithHandle(tableID, kv.IntHandle(2)), value)

	bonus := column(5, "bonus", 4, longlongType(0))
	scan := tableScanExec(tbl, false)
	pbBonus := util.ColumnToProto(bonus, false, false)
	pbBonus.DefaultVal, err = tablecodec.EncodeValue(time.UTC, nil, types.NewIntDatum(7))
	require.NoError(t, err)
	scan.TblScan.Columns = append(scan.TblScan.Columns, pbBonus)

	dag := &tipb.DAGRequest{Executors: []*tipb.Executor{scan}, OutputOffsets: offsets(5)}
	rows, _ := runDAG(t, s, dag, tableRange())
	require.Equal(t, [][]any{
		{int64(1), "alice", int64(30), "10.50", int64(7)},
		{int64(2), "old", int64(50), "1.50", int64(7)},
	}, rows)
}

// TestPartitionTableScanWithPhysicalID reads two partitions (physical
// tables) and fills the ExtraPhysTblID column from each key.
func TestPartitionTableScanWithPhysicalID(t *testing.T) {
	s := newMemStore()
	var ranges []*coprocessor.KeyRange
	for _, pid := range []int64{101, 102} {
		value, err := tablecodec.EncodeOldRow(time.UTC, []types.Datum{types.NewIntDatum(pid * 10)}, []int64{2}, nil, nil)
		require.NoError(t, err)
		s.put(tablecodec.EncodeRowKeyWithHandle(pid, kv.IntHandle(1)), value)
		start, end := tablecodec.GetTableHandleKeyRange(pid)
		ranges = append(ranges, &coprocessor.KeyRange{Start: start, End: end})
	}
	cols := []*model.ColumnInfo{
		column(1, "id", 0, longlongType(mysql.PriKeyFlag|mysql.NotNullFlag)),
		column(2, "v", 1, longlongType(0)),
		column(model.ExtraPhysTblID, "_tidb_tid", 2, longlongType(mysql.NotNullFlag)),
	}
	scan := &tipb.Executor{Tp: tipb.ExecType_TypePartitionTableScan, PartitionTableScan: &tipb.PartitionTableScan{
		TableId: 100, Columns: util.ColumnsToProto(cols, true, false, false), PartitionIds: []int64{101, 102},
	}}
	dag := &tipb.DAGRequest{Executors: []*tipb.Executor{scan}, OutputOffsets: offsets(3)}
	rows, _ := runDAG(t, s, dag, ranges)
	require.Equal(t, [][]any{{int64(1), int64(1010), int64(101)}, {int64(1), int64(1020), int64(102)}}, rows)
}
