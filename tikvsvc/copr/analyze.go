package copr

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"time"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/tidb/pkg/kv"
	"github.com/pingcap/tidb/pkg/meta/model"
	"github.com/pingcap/tidb/pkg/parser/charset"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/planner/core/resolve"
	"github.com/pingcap/tidb/pkg/statistics"
	"github.com/pingcap/tidb/pkg/tablecodec"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/chunk"
	"github.com/pingcap/tidb/pkg/util/collate"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/twmb/murmur3"
)

// handleAnalyze collects statistics over the request's ranges.
func handleAnalyze(p scanParams, req *coprocessor.Request) *coprocessor.Response {
	areq := new(tipb.AnalyzeReq)
	if err := areq.Unmarshal(req.GetData()); err != nil {
		return errorResponse(fmt.Errorf("decode analyze request: %w", err))
	}
	env := newEvalEnv(envOptions{flags: areq.GetFlags(), loc: time.FixedZone("UTC", int(areq.GetTimeZoneOffset()))})
	var (
		data []byte
		err  error
	)
	switch areq.GetTp() {
	case tipb.AnalyzeType_TypeFullSampling:
		data, err = analyzeFullSampling(env, p, req.GetRanges(), areq.GetColReq())
	case tipb.AnalyzeType_TypeColumn:
		data, err = analyzeColumns(env, p, req.GetRanges(), areq.GetColReq())
	case tipb.AnalyzeType_TypeMixed:
		data, err = analyzeMixed(env, p, req.GetRanges(), areq)
	case tipb.AnalyzeType_TypeIndex:
		data, err = analyzeKeys(env, p, req.GetRanges(), areq.GetIdxReq(), tablecodec.CutIndexKeyNew)
	case tipb.AnalyzeType_TypeCommonHandle:
		data, err = analyzeKeys(env, p, req.GetRanges(), areq.GetIdxReq(), tablecodec.CutCommonHandle)
	default:
		err = fmt.Errorf("unsupported analyze type %s", areq.GetTp())
	}
	if err != nil {
		return errorResponse(err)
	}
	return &coprocessor.Response{Data: data}
}

// analyzeFullSampling samples whole rows with TiDB's RowSampleBuilder
// (statistics v2) and answers with its row collector.
func analyzeFullSampling(env *evalEnv, p scanParams, ranges []*coprocessor.KeyRange, col *tipb.AnalyzeColumnsReq) ([]byte, error) {
	scan, err := scanColumns(env, p, ranges, col)
	if err != nil {
		return nil, err
	}
	builder := &statistics.RowSampleBuilder{
		RecordSet:       newSampleSource(env, scan),
		Sc:              env.sc,
		Rng:             rand.New(rand.NewSource(time.Now().UnixNano())),
		ColsFieldType:   scan.fts,
		Collators:       stringCollators(scan.fts),
		ColGroups:       columnGroups(col.GetColumnGroups()),
		MaxSampleSize:   int(col.GetSampleSize()),
		SampleRate:      col.GetSampleRate(),
		MaxFMSketchSize: int(col.GetSketchSize()),
	}
	if builder.MaxSampleSize <= 0 && builder.SampleRate <= 0 {
		return nil, fmt.Errorf("analyze request has neither a sample size nor a sample rate")
	}
	collector, err := builder.Collect()
	if err != nil {
		return nil, err
	}
	resp := &tipb.AnalyzeColumnsResp{RowCollector: collector.Base().ToProto()}
	return resp.Marshal()
}

// analyzeColumns samples every column on its own with TiDB's SampleBuilder
// (statistics v1) and answers with a sample collector per column and, when
// the first column is the integer handle, a histogram of the handles.
func analyzeColumns(env *evalEnv, p scanParams, ranges []*coprocessor.KeyRange, col *tipb.AnalyzeColumnsReq) ([]byte, error) {
	resp, err := sampleColumns(env, p, ranges, col)
	if err != nil {
		return nil, err
	}
	return resp.Marshal()
}

// analyzeMixed answers the statistics v1 request for a table whose primary
// key is a clustered common handle: the columns as analyzeColumns does, and
// the common handle as an index from its keys.
func analyzeMixed(env *evalEnv, p scanParams, ranges []*coprocessor.KeyRange, areq *tipb.AnalyzeReq) ([]byte, error) {
	if areq.GetIdxReq() == nil {
		return nil, fmt.Errorf("analyze request has no index part")
	}
	columns, err := sampleColumns(env, p, ranges, areq.GetColReq())
	if err != nil {
		return nil, err
	}
	handle := newKeyStats(env, areq.GetIdxReq(), tablecodec.CutCommonHandle)
	if err := forEachPair(p, ranges, true, func(key, _ []byte) error { return handle.add(key) }); err != nil {
		return nil, err
	}
	resp := &tipb.AnalyzeMixedResp{ColumnsResp: columns, IndexResp: handle.response()}
	return resp.Marshal()
}

