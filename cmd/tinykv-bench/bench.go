package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	tikvconfig "github.com/tikv/client-go/v2/config"
	"github.com/tikv/client-go/v2/rawkv"
	"github.com/tikv/client-go/v2/txnkv"
	pd "github.com/tikv/pd/client"
)

// bench sets up the selected systems, runs the plan against them and stops
// them. The temporary directory is kept when --keep-data is set or the run
// fails, so that the logs can be read.
func bench(ctx context.Context, cfg config) (rep report, err error) {
	dir, err := os.MkdirTemp("", "tinykv-bench-")
	if err != nil {
		return report{}, fmt.Errorf("temporary directory: %w", err)
	}
	defer func() {
		if cfg.keepData || err != nil {
			slog.Info("data and logs kept", "dir", dir)
			return
		}
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			slog.Warn("remove temporary directory", "dir", dir, "err", rmErr)
		}
	}()
	e, err := setup(ctx, cfg, dir)
	if err != nil {
		return report{}, err
	}
	rep = report{cfg: cfg, loadBefore: loadAverage()}
	rep.results, err = execute(ctx, cfg, e.systems)
	rep.loadAfter = loadAverage()
	rep.mem = e.peakMemory()
	return rep, errors.Join(err, e.close())
}

// execute waits until every system accepts writes, then runs each phase of
// the plan on every system in turn, in an order that rotates by round.
func execute(ctx context.Context, cfg config, systems []system) ([]result, error) {
	for _, sys := range systems {
		if err := waitReady(ctx, sys, readyTimeout); err != nil {
			return nil, err
		}
	}
	spec := runSpec{clients: cfg.clients, valueSize: cfg.valueSize, seed: cfg.seed}
	var results []result
	for i, ph := range buildPlan(cfg) {
		for _, sys := range rotate(systems, ph.round) {
			res := runMetered(ctx, spec, sys, ph, i)
			if err := ctx.Err(); err != nil {
				return results, fmt.Errorf("interrupted: %w", err)
			}
			slog.Info("phase done", "system", sys.name, "workload", ph.workload, "dist", ph.dist,
				"round", ph.round, "ops/s", int(res.opsPerSec()), "p99", res.p99, "errors", res.errors)
			results = append(results, res)
		}
	}
	return results, nil
}

// rotate returns systems starting at index n modulo their number.
func rotate(systems []system, n int) []system {
	n %= len(systems)
	return slices.Concat(systems[n:], systems[:n])
}

// env is what a run started: the systems under test, in the order of
// systemNames, and what must be closed at the end.
type env struct {
	systems   []system
	closers   []func() error // in the order things were started
	storePIDs []int          // empty when unknown
	pdPID     int            // 0 when the bench did not start PD
}

// setup starts or connects to every selected system. On error it closes
// what it started.
func setup(ctx context.Context, cfg config, dir string) (e *env, err error) {
	e = &env{}
	if cfg.storePID != 0 {
		e.storePIDs = []int{cfg.storePID}
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.close())
		}
	}()
	if slices.Contains(cfg.systems, "tinykv-raw") || slices.Contains(cfg.systems, "tinykv-txn") {
		if err := e.startTinyKV(ctx, cfg, dir); err != nil {
			return e, err
		}
	}
	if slices.Contains(cfg.systems, "etcd") {
		etcd, err := startEtcd(filepath.Join(dir, "etcd"), cfg.etcdMembers)
		if err != nil {
			return e, err
		}
		e.closers = append(e.closers, etcd.close)
		e.systems = append(e.systems, system{name: "etcd", store: etcdStore{etcd.cli}, keys: keyspace{"e/", cfg.hashedKeys},
			replicas: cfg.etcdMembers, meter: etcdMeter{}})
	}
	return e, nil
}

