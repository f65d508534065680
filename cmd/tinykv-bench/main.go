// Command tinykv-bench measures TinyKV with YCSB-style workloads through the
// stock TiKV client (client-go), raw and transactional, and measures an etcd
// cluster embedded in the same process (fsync on) with the same workloads in
// the same run, so that TinyKV's figures can be read as ratios against a
// peer that saw the same machine at the same time. Both are replicated the
// same way by default: every TinyKV region on --stores 3 stores, etcd on
// --etcd-members 3 members.
//
// A run loads --records records of --value-size bytes into every system,
// then runs each selected phase (--workloads, by default put and get) on
// each system in turn, --ops requests per phase from --clients concurrent
// clients:
//
//	put  inserts of fresh keys
//	get  reads of loaded keys, uniform
//	a    YCSB workload A: 50% reads, 50% updates
//	b    YCSB workload B: 95% reads, 5% updates
//	c    YCSB workload C: reads only
//
// Every read is linearizable: rawkv Get is served by the region's leader
// under its lease or after a ReadIndex round, and clientv3's Get is
// linearizable unless asked to be serializable, which the bench does not.
//
// Workloads a, b and c run once per selected request distribution (uniform,
// or YCSB's scrambled zipfian with constant 0.99). The phases after the
// load run --rounds times. Phases are interleaved across systems (phase 1
// on every system, then phase 2, ...), and each round rotates the order of
// the systems, so that a change in the machine's load, or a system's
// background work after its own phase, does not always hit the same
// system; the report shows each phase's median round.
//
// By default the command starts tinyscheduler-server, with [replication]
// max-replicas set to --stores, and --stores tinykv-servers from --bin on
// free loopback ports (each heartbeating PD every second, so that replicas
// are placed quickly), with data in a temporary directory that is removed
// afterwards (--keep-data keeps it); it loads nothing until PD reports
// every region with --stores peers and a leader, and it stops the
// processes with SIGTERM (SIGKILL after 10 s). With --pd it uses a running
// cluster instead; the stores' peak RSS is then reported only for
// --store-pid.
//
// Around every phase the command reads the write-ahead log fsync counters:
// tinykv_engine_wal_syncs_total and tinykv_engine_commit_writes_total of
// the raft engine (db="raft"; the kv engine does not sync) from every
// store's status /metrics, summed over the stores, and, for etcd, the
// sample count of etcd_disk_wal_fsync_duration_seconds from the default
// Prometheus registry, where the embedded members observe their WAL syncs.
//
// It prints, on stdout, a table with ops/s (median, lowest and highest
// round), p50 and p99 latency (of the median round) and errors (all
// rounds) for each system and phase; the ops/s and p99 ratios of
// tinykv-raw and tinykv-txn against etcd, and whether raw put and get
// reach 1.5 times etcd's ops/s with a p99 no worse; the fsyncs of the
// median round of every phase that wrote, as client writes per fsync of
// one replica and, for TinyKV, engine writes per fsync; and peak resident
// memory (VmHWM) of each store, of PD and of this process. Progress goes
// to stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/pingcap/log"
	"github.com/tinykv/tinykv/internal/proc"
	"go.uber.org/zap"
)

// Names accepted by --systems, in the order systems are run.
var systemNames = []string{"tinykv-raw", "tinykv-txn", "etcd"}

// config is the parsed command line.
type config struct {
	binDir      string
	pd          string
	storePID    int
	stores      int
	etcdMembers int
	keepData    bool
	records     uint64
	ops         uint64
	rounds      int
	valueSize   int
	clients     int
	systems     []string
	workloads   []string
	dists       []string
	hashedKeys  bool
	seed        uint64
}

func main() { proc.Main("tinykv-bench", run) }

// run parses args, runs the benchmark and prints the report to out.
func run(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	// client-go and etcd log through zap; the bench reports through slog.
	log.ReplaceGlobals(zap.NewNop(), &log.ZapProperties{Level: zap.NewAtomicLevel()})
	rep, err := bench(ctx, cfg)
	if err != nil {
		return err
	}
	return rep.print(out)
}

func parseFlags(args []string) (config, error) {
	var cfg config
	var systems, workloads, dists, order string
	fs := flag.NewFlagSet("tinykv-bench", flag.ContinueOnError)
	fs.StringVar(&cfg.binDir, "bin", "bin", "directory holding tinyscheduler-server and tinykv-server")
	fs.StringVar(&cfg.pd, "pd", "", "host:port of a running PD to use instead of starting a cluster")
	fs.IntVar(&cfg.storePID, "store-pid", 0, "pid of the store, for its peak RSS, with --pd")
	fs.IntVar(&cfg.stores, "stores", 3, "stores to start, each region replicated on all of them (not with --pd)")
	fs.IntVar(&cfg.etcdMembers, "etcd-members", 3, "members of the embedded etcd cluster")
	fs.BoolVar(&cfg.keepData, "keep-data", false, "keep the temporary data and log directory")
	fs.Uint64Var(&cfg.records, "records", 10000, "records loaded before the phases")
	fs.Uint64Var(&cfg.ops, "ops", 20000, "requests per phase")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds of the phases after the load; the report shows the median")
	fs.IntVar(&cfg.valueSize, "value-size", 100, "value size in bytes")
	fs.IntVar(&cfg.clients, "clients", 64, "concurrent clients")
	fs.StringVar(&systems, "systems", strings.Join(systemNames, ","), "systems to measure")
	fs.StringVar(&workloads, "workloads", "put,get", "phases to run after the load: some of "+strings.Join(workloadNames, ","))
	fs.StringVar(&dists, "dists", strings.Join(distNames, ","), "request distributions for workloads a, b and c")
	fs.StringVar(&order, "insert-order", "hashed", "key naming: hashed (YCSB's default) or ordered")
	fs.Uint64Var(&cfg.seed, "seed", 1, "seed of the request generators")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if cfg.systems, err = parseList("systems", systems, systemNames); err != nil {
		return config{}, err
	}
	if cfg.workloads, err = parseList("workloads", workloads, workloadNames); err != nil {
		return config{}, err
	}
	if cfg.dists, err = parseList("dists", dists, distNames); err != nil {
		return config{}, err
	}
	if order != "hashed" && order != "ordered" {
		return config{}, fmt.Errorf("--insert-order %q: want hashed or ordered", order)
	}
	cfg.hashedKeys = order == "hashed"
	if cfg.records == 0 || cfg.ops == 0 || cfg.valueSize <= 0 || cfg.clients <= 0 || cfg.rounds <= 0 ||
		cfg.stores <= 0 || cfg.etcdMembers <= 0 {
		return config{}, fmt.Errorf("--records, --ops, --rounds, --value-size, --clients, --stores and --etcd-members must be positive")
	}
	return cfg, nil
}

// parseList splits a comma-separated flag value and checks every name
// against valid.
func parseList(flagName, value string, valid []string) ([]string, error) {
	var names []string
	for name := range strings.SplitSeq(value, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(valid, name) {
			return nil, fmt.Errorf("--%s: unknown %q (want some of %s)", flagName, name, strings.Join(valid, ","))
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("--%s: empty", flagName)
	}
	return names, nil
}
