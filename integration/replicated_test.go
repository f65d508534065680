package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tikv/client-go/v2/kv"
	pd "github.com/tikv/pd/client"
	"github.com/tinykv/tinykv/internal/testutil"
)

// fastRaftConfig is a store configuration with a 100 ms raft tick, so
// that elections after a kill take about a second instead of TiKV's ten,
// and heartbeats to PD every second, so that PD places replicas on stores
// that join without waiting ten seconds.
const fastRaftConfig = "[raftstore]\nraft-base-tick-interval = \"100ms\"\npd-store-heartbeat-tick-interval = \"1s\"\n"

// replicatedCluster is one PD and several stores, as real processes on
// free ports.
type replicatedCluster struct {
	t      *testing.T
	pd     *pdProcess
	config string
	stores []*storeProcess
}

// storeProcess is one store of a replicatedCluster; proc is nil while it
// is down.
type storeProcess struct {
	proc              *process
	dir, addr, status string
}

// startReplicated starts PD and n stores one after another; the first
// store bootstraps the cluster and PD adds replicas on the others.
// storeConfig is added to every store's TOML configuration.
func startReplicated(t *testing.T, n int, storeConfig ...string) *replicatedCluster {
	t.Helper()
	c := newReplicated(t, n, storeConfig...)
	for i := range c.stores {
		c.start(i)
	}
	return c
}

// newReplicated starts PD and prepares n stores without starting them.
func newReplicated(t *testing.T, n int, storeConfig ...string) *replicatedCluster {
	t.Helper()
	c := &replicatedCluster{
		t:      t,
		pd:     startPDProcess(t, t.TempDir(), hostPort(testutil.FreePort(t)), hostPort(testutil.FreePort(t))),
		config: filepath.Join(t.TempDir(), "tikv.toml"),
	}
	config := fastRaftConfig + strings.Join(storeConfig, "\n")
	require(t, os.WriteFile(c.config, []byte(config), 0o644), "write store config")
	for range n {
		c.stores = append(c.stores, &storeProcess{dir: t.TempDir(), addr: hostPort(testutil.FreePort(t)), status: hostPort(testutil.FreePort(t))})
	}
	t.Cleanup(c.reportLogs)
	return c
}

// reportLogs shows the warnings and errors of every store's log when the
// test failed.
func (c *replicatedCluster) reportLogs() {
	if !c.t.Failed() {
		return
	}
	for i := range c.stores {
		data, err := os.ReadFile(c.logFile(i))
		if err != nil {
			continue
		}
		var notable []string
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "[WARN]") || strings.Contains(line, "[ERROR]") || strings.Contains(line, "[FATAL]") {
				notable = append(notable, line)
			}
		}
		if len(notable) > 40 {
			notable = notable[len(notable)-40:]
		}
		c.t.Logf("store %d (%s) warnings and errors, last %d:\n%s", i, c.stores[i].addr, len(notable), strings.Join(notable, "\n"))
	}
}

// start starts store i (again, on its data directory) and waits until it
// serves.
func (c *replicatedCluster) start(i int) {
	c.t.Helper()
	c.launch(i)
	waitHTTP(c.t, "http://"+c.stores[i].status+"/status")
}

// launch starts store i without waiting for it.
func (c *replicatedCluster) launch(i int) {
	s := c.stores[i]
	s.proc = startProcess(c.t, "tinykv-server", "--pd", c.pd.client, "--addr", s.addr, "--status-addr", s.status,
		"--data-dir", s.dir, "--config", c.config, "--log-file", c.logFile(i))
}

// logFile is where store i logs; every start appends to it.
func (c *replicatedCluster) logFile(i int) string { return filepath.Join(c.stores[i].dir, "tikv.log") }

// logCount counts the lines of store i's log that contain what.
func (c *replicatedCluster) logCount(i int, what string) int {
	c.t.Helper()
	data, err := os.ReadFile(c.logFile(i))
	require(c.t, err, "read the store's log")
	return strings.Count(string(data), what)
}

// kill stops store i with SIGKILL.
func (c *replicatedCluster) kill(i int) {
	c.stores[i].proc.kill()
	c.stores[i].proc = nil
}

