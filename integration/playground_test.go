package integration

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tikv/client-go/v2/config"
	"github.com/tikv/client-go/v2/rawkv"
	"github.com/tinykv/tinykv/internal/testutil"
)

// TestPlaygroundStartsStopsAndRestarts drives what `make run` runs: the
// playground starts PD, a store and TiDB, clients use them (client-go and
// MySQL), Ctrl-C stops everything cleanly, and a second start on the same
// data serves the same data.
func TestPlaygroundStartsStopsAndRestarts(t *testing.T) {
	dataDir := t.TempDir()
	pdPort, tidbPort := testutil.FreePort(t), testutil.FreePort(t)
	args := []string{"--data", dataDir, "--bin", binDir,
		"--pd-port", fmt.Sprint(pdPort),
		"--pd-peer-port", fmt.Sprint(testutil.FreePort(t)),
		"--store-port", fmt.Sprint(testutil.FreePort(t)),
		"--status-port", fmt.Sprint(testutil.FreePort(t)),
		"--tidb-port", fmt.Sprint(tidbPort),
		"--tidb-status-port", fmt.Sprint(testutil.FreePort(t))}
	pd := hostPort(pdPort)
	dsn := fmt.Sprintf("root@tcp(127.0.0.1:%d)/", tidbPort)

	first := startPlayground(t, args)
	raw, err := rawkv.NewClientWithOpts(context.Background(), []string{pd}, rawkv.WithSecurity(config.Security{}))
	require(t, err, "rawkv client")
	require(t, raw.Put(ctxT(t), []byte("playground"), []byte("kept")), "put")
	raw.Close()
	db, err := sql.Open("mysql", dsn)
	require(t, err, "mysql")
	for _, stmt := range []string{"CREATE TABLE test.kept (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO test.kept VALUES (1, 'one')"} {
		_, err := db.ExecContext(ctxT(t), stmt)
		require(t, err, stmt)
	}
	db.Close()
	first.interrupt(t)

	second := startPlayground(t, args)
	raw, err = rawkv.NewClientWithOpts(context.Background(), []string{pd}, rawkv.WithSecurity(config.Security{}))
	require(t, err, "rawkv client after restart")
	defer raw.Close()
	v, err := raw.Get(ctxT(t), []byte("playground"))
	if err != nil || string(v) != "kept" {
		t.Fatalf("after restart: %q %v", v, err)
	}
	db, err = sql.Open("mysql", dsn)
	require(t, err, "mysql after restart")
	defer db.Close()
	var got string
	if err := db.QueryRowContext(ctxT(t), "SELECT v FROM test.kept WHERE id = 1").Scan(&got); err != nil || got != "one" {
		t.Fatalf("SQL row after restart: %q %v", got, err)
	}
	second.interrupt(t)
}

type playground struct {
	cmd    *exec.Cmd
	exited chan error
}

// startPlayground runs the playground until it prints that it is ready.
func startPlayground(t *testing.T, args []string) *playground {
	t.Helper()
	cmd := exec.Command(binary("tinykv-playground"), args...)
	stdout, err := cmd.StdoutPipe()
	require(t, err, "stdout pipe")
	var stderr bytes.Buffer // read only after the process has been waited for
	cmd.Stderr = &stderr
	require(t, cmd.Start(), "start playground")
	p := &playground{cmd: cmd, exited: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			if strings.Contains(scanner.Text(), "cluster ready") {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case <-ready:
		return p
	case err := <-p.exited:
		t.Fatalf("playground exited before it was ready: %v\n%s", err, stderr.String())
	case <-time.After(5 * time.Minute):
		t.Fatalf("playground not ready after 5 minutes")
	}
	return nil
}

// interrupt sends Ctrl-C and expects a clean exit.
func (p *playground) interrupt(t *testing.T) {
	t.Helper()
	require(t, p.cmd.Process.Signal(syscall.SIGINT), "SIGINT")
	select {
	case err := <-p.exited:
		require(t, err, "playground exit status")
	case <-time.After(45 * time.Second):
		t.Fatalf("playground did not stop after Ctrl-C")
	}
}
