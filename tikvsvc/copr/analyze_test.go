package copr

import (
	"context"
	"testing"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/tidb/pkg/util"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/stretchr/testify/require"
)

func runAnalyze(t *testing.T, s *memStore, areq *tipb.AnalyzeReq, ranges []*coprocessor.KeyRange) []byte {
	data, err := areq.Marshal()
	require.NoError(t, err)
	resp := Handle(context.Background(), s.scan, &coprocessor.Request{Tp: ReqTypeAnalyze, Data: data, Ranges: ranges, StartTs: startTS})
	require.Empty(t, resp.OtherError)
	return resp.Data
}

func TestAnalyzeFullSampling(t *testing.T) {
	tbl := personTable()
	areq := &tipb.AnalyzeReq{
		Tp: tipb.AnalyzeType_TypeFullSampling,
		ColReq: &tipb.AnalyzeColumnsReq{
			ColumnsInfo:  util.ColumnsToProto(tbl.Columns, tbl.PKIsHandle, false, false),
			SampleSize:   100,
			SketchSize:   1000,
			ColumnGroups: []*tipb.AnalyzeColumnGroup{{ColumnOffsets: []int64{1, 2}}},
		},
	}
	var resp tipb.AnalyzeColumnsResp
	require.NoError(t, resp.Unmarshal(runAnalyze(t, peopleStore(t), areq, tableRange())))
	rc := resp.RowCollector
	require.NotNil(t, rc)
	require.Equal(t, int64(6), rc.Count)
	require.Len(t, rc.Samples, 6)
	for _, s := range rc.Samples {
		require.Len(t, s.Row, 4)
	}
	require.Equal(t, []int64{0, 0, 1, 0, 0}, rc.NullCounts)
	require.Len(t, rc.FmSketch, 5)
}

func TestAnalyzeIndex(t *testing.T) {
	depth, width, topN, ver := int32(5), int32(2048), int32(2), int32(2)
	areq := &tipb.AnalyzeReq{
		Tp: tipb.AnalyzeType_TypeIndex,
		IdxReq: &tipb.AnalyzeIndexReq{
			BucketSize: 4, NumColumns: 1, CmsketchDepth: &depth, CmsketchWidth: &width,
			SketchSize: 1000, TopNSize: &topN, Version: &ver,
		},
	}
	var resp tipb.AnalyzeIndexResp
	require.NoError(t, resp.Unmarshal(runAnalyze(t, peopleStore(t), areq, indexRange(ageIndexID))))
	require.NotNil(t, resp.Hist)
	require.NotEmpty(t, resp.Hist.Buckets)
	require.Equal(t, int64(6), resp.Hist.Buckets[len(resp.Hist.Buckets)-1].Count)
	require.NotNil(t, resp.Cms)
	require.Len(t, resp.Cms.TopN, 2)
	for _, top := range resp.Cms.TopN {
		require.Equal(t, uint64(2), top.Count) // ages 25 and 30
	}
	require.NotNil(t, resp.Collector.GetFmSketch())
}

// TestAnalyzeColumnsV1 checks statistics v1's column analysis: the int
// handle becomes a histogram, every other column a sample collector that
// counts its values, NULLs and distinct values.
func TestAnalyzeColumnsV1(t *testing.T) {
	tbl := personTable()
	depth, width := int32(5), int32(2048)
	areq := &tipb.AnalyzeReq{
		Tp: tipb.AnalyzeType_TypeColumn,
		ColReq: &tipb.AnalyzeColumnsReq{
			ColumnsInfo: util.ColumnsToProto(tbl.Columns, tbl.PKIsHandle, false, false),
			BucketSize:  4, SampleSize: 100, SketchSize: 1000, CmsketchDepth: &depth, CmsketchWidth: &width,
		},
	}
	var resp tipb.AnalyzeColumnsResp
	require.NoError(t, resp.Unmarshal(runAnalyze(t, peopleStore(t), areq, tableRange())))
	require.NotNil(t, resp.PkHist)
	require.Equal(t, int64(6), resp.PkHist.Buckets[len(resp.PkHist.Buckets)-1].Count)
	require.Equal(t, int64(6), resp.PkHist.Ndv)

	require.Len(t, resp.Collectors, 3) // name, age, score
	wantNulls := []int64{0, 1, 0}
	wantDistinct := []int{6, 3, 6} // ages 30, 25, 41 and a NULL
	for i, c := range resp.Collectors {
		require.Equal(t, wantNulls[i], c.NullCount, "column %d", i)
		require.Equal(t, 6-wantNulls[i], c.Count, "column %d", i)
		require.Len(t, c.Samples, int(c.Count), "column %d", i)
		require.NotNil(t, c.CmSketch, "column %d", i)
		require.Len(t, c.FmSketch.Hashset, wantDistinct[i], "column %d", i)
	}
}

// TestAnalyzeMixed checks statistics v1's analysis of a clustered table:
// the columns are sampled and the common handle analyzed as an index.
func TestAnalyzeMixed(t *testing.T) {
	tbl := clusteredTable()
	areq := &tipb.AnalyzeReq{
		Tp: tipb.AnalyzeType_TypeMixed,
		ColReq: &tipb.AnalyzeColumnsReq{
			ColumnsInfo:      util.ColumnsToProto(tbl.Columns, false, false, false),
			PrimaryColumnIds: []int64{1},
			BucketSize:       8, SampleSize: 100, SketchSize: 1000,
		},
		IdxReq: &tipb.AnalyzeIndexReq{BucketSize: 8, NumColumns: 1, SketchSize: 1000},
	}
	var resp tipb.AnalyzeMixedResp
	require.NoError(t, resp.Unmarshal(runAnalyze(t, clusteredStore(t), areq, clusteredRange())))
	require.Nil(t, resp.ColumnsResp.PkHist)
	require.Len(t, resp.ColumnsResp.Collectors, 2) // code, v
	require.Len(t, resp.ColumnsResp.Collectors[0].FmSketch.Hashset, 4)
	require.Len(t, resp.ColumnsResp.Collectors[1].FmSketch.Hashset, 3) // v: 10, 20, 30
	hist := resp.IndexResp.Hist
	require.Equal(t, int64(4), hist.Buckets[len(hist.Buckets)-1].Count)
	require.Equal(t, int64(4), hist.Ndv)
}

func TestAnalyzeUnsupported(t *testing.T) {
	data, err := (&tipb.AnalyzeReq{Tp: tipb.AnalyzeType_TypeSampleIndex}).Marshal()
	require.NoError(t, err)
	resp := Handle(context.Background(), peopleStore(t).scan, &coprocessor.Request{Tp: ReqTypeAnalyze, Data: data, Ranges: tableRange()})
	require.Contains(t, resp.OtherError, "unsupported analyze type")
}