// regions lists every region PD knows, with leaders and pending peers.
func (c *replicatedCluster) regions(ctx context.Context, cli pd.Client) ([]*pd.Region, error) {
	return cli.BatchScanRegions(ctx, []pd.KeyRange{{}}, 1000)
}

// waitReplicated waits until PD reports every region with want peers, a
// leader and no pending peer.
func (c *replicatedCluster) waitReplicated(ctx context.Context, cli pd.Client, want int, within time.Duration) {
	c.t.Helper()
	waitForWithin(c.t, within, fmt.Sprintf("every region with %d replicas", want), func() bool {
		regions, err := c.regions(ctx, cli)
		if err != nil || len(regions) == 0 {
			return false
		}
		for _, r := range regions {
			if len(r.Meta.GetPeers()) != want || r.Leader == nil || len(r.PendingPeers) > 0 {
				return false
			}
		}
		return true
	})
}

// leaderStore returns the index of the store leading the region of key.
func (c *replicatedCluster) leaderStore(ctx context.Context, cli pd.Client, key []byte) int {
	c.t.Helper()
	r, err := cli.GetRegion(ctx, key)
	require(c.t, err, "get region")
	stores, err := cli.GetAllStores(ctx)
	require(c.t, err, "get stores")
	for _, st := range stores {
		if st.GetId() == r.Leader.GetStoreId() {
			for i, s := range c.stores {
				if s.addr == st.GetAddress() {
					return i
				}
			}
		}
	}
	c.t.Fatalf("no store leads the region of %q: %v", key, r.Leader)
	return -1
}

// TestReplicatedClusterSurvivesStoreLoss: on three stores PD grows the
// bootstrapped region to three replicas; client-go's transactional and raw
// writes are acknowledged by the replicated region; after a SIGKILL of the
// leader's store the others elect a leader and serve every acknowledged
// write and new ones; the killed store comes back, catches up, and serves
// after the loss of another store.
func TestReplicatedClusterSurvivesStoreLoss(t *testing.T) {
	c := startReplicated(t, 3)
	ctx := ctxT(t)
	pdCli := stockPD(t, c.pd.client)
	c.waitReplicated(ctx, pdCli, 3, 30*time.Second)

	txnCli := (&cluster{t: t, pd: c.pd}).txnClient()
	rawCli := (&cluster{t: t, pd: c.pd}).rawClient()
	write := func(from, to int) {
		t.Helper()
		txn, err := txnCli.Begin()
		require(t, err, "begin")
		for i := from; i < to; i++ {
			require(t, txn.Set([]byte(fmt.Sprintf("k%04d", i)), []byte(fmt.Sprintf("v%d", i))), "set")
		}
		require(t, txn.Commit(ctx), "commit")
		require(t, rawCli.Put(ctx, []byte(fmt.Sprintf("raw%04d", from)), []byte("r")), "raw put")
	}
	readAll := func(to int) {
		t.Helper()
		txn, err := txnCli.Begin()
		require(t, err, "begin")
		for i := range to {
			key := fmt.Sprintf("k%04d", i)
			v, err := txn.Get(ctx, []byte(key))
			if err != nil || string(v) != fmt.Sprintf("v%d", i) {
				t.Fatalf("get %s = %q, %v", key, v, err)
			}
		}
		for from := 0; from < to; from += 100 {
			key := fmt.Sprintf("raw%04d", from)
			if v, err := rawCli.Get(ctx, []byte(key)); err != nil || string(v) != "r" {
				t.Fatalf("raw get %s = %q, %v", key, v, err)
			}
		}
	}
	write(0, 100)
	write(100, 200)

	victim := c.leaderStore(ctx, pdCli, []byte("k"))
	c.kill(victim)
	readAll(200)
	write(200, 300)

	c.start(victim)
	c.waitReplicated(ctx, pdCli, 3, 30*time.Second)
	other := (victim + 1) % len(c.stores)
	c.kill(other)
	readAll(300)
	write(300, 400)
	readAll(400)
}

