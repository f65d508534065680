package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/tinykv/tinykv/internal/testutil"
)

// startTiDB starts an unmodified tidb-server on the cluster and returns a
// MySQL connection pool once SELECT 1 answers.
func (c *cluster) startTiDB(t *testing.T) *sql.DB {
	t.Helper()
	port := testutil.FreePort(t)
	dir := t.TempDir()
	startProcess(t, "tidb-server", "--store", "tikv", "--path", c.pd.client,
		"--host", "127.0.0.1", "-P", fmt.Sprint(port),
		"--status-host", "127.0.0.1", "--status", fmt.Sprint(testutil.FreePort(t)),
		"--log-file", dir+"/tidb.log", "--temp-dir", dir)
	return waitMySQL(t, port, dir)
}

// mustExecOn returns a function that runs a statement on db and fails the
// test if it fails.
func mustExecOn(t *testing.T, ctx context.Context, db *sql.DB) func(query string, args ...any) {
	return func(query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, query, args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
}

// waitMySQL opens a pool to the TiDB on port once it answers SELECT 1.
func waitMySQL(t *testing.T, port int, logDir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port))
	require(t, err, "open mysql")
	t.Cleanup(func() { db.Close() })
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var one int
		err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		cancel()
		if err == nil {
			return db
		}
		if time.Now().After(deadline) {
			t.Fatalf("TiDB did not answer SELECT 1 within 5 minutes: %v (log in %s)", err, logDir)
		}
		time.Sleep(time.Second)
	}
}

// TestTiDBOnTinyKV: an unmodified TiDB bootstraps on the cluster with its
// default settings and serves DDL, DML and pushed-down queries.
func TestTiDBOnTinyKV(t *testing.T) {
	c := startCluster(t)
	db := c.startTiDB(t)
	ctx := ctxT(t)
	exec := mustExecOn(t, ctx, db)
	exec("CREATE DATABASE shop")
	exec("CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(32), price DECIMAL(10,2), qty INT, KEY by_name (name))")
	for i := 1; i <= 50; i++ {
		exec("INSERT INTO shop.items VALUES (?, ?, ?, ?)", i, fmt.Sprintf("item-%02d", i%10), float64(i)*1.5, i%7)
	}
	var count int
	var total float64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), SUM(price) FROM shop.items WHERE qty > 2").Scan(&count, &total); err != nil {
		t.Fatalf("aggregate: %v", err)
	}
	wantCount, wantTotal := 0, 0.0
	for i := 1; i <= 50; i++ {
		if i%7 > 2 {
			wantCount++
			wantTotal += float64(i) * 1.5
		}
	}
	if count != wantCount || total != wantTotal {
		t.Fatalf("COUNT/SUM = %d/%v, want %d/%v", count, total, wantCount, wantTotal)
	}
	rows, err := db.QueryContext(ctx, "SELECT name, COUNT(*) FROM shop.items GROUP BY name ORDER BY name LIMIT 3")
	require(t, err, "group by")
	var groups []string
	for rows.Next() {
		var name string
		var n int
		require(t, rows.Scan(&name, &n), "scan")
		groups = append(groups, fmt.Sprintf("%s:%d", name, n))
	}
	rows.Close()
	if fmt.Sprint(groups) != "[item-00:5 item-01:5 item-02:5]" {
		t.Fatalf("GROUP BY: %v", groups)
	}
	var id int
	if err := db.QueryRowContext(ctx, "SELECT id FROM shop.items WHERE name = 'item-03' ORDER BY id DESC LIMIT 1").Scan(&id); err != nil || id != 43 {
		t.Fatalf("index lookup: %d %v", id, err)
	}
	exec("UPDATE shop.items SET qty = qty + 100 WHERE id <= 10")
	exec("DELETE FROM shop.items WHERE id > 40")
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM shop.items WHERE qty >= 100").Scan(&count); err != nil || count != 10 {
		t.Fatalf("after UPDATE: %d %v", count, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM shop.items").Scan(&count); err != nil || count != 40 {
		t.Fatalf("after DELETE: %d %v", count, err)
	}
	var name, value string
	if err := db.QueryRowContext(ctx, "SHOW VARIABLES LIKE 'tidb_enable_async_commit'").Scan(&name, &value); err != nil || value != "ON" {
		t.Fatalf("SHOW VARIABLES: %s=%s %v", name, value, err)
	}
}

