package integration

import (
	"context"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	pd "github.com/tikv/pd/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// storeClient talks raw tikvpb to the cluster's store, for what the stock
// clients cannot do on purpose (a client that dies mid-commit, bad input).
type storeClient struct {
	tikv tikvpb.TikvClient
	ctx  *kvrpcpb.Context
}

// storeClient dials the store and builds a request context for the region
// holding all keys.
func (c *cluster) storeClient(t *testing.T) *storeClient {
	t.Helper()
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require(t, err, "dial store")
	t.Cleanup(func() { conn.Close() })
	region := regionWithLeader(t, stockPD(t, c.pd.client))
	return &storeClient{
		tikv: tikvpb.NewTikvClient(conn),
		ctx:  &kvrpcpb.Context{RegionId: region.Meta.GetId(), RegionEpoch: region.Meta.GetRegionEpoch(), Peer: region.Leader},
	}
}

// regionWithLeader asks PD for the region holding all keys until PD knows
// its leader: right after bootstrap PD has the region but learns the leader
// only from the store's first region heartbeat.
func regionWithLeader(t *testing.T, client pd.Client) *pd.Region {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		region, err := client.GetRegion(context.Background(), nil)
		require(t, err, "get region")
		if region.Leader != nil {
			return region
		}
		if time.Now().After(deadline) {
			t.Fatalf("PD knows no leader of region %d after 10 s", region.Meta.GetId())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tso returns a fresh timestamp from PD.
func (c *cluster) tso(t *testing.T, ctx context.Context) uint64 {
	t.Helper()
	physical, logical, err := stockPD(t, c.pd.client).GetTS(ctx)
	require(t, err, "tso")
	return uint64(physical)<<18 | uint64(logical)
}

// scanLocks lists every lock in the store at the latest timestamp.
func (c *cluster) scanLocks(t *testing.T, ctx context.Context) []*kvrpcpb.LockInfo {
	t.Helper()
	s := c.storeClient(t)
	resp, err := s.tikv.KvScanLock(ctx, &kvrpcpb.ScanLockRequest{Context: s.ctx, MaxVersion: c.tso(t, ctx), Limit: 1024})
	require(t, err, "scan lock")
	if resp.GetRegionError() != nil || resp.GetError() != nil {
		t.Fatalf("scan lock: %v %v", resp.GetRegionError(), resp.GetError())
	}
	return resp.GetLocks()
}

func kvPut(key, value string) *kvrpcpb.Mutation {
	return &kvrpcpb.Mutation{Op: kvrpcpb.Op_Put, Key: []byte(key), Value: []byte(value)}
}

// prewriteErr prewrites mutations and returns the first key error.
func (s *storeClient) prewriteErr(t *testing.T, ctx context.Context, startTS uint64, primary []byte, ttlMs uint64, mutations ...*kvrpcpb.Mutation) *kvrpcpb.KeyError {
	t.Helper()
	resp, err := s.tikv.KvPrewrite(ctx, &kvrpcpb.PrewriteRequest{
		Context: s.ctx, Mutations: mutations, PrimaryLock: primary, StartVersion: startTS, LockTtl: ttlMs,
		TxnSize: uint64(len(mutations)),
	})
	require(t, err, "prewrite")
	if resp.GetRegionError() != nil {
		t.Fatalf("prewrite region error: %v", resp.GetRegionError())
	}
	if len(resp.GetErrors()) > 0 {
		return resp.GetErrors()[0]
	}
	return nil
}

func (s *storeClient) prewrite(t *testing.T, ctx context.Context, startTS uint64, primary []byte, ttlMs uint64, mutations ...*kvrpcpb.Mutation) {
	t.Helper()
	if keyErr := s.prewriteErr(t, ctx, startTS, primary, ttlMs, mutations...); keyErr != nil {
		t.Fatalf("prewrite: %v", keyErr)
	}
}

func (s *storeClient) commit(t *testing.T, ctx context.Context, startTS, commitTS uint64, keys ...[]byte) {
	t.Helper()
	resp, err := s.tikv.KvCommit(ctx, &kvrpcpb.CommitRequest{Context: s.ctx, StartVersion: startTS, CommitVersion: commitTS, Keys: keys})
	require(t, err, "commit")
	if resp.GetRegionError() != nil || resp.GetError() != nil {
		t.Fatalf("commit: %v %v", resp.GetRegionError(), resp.GetError())
	}
}

// safeTS is the store's safe ts for stale reads.
func (s *storeClient) safeTS(t *testing.T, ctx context.Context) uint64 {
	t.Helper()
	resp, err := s.tikv.GetStoreSafeTS(ctx, &kvrpcpb.StoreSafeTSRequest{KeyRange: &kvrpcpb.KeyRange{}})
	require(t, err, "get store safe ts")
	return resp.GetSafeTs()
}

// waitFor polls cond every 100 ms and fails the test if it does not hold
// within 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, 15*time.Second, what, cond)
}

// waitForWithin is waitFor with another time limit.
func waitForWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