// TestConcurrentBootstrap: three stores started at once on a fresh PD race
// to bootstrap the cluster; one wins, the others clear the region they
// prepared and join empty, and PD ends with one region of three replicas
// that serves.
func TestConcurrentBootstrap(t *testing.T) {
	c := newReplicated(t, 3)
	for i := range c.stores {
		c.launch(i)
	}
	for _, s := range c.stores {
		waitHTTP(t, "http://"+s.status+"/status")
	}
	ctx := ctxT(t)
	pdCli := stockPD(t, c.pd.client)
	c.waitReplicated(ctx, pdCli, 3, 30*time.Second)
	regions, err := c.regions(ctx, pdCli)
	require(t, err, "scan regions")
	if len(regions) != 1 {
		t.Fatalf("PD knows %d regions after the race, want 1", len(regions))
	}
	rawCli := (&cluster{t: t, pd: c.pd}).rawClient()
	require(t, rawCli.Put(ctx, []byte("k"), []byte("v")), "raw put")
	if v, err := rawCli.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("raw get = %q, %v", v, err)
	}
}

// TestTiDBOnReplicatedCluster: an unmodified TiDB bootstraps on three
// stores (its own table splits make many regions, each with three
// replicas) and keeps committing after a SIGKILL of one store.
func TestTiDBOnReplicatedCluster(t *testing.T) {
	c := startReplicated(t, 3)
	ctx := ctxT(t)
	pdCli := stockPD(t, c.pd.client)
	c.waitReplicated(ctx, pdCli, 3, 30*time.Second)
	db := (&cluster{t: t, pd: c.pd}).startTiDB(t)
	exec := mustExecOn(t, ctx, db)
	exec("CREATE TABLE test.accounts (id INT PRIMARY KEY, balance INT)")
	for i := range 20 {
		exec("INSERT INTO test.accounts VALUES (?, 100)", i)
	}
	c.waitReplicated(ctx, pdCli, 3, 60*time.Second)

	c.kill(c.leaderStore(ctx, pdCli, []byte("t")))
	for i := range 20 {
		exec("UPDATE test.accounts SET balance = balance - 10 WHERE id = ?", i)
		exec("UPDATE test.accounts SET balance = balance + 10 WHERE id = ?", (i+1)%20)
	}
	var total, count int
	if err := db.QueryRowContext(ctx, "SELECT SUM(balance), COUNT(*) FROM test.accounts").Scan(&total, &count); err != nil {
		t.Fatalf("sum after the store loss: %v", err)
	}
	if total != 2000 || count != 20 {
		t.Fatalf("SUM/COUNT = %d/%d after the store loss, want 2000/20", total, count)
	}
}

// TestStoreCatchesUpBySnapshotUnderLoad: with small log GC thresholds, a
// store killed while clients keep committing comes back behind a compacted
// log and catches up by snapshot; it then forms the quorum with the
// leader's store while the third is killed, and with the third alone once
// the leader's store is killed too: every acknowledged write still reads
// back.
func TestStoreCatchesUpBySnapshotUnderLoad(t *testing.T) {
	c := startReplicated(t, 3, "raft-log-gc-tick-interval = \"200ms\"\nraft-log-gc-threshold = 8\nraft-log-gc-count-limit = 16\n")
	ctx := ctxT(t)
	pdCli := stockPD(t, c.pd.client)
	c.waitReplicated(ctx, pdCli, 3, 30*time.Second)
	txnCli := (&cluster{t: t, pd: c.pd}).txnClient()

	var acked sync.Map
	var next atomic.Int64
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for range 4 {
		writers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := next.Add(1)
				key, value := fmt.Sprintf("load%06d", i), fmt.Sprintf("v%d", i)
				txn, err := txnCli.Begin()
				if err != nil {
					continue
				}
				if txn.Set([]byte(key), []byte(value)) == nil && txn.Commit(ctx) == nil {
					acked.Store(key, value)
				}
			}
		})
	}
	leader := c.leaderStore(ctx, pdCli, []byte("load"))
	victim := (leader + 1) % len(c.stores)
	time.Sleep(time.Second)
	c.kill(victim)
	before := next.Load()
	waitForWithin(t, 30*time.Second, "writes while a store is down", func() bool { return next.Load() > before+200 })
	snapshotsBefore := c.logCount(victim, "restored snapshot")
	c.start(victim)
	c.waitReplicated(ctx, pdCli, 3, 30*time.Second)
	waitForWithin(t, 30*time.Second, "the restarted store to restore a snapshot", func() bool {
		return c.logCount(victim, "restored snapshot") > snapshotsBefore
	})
	survivor := 3 - leader - victim
	c.kill(survivor)
	before = next.Load()
	waitForWithin(t, 30*time.Second, "writes with the caught-up store in the quorum", func() bool { return next.Load() > before+100 })
	close(stop)
	writers.Wait()
	c.kill(leader)
	c.start(survivor)
	read, err := txnCli.Begin()
	require(t, err, "begin")
	count := 0
	acked.Range(func(k, v any) bool {
		got, err := read.Get(ctx, []byte(k.(string)))
		if err != nil || string(got) != v.(string) {
			t.Fatalf("acknowledged %s=%s reads %q, %v", k, v, got, err)
		}
		count++
		return true
	})
	if count < 200 {
		t.Fatalf("only %d writes were acknowledged", count)
	}
}

