package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPointAndUpdateOperations(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ workload, query string }{
		{"point_select", pointSelect}, {"update_index", updateIndex},
	} {
		for range 1000 {
			op := nextOperation(tc.workload, r, 50)
			if op.txn || len(op.stmts) != 1 || op.statements() != 1 || op.stmts[0].query != tc.query {
				t.Fatalf("%s: got %+v", tc.workload, op)
			}
			if id := op.stmts[0].args[0].(int); id < 1 || id > 50 {
				t.Fatalf("%s: id %d outside 1..50", tc.workload, id)
			}
		}
	}
}

func TestReadWriteMix(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	op := nextOperation("read_write", r, 1000)
	if !op.txn || op.statements() != 20 {
		t.Fatalf("read_write: txn=%v statements=%d, want a transaction of 20", op.txn, op.statements())
	}
	counts := map[string]int{}
	for _, s := range op.stmts {
		counts[s.query]++
		if s.read != strings.HasPrefix(s.query, "SELECT") {
			t.Errorf("%s: read=%v", s.query, s.read)
		}
	}
	want := map[string]int{pointSelect: 10, simpleRange: 1, sumRange: 1, orderRange: 1, distinctRange: 1,
		updateIndex: 1, updateNonIndex: 1, deleteRow: 1, insertRow: 1}
	for q, n := range want {
		if counts[q] != n {
			t.Errorf("%q: %d statements, want %d", q, counts[q], n)
		}
	}
	del, ins := op.stmts[16], op.stmts[17]
	if del.query != deleteRow || ins.query != insertRow || del.args[0] != ins.args[0] {
		t.Errorf("delete %v and insert %v do not end the transaction on the same id", del, ins)
	}
	if c := ins.args[2].(string); len(c) != 119 {
		t.Errorf("c is %d characters, want 119", len(c))
	}
	if pad := ins.args[3].(string); len(pad) != 59 {
		t.Errorf("pad is %d characters, want 59", len(pad))
	}
}

func TestRangesStayInTable(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{1, 99, 100, 101, 1000} {
		for range 200 {
			for _, s := range nextOperation("read_write", r, size).stmts[10:14] {
				from, to := s.args[0].(int), s.args[1].(int)
				if from < 1 || to-from != rangeSize-1 || (size >= rangeSize && to > size) {
					t.Fatalf("size %d: range %d..%d", size, from, to)
				}
			}
		}
	}
}

func TestInsertBatch(t *testing.T) {
	q, args := insertBatch(rand.New(rand.NewPCG(7, 8)), 11, 13, 100)
	if strings.Count(q, "(?, ?, ?, ?)") != 3 || len(args) != 12 {
		t.Fatalf("query %q with %d args", q, len(args))
	}
	if args[0] != 11 || args[4] != 12 || args[8] != 13 {
		t.Errorf("ids %v %v %v, want 11 12 13", args[0], args[4], args[8])
	}
}

