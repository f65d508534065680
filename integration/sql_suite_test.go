package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/tinykv/tinykv/internal/testutil"
)

// step is one statement of the SQL suite, run in a named session.
type step struct {
	session string // "a" (default) or "b"
	sql     string
	// execOnly steps are compared only on success vs error code, not on
	// their result (for outputs that legitimately differ between stores,
	// such as checksums — unistore's is a stub).
	execOnly bool
}

// sqlSuite covers DDL, DML, queries of every shape TiDB pushes down, types,
// NULLs, collations, transactions across two sessions, statistics and
// checks. Every step's outcome on TinyKV is compared with TiDB's embedded
// unistore, the oracle.
var sqlSuite = []step{
	{sql: "CREATE DATABASE suite"},
	{sql: "CREATE DATABASE suite"}, // already exists: same error on both
	{sql: "USE suite"},
	{session: "b", sql: "USE suite"},
	{sql: `CREATE TABLE items (
		id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(40) COLLATE utf8mb4_general_ci, price DECIMAL(12,2),
		qty INT, created DATETIME, tags JSON, note TEXT, UNIQUE KEY uk_name (name), KEY k_qty (qty))`},
	{sql: "INSERT INTO items (name, price, qty, created, tags, note) VALUES ('Apple', 1.25, 10, '2024-01-02 03:04:05', '[\"fruit\", \"red\"]', NULL)"},
	{sql: `INSERT INTO items (name, price, qty, created, tags, note) VALUES
		('banana', 0.50, 25, '2024-02-03 04:05:06', '{"color": "yellow"}', 'soft'),
		('Cherry', 7.00, 0, '2023-12-31 23:59:59', '[]', ''),
		('date', NULL, NULL, NULL, NULL, NULL),
		('Elderberry', 12.34, 3, '2024-06-30 12:00:00', '{"n": 1.5}', 'rare')`},
	{sql: "INSERT INTO items (name, price, qty) VALUES ('apple', 9.99, 1)"}, // unique violation under general_ci
	{sql: "INSERT INTO items (name, price, qty) VALUES ('fig', 3.30, 7) ON DUPLICATE KEY UPDATE qty = qty + 1"},
	{sql: "INSERT INTO items (name, price, qty) VALUES ('FIG', 3.30, 7) ON DUPLICATE KEY UPDATE qty = qty + 100"},
	{sql: "REPLACE INTO items (id, name, price, qty) VALUES (3, 'cherry', 6.50, 4)"},
	{sql: "SELECT * FROM items ORDER BY id"},
	{sql: "SELECT id, name FROM items WHERE id = 2"},
	{sql: "SELECT id, name FROM items WHERE name = 'ELDERBERRY'"},
	{sql: "SELECT name, qty FROM items WHERE qty BETWEEN 1 AND 20 ORDER BY qty DESC, name"},
	{sql: "SELECT name FROM items WHERE qty IS NULL OR price IS NULL"},
	{sql: "SELECT name FROM items WHERE name LIKE '%e%' ORDER BY name LIMIT 3"},
	{sql: "SELECT COUNT(*), COUNT(price), SUM(price), AVG(price), MIN(price), MAX(price), MIN(name), MAX(created) FROM items"},
	{sql: "SELECT qty > 5 AS many, COUNT(*), SUM(qty) FROM items GROUP BY many ORDER BY many"},
	{sql: "SELECT DISTINCT LOWER(LEFT(name, 1)) FROM items ORDER BY 1"},
	{sql: "SELECT JSON_EXTRACT(tags, '$.color'), JSON_LENGTH(tags) FROM items WHERE tags IS NOT NULL ORDER BY id"},
	{sql: "SELECT DATE_FORMAT(created, '%Y-%m'), YEAR(created) FROM items WHERE created > '2024-01-01' ORDER BY created"},
	{sql: "SELECT price * qty, ROUND(price / 3, 4), qty % 4 FROM items WHERE price IS NOT NULL ORDER BY id"},
	{sql: "UPDATE items SET qty = qty * 2, note = CONCAT(IFNULL(note, ''), '!') WHERE price > 1"},
	{sql: "DELETE FROM items WHERE qty = 0"},
	{sql: "SELECT id, name, qty, note FROM items ORDER BY name"},
	{sql: "CREATE TABLE orders (oid INT PRIMARY KEY, item_id INT, amount INT, KEY k_item (item_id))"},
	{sql: "INSERT INTO orders VALUES (1, 1, 3), (2, 1, 4), (3, 2, 10), (4, 5, 1), (5, 99, 7)"},
	{sql: "SELECT i.name, SUM(o.amount) FROM items i JOIN orders o ON o.item_id = i.id GROUP BY i.name ORDER BY i.name"},
	{sql: "SELECT i.name, o.oid FROM items i LEFT JOIN orders o ON o.item_id = i.id ORDER BY i.name, o.oid"},
	{sql: "SELECT name FROM items WHERE id IN (SELECT item_id FROM orders WHERE amount > 3) ORDER BY name"},
	{sql: "SELECT name, (SELECT COUNT(*) FROM orders o WHERE o.item_id = i.id) AS n FROM items i ORDER BY n DESC, name"},
	{sql: "SELECT item_id FROM orders WHERE NOT EXISTS (SELECT 1 FROM items WHERE items.id = orders.item_id)"},
	{sql: "ALTER TABLE orders ADD COLUMN status VARCHAR(10) DEFAULT 'new'"},
	{sql: "ALTER TABLE orders ADD INDEX k_amount (amount)"},
	{sql: "ALTER TABLE orders ADD UNIQUE INDEX uk_item_amount (item_id, amount)"},
	{sql: "ALTER TABLE orders ADD UNIQUE INDEX uk_item (item_id)"}, // item 1 appears twice: duplicate entry
	{sql: "INSERT INTO orders (oid, item_id, amount) VALUES (6, 1, 3)"},
	{sql: `SELECT index_name, non_unique, column_name FROM information_schema.statistics
		WHERE table_schema = 'suite' AND table_name = 'orders' ORDER BY index_name, seq_in_index`},
	{sql: "SELECT oid, status FROM orders WHERE amount > 3 ORDER BY amount"},
	{sql: "ADMIN CHECK TABLE orders"},
	{sql: "INSERT INTO orders (oid, item_id, amount) SELECT oid + 100, item_id, amount * 10 FROM orders"},
	{sql: "SELECT COUNT(*), SUM(amount) FROM orders USE INDEX (k_amount) WHERE amount >= 10"},
	{sql: "ANALYZE TABLE orders"},
	{sql: "ADMIN CHECKSUM TABLE orders", execOnly: true},
	// Statistics v1, on fresh tables (a table analyzed with v2 stays v2): an
	// int handle, and a clustered common handle (TiDB's mixed request).
	{sql: "SET SESSION tidb_analyze_version = 1"},
	{sql: "CREATE TABLE v1int (id INT PRIMARY KEY, k INT, s VARCHAR(8) COLLATE utf8mb4_general_ci, KEY k_k (k))"},
	{sql: "INSERT INTO v1int VALUES (1, 5, 'a'), (2, 5, 'A'), (3, NULL, 'b'), (4, 7, NULL), (5, 9, 'b')"},
	{sql: "CREATE TABLE v1ch (a VARCHAR(8), b INT, c DECIMAL(6,2), PRIMARY KEY (a, b) CLUSTERED, KEY k_c (c))"},
	{sql: "INSERT INTO v1ch VALUES ('x', 1, 1.50), ('y', 2, 1.50), ('x', 3, NULL), ('z', 1, 7.25)"},
	{sql: "ANALYZE TABLE v1int, v1ch"},
	{sql: statsOf("v1int")},
	{sql: statsOf("v1ch")},
	{sql: "SET SESSION tidb_analyze_version = DEFAULT"},
	// COUNT(DISTINCT) pushed down: TiDB sends TiKV a partial aggregation
	// grouped by the distinct arguments.
	{sql: "SET SESSION tidb_opt_distinct_agg_push_down = 1"},
	{sql: "SELECT COUNT(DISTINCT item_id), SUM(DISTINCT amount), COUNT(*) FROM orders"},
	{sql: "SELECT item_id, COUNT(DISTINCT amount) FROM orders GROUP BY item_id ORDER BY item_id"},
	{sql: "SET SESSION tidb_opt_distinct_agg_push_down = DEFAULT"},
	// Pipelined DML: autocommit statements write through flushes, and read
	// back what they flushed for unique checks.
	{sql: "SET SESSION tidb_dml_type = 'bulk'"},
	{sql: "CREATE TABLE bulk (id INT PRIMARY KEY, v INT, s VARCHAR(300), UNIQUE KEY uk_v (v))"},
	{sql: "INSERT INTO bulk VALUES (1, 10, 'a'), (2, 20, REPEAT('x', 280)), (3, 30, 'c')"},
	{sql: "INSERT INTO bulk VALUES (4, 20, 'dup')"},
	{sql: "INSERT INTO bulk VALUES (5, 50, 'e'), (6, 50, 'f')"},
	{sql: "UPDATE bulk SET v = v + 1, s = 'short' WHERE id >= 2"},
	{sql: "UPDATE bulk SET v = 31 WHERE id = 2"},
	{sql: "DELETE FROM bulk WHERE id = 1"},
	{sql: "INSERT INTO bulk SELECT id + 10, v + 100, s FROM bulk"},
	{sql: "REPLACE INTO bulk VALUES (12, 121, 'replaced'), (20, 200, 'new')"},
	{sql: "INSERT IGNORE INTO bulk VALUES (21, 200, 'ignored'), (22, 220, 'kept')"},
	{sql: "SHOW WARNINGS"},
	{sql: "SELECT id, v, s FROM bulk ORDER BY id"},
	{sql: "ADMIN CHECK TABLE bulk"},
	{sql: "SET SESSION tidb_dml_type = DEFAULT"},
	// Two sessions: an optimistic transaction loses to a concurrent commit.
	{sql: "BEGIN OPTIMISTIC"},
	{sql: "UPDATE orders SET amount = 1000 WHERE oid = 1"},
	{session: "b", sql: "UPDATE orders SET amount = 2000 WHERE oid = 1"},
	{sql: "COMMIT"},
	{sql: "SELECT amount FROM orders WHERE oid = 1"},
	// Pessimistic: a locked row cannot be locked again with NOWAIT.
	{sql: "BEGIN PESSIMISTIC"},
	{sql: "SELECT amount FROM orders WHERE oid = 2 FOR UPDATE"},
	{session: "b", sql: "BEGIN PESSIMISTIC"},
	{session: "b", sql: "SELECT amount FROM orders WHERE oid = 2 FOR UPDATE NOWAIT"},
	{session: "b", sql: "ROLLBACK"},
	{sql: "UPDATE orders SET amount = amount + 1 WHERE oid = 2"},
	{sql: "ROLLBACK"},
	{sql: "SELECT amount FROM orders WHERE oid = 2"},
	// A transaction of more than 100k rows.
	{sql: "CREATE TABLE big (id INT PRIMARY KEY, v INT)"},
	{sql: "BEGIN"},
	{sql: "INSERT INTO big VALUES (1, 1)"},
}

