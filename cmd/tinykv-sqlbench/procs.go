package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	_ "github.com/go-sql-driver/mysql" // the MySQL driver TiDB is reached with
	"github.com/tinykv/tinykv/internal/proc"
)

const (
	// readyTimeout bounds how long a child may take to serve; TiDB
	// bootstraps its system tables first.
	readyTimeout = 5 * time.Minute
	// stopGrace is how long a child gets to exit after SIGTERM before
	// SIGKILL.
	stopGrace = 15 * time.Second
)

// env is the started processes and the systems served by them.
type env struct {
	children []*proc.Child // in the order they are stopped
	systems  []system      // in systemNames order
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
		{"pd": pdAddr, "store": storeStatus, "tidb": ours.statusAddr},
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
	addrs, err := proc.FreeAddrs(4)
	if err != nil {
		return "", "", err
	}
	pdClient, pdPeer, storeAddr, statusAddr := addrs[0], addrs[1], addrs[2], addrs[3]
	pd, err := proc.Start(binDir, "tinyscheduler-server", filepath.Join(dir, "pd.log"),
		"--name", "sqlbench-pd", "--data-dir", filepath.Join(dir, "pd"),
		"--client-urls", "http://"+pdClient, "--peer-urls", "http://"+pdPeer)
	if err != nil {
		return "", "", err
	}
	e.children = append([]*proc.Child{pd}, e.children...)
	if err := pd.WaitReady(ctx, readyTimeout, proc.HTTPReady("http://"+pdClient+"/pd/api/v1/status")); err != nil {
		return "", "", err
	}
	store, err := proc.Start(binDir, "tinykv-server", filepath.Join(dir, "store.log"),
		"--pd", pdClient, "--addr", storeAddr, "--status-addr", statusAddr,
		"--data-dir", filepath.Join(dir, "store"))
	if err != nil {
		return "", "", err
	}
	e.children = append([]*proc.Child{store}, e.children...)
	return pdClient, statusAddr, store.WaitReady(ctx, readyTimeout, proc.HTTPReady("http://"+statusAddr+"/status"))
}

// tidb is a started tidb-server and its MySQL and status addresses.
type tidb struct {
	*proc.Child
	addr, statusAddr string
}

// startTiDB starts tidb-server on store ("tikv" or "unistore") at path,
// with its log and temporary files in dir.
func (e *env) startTiDB(binDir, dir, store, path string) (*tidb, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tidb dir: %w", err)
	}
	addrs, err := proc.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addrs[0])
	_, status, _ := net.SplitHostPort(addrs[1])
	c, err := proc.Start(binDir, "tidb-server", filepath.Join(dir, "stdout.log"),
		"--store", store, "--path", path, "--host", host, "-P", port,
		"--status-host", host, "--status", status,
		"--log-file", filepath.Join(dir, "tidb.log"), "--log-slow-query", filepath.Join(dir, "slow.log"),
		"--temp-dir", dir)
	if err != nil {
		return nil, err
	}
	e.children = append([]*proc.Child{c}, e.children...)
	return &tidb{Child: c, addr: addrs[0], statusAddr: addrs[1]}, nil
}

// connect waits until the TiDB answers SELECT 1 and returns a pool to it.
func (t *tidb) connect(ctx context.Context) (*sql.DB, error) {
	db, err := sql.Open("mysql", "root@tcp("+t.addr+")/?interpolateParams=true")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", t.addr, err)
	}
	err = t.WaitReady(ctx, readyTimeout, func(ctx context.Context) error {
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
		errs = append(errs, c.Stop(stopGrace))
	}
	return errors.Join(errs...)
}