// startTinyKV starts a cluster of --stores stores unless --pd names one,
// waits until PD has placed every replica of a started cluster, and
// connects the selected client-go clients to it.
func (e *env) startTinyKV(ctx context.Context, cfg config, dir string) error {
	pdAddr := cfg.pd
	if pdAddr == "" {
		c, err := startCluster(ctx, cfg.binDir, dir, cfg.stores)
		if err != nil {
			return err
		}
		e.closers = append(e.closers, c.stop)
		pdAddr, e.storePIDs, e.pdPID = c.pdAddr, c.storePIDs(), c.pd.Pid()
	}
	pdCli, err := pd.NewClientWithContext(ctx, []string{"http://" + pdAddr}, pd.SecurityOption{})
	if err != nil {
		return fmt.Errorf("pd client: %w", err)
	}
	e.closers = append(e.closers, func() error { pdCli.Close(); return nil })
	if cfg.pd == "" {
		if err := waitReplicated(ctx, pdCli, cfg.stores, readyTimeout); err != nil {
			return err
		}
	}
	replicas, err := replicaCount(ctx, pdCli)
	if err != nil {
		return err
	}
	addrs, err := statusAddrs(ctx, pdCli)
	if err != nil {
		return err
	}
	shared := system{keys: keyspace{hashed: cfg.hashedKeys}, replicas: replicas, meter: storeMeter{addrs}}
	if slices.Contains(cfg.systems, "tinykv-raw") {
		cli, err := rawkv.NewClientWithOpts(ctx, []string{pdAddr}, rawkv.WithSecurity(tikvconfig.Security{}))
		if err != nil {
			return fmt.Errorf("rawkv client: %w", err)
		}
		e.closers = append(e.closers, cli.Close)
		e.systems = append(e.systems, shared.as("tinykv-raw", rawStore{cli}, "r/"))
	}
	if slices.Contains(cfg.systems, "tinykv-txn") {
		cli, err := txnkv.NewClient([]string{pdAddr})
		if err != nil {
			return fmt.Errorf("txnkv client: %w", err)
		}
		e.closers = append(e.closers, cli.Close)
		e.systems = append(e.systems, shared.as("tinykv-txn", txnStore{cli}, "t/"))
	}
	return nil
}

// as returns s named name, driven through store, with its keys under
// prefix.
func (s system) as(name string, store kvStore, prefix string) system {
	s.name, s.store, s.keys.prefix = name, store, prefix
	return s
}

// close closes everything in the reverse order of starting.
func (e *env) close() error {
	var errs []error
	for _, c := range slices.Backward(e.closers) {
		errs = append(errs, c())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// memory is the peak resident set sizes, formatted for the report; store
// lists every store's.
type memory struct {
	store, pd, bench string
}

func (e *env) peakMemory() memory {
	store := "unknown (with --pd, pass --store-pid)"
	if len(e.storePIDs) > 0 {
		each := make([]string, len(e.storePIDs))
		for i, pid := range e.storePIDs {
			each[i] = peakRSS(pid, "")
		}
		store = strings.Join(each, ", ")
	}
	return memory{
		store: store,
		pd:    peakRSS(e.pdPID, "not started by the bench"),
		bench: peakRSS(os.Getpid(), ""),
	}
}

// peakRSS reads VmHWM, the peak resident set size, of process pid from
// /proc; it returns unknown when pid is 0.
func peakRSS(pid int, unknown string) string {
	if pid == 0 {
		return unknown
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	kib, err := parseVmHWM(string(status))
	if err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

// parseVmHWM returns the VmHWM line's value, in KiB, of a /proc/<pid>/status
// text.
func parseVmHWM(status string) (uint64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("VmHWM line %q", strings.TrimSpace(line))
		}
		kib, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmHWM: %w", err)
		}
		return kib, nil
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// loadAverage is the 1-, 5- and 15-minute load averages from /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(b))
	if len(fields) < 3 {
		return "unknown"
	}
	return strings.Join(fields[:3], " ")
}