// statsOf selects what ANALYZE stored for table: per column and index its
// distinct and NULL counts, sizes, correlation and buckets.
func statsOf(table string) string {
	return `SELECT h.is_index, h.hist_id, h.distinct_count, h.null_count, h.tot_col_size, h.stats_ver,
		ROUND(h.correlation, 6), b.bucket_id, b.count, b.repeats, HEX(b.lower_bound), HEX(b.upper_bound)
		FROM mysql.stats_histograms h JOIN information_schema.tables t ON h.table_id = t.tidb_table_id
		LEFT JOIN mysql.stats_buckets b ON b.table_id = h.table_id AND b.is_index = h.is_index AND b.hist_id = h.hist_id
		WHERE t.table_schema = 'suite' AND t.table_name = '` + table + `' ORDER BY 1, 2, 8`
}

func init() {
	for range 17 { // 2^17 = 131072 rows
		sqlSuite = append(sqlSuite, step{sql: "INSERT INTO big SELECT id + (SELECT MAX(id) FROM big), v + 1 FROM big"})
	}
	sqlSuite = append(sqlSuite,
		step{sql: "COMMIT"},
		step{sql: "SELECT COUNT(*), SUM(v), MAX(id) FROM big"},
		step{sql: "TRUNCATE TABLE big"},
		step{sql: "SELECT COUNT(*) FROM big"},
		step{sql: "DROP TABLE orders"},
		step{sql: "SELECT * FROM orders"},
		step{sql: "SHOW VARIABLES LIKE 'tidb_txn_mode'"},
		step{sql: "SELECT table_name, table_rows > 0 FROM information_schema.tables WHERE table_schema = 'suite' ORDER BY table_name"},
		step{sql: "DROP DATABASE suite"},
	)
}

