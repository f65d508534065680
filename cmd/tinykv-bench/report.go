package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything a run prints.
type report struct {
	cfg                   config
	results               []result
	mem                   memory
	loadBefore, loadAfter string
}

// phaseKey names a phase across systems and rounds.
type phaseKey struct{ workload, dist string }

// summary is one system's rounds of one phase.
type summary struct {
	median         result // the round with the median ops/s (the upper one of two)
	minOps, maxOps float64
	rounds         int
	errors         uint64 // over all rounds
}

// summaries groups the results by phase, in the order the phases ran, and
// by system, in the order of systemNames.
func (rep report) summaries() []summary {
	var phases []phaseKey
	groups := make(map[phaseKey]map[string][]result)
	for _, r := range rep.results {
		k := phaseKey{r.workload, r.dist}
		if groups[k] == nil {
			groups[k] = make(map[string][]result)
			phases = append(phases, k)
		}
		groups[k][r.system] = append(groups[k][r.system], r)
	}
	var out []summary
	for _, k := range phases {
		for _, name := range systemNames {
			if rounds := groups[k][name]; len(rounds) > 0 {
				out = append(out, summarize(rounds))
			}
		}
	}
	return out
}

func summarize(rounds []result) summary {
	sorted := slices.SortedFunc(slices.Values(rounds), func(a, b result) int {
		return cmp.Compare(a.opsPerSec(), b.opsPerSec())
	})
	s := summary{median: sorted[len(sorted)/2], rounds: len(sorted),
		minOps: sorted[0].opsPerSec(), maxOps: sorted[len(sorted)-1].opsPerSec()}
	for _, r := range rounds {
		s.errors += r.errors
	}
	return s
}

func (rep report) print(out io.Writer) error {
	var b strings.Builder
	sums := rep.summaries()
	rep.printHeader(&b)
	printResults(&b, sums)
	printRatios(&b, sums)
	printSyncs(&b, sums)
	rep.printMemory(&b)
	if _, err := io.WriteString(out, b.String()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func (rep report) printHeader(b *strings.Builder) {
	c := rep.cfg
	order := "ordered"
	if c.hashedKeys {
		order = "hashed"
	}
	stores := strconv.Itoa(c.stores)
	if c.pd != "" {
		stores = "--pd " + c.pd
	}
	fmt.Fprintf(b, "tinykv-bench: records=%d ops/phase=%d rounds=%d clients=%d value=%dB keys=%s seed=%d stores=%s etcd-members=%d cpus=%d load-avg=%s -> %s\n",
		c.records, c.ops, c.rounds, c.clients, c.valueSize, order, c.seed, stores, c.etcdMembers, runtime.NumCPU(), rep.loadBefore, rep.loadAfter)
	fmt.Fprintln(b, "reads: tinykv-raw rawkv Get (leader lease or ReadIndex), tinykv-txn snapshot Get, etcd clientv3 Get (linearizable, the default); fsync on in every system")
	fmt.Fprintln(b)
}

func printResults(b *strings.Builder, sums []summary) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tworkload\tdist\trounds\tops/s\tmin\tmax\tp50\tp99\terrors\t")
	for _, s := range sums {
		m := s.median
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%.0f\t%.0f\t%s\t%s\t%d\t\n", m.system, m.workload, m.dist, s.rounds,
			m.opsPerSec(), s.minOps, s.maxOps, formatLatency(m.p50), formatLatency(m.p99), s.errors)
	}
	tw.Flush()
}

// printRatios prints, for every phase measured on etcd, the median ops/s
// and the p99 latency of each TinyKV mode divided by etcd's, then whether
// raw put and get reach the goal.
func printRatios(b *strings.Builder, sums []summary) {
	etcd := byPhase(sums, "etcd")
	if len(etcd) == 0 {
		return
	}
	fmt.Fprintln(b)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ratio\tworkload\tdist\tops/s\tp99\t")
	for _, name := range []string{"tinykv-raw", "tinykv-txn"} {
		for _, s := range sums {
			m := s.median
			if e, ok := etcd[phaseKey{m.workload, m.dist}]; ok && m.system == name {
				fmt.Fprintf(tw, "%s / etcd\t%s\t%s\t%.2fx\t%.2fx\t\n", name, m.workload, m.dist,
					m.opsPerSec()/e.opsPerSec(), latencyRatio(m.p99, e.p99))
			}
		}
	}
	tw.Flush()
	printGoals(b, byPhase(sums, "tinykv-raw"), etcd)
}