// sampleColumns builds statistics v1's per-column sample collectors and,
// for an int handle, the handle's histogram.
func sampleColumns(env *evalEnv, p scanParams, ranges []*coprocessor.KeyRange, col *tipb.AnalyzeColumnsReq) (*tipb.AnalyzeColumnsResp, error) {
	scan, err := scanColumns(env, p, ranges, col)
	if err != nil {
		return nil, err
	}
	sampled := scan.fts
	builder := statistics.SampleBuilder{
		RecordSet:       newSampleSource(env, scan),
		Sc:              env.sc,
		MaxBucketSize:   col.GetBucketSize(),
		MaxSampleSize:   col.GetSampleSize(),
		MaxFMSketchSize: col.GetSketchSize(),
		CMSketchDepth:   col.GetCmsketchDepth(),
		CMSketchWidth:   col.GetCmsketchWidth(),
	}
	if first := col.GetColumnsInfo()[0]; first.GetPkHandle() {
		builder.PkBuilder = statistics.NewSortedBuilder(env.sc, col.GetBucketSize(), first.GetColumnId(),
			types.NewFieldType(mysql.TypeBlob), statsVersion(col.Version))
		sampled = sampled[1:]
	}
	builder.ColLen = len(sampled)
	builder.ColsFieldType = sampled
	builder.Collators = stringCollators(sampled)
	collectors, pk, err := builder.CollectColumnStats()
	if err != nil {
		return nil, err
	}
	resp := &tipb.AnalyzeColumnsResp{}
	if pk != nil {
		resp.PkHist = statistics.HistogramToProto(pk.Hist())
	}
	for _, c := range collectors {
		resp.Collectors = append(resp.Collectors, statistics.SampleCollectorToProto(c))
	}
	return resp, nil
}

// statsVersion is the statistics version a request asks for; requests
// without one are from statistics v1.
func statsVersion(v *int32) int {
	if v == nil {
		return statistics.Version1
	}
	return int(*v)
}

// scanColumns starts the table scan that reads the columns an analyze
// request asks for.
func scanColumns(env *evalEnv, p scanParams, ranges []*coprocessor.KeyRange, col *tipb.AnalyzeColumnsReq) (*tableScan, error) {
	cols := col.GetColumnsInfo()
	if len(cols) == 0 {
		return nil, fmt.Errorf("analyze request has no columns")
	}
	scan, _, err := newTableScan(env, p, scanSpec{columns: cols, primaryIDs: col.GetPrimaryColumnIds()}, ranges)
	return scan, err
}

func stringCollators(fts []*types.FieldType) []collate.Collator {
	out := make([]collate.Collator, len(fts))
	for i, ft := range fts {
		if ft.EvalType() == types.ETString {
			out[i] = collate.GetCollator(ft.GetCollate())
		}
	}
	return out
}

func columnGroups(groups []*tipb.AnalyzeColumnGroup) [][]int64 {
	out := make([][]int64, len(groups))
	for i, g := range groups {
		out[i] = slices.Clone(g.GetColumnOffsets())
	}
	return out
}

// sampleSource is the record set RowSampleBuilder reads: the scanned rows
// with every column as its encoded value, NULL staying NULL.
type sampleSource struct {
	env    *evalEnv
	scan   *tableScan
	fields []*resolve.ResultField
}

func newSampleSource(env *evalEnv, scan *tableScan) *sampleSource {
	fields := make([]*resolve.ResultField, len(scan.fts))
	for i := range fields {
		ft := types.NewFieldType(mysql.TypeBlob)
		ft.SetFlen(mysql.MaxBlobWidth)
		ft.SetCharset(charset.CharsetBin)
		ft.SetCollate(charset.CollationBin)
		fields[i] = &resolve.ResultField{Column: &model.ColumnInfo{FieldType: *ft}}
	}
	return &sampleSource{env: env, scan: scan, fields: fields}
}

func (s *sampleSource) Fields() []*resolve.ResultField { return s.fields }

func (s *sampleSource) NewChunk(chunk.Allocator) *chunk.Chunk {
	fts := make([]*types.FieldType, len(s.fields))
	for i, f := range s.fields {
		fts[i] = &f.Column.FieldType
	}
	return chunk.NewChunkWithCapacity(fts, pageSize)
}

func (s *sampleSource) Close() error { return nil }

// Next fills req with the next page of rows; an empty req means the end.
func (s *sampleSource) Next(_ context.Context, req *chunk.Chunk) error {
	req.Reset()
	chk, err := s.scan.next()
	if err != nil || chk == nil {
		return err
	}
	for i := 0; i < chk.NumRows(); i++ {
		if err := s.appendEncoded(chk.GetRow(i), req); err != nil {
			return err
		}
	}
	return nil
}

