package copr

import (
	"fmt"
	"slices"
	"time"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/tidb/pkg/meta/model"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/tablecodec"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/chunk"
	"github.com/pingcap/tidb/pkg/util/codec"
	"github.com/pingcap/tidb/pkg/util/rowcodec"
	"github.com/pingcap/tipb/go-tipb"
)

// scanSpec is what TableScan and PartitionTableScan have in common.
type scanSpec struct {
	columns    []*tipb.ColumnInfo
	primaryIDs []int64
	desc       bool
}

func tableScanSpec(pb *tipb.TableScan) scanSpec {
	return scanSpec{columns: pb.GetColumns(), primaryIDs: pb.GetPrimaryColumnIds(), desc: pb.GetDesc()}
}

func partitionScanSpec(pb *tipb.PartitionTableScan) scanSpec {
	return scanSpec{columns: pb.GetColumns(), primaryIDs: pb.GetPrimaryColumnIds(), desc: pb.GetDesc()}
}

// tableScan decodes record pairs (t{id}_r{handle} -> row) into rows.
type tableScan struct {
	scanner *rangeScanner
	fts     []*types.FieldType
	decoder *rowcodec.ChunkDecoder
	physIdx int // column filled with the table id from the key, or -1
	oldRow  *oldRowConverter
}

func newTableScan(env *evalEnv, sp scanParams, spec scanSpec, ranges []*coprocessor.KeyRange) (*tableScan, *rangeScanner, error) {
	if len(spec.columns) == 0 {
		return nil, nil, fmt.Errorf("table scan has no columns")
	}
	fts := columnFieldTypes(spec.columns)
	physIdx, err := physTableIDColumn(spec.columns)
	if err != nil {
		return nil, nil, err
	}
	decoded := spec.columns
	if physIdx >= 0 {
		decoded = spec.columns[:physIdx]
	}
	scanner, err := newRangeScanner(sp, ranges, spec.desc, handleOnly(decoded, spec.primaryIDs))
	if err != nil {
		return nil, nil, err
	}
	t := &tableScan{
		scanner: scanner,
		fts:     fts,
		decoder: newRowDecoder(decoded, fts, spec.primaryIDs, env.loc),
		physIdx: physIdx,
		oldRow:  newOldRowConverter(decoded, fts, env.loc),
	}
	return t, scanner, nil
}

func (t *tableScan) fieldTypes() []*types.FieldType { return t.fts }

func (t *tableScan) next() (*chunk.Chunk, error) {
	pairs, err := t.scanner.next()
	if err != nil || pairs == nil {
		return nil, err
	}
	chk := chunk.NewChunkWithCapacity(t.fts, len(pairs))
	for _, p := range pairs {
		if err := t.decode(p, chk); err != nil {
			return nil, err
		}
	}
	return chk, nil
}

func (t *tableScan) decode(p *kvrpcpb.KvPair, chk *chunk.Chunk) error {
	handle, err := tablecodec.DecodeRowKey(p.GetKey())
	if err != nil {
		return fmt.Errorf("decode record key %x: %w", p.GetKey(), err)
	}
	value, err := t.oldRow.toNewFormat(p.GetValue())
	if err != nil {
		return fmt.Errorf("decode row of key %x: %w", p.GetKey(), err)
	}
	if err := t.decoder.DecodeToChunk(value, handle, chk); err != nil {
		return fmt.Errorf("decode row of key %x: %w", p.GetKey(), err)
	}
	if t.physIdx >= 0 {
		chk.AppendInt64(t.physIdx, tablecodec.DecodeTableID(p.GetKey()))
	}
	return nil
}

// physTableIDColumn finds the ExtraPhysTblID column, which TiDB puts last.
func physTableIDColumn(cols []*tipb.ColumnInfo) (int, error) {
	for i, col := range cols {
		if col.GetColumnId() != model.ExtraPhysTblID {
			continue
		}
		if i != len(cols)-1 {
			return 0, fmt.Errorf("the physical table id column must be the last column")
		}
		return i, nil
	}
	return -1, nil
}

