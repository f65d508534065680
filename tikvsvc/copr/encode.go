package copr

import (
	"fmt"

	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/chunk"
	"github.com/pingcap/tidb/pkg/util/codec"
	"github.com/pingcap/tipb/go-tipb"
)

// encoder turns the root executor's batches into SelectResponse chunks,
// keeping the output_offsets columns.
type encoder struct {
	env        *evalEnv
	encodeType tipb.EncodeType
	offsets    []int
	fts        []*types.FieldType // of the output columns
	codec      *chunk.Codec
	chunks     []tipb.Chunk
	rows       uint64 // rows added
	err        *tipb.Error
	row        []types.Datum
}

// newEncoder checks the output offsets and picks the encoding: chunks when
// TiDB asks for them and the plan has no aggregation, else TypeDefault.
func newEncoder(env *evalEnv, dag *tipb.DAGRequest, pl *plan) (*encoder, error) {
	rootTypes := pl.root().fieldTypes()
	e := &encoder{env: env, encodeType: tipb.EncodeType_TypeDefault}
	for _, off := range dag.GetOutputOffsets() {
		if int(off) >= len(rootTypes) {
			return nil, fmt.Errorf("output offset %d out of %d columns", off, len(rootTypes))
		}
		e.offsets = append(e.offsets, int(off))
		e.fts = append(e.fts, rootTypes[off])
	}
	if len(e.offsets) == 0 {
		for i, ft := range rootTypes {
			e.offsets = append(e.offsets, i)
			e.fts = append(e.fts, ft)
		}
	}
	if dag.GetEncodeType() == tipb.EncodeType_TypeChunk && !pl.hasAgg {
		e.encodeType = tipb.EncodeType_TypeChunk
		e.codec = chunk.NewCodec(e.fts)
	}
	return e, nil
}

// add encodes one batch as one response chunk.
func (e *encoder) add(chk *chunk.Chunk) error {
	e.rows += uint64(chk.NumRows())
	if e.encodeType == tipb.EncodeType_TypeChunk {
		e.chunks = append(e.chunks, tipb.Chunk{RowsData: e.codec.Encode(chk.Prune(e.offsets))})
		return nil
	}
	var data []byte
	for i := 0; i < chk.NumRows(); i++ {
		row := chk.GetRow(i)
		e.row = e.row[:0]
		for j, off := range e.offsets {
			e.row = append(e.row, row.GetDatum(off, e.fts[j]))
		}
		var err error
		data, err = codec.EncodeValue(e.env.loc, data, e.row...)
		if err != nil {
			return fmt.Errorf("encode row: %w", err)
		}
	}
	e.chunks = append(e.chunks, tipb.Chunk{RowsData: data})
	return nil
}

// fail records an evaluation error; the rows encoded so far are dropped,
// as TiDB discards them anyway.
func (e *encoder) fail(err error) {
	e.err = toPBError(err)
	e.chunks = nil
}