// TestTiDBStatementsThatReachTheStore runs the statements whose work TiDB
// pushes to the store in their own ways (statistics, checks, checksums,
// locking reads, system tables) and checks each one succeeds with a sane
// result.
func TestTiDBStatementsThatReachTheStore(t *testing.T) {
	c := startCluster(t)
	db := c.startTiDB(t)
	ctx := ctxT(t)
	mustExec := mustExecOn(t, ctx, db)
	mustExec("CREATE TABLE test.t (id INT PRIMARY KEY, k INT, s VARCHAR(20), UNIQUE KEY uk (k), KEY ks (s))")
	mustExec("INSERT INTO test.t VALUES (1, 10, 'a'), (2, 20, 'b'), (3, 30, 'c'), (4, 40, 'd')")
	mustExec("ANALYZE TABLE test.t")
	mustExec("ADMIN CHECK TABLE test.t")
	rows, err := db.QueryContext(ctx, "ADMIN CHECKSUM TABLE test.t")
	require(t, err, "ADMIN CHECKSUM TABLE")
	cols, _ := rows.Columns()
	if !rows.Next() || len(cols) != 5 {
		t.Fatalf("ADMIN CHECKSUM TABLE returned no row or columns %v", cols)
	}
	rows.Close()
	var count int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'test'").Scan(&count); err != nil || count != 1 {
		t.Fatalf("information_schema.tables: %d %v", count, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.cluster_info WHERE type = 'tikv'").Scan(&count); err != nil || count != 1 {
		t.Fatalf("information_schema.cluster_info: %d %v", count, err)
	}

	// SELECT ... FOR UPDATE in one session blocks a writer in another until commit.
	tx, err := db.BeginTx(ctx, nil)
	require(t, err, "begin")
	var k int
	require(t, tx.QueryRowContext(ctx, "SELECT k FROM test.t WHERE id = 1 FOR UPDATE").Scan(&k), "select for update")
	blocked := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, "UPDATE test.t SET k = k + 1000 WHERE id = 1")
		blocked <- err
	}()
	select {
	case err := <-blocked:
		t.Fatalf("UPDATE did not wait for the FOR UPDATE lock: %v", err)
	case <-time.After(time.Second):
	}
	_, err = tx.ExecContext(ctx, "UPDATE test.t SET k = k + 1 WHERE id = 1")
	require(t, err, "update in the locking transaction")
	require(t, tx.Commit(), "commit")
	require(t, <-blocked, "blocked UPDATE after the commit")
	if err := db.QueryRowContext(ctx, "SELECT k FROM test.t WHERE id = 1").Scan(&k); err != nil || k != 1011 {
		t.Fatalf("k after both updates: %d %v", k, err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO test.t VALUES (5, 20, 'dup')"); err == nil {
		t.Fatalf("unique key violation accepted")
	}
	mustExec("TRUNCATE TABLE test.t")
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM test.t").Scan(&count); err != nil || count != 0 {
		t.Fatalf("after TRUNCATE: %d %v", count, err)
	}
}