// handleOnly reports whether every column can be decoded from an int
// handle, so the scan does not need values.
func handleOnly(cols []*tipb.ColumnInfo, primaryIDs []int64) bool {
	if len(primaryIDs) > 0 {
		return false
	}
	for _, col := range cols {
		if !col.GetPkHandle() && col.GetColumnId() != model.ExtraHandleID {
			return false
		}
	}
	return true
}

// newRowDecoder builds the decoder of rows into chunks: the handle fills
// the primary key columns absent from the value, and a column absent from
// an old row takes its default value (or NULL).
func newRowDecoder(cols []*tipb.ColumnInfo, fts []*types.FieldType, primaryIDs []int64, loc *time.Location) *rowcodec.ChunkDecoder {
	infos := make([]rowcodec.ColInfo, len(cols))
	handleIDs := slices.Clone(primaryIDs)
	for i, col := range cols {
		infos[i] = rowcodec.ColInfo{ID: col.GetColumnId(), Ft: fts[i], IsPKHandle: col.GetPkHandle()}
		if col.GetPkHandle() {
			handleIDs = []int64{col.GetColumnId()}
		}
	}
	if len(handleIDs) == 0 {
		handleIDs = []int64{model.ExtraHandleID}
	}
	defaults := func(i int, chk *chunk.Chunk) error {
		col := cols[i]
		if col.GetPkHandle() || len(col.GetDefaultVal()) == 0 {
			chk.AppendNull(i)
			return nil
		}
		_, err := codec.NewDecoder(chk, loc).DecodeOne(col.GetDefaultVal(), i, fts[i])
		return err
	}
	return rowcodec.NewChunkDecoder(infos, handleIDs, defaults, loc)
}

// oldRowConverter rewrites rows stored in TiDB's original datum format
// (colID, value, ...) into rowcodec's format.
type oldRowConverter struct {
	types   map[int64]*types.FieldType
	loc     *time.Location
	encoder rowcodec.Encoder
}

func newOldRowConverter(cols []*tipb.ColumnInfo, fts []*types.FieldType, loc *time.Location) *oldRowConverter {
	m := make(map[int64]*types.FieldType, len(cols))
	for i, col := range cols {
		m[col.GetColumnId()] = fts[i]
	}
	return &oldRowConverter{types: m, loc: loc}
}

// minNewRowLen is the size of rowcodec's row header.
const minNewRowLen = 6

func (c *oldRowConverter) toNewFormat(value []byte) ([]byte, error) {
	if len(value) > 0 && rowcodec.IsNewFormat(value) {
		if len(value) < minNewRowLen {
			return nil, fmt.Errorf("row value of %d bytes is too short", len(value))
		}
		return value, nil
	}
	row, err := tablecodec.DecodeRowWithMap(value, c.types, c.loc, nil)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(row))
	for id := range row {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	vals := make([]types.Datum, len(ids))
	for i, id := range ids {
		vals[i] = row[id]
	}
	return c.encoder.Encode(c.loc, ids, vals, nil, nil)
}

// indexScan decodes index pairs (t{id}_i{index}{values} -> handle/restored
// data) into rows of the index columns followed by the handle columns.
type indexScan struct {
	scanner    *rangeScanner
	fts        []*types.FieldType
	infos      []rowcodec.ColInfo
	numIdxCols int
	hdlStatus  tablecodec.HandleStatus
	physIdx    int // column filled with the table id from the key, or -1
	loc        *time.Location
}

