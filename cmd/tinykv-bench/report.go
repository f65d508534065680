package main

import (
	"fmt"
	"io"
	"runtime"
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

// phaseKey names a phase across systems.
type phaseKey struct{ workload, dist string }

func (rep report) print(out io.Writer) error {
	var b strings.Builder
	rep.printHeader(&b)
	rep.printResults(&b)
	rep.printRatios(&b)
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
	fmt.Fprintf(b, "tinykv-bench: records=%d ops/phase=%d clients=%d value=%dB keys=%s seed=%d cpus=%d load-avg=%s -> %s\n\n",
		c.records, c.ops, c.clients, c.valueSize, order, c.seed, runtime.NumCPU(), rep.loadBefore, rep.loadAfter)
}

func (rep report) printResults(b *strings.Builder) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tworkload\tdist\tops\tops/s\tp50\tp99\terrors\t")
	for _, r := range rep.results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%s\t%s\t%d\t\n",
			r.system, r.workload, r.dist, r.ops, r.opsPerSec(), formatLatency(r.p50), formatLatency(r.p99), r.errors)
	}
	tw.Flush()
}

// printRatios prints, for every phase measured on etcd, the ops/s of each
// TinyKV mode divided by etcd's, then whether raw put and get reach etcd.
func (rep report) printRatios(b *strings.Builder) {
	etcd := rep.byPhase("etcd")
	if len(etcd) == 0 {
		return
	}
	fmt.Fprintln(b)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ratio\tworkload\tdist\tops/s\t")
	for _, name := range []string{"tinykv-raw", "tinykv-txn"} {
		for _, r := range rep.results {
			if e, ok := etcd[phaseKey{r.workload, r.dist}]; ok && r.system == name {
				fmt.Fprintf(tw, "%s / etcd\t%s\t%s\t%.2fx\t\n", name, r.workload, r.dist, r.opsPerSec()/e.opsPerSec())
			}
		}
	}
	tw.Flush()
	rep.printGoals(b, etcd)
}

// printGoals checks the target: raw put and raw get at least 1.0x etcd.
func (rep report) printGoals(b *strings.Builder, etcd map[phaseKey]result) {
	raw := rep.byPhase("tinykv-raw")
	for _, k := range []phaseKey{{"put", "-"}, {"get", "uniform"}} {
		r, ok1 := raw[k]
		e, ok2 := etcd[k]
		if !ok1 || !ok2 {
			continue
		}
		ratio := r.opsPerSec() / e.opsPerSec()
		verdict := "met"
		if ratio < 1 {
			verdict = "NOT met"
		}
		fmt.Fprintf(b, "goal: tinykv-raw %s >= 1.0x etcd: %.2fx, %s\n", k.workload, ratio, verdict)
	}
}

func (rep report) byPhase(system string) map[phaseKey]result {
	m := make(map[phaseKey]result)
	for _, r := range rep.results {
		if r.system == system {
			m[phaseKey{r.workload, r.dist}] = r
		}
	}
	return m
}

func (rep report) printMemory(b *strings.Builder) {
	fmt.Fprintln(b)
	if len(rep.byPhase("tinykv-raw"))+len(rep.byPhase("tinykv-txn")) > 0 {
		fmt.Fprintf(b, "peak RSS (VmHWM) tinykv-server:        %s\n", rep.mem.store)
		fmt.Fprintf(b, "peak RSS (VmHWM) tinyscheduler-server: %s\n", rep.mem.pd)
	}
	fmt.Fprintf(b, "peak RSS (VmHWM) tinykv-bench:         %s (clients and embedded etcd together)\n", rep.mem.bench)
}

// formatLatency prints d in µs below one millisecond and in ms above.
func formatLatency(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
