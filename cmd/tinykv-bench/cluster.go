package main

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/tinykv/tinykv/internal/proc"
)

const (
	// readyTimeout bounds how long PD or the store may take to serve.
	readyTimeout = time.Minute
	// stopGrace is how long a child gets to exit after SIGTERM before
	// SIGKILL.
	stopGrace = 10 * time.Second
)

// cluster is one PD and one store started by the bench, with data and logs
// under one directory.
type cluster struct {
	pd, store *proc.Child
	pdAddr    string
}

// startCluster starts tinyscheduler-server and tinykv-server from binDir on
// free loopback ports and waits until both serve.
func startCluster(ctx context.Context, binDir, dir string) (*cluster, error) {
	addrs, err := proc.FreeAddrs(4)
	if err != nil {
		return nil, err
	}
	pdClient, pdPeer, storeAddr, statusAddr := addrs[0], addrs[1], addrs[2], addrs[3]
	pd, err := proc.Start(binDir, "tinyscheduler-server", filepath.Join(dir, "pd.log"),
		"--name", "bench-pd", "--data-dir", filepath.Join(dir, "pd"),
		"--client-urls", "http://"+pdClient, "--peer-urls", "http://"+pdPeer)
	if err != nil {
		return nil, err
	}
	c := &cluster{pd: pd, pdAddr: pdClient}
	if err := pd.WaitReady(ctx, readyTimeout, proc.HTTPReady("http://"+pdClient+"/pd/api/v1/status")); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	c.store, err = proc.Start(binDir, "tinykv-server", filepath.Join(dir, "store.log"),
		"--pd", pdClient, "--addr", storeAddr, "--status-addr", statusAddr,
		"--data-dir", filepath.Join(dir, "store"))
	if err != nil {
		return nil, errors.Join(err, c.stop())
	}
	if err := c.store.WaitReady(ctx, readyTimeout, proc.HTTPReady("http://"+statusAddr+"/status")); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	return c, nil
}

// stop stops the store, then PD.
func (c *cluster) stop() error {
	var errs []error
	if c.store != nil {
		errs = append(errs, c.store.Stop(stopGrace))
	}
	return errors.Join(append(errs, c.pd.Stop(stopGrace))...)
}
