package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }

// draw returns how often each of n items was chosen in draws draws.
func draw(t *testing.T, keys keyChooser, n uint64, draws int) []int {
	t.Helper()
	counts := make([]int, n)
	r := seeded(42)
	for range draws {
		k := keys.next(r)
		if k >= n {
			t.Fatalf("drew %d, want < %d", k, n)
		}
		counts[k]++
	}
	return counts
}

func TestZipfianSkew(t *testing.T) {
	const n, draws = 1000, 200_000
	counts := draw(t, newZipfian(n, zipfianConstant), n, draws)
	// Item i is chosen with probability (1/(i+1)^0.99)/zeta(n): item 0 gets
	// about 13% of the draws for n = 1000, against 0.1% under uniform.
	want := float64(draws) / zeta(n, zipfianConstant)
	if got := float64(counts[0]); got < 0.9*want || got > 1.1*want {
		t.Errorf("item 0 drawn %v times, want about %.0f", got, want)
	}
	if !(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]) {
		t.Errorf("popularity not decreasing: counts[0,1,10,500] = %d %d %d %d",
			counts[0], counts[1], counts[10], counts[500])
	}
}

func TestScrambledZipfianSkew(t *testing.T) {
	const n, draws = 1000, 200_000
	zipf := draw(t, newScrambledZipfian(n), n, draws)
	uniform := draw(t, uniformChooser{n}, n, draws)
	// Uniform gives each item about 200 draws; the hottest zipfian item
	// gets more than 50 times that.
	if top, fair := maxOf(zipf), draws/n; top < 50*fair {
		t.Errorf("hottest zipfian item drawn %d times, want > %d", top, 50*fair)
	}
	if top, fair := maxOf(uniform), draws/n; top > 2*fair {
		t.Errorf("hottest uniform item drawn %d times, want < %d", top, 2*fair)
	}
	if zipf[0] == maxOf(zipf) {
		t.Errorf("item 0 is the hottest: the scramble did not move it")
	}
}

func TestZipfianTinyRanges(t *testing.T) {
	for _, n := range []uint64{1, 2, 3} {
		counts := draw(t, newScrambledZipfian(n), n, 1000)
		if n == 1 && counts[0] != 1000 {
			t.Errorf("n=1: counts %v", counts)
		}
	}
}

func maxOf(counts []int) int {
	top := 0
	for _, c := range counts {
		top = max(top, c)
	}
	return top
}

func TestWorkloadMix(t *testing.T) {
	const records, draws = 500, 100_000
	for w, want := range readProportions {
		pick := mix(want, uniformChooser{records})
		r := seeded(1)
		reads := 0
		for seq := range uint64(draws) {
			op := pick(r, seq)
			if op.keynum >= records {
				t.Fatalf("workload %s: key %d out of range", w, op.keynum)
			}
			if !op.write {
				reads++
			}
		}
		if got := float64(reads) / draws; got < want-0.01 || got > want+0.01 {
			t.Errorf("workload %s: read share %.3f, want %.2f ± 0.01", w, got, want)
		}
	}
}

func TestBuildPlan(t *testing.T) {
	cfg, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.rounds = 2
	var names []string
	for _, ph := range buildPlan(cfg) {
		names = append(names, fmt.Sprintf("%s/%s/%d", ph.workload, ph.dist, ph.round))
	}
	round := "put/-/R get/uniform/R a/uniform/R a/zipfian/R b/uniform/R b/zipfian/R c/uniform/R c/zipfian/R"
	want := "load/-/0 " + strings.ReplaceAll(round, "R", "1") + " " + strings.ReplaceAll(round, "R", "2")
	if got := strings.Join(names, " "); got != want {
		t.Errorf("plan %s, want %s", got, want)
	}
	// Each round's puts write fresh records, after the loaded ones.
	for i, first := range map[int]uint64{1: cfg.records, 9: cfg.records + cfg.ops} {
		if op := buildPlan(cfg)[i].pick(nil, 3); !op.write || op.keynum != first+3 {
			t.Errorf("phase %d op 3 = %+v, want a write of record %d", i, op, first+3)
		}
	}
}