// Goal of raw put and raw get against etcd: goalOpsRatio times its ops/s,
// with a p99 latency no worse than its.
const goalOpsRatio = 1.5

// printGoals checks the goal on raw put and raw get.
func printGoals(b *strings.Builder, raw, etcd map[phaseKey]result) {
	for _, k := range []phaseKey{{"put", "-"}, {"get", "uniform"}} {
		r, ok1 := raw[k]
		e, ok2 := etcd[k]
		if !ok1 || !ok2 {
			continue
		}
		ops, p99 := r.opsPerSec()/e.opsPerSec(), latencyRatio(r.p99, e.p99)
		verdict := "met"
		if ops < goalOpsRatio || p99 > 1 {
			verdict = "NOT met"
		}
		fmt.Fprintf(b, "goal: tinykv-raw %s >= %.1fx etcd ops/s with p99 <= 1.0x etcd's: %.2fx ops/s, %.2fx p99, %s\n",
			k.workload, goalOpsRatio, ops, p99, verdict)
	}
}

// latencyRatio is a/b; +Inf when only b is zero.
func latencyRatio(a, b time.Duration) float64 {
	if b == 0 {
		if a == 0 {
			return 1
		}
		return math.Inf(1)
	}
	return float64(a) / float64(b)
}

// printSyncs prints, for the median round of every phase that wrote on a
// system with fsync counters, the client writes per write-ahead log fsync
// of one replica (each replica syncs its own log), for TinyKV the raft
// engine writes per fsync (its group commit), and the mean fsync time.
func printSyncs(b *strings.Builder, sums []summary) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := false
	for _, s := range sums {
		m := s.median
		if !m.syncs.known || m.writes == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(b, "\nwrite-ahead log fsyncs under load (median round; writes/fsync/replica = writes x replicas / fsyncs)")
			fmt.Fprintln(tw, "system\tworkload\tdist\treplicas\twrites\tfsyncs\twrites/fsync/replica\tengine writes/fsync\tmean fsync\t")
			header = true
		}
		engine := "-"
		if m.syncs.engineWrites > 0 {
			engine = fmt.Sprintf("%.2f", perSync(m.syncs.engineWrites, m.syncs.syncs))
		}
		meanSync := time.Duration(perSync(m.syncs.syncSeconds, m.syncs.syncs) * float64(time.Second))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.0f\t%.2f\t%s\t%s\t\n", m.system, m.workload, m.dist, m.replicas,
			m.writes, m.syncs.syncs, perSync(float64(m.writes)*float64(m.replicas), m.syncs.syncs), engine,
			formatLatency(meanSync))
	}
	tw.Flush()
}

// perSync is n per fsync; 0 without fsyncs.
func perSync(n, syncs float64) float64 {
	if syncs == 0 {
		return 0
	}
	return n / syncs
}

// byPhase returns system's median rounds by phase.
func byPhase(sums []summary, system string) map[phaseKey]result {
	m := make(map[phaseKey]result)
	for _, s := range sums {
		if s.median.system == system {
			m[phaseKey{s.median.workload, s.median.dist}] = s.median
		}
	}
	return m
}

func (rep report) printMemory(b *strings.Builder) {
	fmt.Fprintln(b)
	systems := rep.cfg.systems
	if slices.Contains(systems, "tinykv-raw") || slices.Contains(systems, "tinykv-txn") {
		fmt.Fprintf(b, "peak RSS (VmHWM) tinykv-server:        %s\n", rep.mem.store)
		fmt.Fprintf(b, "peak RSS (VmHWM) tinyscheduler-server: %s\n", rep.mem.pd)
	}
	what := "clients"
	if slices.Contains(systems, "etcd") {
		what = "clients and embedded etcd together"
	}
	fmt.Fprintf(b, "peak RSS (VmHWM) tinykv-bench:         %s (%s)\n", rep.mem.bench, what)
}

// formatLatency prints d in µs below one millisecond and in ms above.
func formatLatency(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