// TestSQLSuiteAgainstUnistore runs sqlSuite on TiDB over TinyKV and on TiDB
// over its embedded unistore, and requires the same outcome for every step:
// the same rows (sorted unless the query orders them) or the same MySQL
// error code.
func TestSQLSuiteAgainstUnistore(t *testing.T) {
	c := startCluster(t)
	ours := c.startTiDB(t)
	oracle := startUnistoreTiDB(t)
	ctx := context.Background()
	oursSessions, oracleSessions := sessions(t, ctx, ours), sessions(t, ctx, oracle)
	for i, st := range sqlSuite {
		session := cmpOr(st.session, "a")
		start := time.Now()
		got := runStep(ctx, oursSessions[session], st)
		took := time.Since(start)
		want := runStep(ctx, oracleSessions[session], st)
		if took > 5*time.Second {
			t.Logf("step %d took %v on tinykv: %.60q", i, took, st.sql)
		}
		if got != want {
			t.Fatalf("step %d (session %s) %q:\n  tinykv:   %s\n  unistore: %s", i, session, st.sql, got, want)
		}
	}
	if c.metric(t, `tikv_grpc_msg_total{type="KvFlush"}`) == 0 {
		t.Fatalf("the pipelined DML steps reached the store without a KvFlush")
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func startUnistoreTiDB(t *testing.T) *sql.DB {
	t.Helper()
	port := testutil.FreePort(t)
	dir := t.TempDir()
	startProcess(t, "tidb-server", "--store", "unistore", "--path", dir+"/unistore",
		"--host", "127.0.0.1", "-P", fmt.Sprint(port),
		"--status-host", "127.0.0.1", "--status", fmt.Sprint(testutil.FreePort(t)),
		"--log-file", dir+"/tidb.log", "--temp-dir", dir)
	return waitMySQL(t, port, dir)
}

// sessions opens the two named sessions of the suite on db.
func sessions(t *testing.T, ctx context.Context, db *sql.DB) map[string]*sql.Conn {
	t.Helper()
	out := map[string]*sql.Conn{}
	for _, name := range []string{"a", "b"} {
		conn, err := db.Conn(ctx)
		require(t, err, "open session "+name)
		t.Cleanup(func() { conn.Close() })
		out[name] = conn
	}
	return out
}

// stepTimeout bounds one statement; DDL with a reorganisation is the slowest.
const stepTimeout = 3 * time.Minute

// runStep returns a comparable description of the step's outcome.
func runStep(ctx context.Context, conn *sql.Conn, st step) string {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	rows, err := conn.QueryContext(ctx, st.sql)
	if err != nil {
		return describeError(err)
	}
	defer rows.Close()
	result, err := readRows(rows)
	if err != nil {
		return describeError(err)
	}
	if st.execOnly {
		return "ok"
	}
	if !strings.Contains(strings.ToUpper(st.sql), "ORDER BY") {
		slices.Sort(result)
	}
	return fmt.Sprintf("%d rows %v", len(result), result)
}

func describeError(err error) string {
	var mysqlErr *mysql.MySQLError
	if errors.As(err, &mysqlErr) {
		return fmt.Sprintf("error %d", mysqlErr.Number)
	}
	return "error " + err.Error()
}

func readRows(rows *sql.Rows) ([]string, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var result []string
	values := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range values {
		ptrs[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		fields := make([]string, len(values))
		for i, v := range values {
			if v == nil {
				fields[i] = "NULL"
			} else {
				fields[i] = string(v)
			}
		}
		result = append(result, strings.Join(fields, "|"))
	}
	return result, rows.Err()
}