func TestSummarize(t *testing.T) {
	rep := report{results: []result{
		{system: "etcd", workload: "get", dist: "uniform", ops: 300, elapsed: time.Second, errors: 1},
		{system: "tinykv-raw", workload: "get", dist: "uniform", ops: 500, elapsed: time.Second},
		{system: "etcd", workload: "get", dist: "uniform", ops: 100, elapsed: time.Second, errors: 2},
		{system: "etcd", workload: "get", dist: "uniform", ops: 200, elapsed: time.Second, p99: 7},
	}}
	sums := rep.summaries()
	if len(sums) != 2 || sums[0].median.system != "tinykv-raw" {
		t.Fatalf("summaries %+v: want tinykv-raw, then etcd", sums)
	}
	e := sums[1]
	if e.median.ops != 200 || e.median.p99 != 7 || e.minOps != 100 || e.maxOps != 300 || e.rounds != 3 || e.errors != 3 {
		t.Errorf("etcd summary %+v", e)
	}
}

func TestParseFlagsRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--workloads", "a,x"}, {"--systems", ""}, {"--dists", "normal"},
		{"--clients", "0"}, {"--rounds", "0"}, {"--insert-order", "random"}, {"extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

func TestKeys(t *testing.T) {
	ordered := keyspace{prefix: "r/"}
	if got := string(ordered.key(42)); got != "r/user0000000000000000042" {
		t.Errorf("ordered key %q", got)
	}
	hashed := keyspace{prefix: "r/", hashed: true}
	a, b := hashed.key(1), hashed.key(2)
	if len(a) != len(ordered.key(1)) || string(a) == string(b) || string(a) != string(hashed.key(1)) {
		t.Errorf("hashed keys %q %q", a, b)
	}
}

func TestPercentile(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i))
	}
	for _, c := range []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{hundred, 50, 50}, {hundred, 99, 99}, {hundred, 100, 100}, {hundred, 0, 1},
		{hundred[:10], 99, 10}, {hundred[:10], 50, 5},
		{hundred[:1], 99, 1}, {nil, 99, 0},
	} {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(c.sorted), c.p, got, c.want)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	kib, err := parseVmHWM("Name:\tx\nVmPeak:\t  9 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 1 kB\n")
	if err != nil || kib != 12345 {
		t.Errorf("parseVmHWM = %d, %v", kib, err)
	}
	if _, err := parseVmHWM("Name:\tx\n"); err == nil {
		t.Error("parseVmHWM accepted a status without VmHWM")
	}
}

// TestSmoke runs the whole command, tiny, against freshly built binaries.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PD, a store and etcd")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/",
		"github.com/tinykv/tinykv/cmd/tinyscheduler-server", "github.com/tinykv/tinykv/cmd/tinykv-server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"--bin", bin, "--records", "200", "--ops", "200", "--clients", "4", "--rounds", "2"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	checkSmokeReport(t, out.String())
}

// checkSmokeReport checks that every system ran every phase, in two rounds
// after the load, with no errors
// except write conflicts in transactions, and that the ratios and the
// store's peak RSS are there.
func checkSmokeReport(t *testing.T, report string) {
	t.Helper()
	rows := map[string]int{}
	for line := range strings.Lines(report) {
		f := strings.Fields(line)
		if len(f) != 10 || (f[0] != "tinykv-raw" && f[0] != "tinykv-txn" && f[0] != "etcd") {
			continue
		}
		rows[f[0]]++
		rounds, _ := strconv.Atoi(f[3])
		errs, _ := strconv.Atoi(f[9])
		want := 2
		if f[1] == "load" {
			want = 1
		}
		if rounds != want || (f[0] != "tinykv-txn" && errs != 0) {
			t.Errorf("row %q: want %d rounds and no errors", strings.TrimSpace(line), want)
		}
	}
	for _, sys := range systemNames {
		if rows[sys] != 9 {
			t.Errorf("%s: %d result rows, want 9", sys, rows[sys])
		}
	}
	for _, want := range []string{"tinykv-raw / etcd", "tinykv-txn / etcd", "goal: tinykv-raw put", "tinykv-server:"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(report, "tinykv-server:        unknown") {
		t.Error("store peak RSS unknown")
	}
	if t.Failed() {
		t.Logf("report:\n%s", report)
	}
}
