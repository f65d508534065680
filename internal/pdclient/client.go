// Package pdclient is the store's client of the placement driver: the calls
// a store makes (ID allocation, bootstrap, store registration, heartbeats,
// the GC safe point) over the upstream pdpb gRPC protocol. Applications use
// the stock PD client instead; it does not expose these store-side calls.
package pdclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// ErrAlreadyBootstrapped is returned by Bootstrap when another store has
// bootstrapped the cluster first.
var ErrAlreadyBootstrapped = errors.New("pd: cluster is already bootstrapped")

// ErrStoreTombstone is returned by GetStore for a store that left the
// cluster: nothing may be sent to it any more.
var ErrStoreTombstone = errors.New("pd: store is tombstone")

// callTimeout bounds one unary call, as the stock client's default.
const callTimeout = 3 * time.Second

// Client talks to one PD member. It is safe for concurrent use.
type Client struct {
	log       *slog.Logger
	conn      *grpc.ClientConn
	pd        pdpb.PDClient
	clusterID uint64

	// mu guards the region heartbeat stream, which is opened lazily and
	// reopened after a failure.
	mu     sync.Mutex
	stream pdpb.PD_RegionHeartbeatClient
	cancel context.CancelFunc
	// onResponse handles what PD answers on the heartbeat stream (operators
	// for the region's leader); nil drops the answers.
	onResponse func(*pdpb.RegionHeartbeatResponse)
}

// Dial connects to the first reachable address (host:port or http://host:port)
// and learns the cluster ID, retrying until ctx ends.
func Dial(ctx context.Context, addrs []string, log *slog.Logger) (*Client, error) {
	for {
		var lastErr error
		for _, addr := range addrs {
			c, err := dialOne(ctx, strings.TrimPrefix(strings.TrimSpace(addr), "http://"), log)
			if err == nil {
				return c, nil
			}
			lastErr = err
		}
		log.Warn("pd not reachable, retrying", "addrs", addrs, "err", lastErr)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pd: connect to %v: %w (last error: %v)", addrs, ctx.Err(), lastErr)
		case <-time.After(time.Second):
		}
	}
}

func dialOne(ctx context.Context, addr string, log *slog.Logger) (*Client, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("pd: dial %s: %w", addr, err)
	}
	c := &Client{log: log, conn: conn, pd: pdpb.NewPDClient(conn)}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.pd.GetMembers(callCtx, &pdpb.GetMembersRequest{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("pd: get members from %s: %w", addr, err)
	}
	c.clusterID = resp.GetHeader().GetClusterId()
	if c.clusterID == 0 {
		conn.Close()
		return nil, fmt.Errorf("pd: %s reported cluster id 0", addr)
	}
	return c, nil
}

// ClusterID returns the ID of the cluster PD serves.
func (c *Client) ClusterID() uint64 { return c.clusterID }

// Close closes the connection and any heartbeat stream.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
	return c.conn.Close()
}

func (c *Client) header() *pdpb.RequestHeader {
	return &pdpb.RequestHeader{ClusterId: c.clusterID}
}

// headerError turns a response header error into a Go error.
func headerError(op string, h *pdpb.ResponseHeader) error {
	if e := h.GetError(); e != nil && e.GetType() != pdpb.ErrorType_OK {
		return fmt.Errorf("pd: %s: %s: %s", op, e.GetType(), e.GetMessage())
	}
	return nil
}

// AllocID returns a new cluster-unique ID.
func (c *Client) AllocID(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.pd.AllocID(ctx, &pdpb.AllocIDRequest{Header: c.header()})
	if err != nil {
		return 0, fmt.Errorf("pd: alloc id: %w", err)
	}
	return resp.GetId(), headerError("alloc id", resp.GetHeader())
}

// IsBootstrapped reports whether the cluster has been bootstrapped.
func (c *Client) IsBootstrapped(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.pd.IsBootstrapped(ctx, &pdpb.IsBootstrappedRequest{Header: c.header()})
	if err != nil {
		return false, fmt.Errorf("pd: is bootstrapped: %w", err)
	}
	return resp.GetBootstrapped(), headerError("is bootstrapped", resp.GetHeader())
}

// Bootstrap records the first store and region.
func (c *Client) Bootstrap(ctx context.Context, store *metapb.Store, region *metapb.Region) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.pd.Bootstrap(ctx, &pdpb.BootstrapRequest{Header: c.header(), Store: store, Region: region})
	if err != nil {
		return fmt.Errorf("pd: bootstrap: %w", err)
	}
	if resp.GetHeader().GetError().GetType() == pdpb.ErrorType_ALREADY_BOOTSTRAPPED {
		return ErrAlreadyBootstrapped
	}
	return headerError("bootstrap", resp.GetHeader())
}

// PutStore registers or updates the store.
func (c *Client) PutStore(ctx context.Context, store *metapb.Store) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.pd.PutStore(ctx, &pdpb.PutStoreRequest{Header: c.header(), Store: store})
	if err != nil {
		return fmt.Errorf("pd: put store: %w", err)
	}
	return headerError("put store", resp.GetHeader())
}

