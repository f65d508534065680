package copr

import (
	"fmt"

	"github.com/pingcap/tidb/pkg/expression"
	"github.com/pingcap/tidb/pkg/types"
	"github.com/pingcap/tidb/pkg/util/chunk"
	"github.com/pingcap/tipb/go-tipb"
)

// selection keeps the rows for which every condition is true.
type selection struct {
	env      *evalEnv
	child    executor
	conds    []expression.Expression
	selected []bool
}

func newSelection(env *evalEnv, pb *tipb.Selection, child executor) (*selection, error) {
	conds, err := expression.PBToExprs(env.exprCtx, pb.GetConditions(), child.fieldTypes())
	if err != nil {
		return nil, fmt.Errorf("selection conditions: %w", err)
	}
	return &selection{env: env, child: child, conds: conds}, nil
}

func (s *selection) fieldTypes() []*types.FieldType { return s.child.fieldTypes() }

func (s *selection) next() (*chunk.Chunk, error) {
	for {
		in, err := s.child.next()
		if err != nil || in == nil {
			return nil, err
		}
		s.selected, err = expression.VectorizedFilter(s.env.evalCtx, true, s.conds, chunk.NewIterator4Chunk(in), s.selected)
		if err != nil {
			return nil, fmt.Errorf("evaluate selection: %w", err)
		}
		out := chunk.NewChunkWithCapacity(s.fieldTypes(), in.NumRows())
		for i, keep := range s.selected {
			if keep {
				out.AppendRow(in.GetRow(i))
			}
		}
		if out.NumRows() > 0 {
			return out, nil
		}
	}
}

// projection computes one output column per expression.
type projection struct {
	env   *evalEnv
	child executor
	exprs []expression.Expression
	suite *expression.EvaluatorSuite
	fts   []*types.FieldType
}

func newProjection(env *evalEnv, pb *tipb.Projection, child executor) (*projection, error) {
	exprs, err := expression.PBToExprs(env.exprCtx, pb.GetExprs(), child.fieldTypes())
	if err != nil {
		return nil, fmt.Errorf("projection expressions: %w", err)
	}
	fts := make([]*types.FieldType, len(exprs))
	for i, e := range exprs {
		fts[i] = e.GetType(env.evalCtx)
	}
	return &projection{
		env:   env,
		child: child,
		exprs: exprs,
		suite: expression.NewEvaluatorSuite(exprs, true),
		fts:   fts,
	}, nil
}

func (p *projection) fieldTypes() []*types.FieldType { return p.fts }

func (p *projection) next() (*chunk.Chunk, error) {
	in, err := p.child.next()
	if err != nil || in == nil {
		return nil, err
	}
	out := chunk.NewChunkWithCapacity(p.fts, in.NumRows())
	if err := p.suite.Run(p.env.evalCtx, true, in, out); err != nil {
		return nil, fmt.Errorf("evaluate projection: %w", err)
	}
	return out, nil
}

// limit passes on the first n rows.
type limit struct {
	child executor
	left  uint64
}

func newLimit(pb *tipb.Limit, child executor) (*limit, error) {
	return &limit{child: child, left: pb.GetLimit()}, nil
}

func (l *limit) fieldTypes() []*types.FieldType { return l.child.fieldTypes() }

func (l *limit) next() (*chunk.Chunk, error) {
	if l.left == 0 {
		return nil, nil
	}
	chk, err := l.child.next()
	if err != nil || chk == nil {
		return nil, err
	}
	if uint64(chk.NumRows()) > l.left {
		chk.TruncateTo(int(l.left))
	}
	l.left -= uint64(chk.NumRows())
	return chk, nil
}