func TestPercentile(t *testing.T) {
	var sorted []time.Duration
	for i := 1; i <= 200; i++ {
		sorted = append(sorted, time.Duration(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 100}, {99, 198}, {100, 200}, {0, 1}} {
		if got := percentile(sorted, tc.p); got != tc.want {
			t.Errorf("p%v = %d, want %d", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %d", got)
	}
}

func TestRotate(t *testing.T) {
	systems := []system{{name: "a"}, {name: "b"}}
	for n, want := range []string{"ab", "ba", "ab"} {
		got := ""
		for _, s := range rotate(systems, n) {
			got += s.name
		}
		if got != want {
			t.Errorf("rotate %d = %s, want %s", n, got, want)
		}
	}
}

func TestReport(t *testing.T) {
	res := func(sys, w string, ops uint64, p99 time.Duration) result {
		return result{system: sys, workload: w, ops: ops, stmts: ops * 20, errors: 1,
			elapsed: time.Second, p50: 500 * time.Microsecond, p99: p99}
	}
	rep := report{cfg: config{tableSize: 100, threads: 4, duration: time.Second, rounds: 3},
		loadBefore: "1.00 0.50 0.25", loadAfter: "2.00 1.00 0.50", results: []result{
			res("unistore", "point_select", 1000, 2*time.Millisecond),
			res("tinykv", "point_select", 300, 4*time.Millisecond),
			res("tinykv", "point_select", 600, 4*time.Millisecond),
			res("tinykv", "point_select", 500, 3*time.Millisecond),
			res("tinykv", "read_write", 60, 8*time.Millisecond),
			res("unistore", "read_write", 100, 2*time.Millisecond),
		}}
	var out bytes.Buffer
	if err := rep.print(&out); err != nil {
		t.Fatal(err)
	}
	got := singleSpaced(out.String())
	for _, want := range []string{
		"load-avg=1.00 0.50 0.25 -> 2.00 1.00 0.50",
		"tinykv point_select 3 500 10000 500µs 3.00ms 3",
		"tinykv / unistore point_select 0.50x 1.50x",
		"tinykv / unistore read_write 0.60x 4.00x",
		"goal: tinykv point_select >= 0.5x unistore ops/s: 0.50x, met",
		"goal: tinykv read_write >= 0.5x unistore ops/s: 0.60x, met",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "point_select") > strings.Index(got, "read_write") || strings.Contains(got, "update_index") {
		t.Errorf("workload order or rows wrong:\n%s", got)
	}
	rep.results[0].ops = 1001
	out.Reset()
	if err := rep.print(&out); err != nil || !strings.Contains(out.String(), "0.50x, NOT met") {
		t.Errorf("a ratio just under the goal is not reported as missed:\n%s", out.String())
	}
}

// singleSpaced collapses every run of blanks in report to one space.
func singleSpaced(report string) string {
	var b strings.Builder
	for line := range strings.Lines(report) {
		b.WriteString(strings.Join(strings.Fields(line), " ") + "\n")
	}
	return b.String()
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags(nil)
	if err != nil || cfg.threads != 16 || cfg.tableSize != 10000 || cfg.duration != 20*time.Second || cfg.rounds != 1 {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	for _, args := range [][]string{
		{"--threads", "0"}, {"--rounds", "0"}, {"--table-size", "0"}, {"--duration", "0s"}, {"extra"},
		{"--workloads", "point_select,nope"}, {"--profile", "p", "--duration", "1s"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	if _, err := parseFlags([]string{"--duration", "0s", "--events", "10"}); err != nil {
		t.Errorf("--events without --duration rejected: %v", err)
	}
	if cfg, err := parseFlags([]string{"--workloads", "update_index,point_select"}); err != nil ||
		!slices.Equal(cfg.workloads, []string{"update_index", "point_select"}) {
		t.Errorf("--workloads: %v %v", cfg.workloads, err)
	}
}

// TestSmoke runs the whole command, tiny, against freshly built binaries.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PD, a store and two TiDBs")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/tinykv/tinykv/cmd/tinyscheduler-server",
		"github.com/tinykv/tinykv/cmd/tinykv-server", "github.com/pingcap/tidb/cmd/tidb-server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	profiles := t.TempDir()
	args := []string{"--bin", bin, "--table-size", "200", "--duration", "2s", "--threads", "2", "--profile", profiles}
	if err := run(ctx, args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	checkSmokeReport(t, out.String())
	for _, w := range workloadNames {
		for _, name := range []string{"tinykv-store", "tinykv-tidb", "unistore-tidb"} {
			path := filepath.Join(profiles, fmt.Sprintf("1-%s-%s.pprof", w, name))
			if info, err := os.Stat(path); err != nil || info.Size() == 0 {
				t.Errorf("profile %s: %v", path, err)
			}
		}
	}
}

// checkSmokeReport checks that both systems ran every workload and made
// progress, that point selects had no errors, and that the ratios and goal
// lines are there.
func checkSmokeReport(t *testing.T, report string) {
	t.Helper()
	rows := map[string]int{}
	for line := range strings.Lines(report) {
		f := strings.Fields(line)
		if len(f) != 8 || (f[0] != "tinykv" && f[0] != "unistore") {
			continue
		}
		rows[f[0]]++
		ops, _ := strconv.ParseFloat(f[3], 64)
		if ops <= 0 || (f[1] == "point_select" && f[7] != "0") {
			t.Errorf("row %q: no progress or errors in point selects", strings.TrimSpace(line))
		}
	}
	for _, sys := range systemNames {
		if rows[sys] != len(workloadNames) {
			t.Errorf("%s: %d result rows, want %d", sys, rows[sys], len(workloadNames))
		}
	}
	for _, w := range workloadNames {
		if !strings.Contains(report, "goal: tinykv "+w+" >= 0.5x unistore") {
			t.Errorf("report lacks the goal line of %s", w)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", report)
	}
}
