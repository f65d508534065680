package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

const (
	// readyTimeout bounds how long PD or the store may take to serve.
	readyTimeout = time.Minute
	// stopGrace is how long a child gets to exit after SIGTERM before
	// SIGKILL.
	stopGrace = 10 * time.Second
)

// child is a started TinyKV binary whose output goes to a log file.
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
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// waitHTTP polls url until it answers 200 OK, failing early if the child
// exits.
func (c *child) waitHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		if httpOK(ctx, url) {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited (%v) before serving; log in %s", c.name, c.err, c.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s did not serve %s: %w; log in %s", c.name, url, ctx.Err(), c.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func httpOK(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM, then SIGKILL if the child is still running after
// stopGrace, and waits for it to exit. It reports an unclean exit, also
// one that happened before stop was called.
func (c *child) stop() error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", c.name, err)
	}
	select {
	case <-c.exited:
		if c.err != nil {
			return fmt.Errorf("%s exited: %w; log in %s", c.name, c.err, c.logPath)
		}
		return nil
	case <-time.After(stopGrace):
	}
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", c.name, err)
	}
	<-c.exited
	return fmt.Errorf("%s ignored SIGTERM for %s and was killed", c.name, stopGrace)
}

// cluster is one PD and one store started by the bench, with data and logs
// under one directory.
type cluster struct {
	pd, store *child
	pdAddr    string
}

// startCluster starts tinyscheduler-server and tinykv-server from binDir on
// free loopback ports and waits until both serve.
func startCluster(ctx context.Context, binDir, dir string) (*cluster, error) {
	addrs, err := freeAddrs(4)
	if err != nil {
		return nil, err
	}
	pdClient, pdPeer, storeAddr, statusAddr := addrs[0], addrs[1], addrs[2], addrs[3]
	pd, err := startChild(binDir, "tinyscheduler-server", filepath.Join(dir, "pd.log"),
		"--name", "bench-pd", "--data-dir", filepath.Join(dir, "pd"),
		"--client-urls", "http://"+pdClient, "--peer-urls", "http://"+pdPeer)
	if err != nil {
		return nil, err
	}
	c := &cluster{pd: pd, pdAddr: pdClient}
	if err := pd.waitHTTP(ctx, "http://"+pdClient+"/pd/api/v1/status"); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	c.store, err = startChild(binDir, "tinykv-server", filepath.Join(dir, "store.log"),
		"--pd", pdClient, "--addr", storeAddr, "--status-addr", statusAddr,
		"--data-dir", filepath.Join(dir, "store"))
	if err != nil {
		return nil, errors.Join(err, c.stop())
	}
	if err := c.store.waitHTTP(ctx, "http://"+statusAddr+"/status"); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	return c, nil
}

// stop stops the store, then PD.
func (c *cluster) stop() error {
	var errs []error
	if c.store != nil {
		errs = append(errs, c.store.stop())
	}
	return errors.Join(append(errs, c.pd.stop())...)
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