// TestTiDBThroughSplitsUnderLoad: with a small region size, TiDB's writes
// split the table's regions again and again (every split replicated)
// while bank transfers run in concurrent sessions; the total balance reads
// the same throughout and at the end.
func TestTiDBThroughSplitsUnderLoad(t *testing.T) {
	c := startReplicated(t, 3, "split-region-check-tick-interval = \"200ms\"\n[coprocessor]\nregion-split-size = \"256KiB\"\nregion-max-size = \"384KiB\"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pdCli := stockPD(t, c.pd.client)
	c.waitReplicated(ctx, pdCli, 3, 30*time.Second)
	db := (&cluster{t: t, pd: c.pd}).startTiDB(t)
	exec := mustExecOn(t, ctx, db)
	exec("CREATE TABLE test.bank (id INT PRIMARY KEY, balance INT)")
	exec("CREATE TABLE test.filler (id INT PRIMARY KEY, pad VARCHAR(1024))")
	const accounts = 20
	for i := range accounts {
		exec("INSERT INTO test.bank VALUES (?, 1000)", i)
	}
	regionsBefore, err := c.regions(ctx, pdCli)
	require(t, err, "scan regions")

	stop := make(chan struct{})
	var workers sync.WaitGroup
	var transfers atomic.Int64
	for w := range 3 {
		workers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				from, to := (w*7+i)%accounts, (w*7+i*3+1)%accounts
				if from != to && sqlTransfer(ctx, db, from, to) == nil {
					transfers.Add(1)
				}
			}
		})
	}
	workers.Go(func() {
		pad := strings.Repeat("x", 1000)
		for i := 0; i < 3000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.ExecContext(ctx, "INSERT INTO test.filler VALUES (?, ?)", i, pad); err != nil {
				t.Errorf("insert filler %d: %v", i, err)
				return
			}
		}
	})
	checkTotal := func(when string) {
		t.Helper()
		var total int
		if err := db.QueryRowContext(ctx, "SELECT SUM(balance) FROM test.bank").Scan(&total); err != nil || total != accounts*1000 {
			t.Fatalf("SUM(balance) %s = %d, %v; want %d", when, total, err, accounts*1000)
		}
	}
	waitForWithin(t, 2*time.Minute, "the table to split", func() bool {
		checkTotal("during the splits")
		regions, err := c.regions(ctx, pdCli)
		return err == nil && len(regions) >= len(regionsBefore)+5
	})
	close(stop)
	workers.Wait()
	checkTotal("after the splits")
	if transfers.Load() == 0 {
		t.Fatalf("no transfer committed")
	}
	var rows int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM test.filler").Scan(&rows); err != nil || rows == 0 {
		t.Fatalf("filler rows: %d, %v", rows, err)
	}
	c.waitReplicated(ctx, pdCli, 3, 30*time.Second)
}

