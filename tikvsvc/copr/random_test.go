package copr

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/stretchr/testify/require"
)

// modelGroup is what the Go model computes for one case-folded name.
type modelGroup struct {
	count    int64
	sumAge   int64
	maxCents int64
}

func cents(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }

// TestRandomSelectionAggregation compares
//
//	SELECT COUNT(*), SUM(age), MAX(score), name FROM t
//	WHERE age > A AND score < S GROUP BY name   -- name is utf8mb4_general_ci
//
// with a plain Go model over seeded random data spanning several pages.
func TestRandomSelectionAggregation(t *testing.T) {
	const seed = 20261123
	rng := rand.New(rand.NewSource(seed))
	names := []string{"ann", "ANN", "Ann", "bob", "Bob", "cy"}
	people := make([]person, 2*pageSize+300)
	scores := make([]int64, len(people))
	for i := range people {
		scores[i] = rng.Int63n(10000)
		p := person{id: int64(i + 1), name: names[rng.Intn(len(names))], score: cents(scores[i])}
		if rng.Intn(10) > 0 {
			p.age = intPtr(rng.Int63n(20))
		}
		people[i] = p
	}
	s := newMemStore()
	loadPeople(t, s, personTable(), people)
	p := newPlanner(t)
	for round := 0; round < 5; round++ {
		minAge, maxCents := rng.Int63n(15), rng.Int63n(10000)
		want := map[string]modelGroup{}
		for i, person := range people {
			if person.age == nil || *person.age <= minAge || scores[i] >= maxCents {
				continue
			}
			g := want[strings.ToLower(person.name)]
			g.count++
			g.sumAge += *person.age
			g.maxCents = max(g.maxCents, scores[i])
			want[strings.ToLower(person.name)] = g
		}
		cond := p.fn(ast.LogicAnd, boolType(),
			p.fn(ast.GT, boolType(), ageCol, intConst(minAge)),
			p.fn(ast.LT, boolType(), scoreCol, decConst(cents(maxCents))))
		funcs := []*tipb.Expr{p.agg(ast.AggFuncCount, intConst(1)), p.agg(ast.AggFuncSum, ageCol), p.agg(ast.AggFuncMax, scoreCol)}
		dag := &tipb.DAGRequest{
			Executors: []*tipb.Executor{
				tableScanExec(personTable(), rng.Intn(2) == 0),
				selectionExec(p.pb(cond)),
				aggExec(tipb.ExecType_TypeAggregation, funcs, p.pb(nameCol)),
			},
			OutputOffsets: offsets(4),
		}
		rows, _ := runDAG(t, s, dag, tableRange())
		got := map[string]modelGroup{}
		for _, r := range rows {
			key := strings.ToLower(r[3].(string))
			require.NotContains(t, got, key, "round %d: group %q emitted twice", round, key)
			require.Equal(t, fmt.Sprint(want[key].sumAge), r[1], "round %d sum", round)
			require.Equal(t, cents(want[key].maxCents), r[2], "round %d max", round)
			got[key] = modelGroup{count: r[0].(int64), sumAge: want[key].sumAge, maxCents: want[key].maxCents}
		}
		require.Equal(t, want, got, "round %d (age > %d, score < %s)", round, minAge, cents(maxCents))
	}
}
