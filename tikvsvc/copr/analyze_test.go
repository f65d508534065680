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

func TestAnalyzeUnsupported(t *testing.T) {
	data, err := (&tipb.AnalyzeReq{Tp: tipb.AnalyzeType_TypeMixed}).Marshal()
	require.NoError(t, err)
	resp := Handle(context.Background(), peopleStore(t).scan, &coprocessor.Request{Tp: ReqTypeAnalyze, Data: data, Ranges: tableRange()})
	require.Contains(t, resp.OtherError, "unsupported analyze type")
}
