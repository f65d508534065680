package integration

import (
	"context"
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

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	pd "github.com/tikv/pd/client"
	"github.com/tinykv/tinykv/internal/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// pdProcess is a tinyscheduler-server on free loopback ports.
type pdProcess struct {
	*process
	dir, client, peer string
	// extraArgs are further flags of the process.
	extraArgs []string
}

func startPDProcess(t *testing.T, dir, client, peer string, extraArgs ...string) *pdProcess {
	t.Helper()
	args := append([]string{"--name", "pd-it", "--data-dir", dir,
		"--client-urls", "http://" + client, "--peer-urls", "http://" + peer}, extraArgs...)
	p := startProcess(t, "tinyscheduler-server", args...)
	waitHTTP(t, "http://"+client+"/pd/api/v1/status")
	return &pdProcess{process: p, dir: dir, client: client, peer: peer, extraArgs: extraArgs}
}

func (p *pdProcess) restart(t *testing.T) *pdProcess {
	return startPDProcess(t, p.dir, p.client, p.peer, p.extraArgs...)
}

func stockPD(t *testing.T, addr string) pd.Client {
	t.Helper()
	cli, err := pd.NewClientWithContext(context.Background(), []string{"http://" + addr}, pd.SecurityOption{})
	require(t, err, "pd client")
	t.Cleanup(cli.Close)
	return cli
}

// TestPDSurvivesSIGKILL: timestamps issued before a SIGKILL are all below
// every timestamp issued after the restart, and the cluster metadata
// written before the kill is still there.
func TestPDSurvivesSIGKILL(t *testing.T) {
	p := startPDProcess(t, t.TempDir(), hostPort(testutil.FreePort(t)), hostPort(testutil.FreePort(t)))
	cli := stockPD(t, p.client)
	clusterID := cli.GetClusterID(context.Background())
	storeID := bootstrapOverGRPC(t, p.client, clusterID)

	var maxTS atomic.Uint64
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				physical, logical, err := cli.GetTS(context.Background())
				if err != nil {
					t.Errorf("GetTS: %v", err)
					return
				}
				ts := uint64(physical)<<18 | uint64(logical)
				for {
					cur := maxTS.Load()
					if ts <= cur || maxTS.CompareAndSwap(cur, ts) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	cli.Close()
	p.kill()

	p = p.restart(t)
	cli = stockPD(t, p.client)
	if got := cli.GetClusterID(context.Background()); got != clusterID {
		t.Fatalf("cluster id after restart %d, want %d", got, clusterID)
	}
	for range 100 {
		physical, logical, err := cli.GetTS(context.Background())
		require(t, err, "GetTS after restart")
		if ts := uint64(physical)<<18 | uint64(logical); ts <= maxTS.Load() {
			t.Fatalf("timestamp %d after restart <= %d before the kill", ts, maxTS.Load())
		}
	}
	store, err := cli.GetStore(context.Background(), storeID)
	if err != nil || store.GetAddress() != "127.0.0.1:20160" {
		t.Fatalf("store after SIGKILL: %v %v", store, err)
	}
	region, err := cli.GetRegion(context.Background(), []byte("any"))
	if err != nil || region == nil || len(region.Meta.GetPeers()) != 1 {
		t.Fatalf("region after SIGKILL: %v %v", region, err)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("SIGTERM shutdown: %v", err)
	}
}

// bootstrapOverGRPC bootstraps the cluster the way a store does and returns
// the store ID.
func bootstrapOverGRPC(t *testing.T, addr string, clusterID uint64) uint64 {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require(t, err, "dial")
	defer conn.Close()
	raw := pdpb.NewPDClient(conn)
	header := &pdpb.RequestHeader{ClusterId: clusterID}
	ids := make([]uint64, 3)
	for i := range ids {
		resp, err := raw.AllocID(context.Background(), &pdpb.AllocIDRequest{Header: header})
		require(t, err, "alloc id")
		ids[i] = resp.GetId()
	}
	if ids[0] != 1 {
		t.Fatalf("first allocated id %d, want 1", ids[0])
	}
	resp, err := raw.Bootstrap(context.Background(), &pdpb.BootstrapRequest{
		Header: header,
		Store:  &metapb.Store{Id: ids[0], Address: "127.0.0.1:20160"},
		Region: &metapb.Region{Id: ids[1], RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: 1},
			Peers: []*metapb.Peer{{Id: ids[2], StoreId: ids[0]}}},
	})
	if err != nil || resp.GetHeader().GetError() != nil {
		t.Fatalf("bootstrap: %v %v", resp, err)
	}
	return ids[0]
}

// TestPDConfigFile: the TOML file sets the URLs, name and log file; a flag
// given on the command line overrides the file.
func TestPDConfigFile(t *testing.T) {
	dir := t.TempDir()
	client, peer := hostPort(testutil.FreePort(t)), hostPort(testutil.FreePort(t))
	logFile := filepath.Join(dir, "pd.log")
	config := fmt.Sprintf(`name = "from-file"
data-dir = %q
client-urls = "http://%s"
peer-urls = "http://%s"

[log]
level = "debug"
[log.file]
filename = %q
`, filepath.Join(dir, "data"), client, peer, logFile)
	configPath := filepath.Join(dir, "pd.toml")
	require(t, os.WriteFile(configPath, []byte(config), 0o644), "write config")
	p := startProcess(t, "tinyscheduler-server", "--config", configPath, "--name", "from-flag")
	waitHTTP(t, "http://"+client+"/pd/api/v1/status")

	resp, err := http.Get("http://" + client + "/pd/api/v1/config")
	require(t, err, "get config")
	var cfg map[string]any
	require(t, json.NewDecoder(resp.Body).Decode(&cfg), "decode config")
	resp.Body.Close()
	if cfg["name"] != "from-flag" || cfg["data-dir"] != filepath.Join(dir, "data") {
		t.Fatalf("config: %v", cfg)
	}
	require(t, p.stop(), "stop")
	logged, err := os.ReadFile(logFile)
	require(t, err, "read log")
	if !strings.Contains(string(logged), "pd server ready") || !strings.Contains(string(logged), "[INFO]") {
		t.Fatalf("log file does not hold the server's records:\n%s", logged)
	}
}
