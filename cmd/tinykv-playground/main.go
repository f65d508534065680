// Command tinykv-playground starts a local TinyKV cluster — a placement
// driver, three stores (PD places three replicas of every region on them)
// and, when bin/tidb-server is there, a TiDB server on top —
// as child processes with data under one directory, waits until each
// serves (TiDB: until SELECT 1 answers), prints how to connect, and stops
// them cleanly on Ctrl-C (SIGINT) or SIGTERM. Started again on the same
// directory, the cluster comes back with its data.
//
// The binaries are looked up next to this executable (make puts them all in
// bin/), or in --bin.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/tinykv/tinykv/internal/proc"
)

// readyTimeout bounds how long a component may take to start serving.
const readyTimeout = 5 * time.Minute

// stopGrace is how long a component gets to exit after SIGTERM.
const stopGrace = 15 * time.Second

type options struct {
	binDir, dataDir, host string
	pdPort, pdPeerPort    int
	storePort, status     int
	stores                int
	tidbPort, tidbStatus  int
	tidb                  bool
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tinykv-playground:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	opts, err := parseFlags(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	pdAddr := fmt.Sprintf("%s:%d", opts.host, opts.pdPort)
	pd, err := startComponent(log, opts, "tinyscheduler-server", "pd",
		"--data-dir", filepath.Join(opts.dataDir, "pd"),
		"--client-urls", "http://"+pdAddr,
		"--peer-urls", fmt.Sprintf("http://%s:%d", opts.host, opts.pdPeerPort),
		"--log-file", filepath.Join(opts.dataDir, "pd.log"))
	if err != nil {
		return err
	}
	defer pd.stop(log)
	if err := pd.WaitReady(ctx, readyTimeout, proc.HTTPReady("http://"+pdAddr+"/pd/api/v1/status")); err != nil {
		return fmt.Errorf("pd: %w", err)
	}

	stores, storeAddrs, err := startStores(ctx, log, opts, pdAddr)
	for _, store := range stores {
		defer store.stop(log)
	}
	if err != nil {
		return err
	}

	tidb, err := startTiDB(ctx, log, opts, pdAddr)
	if err != nil {
		return err
	}
	if tidb != nil {
		defer tidb.stop(log)
	}

	fmt.Printf("TinyKV cluster ready.\n  PD (and etcd, and /pd/api/v1): %s\n  stores: %s\n  data and logs: %s\n"+
		"Connect with client-go: txnkv.NewClient([]string{%q}) or rawkv.NewClientWithOpts(ctx, []string{%q}).\n",
		pdAddr, strings.Join(storeAddrs, ", "), opts.dataDir, pdAddr, pdAddr)
	if tidb != nil {
		fmt.Printf("  TiDB: mysql -h %s -P %d -u root\n", opts.host, opts.tidbPort)
	}
	fmt.Println("Press Ctrl-C to stop.")
	return waitForExit(ctx, log, append([]*component{pd, tidb}, stores...)...)
}

// startStores starts the stores one after another, each waited for until
// it serves; the first bootstraps the cluster. Store i listens on the
// store and status ports plus i and keeps its data in tikv (the first) or
// tikv<i+1>. It returns the stores started, also on error, so that the
// caller stops them.
func startStores(ctx context.Context, log *slog.Logger, opts options, pdAddr string) ([]*component, []string, error) {
	var stores []*component
	var addrs []string
	for i := range opts.stores {
		name, dir := "tikv", "tikv"
		if i > 0 {
			name, dir = fmt.Sprintf("tikv%d", i+1), fmt.Sprintf("tikv%d", i+1)
		}
		addr := fmt.Sprintf("%s:%d", opts.host, opts.storePort+i)
		status := fmt.Sprintf("%s:%d", opts.host, opts.status+i)
		store, err := startComponent(log, opts, "tinykv-server", name,
			"--pd", pdAddr, "--addr", addr, "--status-addr", status,
			"--data-dir", filepath.Join(opts.dataDir, dir),
			"--log-file", filepath.Join(opts.dataDir, name+".log"))
		if err != nil {
			return stores, addrs, err
		}
		stores = append(stores, store)
		if err := store.WaitReady(ctx, readyTimeout, proc.HTTPReady("http://"+status+"/status")); err != nil {
			return stores, addrs, fmt.Errorf("%s: %w", name, err)
		}
		addrs = append(addrs, fmt.Sprintf("%s (status %s)", addr, status))
	}
	return stores, addrs, nil
}

// waitForExit returns when a signal arrives (nil) or a component dies.
func waitForExit(ctx context.Context, log *slog.Logger, components ...*component) error {
	died := make(chan *component, len(components))
	for _, c := range components {
		if c != nil {
			go func() {
				<-c.Exited()
				died <- c
			}()
		}
	}
	select {
	case <-ctx.Done():
		log.Info("stopping the cluster")
		return nil
	case c := <-died:
		return fmt.Errorf("%s exited unexpectedly; see its log", c.name)
	}
}

// startTiDB starts tidb-server on the cluster when its binary is present
// and --tidb is set, and waits until it answers SELECT 1.
func startTiDB(ctx context.Context, log *slog.Logger, opts options, pdAddr string) (*component, error) {
	if !opts.tidb {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(opts.binDir, "tidb-server")); err != nil {
		log.Warn("tidb-server not found; running without SQL", "bin", opts.binDir)
		return nil, nil
	}
	tidb, err := startComponent(log, opts, "tidb-server", "tidb",
		"--store", "tikv", "--path", pdAddr,
		"--host", opts.host, "-P", fmt.Sprint(opts.tidbPort),
		"--status-host", opts.host, "--status", fmt.Sprint(opts.tidbStatus),
		"--log-file", filepath.Join(opts.dataDir, "tidb.log"),
		"--temp-dir", filepath.Join(opts.dataDir, "tidb-tmp"))
	if err != nil {
		return nil, err
	}
	if err := waitSQL(ctx, fmt.Sprintf("root@tcp(%s:%d)/", opts.host, opts.tidbPort), tidb); err != nil {
		tidb.stop(log)
		return nil, fmt.Errorf("tidb: %w", err)
	}
	return tidb, nil
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("tinykv-playground", flag.ContinueOnError)
	var opts options
	fs.StringVar(&opts.binDir, "bin", "", "directory holding the binaries (default: this executable's directory)")
	fs.StringVar(&opts.dataDir, "data", "data", "data directory of the cluster")
	fs.StringVar(&opts.host, "host", "127.0.0.1", "address to serve on")
	fs.IntVar(&opts.pdPort, "pd-port", 2379, "PD client port")
	fs.IntVar(&opts.pdPeerPort, "pd-peer-port", 2380, "PD (etcd) peer port")
	fs.IntVar(&opts.stores, "stores", 3, "number of stores")
	fs.IntVar(&opts.storePort, "store-port", 20160, "gRPC port of the first store (the others take the next ones)")
	fs.IntVar(&opts.status, "status-port", 20180, "status port of the first store (the others take the next ones)")
	fs.BoolVar(&opts.tidb, "tidb", true, "also start bin/tidb-server, if it was built")
	fs.IntVar(&opts.tidbPort, "tidb-port", 4000, "TiDB MySQL port")
	fs.IntVar(&opts.tidbStatus, "tidb-status-port", 10080, "TiDB status port")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if opts.stores < 1 {
		return options{}, fmt.Errorf("--stores %d: at least one store is needed", opts.stores)
	}
	if opts.binDir == "" {
		self, err := os.Executable()
		if err != nil {
			return options{}, fmt.Errorf("find own executable: %w", err)
		}
		opts.binDir = filepath.Dir(self)
	}
	abs, err := filepath.Abs(opts.dataDir)
	if err != nil {
		return options{}, err
	}
	opts.dataDir = abs
	return opts, os.MkdirAll(opts.dataDir, 0o755)
}

// component is one child process, under the name the playground gives it.
type component struct {
	name string
	*proc.Child
}

// startComponent starts binary from the bin directory. Its output goes to
// the playground's stderr (the components log to files of their own), and
// it is in its own process group: a terminal's Ctrl-C reaches only the
// playground, which stops the components in order (TiDB, store, PD).
func startComponent(log *slog.Logger, opts options, binary, name string, args ...string) (*component, error) {
	child, err := proc.Start(opts.binDir, binary, "", args...)
	if err != nil {
		return nil, err
	}
	log.Info("started", "component", name, "pid", child.Pid())
	return &component{name: name, Child: child}, nil
}

// stop stops the component, killing it after stopGrace, and logs how it
// went.
func (c *component) stop(log *slog.Logger) {
	if err := c.Stop(stopGrace); err != nil {
		log.Warn("not stopped cleanly", "component", c.name, "err", err)
		return
	}
	log.Info("stopped", "component", c.name)
}

// waitSQL waits until the TiDB at dsn answers SELECT 1. TiDB bootstraps its
// system tables on first start, which takes a while.
func waitSQL(ctx context.Context, dsn string, tidb *component) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return tidb.WaitReady(ctx, readyTimeout, func(ctx context.Context) error {
		queryCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var one int
		return db.QueryRowContext(queryCtx, "SELECT 1").Scan(&one)
	})
}