func (s *sampleSource) appendEncoded(row chunk.Row, req *chunk.Chunk) error {
	for i, ft := range s.scan.fts {
		d := row.GetDatum(i, ft)
		if d.IsNull() {
			req.AppendNull(i)
			continue
		}
		b, err := tablecodec.EncodeValue(s.env.loc, nil, d)
		if err != nil {
			return fmt.Errorf("encode column %d: %w", i, err)
		}
		req.AppendBytes(i, b)
	}
	return nil
}

// keyCutter splits a key into the encoded values of its first n columns.
type keyCutter func(key kv.Key, n int) ([][]byte, []byte, error)

// keyStats builds the statistics of an index (or of a common handle) from
// its keys alone, which arrive sorted: a histogram, and optionally a
// CM sketch, an FM sketch and, for statistics v2, the top-n values.
type keyStats struct {
	env     *evalEnv
	cut     keyCutter
	numCols int
	ver     int
	topN    int
	hist    *statistics.SortedBuilder
	cms     *statistics.CMSketch
	fms     *statistics.FMSketch
	top     []statistics.TopNMeta
	cur     statistics.TopNMeta
}

func analyzeKeys(env *evalEnv, p scanParams, ranges []*coprocessor.KeyRange, idx *tipb.AnalyzeIndexReq, cut keyCutter) ([]byte, error) {
	if idx == nil {
		return nil, fmt.Errorf("analyze request has no index part")
	}
	s := newKeyStats(env, idx, cut)
	if err := forEachPair(p, ranges, true, func(key, _ []byte) error { return s.add(key) }); err != nil {
		return nil, err
	}
	return s.response().Marshal()
}

func newKeyStats(env *evalEnv, idx *tipb.AnalyzeIndexReq, cut keyCutter) *keyStats {
	ver := statsVersion(idx.Version)
	s := &keyStats{
		env:     env,
		cut:     cut,
		numCols: int(idx.GetNumColumns()),
		ver:     ver,
		topN:    int(idx.GetTopNSize()),
		hist:    statistics.NewSortedBuilder(env.sc, idx.GetBucketSize(), 0, types.NewFieldType(mysql.TypeBlob), ver),
	}
	if idx.CmsketchDepth != nil && idx.CmsketchWidth != nil {
		s.cms = statistics.NewCMSketch(idx.GetCmsketchDepth(), idx.GetCmsketchWidth())
	}
	if idx.GetSketchSize() > 0 {
		s.fms = statistics.NewFMSketch(int(idx.GetSketchSize()))
	}
	return s
}

// add accounts one key: its value prefixes go to the CM sketch, the whole
// value to the other structures.
func (s *keyStats) add(key []byte) error {
	values, _, err := s.cut(key, s.numCols)
	if err != nil {
		return fmt.Errorf("cut key %x: %w", key, err)
	}
	var value []byte
	for _, v := range values {
		value = append(value, v...)
		if s.cms != nil {
			s.cms.InsertBytes(value)
		}
	}
	if s.fms != nil {
		if err := s.fms.InsertValue(s.env.sc, types.NewBytesDatum(value)); err != nil {
			return err
		}
	}
	if s.ver >= statistics.Version2 {
		s.countTop(value)
	}
	return s.hist.Iterate(types.NewBytesDatum(value))
}

// countTop counts runs of equal values, the candidates for the top-n.
func (s *keyStats) countTop(value []byte) {
	if s.cur.Count > 0 && string(s.cur.Encoded) == string(value) {
		s.cur.Count++
		return
	}
	if s.cur.Count > 0 {
		s.top = append(s.top, s.cur)
	}
	s.cur = statistics.TopNMeta{Encoded: value, Count: 1}
}

func (s *keyStats) response() *tipb.AnalyzeIndexResp {
	resp := &tipb.AnalyzeIndexResp{Hist: statistics.HistogramToProto(s.hist.Hist())}
	top := s.topValues()
	if s.cms != nil {
		for _, t := range top {
			h1, h2 := murmur3.Sum128(t.Encoded)
			s.cms.SubValue(h1, h2, t.Count)
		}
		resp.Cms = statistics.CMSketchToProto(s.cms, &statistics.TopN{TopN: top})
	}
	if s.fms != nil {
		resp.Collector = &tipb.SampleCollector{FmSketch: statistics.FMSketchToProto(s.fms)}
	}
	return resp
}

// topValues returns the most frequent values (statistics v2 only).
func (s *keyStats) topValues() []statistics.TopNMeta {
	if s.ver < statistics.Version2 {
		return nil
	}
	if s.cur.Count > 0 {
		s.top = append(s.top, s.cur)
		s.cur = statistics.TopNMeta{}
	}
	slices.SortFunc(s.top, statistics.TopnMetaCompare)
	if len(s.top) > s.topN {
		s.top = s.top[:s.topN]
	}
	return s.top
}