// sqlTransfer moves 1 from one account to another in one SQL transaction.
func sqlTransfer(ctx context.Context, db *sql.DB, from, to int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE test.bank SET balance = balance - 1 WHERE id = ?", from); err != nil {
		tx.Rollback()
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE test.bank SET balance = balance + 1 WHERE id = ?", to); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// TestFollowerReads: client-go snapshots reading from followers
// (replica read) see every transaction committed before they started, and
// the followers served them.
func TestFollowerReads(t *testing.T) {
	c := startReplicated(t, 3)
	ctx := ctxT(t)
	pdCli := stockPD(t, c.pd.client)
	c.waitReplicated(ctx, pdCli, 3, 30*time.Second)
	txnCli := (&cluster{t: t, pd: c.pd}).txnClient()
	for round := range 10 {
		txn, err := txnCli.Begin()
		require(t, err, "begin")
		for i := range 10 {
			require(t, txn.Set([]byte(fmt.Sprintf("f%02d", i)), []byte(fmt.Sprintf("r%d", round))), "set")
		}
		require(t, txn.Commit(ctx), "commit")
		read, err := txnCli.Begin()
		require(t, err, "begin")
		read.GetSnapshot().SetReplicaRead(kv.ReplicaReadFollower)
		for i := range 10 {
			key := fmt.Sprintf("f%02d", i)
			if v, err := read.Get(ctx, []byte(key)); err != nil || string(v) != fmt.Sprintf("r%d", round) {
				t.Fatalf("follower read of %s in round %d = %q, %v", key, round, v, err)
			}
		}
	}
	served := 0.0
	for _, s := range c.stores {
		served += (&cluster{status: s.status}).metric(t, `tinykv_raftstore_reads_total{kind="replica"}`)
	}
	if served < 1 {
		t.Fatalf("no store served a replica read")
	}
}

// storeRegionCounts returns the region count PD reports for each store
// address, from PD's HTTP API.
func (c *replicatedCluster) storeRegionCounts(t *testing.T) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + c.pd.client + "/pd/api/v1/stores")
	require(t, err, "get stores")
	defer resp.Body.Close()
	var body struct {
		Stores []struct {
			Store struct {
				Address string `json:"address"`
			} `json:"store"`
			Status struct {
				RegionCount int `json:"region_count"`
			} `json:"status"`
		} `json:"stores"`
	}
	require(t, json.NewDecoder(resp.Body).Decode(&body), "decode stores")
	counts := map[string]int{}
	for _, s := range body.Stores {
		counts[s.Store.Address] = s.Status.RegionCount
	}
	return counts
}

// TestJoiningStoreTakesReplicas: a fourth store joins a three-store
// cluster holding several regions; PD moves replicas onto it while every
// region keeps three, and every key still reads back.
func TestJoiningStoreTakesReplicas(t *testing.T) {
	c := newReplicated(t, 4, "split-region-check-tick-interval = \"200ms\"\n[coprocessor]\nregion-split-size = \"64KiB\"\nregion-max-size = \"96KiB\"\n")
	for i := range 3 {
		c.start(i)
	}
	ctx := ctxT(t)
	pdCli := stockPD(t, c.pd.client)
	c.waitReplicated(ctx, pdCli, 3, 30*time.Second)
	rawCli := (&cluster{t: t, pd: c.pd}).rawClient()
	value := strings.Repeat("v", 1000)
	for i := range 600 {
		require(t, rawCli.Put(ctx, []byte(fmt.Sprintf("j%05d", i)), []byte(value)), "raw put")
	}
	waitForWithin(t, 30*time.Second, "several regions", func() bool {
		regions, err := c.regions(ctx, pdCli)
		return err == nil && len(regions) >= 4
	})
	c.waitReplicated(ctx, pdCli, 3, 30*time.Second)

	c.start(3)
	waitForWithin(t, 60*time.Second, "replicas on the joining store", func() bool {
		return c.storeRegionCounts(t)[c.stores[3].addr] >= 2
	})
	c.waitReplicated(ctx, pdCli, 3, 60*time.Second)
	for i := range 600 {
		key := fmt.Sprintf("j%05d", i)
		if v, err := rawCli.Get(ctx, []byte(key)); err != nil || string(v) != value {
			t.Fatalf("raw get %s after the moves: %d bytes, %v", key, len(v), err)
		}
	}
}
