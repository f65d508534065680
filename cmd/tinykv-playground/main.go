// Command tinykv-playground starts a local TinyKV cluster — a placement
// driver and a store — as child processes with data under one directory,
// waits until both serve, prints how to connect, and stops them cleanly on
// Ctrl-C (SIGINT) or SIGTERM. Started again on the same directory, the
// cluster comes back with its data.
//
// The binaries are looked up next to this executable (make puts them all in
// bin/), or in --bin.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// readyTimeout bounds how long a component may take to start serving.
const readyTimeout = 2 * time.Minute

// stopGrace is how long a component gets to exit after SIGTERM.
const stopGrace = 15 * time.Second

type options struct {
	binDir, dataDir, host     string
	pdPort, storePort, status int
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
	pd, err := startComponent(ctx, log, opts, "tinyscheduler-server", "pd",
		"--data-dir", filepath.Join(opts.dataDir, "pd"),
		"--client-urls", "http://"+pdAddr,
		"--peer-urls", fmt.Sprintf("http://%s:%d", opts.host, opts.pdPort+1),
		"--log-file", filepath.Join(opts.dataDir, "pd.log"))
	if err != nil {
		return err
	}
	defer pd.stop(log)
	if err := waitReady(ctx, "http://"+pdAddr+"/pd/api/v1/status", pd); err != nil {
		return fmt.Errorf("pd: %w", err)
	}

	storeAddr := fmt.Sprintf("%s:%d", opts.host, opts.storePort)
	statusAddr := fmt.Sprintf("%s:%d", opts.host, opts.status)
	store, err := startComponent(ctx, log, opts, "tinykv-server", "tikv",
		"--pd", pdAddr, "--addr", storeAddr, "--status-addr", statusAddr,
		"--data-dir", filepath.Join(opts.dataDir, "tikv"),
		"--log-file", filepath.Join(opts.dataDir, "tikv.log"))
	if err != nil {
		return err
	}
	defer store.stop(log)
	if err := waitReady(ctx, "http://"+statusAddr+"/status", store); err != nil {
		return fmt.Errorf("store: %w", err)
	}

	fmt.Printf("TinyKV cluster ready.\n  PD (and etcd, and /pd/api/v1): %s\n  store: %s (status %s)\n  data and logs: %s\n"+
		"Connect with client-go: txnkv.NewClient([]string{%q}) or rawkv.NewClientWithOpts(ctx, []string{%q}).\nPress Ctrl-C to stop.\n",
		pdAddr, storeAddr, statusAddr, opts.dataDir, pdAddr, pdAddr)
	select {
	case <-ctx.Done():
		log.Info("stopping the cluster")
		return nil
	case <-pd.exited:
		return errors.New("pd exited unexpectedly; see its log")
	case <-store.exited:
		return errors.New("store exited unexpectedly; see its log")
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("tinykv-playground", flag.ContinueOnError)
	var opts options
	fs.StringVar(&opts.binDir, "bin", "", "directory holding the binaries (default: this executable's directory)")
	fs.StringVar(&opts.dataDir, "data", "data", "data directory of the cluster")
	fs.StringVar(&opts.host, "host", "127.0.0.1", "address to serve on")
	fs.IntVar(&opts.pdPort, "pd-port", 2379, "PD client port (the peer port is the next one)")
	fs.IntVar(&opts.storePort, "store-port", 20160, "store gRPC port")
	fs.IntVar(&opts.status, "status-port", 20180, "store status port")
	if err := fs.Parse(args); err != nil {
		return options{}, err
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

// component is one child process.
type component struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

func startComponent(ctx context.Context, log *slog.Logger, opts options, binary, name string, args ...string) (*component, error) {
	cmd := exec.Command(filepath.Join(opts.binDir, binary), args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	c := &component{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	log.Info("started", "component", name, "pid", cmd.Process.Pid)
	return c, nil
}

// stop sends SIGTERM and waits, killing the process after stopGrace.
func (c *component) stop(log *slog.Logger) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		log.Info("stopped", "component", c.name)
	case <-time.After(stopGrace):
		_ = c.cmd.Process.Kill()
		<-c.exited
		log.Warn("killed after the grace period", "component", c.name)
	}
}

// waitReady polls url until it answers 200, the component exits or ctx ends.
func waitReady(ctx context.Context, url string, c *component) error {
	deadline := time.After(readyTimeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.exited:
			return errors.New("exited while starting; see its log")
		case <-deadline:
			return fmt.Errorf("not ready after %s", readyTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
