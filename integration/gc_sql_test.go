package integration

import (
	"context"
	"testing"
	"time"

	"github.com/pingcap/tidb/pkg/kv"
	"github.com/pingcap/tidb/pkg/tablecodec"
	"github.com/tinykv/tinykv/internal/testutil"
)

// TestTiDBGCFreesDroppedTables: TiDB's own GC worker, with its default
// settings, resolves locks, advances the GC safe point and destroys the
// ranges of dropped and truncated tables on the store. TiDB's GC runs at
// most every 10 minutes and keeps 10 minutes of history, so this takes
// about 20 minutes and runs only with TINYKV_LONG=1 (make test-long).
func TestTiDBGCFreesDroppedTables(t *testing.T) {
	if !testutil.Long() {
		t.Skip("TiDB's GC takes about 20 minutes; set TINYKV_LONG=1")
	}
	c := startCluster(t)
	db := c.startTiDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	for _, q := range []string{
		"CREATE TABLE test.dropped (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE test.truncated (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE test.kept (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO test.dropped VALUES (1, 'a'), (2, 'b')",
		"INSERT INTO test.truncated VALUES (1, 'a'), (2, 'b')",
		"INSERT INTO test.kept VALUES (1, 'a'), (2, 'b')",
	} {
		_, err := db.ExecContext(ctx, q)
		require(t, err, q)
	}
	rowKey := func(table string) string {
		var id int64
		err := db.QueryRowContext(ctx, "SELECT tidb_table_id FROM information_schema.tables WHERE table_schema = 'test' AND table_name = ?", table).Scan(&id)
		require(t, err, "table id of "+table)
		return string(tablecodec.EncodeRowKeyWithHandle(id, kv.IntHandle(1)))
	}
	dropped, truncated, kept := rowKey("dropped"), rowKey("truncated"), rowKey("kept")
	for _, q := range []string{"DROP TABLE test.dropped", "TRUNCATE TABLE test.truncated"} {
		_, err := db.ExecContext(ctx, q)
		require(t, err, q)
	}

	s := c.storeClient(t)
	deadline := time.Now().Add(30 * time.Minute)
	for len(s.mvcc(t, ctx, dropped).GetWrites()) > 0 || len(s.mvcc(t, ctx, truncated).GetWrites()) > 0 {
		if time.Now().After(deadline) {
			var pending int
			_ = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.gc_delete_range").Scan(&pending)
			t.Fatalf("the dropped tables' rows are still on the store after 30 minutes (%d delete ranges pending)", pending)
		}
		time.Sleep(10 * time.Second)
	}
	if len(s.mvcc(t, ctx, kept).GetWrites()) == 0 {
		t.Fatalf("GC destroyed a live table's row")
	}
	var v string
	err := db.QueryRowContext(ctx, "SELECT v FROM test.kept WHERE id = 1").Scan(&v)
	if err != nil || v != "a" {
		t.Fatalf("live table after GC: %q %v", v, err)
	}
}
