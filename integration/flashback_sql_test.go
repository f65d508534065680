package integration

import (
	"testing"
	"time"
)

// TestTiDBFlashbackCluster: FLASHBACK CLUSTER TO TIMESTAMP restores rows,
// indexes, long values and the schema as they were, through the store's
// PrepareFlashbackToVersion and FlashbackToVersion, and the cluster takes
// writes afterwards.
func TestTiDBFlashbackCluster(t *testing.T) {
	c := startCluster(t)
	db := c.startTiDB(t)
	ctx := ctxT(t)
	mustExec := mustExecOn(t, ctx, db)
	mustExec("CREATE TABLE test.f (id INT PRIMARY KEY, v INT, s VARCHAR(300), KEY kv (v))")
	mustExec("INSERT INTO test.f VALUES (1, 1, 'a'), (2, 2, REPEAT('x', 300)), (3, 3, 'c')")
	time.Sleep(1500 * time.Millisecond)
	var flashbackTo string
	require(t, db.QueryRowContext(ctx, "SELECT NOW(6)").Scan(&flashbackTo), "now")
	time.Sleep(1500 * time.Millisecond)
	mustExec("UPDATE test.f SET v = v + 100, s = 'changed'")
	mustExec("DELETE FROM test.f WHERE id = 3")
	mustExec("INSERT INTO test.f VALUES (4, 4, 'new')")
	mustExec("CREATE TABLE test.later (id INT)")

	mustExec("FLASHBACK CLUSTER TO TIMESTAMP '" + flashbackTo + "'")

	rows, err := db.QueryContext(ctx, "SELECT id, v, LENGTH(s) FROM test.f USE INDEX (kv) WHERE v > 0 ORDER BY v")
	require(t, err, "select through the index")
	var got [][3]int
	for rows.Next() {
		var r [3]int
		require(t, rows.Scan(&r[0], &r[1], &r[2]), "scan")
		got = append(got, r)
	}
	require(t, rows.Err(), "rows")
	rows.Close()
	if want := [][3]int{{1, 1, 1}, {2, 2, 300}, {3, 3, 1}}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("rows after the flashback: %v, want %v", got, want)
	}
	mustExec("ADMIN CHECK TABLE test.f")
	var tables int
	require(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'test' AND table_name = 'later'").Scan(&tables), "tables")
	if tables != 0 {
		t.Fatalf("a table created after the flashback point survived it")
	}
	mustExec("INSERT INTO test.f VALUES (5, 5, 'after')")
	var count int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM test.f").Scan(&count); err != nil || count != 4 {
		t.Fatalf("rows after a write that follows the flashback: %d %v", count, err)
	}
}
