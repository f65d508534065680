package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// opTimeout bounds one request; a request that takes longer counts as an
// error.
const opTimeout = 10 * time.Second

// errNotFound is a read of a record that should exist but does not.
var errNotFound = errors.New("record not found")

// kvStore is one system under test, as the clients see it.
type kvStore interface {
	read(ctx context.Context, key []byte) error
	write(ctx context.Context, key, value []byte) error
}

// system is a named kvStore with its own key prefix, replicated on
// replicas machines (stores or members), and its fsync counters when it
// has them.
type system struct {
	name     string
	store    kvStore
	keys     keyspace
	replicas int
	meter    syncMeter // nil when unknown
}

// result is what one phase measured on one system.
type result struct {
	system, workload, dist string
	ops, errors            uint64 // ops counts successful requests only
	writes                 uint64 // the successful requests that wrote
	elapsed                time.Duration
	p50, p99               time.Duration
	replicas               int
	syncs                  syncDelta // the phase's fsyncs, over all replicas
}

func (r result) opsPerSec() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// runSpec is what every phase run shares.
type runSpec struct {
	clients   int
	valueSize int
	seed      uint64
}

// phaseRun is one phase on one system in progress.
type phaseRun struct {
	spec     runSpec
	sys      system
	ph       phase
	index    int // the phase's position in the plan, to seed the clients
	next     atomic.Uint64
	errs     atomic.Uint64
	writes   atomic.Uint64
	firstErr sync.Once
}

// runPhase runs ph against sys with spec.clients concurrent clients. Client
// c of phase i draws from a generator seeded with (seed, i, c), so every
// system sees the same requests.
func runPhase(ctx context.Context, spec runSpec, sys system, ph phase, index int) result {
	run := &phaseRun{spec: spec, sys: sys, ph: ph, index: index}
	lats := make([][]time.Duration, spec.clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range spec.clients {
		wg.Go(func() { lats[c] = run.client(ctx, c) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lats...)
	slices.Sort(all)
	return result{
		system: sys.name, workload: ph.workload, dist: ph.dist,
		ops: uint64(len(all)), errors: run.errs.Load(), writes: run.writes.Load(), elapsed: elapsed,
		p50: percentile(all, 50), p99: percentile(all, 99), replicas: sys.replicas,
	}
}

// client issues requests until the phase has handed out all of its
// operations, and returns the latencies of those that succeeded.
func (run *phaseRun) client(ctx context.Context, id int) []time.Duration {
	r := rand.New(rand.NewPCG(run.spec.seed, uint64(run.index)<<32|uint64(id)))
	lats := make([]time.Duration, 0, run.ph.ops/uint64(run.spec.clients)+1)
	for ctx.Err() == nil {
		seq := run.next.Add(1) - 1
		if seq >= run.ph.ops {
			break
		}
		op := run.ph.pick(r, seq)
		key := run.sys.keys.key(op.keynum)
		var value []byte
		if op.write {
			value = randomValue(r, run.spec.valueSize)
		}
		start := time.Now()
		if err := run.do(ctx, key, value); err != nil {
			run.fail(err)
			continue
		}
		lats = append(lats, time.Since(start))
		if op.write {
			run.writes.Add(1)
		}
	}
	return lats
}

// do performs one request: a write when value is set, a read otherwise.
func (run *phaseRun) do(ctx context.Context, key, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if value != nil {
		return run.sys.store.write(ctx, key, value)
	}
	return run.sys.store.read(ctx, key)
}

// fail counts an error and logs the first one of the phase.
func (run *phaseRun) fail(err error) {
	run.errs.Add(1)
	run.firstErr.Do(func() {
		slog.Warn("request failed", "system", run.sys.name, "workload", run.ph.workload,
			"dist", run.ph.dist, "err", err)
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

// waitReady writes a probe key until sys accepts it, for up to timeout.
func waitReady(ctx context.Context, sys system, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	probe := []byte(sys.keys.prefix + "probe")
	for {
		err := sys.store.write(ctx, probe, []byte("1"))
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w", sys.name, timeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
