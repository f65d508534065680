package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	pd "github.com/tikv/pd/client"
	"github.com/tinykv/tinykv/internal/proc"
)

const (
	// readyTimeout bounds how long PD or a store may take to serve, and
	// how long PD may take to place every region's replicas.
	readyTimeout = time.Minute
	// stopGrace is how long a child gets to exit after SIGTERM before
	// SIGKILL.
	stopGrace = 10 * time.Second
	// replicaPoll is how often the replica placement is checked.
	replicaPoll = 200 * time.Millisecond
)

// storeConfig makes the stores heartbeat PD every second, so that PD
// places replicas on stores that join without waiting TiKV's ten seconds.
const storeConfig = "[raftstore]\npd-store-heartbeat-tick-interval = \"1s\"\n"

// cluster is one PD and the stores started by the bench, with data and logs
// under one directory.
type cluster struct {
	pd     *proc.Child
	stores []*proc.Child // in the order they were started
	pdAddr string
}

// startCluster starts tinyscheduler-server and n tinykv-servers from
// binDir on free loopback ports, PD keeping n replicas of every region,
// and waits until each serves.
func startCluster(ctx context.Context, binDir, dir string, n int) (*cluster, error) {
	c, err := startPD(ctx, binDir, dir, n)
	if err != nil {
		return nil, err
	}
	if err := c.startStores(ctx, binDir, dir, n); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	return c, nil
}

// startPD starts PD with [replication] max-replicas = replicas and waits
// until it serves.
func startPD(ctx context.Context, binDir, dir string, replicas int) (*cluster, error) {
	addrs, err := proc.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	client, peer := addrs[0], addrs[1]
	config := filepath.Join(dir, "pd.toml")
	if err := writeFile(config, fmt.Sprintf("[replication]\nmax-replicas = %d\n", replicas)); err != nil {
		return nil, err
	}
	child, err := proc.Start(binDir, "tinyscheduler-server", filepath.Join(dir, "pd.log"),
		"--name", "bench-pd", "--data-dir", filepath.Join(dir, "pd"), "--config", config,
		"--client-urls", "http://"+client, "--peer-urls", "http://"+peer)
	if err != nil {
		return nil, err
	}
	c := &cluster{pd: child, pdAddr: client}
	if err := child.WaitReady(ctx, readyTimeout, proc.HTTPReady("http://"+client+"/pd/api/v1/status")); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	return c, nil
}

// startStores starts n stores one after another, each on its own data
// directory (store<i>) and waited for until it serves: the first
// bootstraps the cluster, the others join it and receive replicas.
func (c *cluster) startStores(ctx context.Context, binDir, dir string, n int) error {
	config := filepath.Join(dir, "store.toml")
	if err := writeFile(config, storeConfig); err != nil {
		return err
	}
	for i := range n {
		addrs, err := proc.FreeAddrs(2)
		if err != nil {
			return err
		}
		addr, status := addrs[0], addrs[1]
		name := fmt.Sprintf("store%d", i+1)
		store, err := proc.Start(binDir, "tinykv-server", filepath.Join(dir, name+".log"),
			"--pd", c.pdAddr, "--addr", addr, "--status-addr", status,
			"--data-dir", filepath.Join(dir, name), "--config", config)
		if err != nil {
			return err
		}
		c.stores = append(c.stores, store)
		if err := store.WaitReady(ctx, readyTimeout, proc.HTTPReady("http://"+status+"/status")); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// storePIDs returns the process ids of the stores.
func (c *cluster) storePIDs() []int {
	pids := make([]int, len(c.stores))
	for i, s := range c.stores {
		pids[i] = s.Pid()
	}
	return pids
}

// stop stops the stores, the last started first, then PD.
func (c *cluster) stop() error {
	var errs []error
	for _, s := range slices.Backward(c.stores) {
		errs = append(errs, s.Stop(stopGrace))
	}
	return errors.Join(append(errs, c.pd.Stop(stopGrace))...)
}

// waitReplicated waits, for up to timeout, until PD reports every region
// with want peers, a leader and no pending peer.
func waitReplicated(ctx context.Context, cli pd.Client, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		state, err := replicaState(ctx, cli, want)
		if err == nil && state == "" {
			return nil
		}
		if err != nil {
			state = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("regions not replicated %d times after %s: %s", want, timeout, state)
		case <-time.After(replicaPoll):
		}
	}
}

// replicaState describes the first region that lacks want peers, a
// leader, or has a pending peer; it is empty when every region is fully
// replicated.
func replicaState(ctx context.Context, cli pd.Client, want int) (string, error) {
	regions, err := cli.BatchScanRegions(ctx, []pd.KeyRange{{}}, 1000)
	if err != nil {
		return "", fmt.Errorf("scan regions: %w", err)
	}
	if len(regions) == 0 {
		return "no region yet", nil
	}
	for _, r := range regions {
		id := r.Meta.GetId()
		switch {
		case len(r.Meta.GetPeers()) != want:
			return fmt.Sprintf("region %d has %d peers", id, len(r.Meta.GetPeers())), nil
		case r.Leader == nil:
			return fmt.Sprintf("region %d has no leader", id), nil
		case len(r.PendingPeers) > 0:
			return fmt.Sprintf("region %d has %d pending peers", id, len(r.PendingPeers)), nil
		}
	}
	return "", nil
}

// replicaCount returns how many peers PD reports for the first region, the
// replication of a cluster PD has settled.
func replicaCount(ctx context.Context, cli pd.Client) (int, error) {
	regions, err := cli.BatchScanRegions(ctx, []pd.KeyRange{{}}, 1)
	if err != nil {
		return 0, fmt.Errorf("scan regions: %w", err)
	}
	if len(regions) == 0 {
		return 0, errors.New("PD knows no region")
	}
	return len(regions[0].Meta.GetPeers()), nil
}

// statusAddrs returns the status addresses of the stores PD knows, except
// tombstones.
func statusAddrs(ctx context.Context, cli pd.Client) ([]string, error) {
	stores, err := cli.GetAllStores(ctx, pd.WithExcludeTombstone())
	if err != nil {
		return nil, fmt.Errorf("list stores: %w", err)
	}
	addrs := make([]string, 0, len(stores))
	for _, s := range stores {
		if a := s.GetStatusAddress(); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("PD knows no store with a status address")
	}
	return addrs, nil
}

// writeFile writes a configuration file.
func writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
