package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tikv/client-go/v2/config"
	"github.com/tikv/client-go/v2/rawkv"
	"github.com/tikv/client-go/v2/txnkv"
	"github.com/tinykv/tinykv/internal/testutil"
)

// cluster is one PD and one store, as real processes on free ports.
type cluster struct {
	t         *testing.T
	pd        *pdProcess
	store     *process
	storeDir  string
	addr      string
	status    string
	storeArgs []string // extra flags for tinykv-server
}

func startCluster(t *testing.T, storeArgs ...string) *cluster {
	t.Helper()
	return startClusterWith(t, nil, storeArgs)
}

// startClusterWith starts a cluster whose PD and store get extra flags.
func startClusterWith(t *testing.T, pdArgs, storeArgs []string) *cluster {
	t.Helper()
	c := &cluster{
		t:         t,
		storeArgs: storeArgs,
		pd:        startPDProcess(t, t.TempDir(), hostPort(testutil.FreePort(t)), hostPort(testutil.FreePort(t)), pdArgs...),
		storeDir:  t.TempDir(),
		addr:      hostPort(testutil.FreePort(t)),
		status:    hostPort(testutil.FreePort(t)),
	}
	c.startStore()
	return c
}

func (c *cluster) startStore() {
	c.t.Helper()
	args := append([]string{"--pd", c.pd.client, "--addr", c.addr, "--status-addr", c.status, "--data-dir", c.storeDir},
		c.storeArgs...)
	c.store = startProcess(c.t, "tinykv-server", args...)
	waitHTTP(c.t, "http://"+c.status+"/status")
}

// restartStore kills the store with SIGKILL and starts it again.
func (c *cluster) restartStore() {
	c.t.Helper()
	c.store.kill()
	c.startStore()
}

func (c *cluster) txnClient() *txnkv.Client {
	c.t.Helper()
	cli, err := txnkv.NewClient([]string{c.pd.client})
	require(c.t, err, "txnkv client")
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

func (c *cluster) rawClient() *rawkv.Client {
	c.t.Helper()
	cli, err := rawkv.NewClientWithOpts(context.Background(), []string{c.pd.client}, rawkv.WithSecurity(config.Security{}))
	require(c.t, err, "rawkv client")
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSmokeTxnAndRaw(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	txnCli := c.txnClient()
	txn, err := txnCli.Begin()
	require(t, err, "begin")
	require(t, txn.Set([]byte("k1"), []byte("v1")), "set")
	require(t, txn.Commit(ctx), "commit")
	txn2, err := txnCli.Begin()
	require(t, err, "begin")
	v, err := txn2.Get(ctx, []byte("k1"))
	if err != nil || string(v) != "v1" {
		t.Fatalf("get k1 = %q, %v", v, err)
	}

	raw := c.rawClient()
	require(t, raw.Put(ctx, []byte("r1"), []byte("x")), "raw put")
	got, err := raw.Get(ctx, []byte("r1"))
	if err != nil || string(got) != "x" {
		t.Fatalf("raw get = %q, %v", got, err)
	}
}

// TestStoreKeepsSysmonAwake checks that the store process the test started
// serves with schedtrace in its GODEBUG, under its own name: tinykv-server
// executes itself again with it, in place, to keep the Go runtime's sysmon
// from parking (package sysmon).
func TestStoreKeepsSysmonAwake(t *testing.T) {
	if strings.Contains(os.Getenv("GODEBUG"), "schedtrace=") {
		t.Skip("GODEBUG sets schedtrace, which the store leaves alone")
	}
	c := startCluster(t)
	proc := fmt.Sprintf("/proc/%d/", c.store.cmd.Process.Pid)
	comm, err := os.ReadFile(proc + "comm")
	require(t, err, "read the store's process name")
	if name := strings.TrimSpace(string(comm)); name != "tinykv-server" {
		t.Errorf("store process is named %q, want tinykv-server (as ps and pgrep show it)", name)
	}
	environ, err := os.ReadFile(proc + "environ")
	require(t, err, "read the store's environment")
	for _, entry := range strings.Split(string(environ), "\x00") {
		if godebug, ok := strings.CutPrefix(entry, "GODEBUG="); ok {
			if !slices.Contains(strings.Split(godebug, ","), "schedtrace=2147483647") {
				t.Fatalf("store runs with GODEBUG=%s, want schedtrace=2147483647 in it", godebug)
			}
			return
		}
	}
	t.Fatalf("store runs without GODEBUG, want schedtrace=2147483647")
}

// metric returns the value of one series from the store's /metrics, or 0
// when the series is absent.
func (c *cluster) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + c.status + "/metrics")
	require(t, err, "get metrics")
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			require(t, err, "parse metric "+series)
			return v
		}
	}
	return 0
}
