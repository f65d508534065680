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
	cfg, err := parseFlags([]string{"--workloads", strings.Join(workloadNames, ",")})
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

func TestDefaults(t *testing.T) {
	cfg, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.stores != 3 || cfg.etcdMembers != 3 || cfg.clients != 64 || strings.Join(cfg.workloads, ",") != "put,get" {
		t.Errorf("defaults: stores %d, etcd members %d, clients %d, workloads %v; want 3, 3, 64, put,get",
			cfg.stores, cfg.etcdMembers, cfg.clients, cfg.workloads)
	}
	var names []string
	for _, ph := range buildPlan(cfg) {
		names = append(names, ph.workload)
	}
	if got, want := strings.Join(names, " "), "load put get put get put get"; got != want {
		t.Errorf("default plan %s, want %s", got, want)
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
		{"--stores", "0"}, {"--etcd-members", "0"},
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

func TestParseCounters(t *testing.T) {
	exposition := `# HELP tinykv_engine_wal_syncs_total Write-ahead log appends.
# TYPE tinykv_engine_wal_syncs_total counter
tinykv_engine_wal_syncs_total{db="kv"} 0
tinykv_engine_wal_syncs_total{db="raft"} 1500
tinykv_engine_commit_writes_total{db="kv"} 7
tinykv_engine_commit_writes_total{db="raft"} 4.5e+03
tinykv_engine_commit_groups_total{db="raft"} 99
tinykv_engine_wal_sync_seconds_total{db="raft"} 3
`
	got, err := parseCounters(strings.NewReader(exposition), storeRaftLabel, storeWritesMetric, storeSyncsMetric)
	if err != nil || got[storeSyncsMetric] != 1500 || got[storeWritesMetric] != 4500 || len(got) != 2 {
		t.Errorf("parseCounters = %v, %v", got, err)
	}
	if _, err := parseCounters(strings.NewReader(exposition), `db="other"`, storeSyncsMetric); err == nil {
		t.Error("parseCounters accepted a missing sample")
	}
}

func TestSyncReport(t *testing.T) {
	sums := []summary{
		{median: result{system: "tinykv-raw", workload: "put", dist: "-", ops: 900, writes: 900, replicas: 3,
			syncs: syncDelta{known: true, syncSample: syncSample{syncs: 300, syncSeconds: 1.5, engineWrites: 1200}}}},
		{median: result{system: "etcd", workload: "put", dist: "-", ops: 900, writes: 900, replicas: 3,
			syncs: syncDelta{known: true, syncSample: syncSample{syncs: 900}}}},
		{median: result{system: "etcd", workload: "get", dist: "uniform", ops: 900, replicas: 3,
			syncs: syncDelta{known: true}}},
	}
	var b strings.Builder
	printSyncs(&b, sums)
	rows := map[string][]string{}
	for line := range strings.Lines(b.String()) {
		if f := strings.Fields(line); len(f) == 9 {
			rows[f[0]+" "+f[1]] = f
		}
	}
	// 900 writes on 3 replicas over 300 fsyncs: 9 per fsync of a replica.
	if f := rows["tinykv-raw put"]; f == nil || f[6] != "9.00" || f[7] != "4.00" || f[8] != "5.00ms" {
		t.Errorf("tinykv-raw row %v", f)
	}
	if f := rows["etcd put"]; f == nil || f[6] != "3.00" || f[7] != "-" {
		t.Errorf("etcd row %v", f)
	}
	if rows["etcd get"] != nil {
		t.Error("a phase without writes is listed")
	}
	if t.Failed() {
		t.Logf("report:\n%s", b.String())
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
		t.Skip("starts PD, three stores and three etcd members")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/",
		"github.com/tinykv/tinykv/cmd/tinyscheduler-server", "github.com/tinykv/tinykv/cmd/tinykv-server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	args := []string{"--bin", bin, "--records", "200", "--ops", "200", "--clients", "4", "--rounds", "2",
		"--workloads", strings.Join(workloadNames, ",")}
	if err := run(ctx, args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	checkSmokeReport(t, out.String())
}

// checkSmokeReport checks that every system ran every phase, in two rounds
// after the load, with no errors except write conflicts in transactions,
// and that the ratios, the fsyncs of the puts and the stores' peak RSS are
// there.
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
	for _, want := range []string{"tinykv-raw / etcd", "tinykv-txn / etcd", "goal: tinykv-raw put", "tinykv-server:",
		"write-ahead log fsyncs", "stores=3 etcd-members=3"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for line := range strings.Lines(report) {
		if strings.HasPrefix(line, "peak RSS") && strings.Contains(line, "unknown") {
			t.Errorf("%s", strings.TrimSpace(line))
		}
	}
	checkSmokeSyncs(t, report)
	if t.Failed() {
		t.Logf("report:\n%s", report)
	}
}

// checkSmokeSyncs checks that the put phase of every system synced its
// log on all three replicas.
func checkSmokeSyncs(t *testing.T, report string) {
	t.Helper()
	_, table, ok := strings.Cut(report, "write-ahead log fsyncs")
	if !ok {
		return
	}
	puts := map[string]bool{}
	for line := range strings.Lines(table) {
		f := strings.Fields(line)
		if len(f) != 9 || f[1] != "put" {
			continue
		}
		puts[f[0]] = true
		if perSync, err := strconv.ParseFloat(f[6], 64); f[3] != "3" || f[4] != "200" || err != nil || perSync <= 0 {
			t.Errorf("fsync row %q: want 3 replicas, 200 writes and writes per fsync", strings.TrimSpace(line))
		}
	}
	for _, sys := range systemNames {
		if !puts[sys] {
			t.Errorf("no fsync row for the puts of %s", sys)
		}
	}
}
