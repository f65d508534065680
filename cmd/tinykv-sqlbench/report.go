package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// goal is the ops/s tinykv must reach as a fraction of unistore's.
const goal = 0.5

// report is everything a run prints.
type report struct {
	cfg                   config
	results               []result
	loadBefore, loadAfter string
}

// summary is one system's rounds of one workload.
type summary struct {
	median result // the round with the median ops/s (the upper one of two)
	rounds int
	errors uint64 // over all rounds
}

// summaries groups the results by workload, in workloadNames order, and by
// system, in systemNames order.
func (rep report) summaries() []summary {
	var out []summary
	for _, w := range workloadNames {
		for _, s := range systemNames {
			var rounds []result
			for _, r := range rep.results {
				if r.workload == w && r.system == s {
					rounds = append(rounds, r)
				}
			}
			if len(rounds) > 0 {
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
	s := summary{median: sorted[len(sorted)/2], rounds: len(sorted)}
	for _, r := range rounds {
		s.errors += r.errors
	}
	return s
}

func (rep report) print(out io.Writer) error {
	var b strings.Builder
	c := rep.cfg
	fmt.Fprintf(&b, "tinykv-sqlbench: table-size=%d threads=%d duration=%s events=%d rounds=%d cpus=%d load-avg=%s -> %s\n\n",
		c.tableSize, c.threads, c.duration, c.events, c.rounds, runtime.NumCPU(), rep.loadBefore, rep.loadAfter)
	sums := rep.summaries()
	printResults(&b, sums)
	printRatios(&b, sums)
	if _, err := io.WriteString(out, b.String()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func printResults(b *strings.Builder, sums []summary) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tworkload\trounds\tops/s\tqps\tp50\tp99\terrors\t")
	for _, s := range sums {
		m := s.median
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.0f\t%s\t%s\t%d\t\n", m.system, m.workload, s.rounds,
			m.opsPerSec(), m.qps(), formatLatency(m.p50), formatLatency(m.p99), s.errors)
	}
	tw.Flush()
}

// printRatios prints, for every workload measured on both systems,
// tinykv's median ops/s and its p99 divided by unistore's, then a goal line
// per workload.
func printRatios(b *strings.Builder, sums []summary) {
	ours, peer := byWorkload(sums, "tinykv"), byWorkload(sums, "unistore")
	var goals strings.Builder
	fmt.Fprintln(b)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ratio\tworkload\tops/s\tp99\t")
	for _, w := range workloadNames {
		o, ok1 := ours[w]
		p, ok2 := peer[w]
		if !ok1 || !ok2 {
			continue
		}
		ratio := o.opsPerSec() / p.opsPerSec()
		fmt.Fprintf(tw, "tinykv / unistore\t%s\t%.2fx\t%.2fx\t\n", w, ratio, float64(o.p99)/float64(p.p99))
		verdict := "met"
		if !(ratio >= goal) {
			verdict = "NOT met"
		}
		fmt.Fprintf(&goals, "goal: tinykv %s >= %.1fx unistore ops/s: %.2fx, %s\n", w, goal, ratio, verdict)
	}
	tw.Flush()
	fmt.Fprintln(b)
	b.WriteString(goals.String())
}

// byWorkload returns system's median rounds by workload.
func byWorkload(sums []summary, system string) map[string]result {
	m := make(map[string]result)
	for _, s := range sums {
		if s.median.system == system {
			m[s.median.workload] = s.median
		}
	}
	return m
}

// loadAverage returns the 1, 5 and 15 minute load averages, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// formatLatency prints d in µs below one millisecond and in ms above.
func formatLatency(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