func newIndexScan(env *evalEnv, sp scanParams, pb *tipb.IndexScan, ranges []*coprocessor.KeyRange) (*indexScan, *rangeScanner, error) {
	cols := pb.GetColumns()
	if len(cols) == 0 {
		return nil, nil, fmt.Errorf("index scan has no columns")
	}
	physIdx, err := physTableIDColumn(cols)
	if err != nil {
		return nil, nil, err
	}
	keyCols := cols
	if physIdx >= 0 {
		keyCols = cols[:physIdx]
	}
	numIdxCols, status, err := indexLayout(keyCols, pb.GetPrimaryColumnIds())
	if err != nil {
		return nil, nil, err
	}
	scanner, err := newRangeScanner(sp, ranges, pb.GetDesc(), false)
	if err != nil {
		return nil, nil, err
	}
	fts := columnFieldTypes(cols)
	infos := make([]rowcodec.ColInfo, len(cols))
	for i, col := range cols {
		infos[i] = rowcodec.ColInfo{ID: col.GetColumnId(), Ft: fts[i], IsPKHandle: col.GetPkHandle()}
	}
	s := &indexScan{
		scanner:    scanner,
		fts:        fts,
		infos:      infos,
		numIdxCols: numIdxCols,
		hdlStatus:  status,
		physIdx:    physIdx,
		loc:        env.loc,
	}
	return s, scanner, nil
}

// indexLayout tells how many leading columns are index columns and how the
// trailing handle columns, if any, are encoded.
func indexLayout(cols []*tipb.ColumnInfo, primaryIDs []int64) (int, tablecodec.HandleStatus, error) {
	n := len(cols)
	if len(primaryIDs) > 0 {
		if len(primaryIDs) > n {
			return 0, 0, fmt.Errorf("index scan has %d columns but %d primary columns", n, len(primaryIDs))
		}
		return n - len(primaryIDs), tablecodec.HandleDefault, nil
	}
	last := cols[n-1]
	switch {
	case last.GetPkHandle() && mysql.HasUnsignedFlag(uint(last.GetFlag())):
		return n - 1, tablecodec.HandleIsUnsigned, nil
	case last.GetPkHandle() || last.GetColumnId() == model.ExtraHandleID:
		return n - 1, tablecodec.HandleDefault, nil
	default:
		return n, tablecodec.HandleNotNeeded, nil
	}
}

func (s *indexScan) fieldTypes() []*types.FieldType { return s.fts }

func (s *indexScan) next() (*chunk.Chunk, error) {
	pairs, err := s.scanner.next()
	if err != nil || pairs == nil {
		return nil, err
	}
	chk := chunk.NewChunkWithCapacity(s.fts, len(pairs))
	for _, p := range pairs {
		if err := s.decode(p, chk); err != nil {
			return nil, err
		}
	}
	return chk, nil
}

func (s *indexScan) decode(p *kvrpcpb.KvPair, chk *chunk.Chunk) error {
	values, err := tablecodec.DecodeIndexKV(p.GetKey(), p.GetValue(), s.numIdxCols, s.hdlStatus, s.infos)
	if err != nil {
		return fmt.Errorf("decode index entry %x: %w", p.GetKey(), err)
	}
	width := len(s.fts)
	if s.physIdx >= 0 {
		width = s.physIdx
	}
	if len(values) < width {
		return fmt.Errorf("index entry %x has %d values, want %d", p.GetKey(), len(values), width)
	}
	dec := codec.NewDecoder(chk, s.loc)
	for i := 0; i < width; i++ {
		if _, err := dec.DecodeOne(values[i], i, s.fts[i]); err != nil {
			return fmt.Errorf("decode column %d of index entry %x: %w", i, p.GetKey(), err)
		}
	}
	if s.physIdx >= 0 {
		chk.AppendInt64(s.physIdx, physicalTableID(p.GetKey(), values, width))
	}
	return nil
}

// physicalTableID is the partition id a global index stores after the
// handle, else the table id of the key.
func physicalTableID(key []byte, values [][]byte, width int) int64 {
	if len(values) > width {
		if _, d, err := codec.DecodeOne(values[width]); err == nil {
			return d.GetInt64()
		}
	}
	return tablecodec.DecodeTableID(key)
}
