package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv, when set, makes the test binary act as the child process of a
// test (see runHelper) instead of running the tests.
const helperEnv = "TINYKV_PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runHelper is the child process the tests start:
//
//	serve ADDR  answers 200 on ADDR/ready after a moment, exits 0 on SIGTERM
//	exit N      exits with status N at once
func runHelper(args []string) int {
	switch {
	case len(args) == 2 && args[0] == "serve":
		return serve(args[1])
	case len(args) == 2 && args[0] == "exit":
		status, _ := strconv.Atoi(args[1])
		return status
	}
	fmt.Fprintln(os.Stderr, "unknown helper arguments:", args)
	return 2
}

func serve(addr string) int {
	term, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	time.Sleep(300 * time.Millisecond) // not serving at once, so that WaitReady retries
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(http.ResponseWriter, *http.Request) {})
	go func() { _ = http.Serve(l, mux) }()
	fmt.Println("serving on", addr)
	<-term.Done()
	return 0
}

// startHelper starts this test binary as a helper child with args and
// returns it with the path of its log.
func startHelper(t *testing.T, args ...string) (*Child, string) {
	t.Helper()
	t.Setenv(helperEnv, "1")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "helper.log")
	c, err := Start(filepath.Dir(self), filepath.Base(self), logPath, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(time.Second) })
	return c, logPath
}

func TestReadyChildStopsCleanly(t *testing.T) {
	addrs, err := FreeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	c, logPath := startHelper(t, "serve", addrs[0])
	if err := c.WaitReady(context.Background(), 10*time.Second, HTTPReady("http://"+addrs[0]+"/ready")); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if err := c.Stop(5 * time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-c.Exited():
	default:
		t.Fatal("Exited not closed after Stop")
	}
	out, err := os.ReadFile(logPath)
	if err != nil || !strings.Contains(string(out), "serving on "+addrs[0]) {
		t.Fatalf("log %s: %q %v; want the child's stdout", logPath, out, err)
	}
}

func TestWaitReadyFailsWhenChildExits(t *testing.T) {
	c, logPath := startHelper(t, "exit", "3")
	notYet := func(context.Context) error { return errors.New("not yet") }
	err := c.WaitReady(context.Background(), 10*time.Second, notYet)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), logPath) {
		t.Fatalf("WaitReady: %v; want the exit status and the log path", err)
	}
	if err := c.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Stop after an unclean exit: %v; want the exit status", err)
	}
}

func TestWaitReadyTimesOut(t *testing.T) {
	addrs, err := FreeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := startHelper(t, "serve", addrs[0])
	err = c.WaitReady(context.Background(), 3*time.Second, HTTPReady("http://"+addrs[0]+"/missing"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("WaitReady on a 404: %v; want a deadline error naming the last answer", err)
	}
}

// TestWaitReadyReportsTheLastAnswer: a check cut short by the deadline is
// not what the timeout error reports; the answer before it is.
func TestWaitReadyReportsTheLastAnswer(t *testing.T) {
	addrs, err := FreeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := startHelper(t, "serve", addrs[0])
	calls := 0
	check := func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return errors.New("answered 503")
		}
		<-ctx.Done()
		return ctx.Err()
	}
	err = c.WaitReady(context.Background(), 4*pollInterval, check)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last check: answered 503") {
		t.Fatalf("WaitReady: %v; want a deadline error naming the 503", err)
	}
}

func TestWaitReadyEndsWithContext(t *testing.T) {
	addrs, err := FreeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := startHelper(t, "serve", addrs[0])
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	err = c.WaitReady(ctx, time.Minute, HTTPReady("http://"+addrs[0]+"/missing"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitReady with a canceled context: %v", err)
	}
}

// TestStopKillsGroupAfterGrace stops a shell that ignores SIGTERM and has
// a child of its own: both must be killed once the grace period is over.
func TestStopKillsGroupAfterGrace(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "sh.log")
	c, err := Start("/bin", "sh", logPath, "-c", `trap "" TERM; sleep 100 & echo "sleeper $!"; wait`)
	if err != nil {
		t.Fatal(err)
	}
	var sleeper int
	err = c.WaitReady(context.Background(), 10*time.Second, func(context.Context) error {
		out, err := os.ReadFile(logPath)
		if err != nil {
			return err
		}
		_, err = fmt.Sscanf(string(out), "sleeper %d", &sleeper)
		return err
	})
	if err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	const grace = 300 * time.Millisecond
	start := time.Now()
	err = c.Stop(grace)
	if err == nil || !strings.Contains(err.Error(), "was killed") {
		t.Fatalf("Stop: %v; want that the child was killed", err)
	}
	if elapsed := time.Since(start); elapsed < grace {
		t.Fatalf("killed after %s, before the grace period of %s", elapsed, grace)
	}
	for deadline := time.Now().Add(5 * time.Second); running(sleeper); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the shell's child %d survived the kill of its process group", sleeper)
		}
	}
}

// running reports whether process pid exists and is not a zombie.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')') // the state follows the command name
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

func TestFreeAddrs(t *testing.T) {
	addrs, err := FreeAddrs(4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, addr := range addrs {
		if seen[addr] {
			t.Fatalf("%s returned twice in %v", addr, addrs)
		}
		seen[addr] = true
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		l.Close()
	}
}