// StoreHeartbeat reports the store's statistics.
func (c *Client) StoreHeartbeat(ctx context.Context, stats *pdpb.StoreStats) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.pd.StoreHeartbeat(ctx, &pdpb.StoreHeartbeatRequest{Header: c.header(), Stats: stats})
	if err != nil {
		return fmt.Errorf("pd: store heartbeat: %w", err)
	}
	return headerError("store heartbeat", resp.GetHeader())
}

// GCSafePoint returns the cluster's GC safe point.
func (c *Client) GCSafePoint(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.pd.GetGCSafePoint(ctx, &pdpb.GetGCSafePointRequest{Header: c.header()})
	if err != nil {
		return 0, fmt.Errorf("pd: get gc safe point: %w", err)
	}
	return resp.GetSafePoint(), headerError("get gc safe point", resp.GetHeader())
}

// OnHeartbeatResponse sets the handler of PD's answers on the region
// heartbeat stream: the operators PD wants a region's leader to carry out.
// The handler runs on the stream's receiving goroutine; it must not block
// for long.
func (c *Client) OnHeartbeatResponse(handle func(*pdpb.RegionHeartbeatResponse)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onResponse = handle
}

// RegionHeartbeat sends one region report on the shared stream, opening it
// if needed. PD answers with errors, logged here, and operators, handed to
// the OnHeartbeatResponse handler.
func (c *Client) RegionHeartbeat(req *pdpb.RegionHeartbeatRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := c.pd.RegionHeartbeat(ctx)
		if err != nil {
			cancel()
			return fmt.Errorf("pd: open region heartbeat stream: %w", err)
		}
		c.stream, c.cancel = stream, cancel
		go c.drain(stream, c.onResponse)
	}
	req.Header = c.header()
	if err := c.stream.Send(req); err != nil {
		c.cancel()
		c.stream = nil
		return fmt.Errorf("pd: region heartbeat: %w", err)
	}
	return nil
}

// drain reads PD's responses on a heartbeat stream until it ends.
func (c *Client) drain(stream pdpb.PD_RegionHeartbeatClient, handle func(*pdpb.RegionHeartbeatResponse)) {
	for {
		resp, err := stream.Recv()
		if err != nil {
			return
		}
		if e := resp.GetHeader().GetError(); e != nil && e.GetType() != pdpb.ErrorType_OK {
			c.log.Warn("pd rejected region heartbeat", "region-id", resp.GetRegionId(), "err", e.GetMessage())
			continue
		}
		if handle != nil {
			handle(resp)
		}
	}
}

// GetStore returns a store's metadata; a tombstone store is
// ErrStoreTombstone.
func (c *Client) GetStore(ctx context.Context, storeID uint64) (*metapb.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.pd.GetStore(ctx, &pdpb.GetStoreRequest{Header: c.header(), StoreId: storeID})
	if err != nil {
		return nil, fmt.Errorf("pd: get store %d: %w", storeID, err)
	}
	if err := headerError(fmt.Sprintf("get store %d", storeID), resp.GetHeader()); err != nil {
		return nil, err
	}
	if resp.GetStore().GetState() == metapb.StoreState_Tombstone {
		return nil, fmt.Errorf("get store %d: %w", storeID, ErrStoreTombstone)
	}
	return resp.GetStore(), nil
}

// RegionKnown reports whether PD has a region with this id.
func (c *Client) RegionKnown(ctx context.Context, regionID uint64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.pd.GetRegionByID(ctx, &pdpb.GetRegionByIDRequest{Header: c.header(), RegionId: regionID})
	if err != nil {
		return false, fmt.Errorf("pd: get region %d: %w", regionID, err)
	}
	if err := headerError(fmt.Sprintf("get region %d", regionID), resp.GetHeader()); err != nil {
		return false, err
	}
	return resp.GetRegion() != nil, nil
}

// AskBatchSplit allocates the region and peer ids of count splits of
// region.
func (c *Client) AskBatchSplit(ctx context.Context, region *metapb.Region, count int) ([]*pdpb.SplitID, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.pd.AskBatchSplit(ctx, &pdpb.AskBatchSplitRequest{Header: c.header(), Region: region, SplitCount: uint32(count)})
	if err != nil {
		return nil, fmt.Errorf("pd: ask batch split of region %d: %w", region.GetId(), err)
	}
	return resp.GetIds(), headerError(fmt.Sprintf("ask batch split of region %d", region.GetId()), resp.GetHeader())
}

// TS returns a fresh timestamp from PD's TSO.
func (c *Client) TS(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	stream, err := c.pd.Tso(ctx)
	if err != nil {
		return 0, fmt.Errorf("pd: open tso stream: %w", err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&pdpb.TsoRequest{Header: c.header(), Count: 1}); err != nil {
		return 0, fmt.Errorf("pd: tso: %w", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return 0, fmt.Errorf("pd: tso: %w", err)
	}
	ts := resp.GetTimestamp()
	return uint64(ts.GetPhysical())<<18 | uint64(ts.GetLogical()), nil
}

// ReportMinResolvedTS tells PD the store's resolved ts.
func (c *Client) ReportMinResolvedTS(ctx context.Context, storeID, ts uint64) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.pd.ReportMinResolvedTS(ctx, &pdpb.ReportMinResolvedTsRequest{Header: c.header(), StoreId: storeID, MinResolvedTs: ts})
	if err != nil {
		return fmt.Errorf("pd: report min resolved ts: %w", err)
	}
	return headerError("report min resolved ts", resp.GetHeader())
}
