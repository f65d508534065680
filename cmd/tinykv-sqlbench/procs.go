package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql" // the MySQL driver TiDB is reached with
)

const (
	// readyTimeout bounds how long a child may take to serve; TiDB
	// bootstraps its system tables first.
	readyTimeout = 5 * time.Minute
	// stopGrace is how long a child gets to exit after SIGTERM before
	// SIGKILL.
	stopGrace = 15 * time.Second
)

// child is a started binary in its own process group, with its output in a
// log file.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has been waited for
	err     error         // the exit status, once exited is closed
}

func startChild(binDir, name, logPath string, args ...string) (*child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer logFile.Close() // the child holds its own descriptor
	c := &child{name: name, cmd: exec.Command(filepath.Join(binDir, name), args...),
		logPath: logPath, exited: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// waitReady calls ready every 200 ms until it succeeds, failing early if
// the child exits.
func (c *child) waitReady(ctx context.Context, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited (%v) before serving; log in %s", c.name, c.err, c.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not serving: %w; log in %s", c.name, err, c.logPath)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// httpReady returns a readiness check that url answers 200 OK.
func httpReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// stop sends SIGTERM to the child's process group, then SIGKILL if the
// child is still running after stopGrace, and waits for it to exit.
func (c *child) stop() error {
	pgid := -c.cmd.Process.Pid
	if err := syscall.Kill(pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s: %w", c.name, err)
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(stopGrace):
	}
	if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", c.name, err)
	}
	<-c.exited
	return fmt.Errorf("%s ignored SIGTERM for %s and was killed", c.name, stopGrace)
}

// env is the started processes and the systems served by them.
type env struct {
	children []*child // in the order they are stopped
	systems  []system // in systemNames order
}

// setup starts TiDB on unistore, and PD, the store and TiDB on the store,
// and waits until both TiDBs answer SQL.
func setup(ctx context.Context, binDir, dir string) (e *env, err error) {
	e = &env{}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.close())
		}
	}()
	uni, err := e.startTiDB(binDir, filepath.Join(dir, "tidb-unistore"), "unistore", filepath.Join(dir, "unistore"))
	if err != nil {
		return e, err
	}
	pdAddr, storeStatus, err := e.startCluster(ctx, binDir, dir)
	if err != nil {
		return e, err
	}
	ours, err := e.startTiDB(binDir, filepath.Join(dir, "tidb-tinykv"), "tikv", pdAddr)
	if err != nil {
		return e, err
	}
	statusAddrs := []map[string]string{
		{"store": storeStatus, "tidb": ours.statusAddr},
		{"tidb": uni.statusAddr},
	}
	for i, t := range []*tidb{ours, uni} {
		db, err := t.connect(ctx)
		if err != nil {
			return e, err
		}
		e.systems = append(e.systems, system{name: systemNames[i], db: db, statusAddrs: statusAddrs[i]})
	}
	return e, nil
}

// startCluster starts tinyscheduler-server and tinykv-server on free
// loopback ports, waits until both serve and returns PD's address and the
// store's status address.
func (e *env) startCluster(ctx context.Context, binDir, dir string) (pdAddr, storeStatus string, err error) {
	addrs, err := freeAddrs(4)
	if err != nil {
		return "", "", err
	}
	pdClient, pdPeer, storeAddr, statusAddr := addrs[0], addrs[1], addrs[2], addrs[3]
	pd, err := startChild(binDir, "tinyscheduler-server", filepath.Join(dir, "pd.log"),
		"--name", "sqlbench-pd", "--data-dir", filepath.Join(dir, "pd"),
		"--client-urls", "http://"+pdClient, "--peer-urls", "http://"+pdPeer)
	if err != nil {
		return "", "", err
	}
	e.children = append([]*child{pd}, e.children...)
	if err := pd.waitReady(ctx, httpReady("http://"+pdClient+"/pd/api/v1/status")); err != nil {
		return "", "", err
	}
	store, err := startChild(binDir, "tinykv-server", filepath.Join(dir, "store.log"),
		"--pd", pdClient, "--addr", storeAddr, "--status-addr", statusAddr,
		"--data-dir", filepath.Join(dir, "store"))
	if err != nil {
		return "", "", err
	}
	e.children = append([]*child{store}, e.children...)
	return pdClient, statusAddr, store.waitReady(ctx, httpReady("http://"+statusAddr+"/status"))
}

// tidb is a started tidb-server and its MySQL and status addresses.
type tidb struct {
	*child
	addr, statusAddr string
}

// startTiDB starts tidb-server on store ("tikv" or "unistore") at path,
// with its log and temporary files in dir.
func (e *env) startTiDB(binDir, dir, store, path string) (*tidb, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tidb dir: %w", err)
	}
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addrs[0])
	_, status, _ := net.SplitHostPort(addrs[1])
	c, err := startChild(binDir, "tidb-server", filepath.Join(dir, "stdout.log"),
		"--store", store, "--path", path, "--host", host, "-P", port,
		"--status-host", host, "--status", status,
		"--log-file", filepath.Join(dir, "tidb.log"), "--log-slow-query", filepath.Join(dir, "slow.log"),
		"--temp-dir", dir)
	if err != nil {
		return nil, err
	}
	e.children = append([]*child{c}, e.children...)
	return &tidb{child: c, addr: addrs[0], statusAddr: addrs[1]}, nil
}

// connect waits until the TiDB answers SELECT 1 and returns a pool to it.
func (t *tidb) connect(ctx context.Context) (*sql.DB, error) {
	db, err := sql.Open("mysql", "root@tcp("+t.addr+")/?interpolateParams=true")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", t.addr, err)
	}
	err = t.waitReady(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return db.PingContext(ctx)
	})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return db, nil
}

// close closes the pools and stops the children, TiDBs first, PD last.
func (e *env) close() error {
	var errs []error
	for _, s := range e.systems {
		errs = append(errs, s.db.Close())
	}
	for _, c := range e.children {
		errs = append(errs, c.stop())
	}
	return errors.Join(errs...)
}

// freeAddrs returns n distinct loopback host:port addresses that were free
// a moment ago.
func freeAddrs(n int) ([]string, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		addrs[i] = l.Addr().String()
	}
	return addrs, nil
}
