package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Names of the workloads, in the order they run.
var workloadNames = []string{"point_select", "update_index", "read_write"}

const (
	rangeSize = 100 // rows a range select covers, as sysbench's default
	loadBatch = 200 // rows per INSERT when the table is loaded
)

// SQL statements of sysbench's oltp scripts, simplified; the
// connections have no default database.
const (
	pointSelect    = "SELECT c FROM sbtest.sbtest1 WHERE id=?"
	simpleRange    = "SELECT c FROM sbtest.sbtest1 WHERE id BETWEEN ? AND ?"
	sumRange       = "SELECT SUM(k) FROM sbtest.sbtest1 WHERE id BETWEEN ? AND ?"
	orderRange     = "SELECT c FROM sbtest.sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c"
	distinctRange  = "SELECT DISTINCT c FROM sbtest.sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c"
	updateIndex    = "UPDATE sbtest.sbtest1 SET k=k+1 WHERE id=?"
	updateNonIndex = "UPDATE sbtest.sbtest1 SET c=? WHERE id=?"
	deleteRow      = "DELETE FROM sbtest.sbtest1 WHERE id=?"
	insertRow      = "INSERT INTO sbtest.sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)"
)

// stmt is one statement with its arguments; read statements return rows.
type stmt struct {
	query string
	args  []any
	read  bool
}

// operation is what one operation of a workload executes.
type operation struct {
	txn   bool // the statements run in one transaction
	stmts []stmt
}

// statements counts the statements the operation sends, BEGIN and COMMIT
// included.
func (op operation) statements() int {
	if op.txn {
		return len(op.stmts) + 2
	}
	return len(op.stmts)
}

// nextOperation draws workload w's next operation on a table of size rows.
func nextOperation(w string, r *rand.Rand, size int) operation {
	id := func() int { return 1 + r.IntN(size) }
	switch w {
	case "point_select":
		return operation{stmts: []stmt{{pointSelect, []any{id()}, true}}}
	case "update_index":
		return operation{stmts: []stmt{{updateIndex, []any{id()}, false}}}
	}
	var stmts []stmt
	for range 10 {
		stmts = append(stmts, stmt{pointSelect, []any{id()}, true})
	}
	for _, q := range []string{simpleRange, sumRange, orderRange, distinctRange} {
		from := 1 + r.IntN(max(size-rangeSize+1, 1))
		stmts = append(stmts, stmt{q, []any{from, from + rangeSize - 1}, true})
	}
	gone := id()
	stmts = append(stmts,
		stmt{updateIndex, []any{id()}, false},
		stmt{updateNonIndex, []any{sbString(r, 10), id()}, false},
		stmt{deleteRow, []any{gone}, false},
		stmt{insertRow, []any{gone, id(), sbString(r, 10), sbString(r, 5)}, false})
	return operation{txn: true, stmts: stmts}
}

// sbString returns sysbench's column filler: groups of 11 random digits
// joined by '-'.
func sbString(r *rand.Rand, groups int) string {
	parts := make([]string, groups)
	for i := range parts {
		parts[i] = fmt.Sprintf("%011d", r.Int64N(1e11))
	}
	return strings.Join(parts, "-")
}

// querier is what runs statements: a connection pool or a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// execute runs op on db.
func execute(ctx context.Context, db *sql.DB, op operation) error {
	if !op.txn {
		return execAll(ctx, db, op.stmts)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := execAll(ctx, tx, op.stmts); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// execAll runs stmts in order, reading every row of the read statements.
func execAll(ctx context.Context, q querier, stmts []stmt) error {
	for _, s := range stmts {
		if err := execOne(ctx, q, s); err != nil {
			return fmt.Errorf("%s: %w", s.query, err)
		}
	}
	return nil
}

func execOne(ctx context.Context, q querier, s stmt) error {
	if !s.read {
		_, err := q.ExecContext(ctx, s.query, s.args...)
		return err
	}
	rows, err := q.QueryContext(ctx, s.query, s.args...)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	return errors.Join(rows.Err(), rows.Close())
}

// prepare creates sbtest.sbtest1 with size rows on db and analyzes it.
func prepare(ctx context.Context, db *sql.DB, size int) error {
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS sbtest",
		"CREATE TABLE sbtest.sbtest1 (id INT AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL DEFAULT 0, " +
			"c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k))",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	r := rand.New(rand.NewPCG(0, 0))
	for first := 1; first <= size; first += loadBatch {
		q, args := insertBatch(r, first, min(first+loadBatch-1, size), size)
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("load rows from %d: %w", first, err)
		}
	}
	if _, err := db.ExecContext(ctx, "ANALYZE TABLE sbtest.sbtest1"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

// insertBatch returns an INSERT of the rows with ids first to last.
func insertBatch(r *rand.Rand, first, last, size int) (string, []any) {
	var b strings.Builder
	b.WriteString("INSERT INTO sbtest.sbtest1 (id, k, c, pad) VALUES ")
	var args []any
	for id := first; id <= last; id++ {
		if id > first {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
		args = append(args, id, 1+r.IntN(size), sbString(r, 10), sbString(r, 5))
	}
	return b.String(), args
}