// TestTiDBClusterDiagnostics: TiDB's cluster_* tables ask every node's
// diagnostics service; the store and PD answer with their load, hardware
// and system figures, and find lines of their own logs, which are in the
// unified log format TiDB parses.
func TestTiDBClusterDiagnostics(t *testing.T) {
	logDir := t.TempDir()
	c := startClusterWith(t, []string{"--log-file", filepath.Join(logDir, "pd.log")},
		[]string{"--log-file", filepath.Join(logDir, "tikv.log")})
	db := c.startTiDB(t)
	ctx := ctxT(t)
	for _, table := range []string{"cluster_load", "cluster_hardware", "cluster_systeminfo"} {
		rows, err := db.QueryContext(ctx, "SELECT type, COUNT(*) FROM information_schema."+table+" GROUP BY type")
		require(t, err, table)
		counts := map[string]int{}
		for rows.Next() {
			var typ string
			var n int
			require(t, rows.Scan(&typ, &n), "scan "+table)
			counts[typ] = n
		}
		require(t, rows.Err(), table)
		if counts["tikv"] == 0 || counts["pd"] == 0 {
			t.Fatalf("%s rows by node type: %v, want tikv and pd rows", table, counts)
		}
	}

	const layout = "2006-01-02 15:04:05"
	rows, err := db.QueryContext(ctx, `SELECT type, level, message FROM information_schema.cluster_log
		WHERE time > ? AND time < ? AND type IN ('tikv', 'pd') AND (message LIKE '%store started%' OR message LIKE '%pd server ready%')`,
		time.Now().Add(-time.Hour).Format(layout), time.Now().Add(time.Hour).Format(layout))
	require(t, err, "cluster_log")
	found := map[string]string{}
	for rows.Next() {
		var typ, level, message string
		require(t, rows.Scan(&typ, &level, &message), "scan cluster_log")
		found[typ] = level + " " + message
	}
	require(t, rows.Err(), "cluster_log")
	if !strings.Contains(found["tikv"], `INFO [node.go:`) || !strings.Contains(found["tikv"], `["store started"]`) ||
		!strings.Contains(found["pd"], `["pd server ready"]`) {
		t.Fatalf("cluster_log lines found: %q", found)
	}
}

// TestTiDBRegionStatistics: the store reports its regions' sizes and flows
// to PD, and TiDB's tables built on PD's statistics show them: the
// table's storage (table_storage_stats), the hot write region
// (tidb_hot_regions) and its recorded history (tidb_hot_regions_history,
// with PD recording every second instead of every 10 minutes).
func TestTiDBRegionStatistics(t *testing.T) {
	pdConfig := filepath.Join(t.TempDir(), "pd.toml")
	require(t, os.WriteFile(pdConfig, []byte("[schedule]\nhot-regions-write-interval = \"1s\"\n"), 0o644), "write PD config")
	c := startClusterWith(t, []string{"--config", pdConfig}, nil)
	db := c.startTiDB(t)
	ctx := ctxT(t)
	mustExec := mustExecOn(t, ctx, db)
	mustExec("CREATE TABLE test.stats (id INT PRIMARY KEY, pad VARCHAR(200))")
	for i := range 10 {
		mustExec(fmt.Sprintf("INSERT INTO test.stats SELECT %d * 1000 + seq, REPEAT('x', 200) FROM "+
			"(WITH RECURSIVE s(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < 1000) SELECT seq FROM s) AS s", i))
	}
	count := func(query string, args ...any) int {
		var n int
		require(t, db.QueryRowContext(ctx, query, args...).Scan(&n), query)
		return n
	}
	waitForWithin(t, 30*time.Second, "the table's storage to be reported", func() bool {
		return count(`SELECT COUNT(*) FROM information_schema.table_storage_stats
			WHERE table_schema = 'test' AND table_name = 'stats' AND region_count = 1 AND table_keys >= 10000 AND table_size >= 2`) == 1
	})
	waitForWithin(t, 30*time.Second, "a hot write region", func() bool {
		return count("SELECT COUNT(*) FROM information_schema.tidb_hot_regions WHERE type = 'write' AND flow_bytes > 0") > 0
	})
	const layout = "2006-01-02 15:04:05"
	waitForWithin(t, 30*time.Second, "the hot region history", func() bool {
		// The time range must be literal: TiDB refuses to scan the history
		// without one it can extract.
		return count(fmt.Sprintf(`SELECT COUNT(*) FROM information_schema.tidb_hot_regions_history
			WHERE update_time > '%s' AND update_time < '%s' AND type = 'write' AND is_leader = 1`,
			time.Now().Add(-time.Hour).Format(layout), time.Now().Add(time.Hour).Format(layout))) > 0
	})
}
