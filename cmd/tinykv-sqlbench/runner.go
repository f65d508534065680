package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Names of the systems, in the order the report lists them.
var systemNames = []string{"tinykv", "unistore"}

// opTimeout bounds one operation; one that takes longer counts as an error.
const opTimeout = 30 * time.Second

// system is one TiDB under test.
type system struct {
	name string
	db   *sql.DB
	// statusAddrs are the status (HTTP) addresses of the processes serving
	// the system, by process name, for profiles.
	statusAddrs map[string]string
}

// result is what one workload measured on one system in one round.
type result struct {
	system, workload   string
	ops, stmts, errors uint64 // ops and stmts count successful operations only
	elapsed            time.Duration
	p50, p99           time.Duration
}

func (r result) opsPerSec() float64 { return float64(r.ops) / r.elapsed.Seconds() }
func (r result) qps() float64       { return float64(r.stmts) / r.elapsed.Seconds() }

// bench starts the systems, loads them, runs every workload on each in
// every round and stops them.
func bench(ctx context.Context, cfg config) (results []result, err error) {
	dir, err := os.MkdirTemp("", "tinykv-sqlbench-")
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	slog.Info("starting the systems", "dir", dir)
	e, err := setup(ctx, cfg.binDir, dir)
	if err != nil {
		return nil, fmt.Errorf("setup (data and logs kept in %s): %w", dir, err)
	}
	results, err = measure(ctx, cfg, e.systems)
	if cerr := e.close(); cerr != nil || err != nil {
		return nil, fmt.Errorf("data and logs kept in %s: %w", dir, errors.Join(err, cerr))
	}
	return results, os.RemoveAll(dir)
}

// measure loads every system, then runs the rounds.
func measure(ctx context.Context, cfg config, systems []system) ([]result, error) {
	for _, s := range systems {
		slog.Info("loading", "system", s.name, "rows", cfg.tableSize)
		if err := prepare(ctx, s.db, cfg.tableSize); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", s.name, err)
		}
		s.db.SetMaxOpenConns(cfg.threads)
		s.db.SetMaxIdleConns(cfg.threads)
	}
	var results []result
	for round := range cfg.rounds {
		for i, w := range cfg.workloads {
			for _, s := range rotate(systems, round+i) {
				slog.Info("running", "round", round+1, "workload", w, "system", s.name)
				r := runWorkload(ctx, cfg, s, w, uint64(round))
				slog.Info("ran", "round", round+1, "workload", w, "system", s.name,
					"ops/s", int(r.opsPerSec()), "p99", r.p99, "errors", r.errors)
				results = append(results, r)
			}
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("interrupted: %w", err)
			}
		}
	}
	return results, nil
}

// rotate returns systems starting at index n modulo their number.
func rotate(systems []system, n int) []system {
	n %= len(systems)
	return append(slices.Clone(systems[n:]), systems[:n]...)
}

// workloadRun is one workload on one system in progress.
type workloadRun struct {
	cfg      config
	sys      system
	workload string
	deadline time.Time // zero without --duration
	next     atomic.Uint64
	stmts    atomic.Uint64
	errs     atomic.Uint64
	firstErr sync.Once
}

// runWorkload runs workload w on sys with cfg.threads concurrent clients.
// Client c of round n draws from a generator seeded with (n, c), so both
// systems see the same operations.
func runWorkload(ctx context.Context, cfg config, sys system, w string, round uint64) result {
	run := &workloadRun{cfg: cfg, sys: sys, workload: w}
	start := time.Now()
	if cfg.duration > 0 {
		run.deadline = start.Add(cfg.duration)
	}
	profiled := startProfiles(ctx, cfg, sys, w, round)
	lats := make([][]time.Duration, cfg.threads)
	var wg sync.WaitGroup
	for c := range cfg.threads {
		wg.Go(func() { lats[c] = run.client(ctx, rand.New(rand.NewPCG(round, uint64(c)))) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	profiled.Wait()
	all := slices.Concat(lats...)
	slices.Sort(all)
	return result{system: sys.name, workload: w, ops: uint64(len(all)), stmts: run.stmts.Load(),
		errors: run.errs.Load(), elapsed: elapsed, p50: percentile(all, 50), p99: percentile(all, 99)}
}

// client runs operations until the run is over and returns the latencies
// of those that succeeded.
func (run *workloadRun) client(ctx context.Context, r *rand.Rand) []time.Duration {
	var lats []time.Duration
	for run.more(ctx) {
		op := nextOperation(run.workload, r, run.cfg.tableSize)
		start := time.Now()
		if err := run.do(ctx, op); err != nil {
			run.fail(err)
			continue
		}
		lats = append(lats, time.Since(start))
		run.stmts.Add(uint64(op.statements()))
	}
	return lats
}

// more reports whether another operation may start, and claims it.
func (run *workloadRun) more(ctx context.Context) bool {
	if ctx.Err() != nil || (!run.deadline.IsZero() && !time.Now().Before(run.deadline)) {
		return false
	}
	return run.cfg.events == 0 || run.next.Add(1) <= run.cfg.events
}

func (run *workloadRun) do(ctx context.Context, op operation) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return execute(ctx, run.sys.db, op)
}

// fail counts an error and logs the first one of the run.
func (run *workloadRun) fail(err error) {
	run.errs.Add(1)
	run.firstErr.Do(func() {
		slog.Warn("operation failed", "system", run.sys.name, "workload", run.workload, "err", err)
	})
}

// percentile returns the nearest-rank p-th percentile of sorted: the
// smallest value with at least p% of the values at or below it; 0 when
// sorted is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted)) * p / 100))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
