// Package copr is TinyKV's coprocessor: it executes the read plans TiDB
// pushes down to a store (coprocessor.Request) over the store's committed
// data.
//
// # Request types
//
// Handle serves the three request types TiDB sends to TiKV:
//
//   - 103 DAG: a tipb.DAGRequest in its list form (executors[], the scan
//     first). Supported executors are TableScan, PartitionTableScan,
//     IndexScan (unique, non-unique, int or common handle, ascending or
//     descending), Selection, Projection, Limit, TopN, Aggregation (hash)
//     and StreamAgg. The answer is a tipb.SelectResponse.
//   - 104 Analyze: a tipb.AnalyzeReq of type TypeFullSampling (TiDB's
//     statistics v2), answered with tipb.AnalyzeColumnsResp{row_collector};
//     TypeIndex and TypeCommonHandle, answered with tipb.AnalyzeIndexResp;
//     and statistics v1's TypeColumn, answered with
//     tipb.AnalyzeColumnsResp{collectors, pk_hist}, and TypeMixed (columns
//     and a clustered common handle), answered with tipb.AnalyzeMixedResp.
//   - 105 Checksum: a tipb.ChecksumRequest answered with
//     tipb.ChecksumResponse, computed like TiKV: the xor over all pairs of
//     crc64-ECMA(key, value).
//
// # Data flow
//
// The package owns no storage. Every range of the request is read through
// a ScanFunc, which has KvScan semantics: it returns committed values at the
// request's start_ts and reports blocking locks. A range is read a page at a
// time (pageSize pairs), forward or in reverse, lazily, so a Limit stops
// the scan early. Rows are decoded with TiDB's own codecs (tablecodec,
// rowcodec, codec) into chunk.Chunks, which flow up the executor list:
//
//	ScanFunc -> rangeScanner -> table/index scan -> [selection] -> ... -> encoder
//
// Expressions, filters and aggregate functions are TiDB's own
// (expression.PBToExpr, aggregation.NewDistAggFunc), evaluated in a static
// expression context built from the request's flags, SQL mode and time
// zone. Aggregations emit TiKV's partial layout: the partial results of each
// function (AVG gives count then sum) followed by the group-by values;
// grouping honours the collation of string group-by values.
//
// # Responses
//
// A lock met while reading (in ScanResponse.error or in a KvPair) becomes
// Response.Locked (TiDB resolves it and retries); a region error from the
// scan becomes Response.RegionError; a malformed or unsupported request, or
// any other read failure, becomes Response.OtherError. An error raised
// while decoding or evaluating rows is returned in SelectResponse.error, as
// TiKV does, together with the evaluation warnings. DAG responses carry one
// execution summary per executor when asked, the rows read per range
// (output_counts) when asked, and ExecDetailsV2 with the wall time and the
// number of pairs read. Rows are encoded as TypeChunk when TiDB asks for it
// and the plan has no aggregation; otherwise as TypeDefault (each row the
// concatenated codec.EncodeValue of the output_offsets columns), which TiDB
// always accepts because it decodes by the response's encode_type.
//
// # Paging
//
// With paging_size set, a DAG request stops once its result holds at least
// paging_size rows and answers with Response.Range, the key range it read
// (from the first range's start to just past the last key read, or in a
// descending scan from the last key read to the first range's end); TiDB
// sends the rest of its ranges in the next request. A request that reads
// all its ranges first answers without Range, which tells TiDB the task is
// complete. Plans with an aggregation or TopN ignore paging_size: they
// output rows only after reading everything.
//
// # Not supported
//
// Store batching (tasks), the coprocessor cache, the tree form of DAG
// requests (root_executor), executors that TiDB only sends to TiFlash
// (joins, window, expand, exchange), and aggregate functions marked
// DISTINCT: TiDB never sends one to TiKV, since it pushes COUNT(DISTINCT a)
// down as a partial aggregation grouped by a (tidb_opt_distinct_agg_push_down).
package copr
