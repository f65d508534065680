package pdsvc

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tinykv/tinykv/internal/testutil"
)

func testRegion(id uint64, start, end string) *regionInfo {
	return &regionInfo{meta: &metapb.Region{Id: id, StartKey: []byte(start), EndKey: []byte(end)}}
}

// rangesOverlap reports whether two regions share a key.
func rangesOverlap(a, b *regionInfo) bool {
	return endAfter(a.endKey(), b.startKey()) && endAfter(b.endKey(), a.startKey())
}

// TestRegionTreeAgainstModel inserts random, possibly overlapping ranges and
// checks search, prev and scan against a sorted-slice model after each step.
func TestRegionTreeAgainstModel(t *testing.T) {
	rng := testutil.Rand(t)
	steps := 2000
	if testutil.Long() {
		steps = 50000
	}
	randKey := func() string { return fmt.Sprintf("%02d", rng.IntN(60)) }
	tree := newRegionTree()
	var model []*regionInfo
	for step := range steps {
		start, end := randKey(), randKey()
		if rng.IntN(10) == 0 {
			start = ""
		}
		if rng.IntN(10) == 0 {
			end = ""
		}
		if end != "" && start >= end {
			continue
		}
		r := testRegion(uint64(step+1), start, end)
		model = slices.DeleteFunc(model, func(o *regionInfo) bool { return rangesOverlap(o, r) })
		model = append(model, r)
		slices.SortFunc(model, func(a, b *regionInfo) int { return bytes.Compare(a.startKey(), b.startKey()) })
		for _, o := range tree.overlaps(r.startKey(), r.endKey()) {
			tree.remove(o)
		}
		tree.insert(r)
		checkTree(t, step, tree, model, []byte(randKey()))
	}
}

func checkTree(t *testing.T, step int, tree *regionTree, model []*regionInfo, key []byte) {
	t.Helper()
	if got := tree.all(); !slices.Equal(got, model) {
		t.Fatalf("step %d: tree holds %d regions, model %d", step, len(got), len(model))
	}
	var want, wantPrev *regionInfo
	for i, r := range model {
		if r.contains(key) {
			want = r
			if i > 0 && bytes.Equal(model[i-1].endKey(), r.startKey()) {
				wantPrev = model[i-1]
			}
		}
	}
	if got := tree.search(key); got != want {
		t.Fatalf("step %d: search(%q) = %v, want %v", step, key, got, want)
	}
	if got := tree.prev(key); got != wantPrev {
		t.Fatalf("step %d: prev(%q) = %v, want %v", step, key, got, wantPrev)
	}
	end := append(slices.Clone(key), '5')
	probe := testRegion(0, string(key), string(end))
	var wantScan []*regionInfo
	for _, r := range model {
		if rangesOverlap(r, probe) {
			wantScan = append(wantScan, r)
		}
	}
	if got := tree.scan(key, end, 0); !slices.Equal(got, wantScan) {
		t.Fatalf("step %d: scan(%q, %q) = %d regions, want %d", step, key, end, len(got), len(wantScan))
	}
}
