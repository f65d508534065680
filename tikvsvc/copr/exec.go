package copr

import (
	"fmt"
	"time"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/chunk"
	"github.com/pingcap/tipb/go-tipb"
)

// executor is one step of a DAG plan. Executors pull batches of rows from
// their child; a batch is a fresh chunk that is never reused, so rows taken
// from it stay valid.
type executor interface {
	// next returns the next non-empty batch, or nil when drained.
	next() (*chunk.Chunk, error)
	// fieldTypes describes the columns of the batches.
	fieldTypes() []*types.FieldType
}

// measured wraps an executor and records what its execution summary
// reports: rows produced, batches produced and the time spent in next
// (children included).
type measured struct {
	executor
	rows       uint64
	iterations uint64
	elapsed    time.Duration
}

func (m *measured) next() (*chunk.Chunk, error) {
	start := time.Now()
	chk, err := m.executor.next()
	m.elapsed += time.Since(start)
	if chk != nil {
		m.rows += uint64(chk.NumRows())
		m.iterations++
	}
	return chk, err
}

func (m *measured) summary() *tipb.ExecutorExecutionSummary {
	ns := uint64(m.elapsed.Nanoseconds())
	return &tipb.ExecutorExecutionSummary{
		TimeProcessedNs: &ns,
		NumProducedRows: &m.rows,
		NumIterations:   &m.iterations,
	}
}

// plan is a built DAG: the measured executors in request order, the last
// one being the root, and the scanner that feeds the first.
type plan struct {
	execs   []*measured
	scanner *rangeScanner
	hasAgg  bool
}

func (p *plan) root() *measured { return p.execs[len(p.execs)-1] }

// buildPlan builds the executors of a list-form DAG request.
func buildPlan(env *evalEnv, sp scanParams, dag *tipb.DAGRequest, ranges []*coprocessor.KeyRange) (*plan, error) {
	list := dag.GetExecutors()
	if len(list) == 0 {
		return nil, fmt.Errorf("DAG request has no executors (the tree form is not supported)")
	}
	scan, scanner, err := buildScan(env, sp, list[0], ranges)
	if err != nil {
		return nil, fmt.Errorf("executor 0 (%s): %w", list[0].GetTp(), err)
	}
	p := &plan{execs: []*measured{{executor: scan}}, scanner: scanner}
	for i, pb := range list[1:] {
		e, err := buildOperator(env, pb, p.root())
		if err != nil {
			return nil, fmt.Errorf("executor %d (%s): %w", i+1, pb.GetTp(), err)
		}
		p.hasAgg = p.hasAgg || pb.GetTp() == tipb.ExecType_TypeAggregation || pb.GetTp() == tipb.ExecType_TypeStreamAgg
		p.execs = append(p.execs, &measured{executor: e})
	}
	return p, nil
}

// blocking reports whether an executor of the plan reads all its input
// before it outputs rows (aggregation, TopN): such a plan cannot stop part
// way for paging without losing what it holds.
func (p *plan) blocking() bool {
	for _, m := range p.execs {
		switch m.executor.(type) {
		case *aggregate, *topN:
			return true
		}
	}
	return false
}

// buildOperator builds a non-scan executor over child.
func buildOperator(env *evalEnv, pb *tipb.Executor, child executor) (executor, error) {
	if !hasPayload(pb) {
		return nil, fmt.Errorf("executor has no %s description", pb.GetTp())
	}
	switch pb.GetTp() {
	case tipb.ExecType_TypeSelection:
		return newSelection(env, pb.GetSelection(), child)
	case tipb.ExecType_TypeProjection:
		return newProjection(env, pb.GetProjection(), child)
	case tipb.ExecType_TypeLimit:
		return newLimit(pb.GetLimit(), child)
	case tipb.ExecType_TypeTopN:
		return newTopN(env, pb.GetTopN(), child)
	case tipb.ExecType_TypeAggregation, tipb.ExecType_TypeStreamAgg:
		return newAggregate(env, pb.GetAggregation(), child)
	default:
		return nil, fmt.Errorf("unsupported executor")
	}
}

// buildScan builds the first executor, which must read the ranges.
func buildScan(env *evalEnv, sp scanParams, pb *tipb.Executor, ranges []*coprocessor.KeyRange) (executor, *rangeScanner, error) {
	if !hasPayload(pb) {
		return nil, nil, fmt.Errorf("executor has no %s description", pb.GetTp())
	}
	switch pb.GetTp() {
	case tipb.ExecType_TypeTableScan:
		return newTableScan(env, sp, tableScanSpec(pb.GetTblScan()), ranges)
	case tipb.ExecType_TypePartitionTableScan:
		return newTableScan(env, sp, partitionScanSpec(pb.GetPartitionTableScan()), ranges)
	case tipb.ExecType_TypeIndexScan:
		return newIndexScan(env, sp, pb.GetIdxScan(), ranges)
	default:
		return nil, nil, fmt.Errorf("the first executor must be a scan")
	}
}

// hasPayload reports whether the executor carries the description its type
// calls for.
func hasPayload(pb *tipb.Executor) bool {
	switch pb.GetTp() {
	case tipb.ExecType_TypeTableScan:
		return pb.GetTblScan() != nil
	case tipb.ExecType_TypePartitionTableScan:
		return pb.GetPartitionTableScan() != nil
	case tipb.ExecType_TypeIndexScan:
		return pb.GetIdxScan() != nil
	case tipb.ExecType_TypeSelection:
		return pb.GetSelection() != nil
	case tipb.ExecType_TypeProjection:
		return pb.GetProjection() != nil
	case tipb.ExecType_TypeLimit:
		return pb.GetLimit() != nil
	case tipb.ExecType_TypeTopN:
		return pb.GetTopN() != nil
	case tipb.ExecType_TypeAggregation, tipb.ExecType_TypeStreamAgg:
		return pb.GetAggregation() != nil
	default:
		return true
	}
}
