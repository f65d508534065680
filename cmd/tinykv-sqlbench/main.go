// Command tinykv-sqlbench measures TinyKV through an unmodified TiDB with
// sysbench-style OLTP workloads, and measures TiDB on its embedded unistore
// (no network, no replication) with the same workloads in the same run, so
// that TinyKV's figures read as ratios against a peer that saw the same
// machine at the same time.
//
// It starts tinyscheduler-server, tinykv-server and a tidb-server on them
// (system "tinykv"), and a second tidb-server with --store unistore (system
// "unistore"), all from --bin on free loopback ports with data in a
// temporary directory; the directory is removed after a successful run and
// kept, with the logs, after a failed one. Children run in their own process
// groups and are stopped with SIGTERM, then SIGKILL after 15 s.
//
// On each system it creates sysbench's table sbtest.sbtest1 with
// --table-size rows, then runs each workload with --threads connections for
// --duration or --events operations, whichever ends first, with uniform
// random ids:
//
//	point_select  SELECT c FROM sbtest1 WHERE id=?
//	update_index  UPDATE sbtest1 SET k=k+1 WHERE id=?
//	read_write    one transaction: 10 point selects, 4 range selects (plain,
//	              SUM, ORDER BY, DISTINCT), an index and a non-index update,
//	              and a delete and an insert of the same id
//
// A read_write transaction counts as one operation; its statements
// (BEGIN and COMMIT included, as sysbench counts them) make up qps. Failed
// operations (deadlocks, write conflicts, timeouts) are counted as errors
// and not retried. Every workload runs on both systems in turn, the first
// system alternating from one workload to the next and from one round to
// the next; with --rounds the report shows each workload's median round by
// ops/s.
//
// It prints, on stdout, ops/s, qps, p50 and p99 latency and errors for each
// system and workload, the tinykv/unistore ratios of ops/s and p99, and
// whether tinykv reaches the goal of 0.5x unistore's ops/s; the header
// shows the machine's load average before and after the run. Progress goes
// to stderr.
//
// --workloads runs a subset. --profile DIR writes, for every workload run
// with --duration, Go CPU profiles of the processes serving it (tinykv:
// the store and its TiDB; unistore: its TiDB), taken from their
// /debug/pprof/profile endpoints, to DIR/<round>-<workload>-<system>-<process>.pprof.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tinykv/tinykv/internal/proc"
)

// config is the parsed command line.
type config struct {
	binDir    string
	tableSize int
	threads   int
	duration  time.Duration
	events    uint64
	rounds    int
	workloads []string
	// profileDir, when set, receives CPU profiles of every workload run.
	profileDir string
}

func main() { proc.Main("tinykv-sqlbench", run) }

// run parses args, runs the benchmark and prints the report to out.
func run(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	rep := report{cfg: cfg, loadBefore: loadAverage()}
	if rep.results, err = bench(ctx, cfg); err != nil {
		return err
	}
	rep.loadAfter = loadAverage()
	return rep.print(out)
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("tinykv-sqlbench", flag.ContinueOnError)
	fs.StringVar(&cfg.binDir, "bin", "bin", "directory holding tinyscheduler-server, tinykv-server and tidb-server")
	fs.IntVar(&cfg.tableSize, "table-size", 10000, "rows in sbtest1")
	fs.IntVar(&cfg.threads, "threads", 16, "concurrent connections per system")
	fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "time limit per workload and system (0: none)")
	fs.Uint64Var(&cfg.events, "events", 0, "operation limit per workload and system (0: none)")
	fs.IntVar(&cfg.rounds, "rounds", 1, "times every workload runs on every system; the median is reported")
	workloads := fs.String("workloads", strings.Join(workloadNames, ","), "comma-separated workloads to run")
	fs.StringVar(&cfg.profileDir, "profile", "", "directory for CPU profiles of the serving processes (needs --duration)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.workloads = strings.Split(*workloads, ",")
	for _, w := range cfg.workloads {
		if !slices.Contains(workloadNames, w) {
			return cfg, fmt.Errorf("unknown workload %q (have %s)", w, strings.Join(workloadNames, ", "))
		}
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.tableSize < 1 || cfg.threads < 1 || cfg.rounds < 1:
		return cfg, errors.New("--table-size, --threads and --rounds must be at least 1")
	case cfg.duration < 0:
		return cfg, errors.New("--duration must not be negative")
	case cfg.duration == 0 && cfg.events == 0:
		return cfg, errors.New("one of --duration and --events must be set")
	case cfg.profileDir != "" && cfg.duration < 2*time.Second:
		return cfg, errors.New("--profile needs a --duration of at least 2s")
	}
	return cfg, nil
}
