package pdsvc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	pd "github.com/tikv/pd/client"
	"github.com/tinykv/tinykv/internal/testutil"
	"github.com/tinykv/tinykv/pdsvc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// testPD is one in-process PD on free loopback ports.
type testPD struct {
	t       testing.TB
	dir     string
	client  string // host:port
	peer    string
	srv     *pdsvc.Server
	conn    *grpc.ClientConn
	raw     pdpb.PDClient
	cluster uint64
	now     func() time.Time // nil: the real clock
	// configure, if set, adjusts the server's configuration before start.
	configure func(*pdsvc.Config)
}

func startPD(t testing.TB) *testPD {
	t.Helper()
	return startPDWithClock(t, nil)
}

// startPDWithClock starts a PD whose clock is now.
func startPDWithClock(t testing.TB, now func() time.Time) *testPD {
	t.Helper()
	return startPDWithConfig(t, now, nil)
}

// startPDWithConfig starts a PD whose clock is now and whose configuration
// configure adjusts (nil: the defaults).
func startPDWithConfig(t testing.TB, now func() time.Time, configure func(*pdsvc.Config)) *testPD {
	t.Helper()
	p := &testPD{
		now:       now,
		configure: configure,
		t:         t,
		dir:       t.TempDir(),
		client:    fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
		peer:      fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
	}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *testPD) start() {
	p.t.Helper()
	cfg := pdsvc.Config{
		Name:       "pd-test",
		DataDir:    p.dir,
		ClientURLs: "http://" + p.client,
		PeerURLs:   "http://" + p.peer,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:        p.now,
	}
	if p.configure != nil {
		p.configure(&cfg)
	}
	srv, err := pdsvc.Start(context.Background(), cfg)
	if err != nil {
		p.t.Fatalf("start pd: %v", err)
	}
	p.srv = srv
	p.cluster = srv.ClusterID()
	conn, err := grpc.NewClient(p.client, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		p.t.Fatalf("dial pd: %v", err)
	}
	p.conn, p.raw = conn, pdpb.NewPDClient(conn)
}

func (p *testPD) stop() {
	if p.srv == nil {
		return
	}
	p.conn.Close()
	p.srv.Close()
	p.srv = nil
}

func (p *testPD) restart() {
	p.t.Helper()
	p.stop()
	p.start()
}

func (p *testPD) header() *pdpb.RequestHeader {
	return &pdpb.RequestHeader{ClusterId: p.cluster}
}

// stockClient opens the upstream PD client against the server. The client
// lives as long as the context it is created with, so it gets its own.
func (p *testPD) stockClient() pd.Client {
	p.t.Helper()
	cli, err := pd.NewClientWithContext(context.Background(), []string{"http://" + p.client}, pd.SecurityOption{})
	if err != nil {
		p.t.Fatalf("stock pd client: %v", err)
	}
	p.t.Cleanup(cli.Close)
	return cli
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bootstrap registers store 1 and one region covering all keys.
func (p *testPD) bootstrap(addr string) (*metapb.Store, *metapb.Region) {
	p.t.Helper()
	store := &metapb.Store{Id: p.allocID(), Address: addr, Version: "8.5.4"}
	peer := &metapb.Peer{Id: p.allocID(), StoreId: store.Id}
	region := &metapb.Region{
		Id:          p.allocID(),
		RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: 1},
		Peers:       []*metapb.Peer{peer},
	}
	resp, err := p.raw.Bootstrap(ctxT(p.t), &pdpb.BootstrapRequest{Header: p.header(), Store: store, Region: region})
	if err != nil || resp.GetHeader().GetError() != nil {
		p.t.Fatalf("bootstrap: %v %v", err, resp.GetHeader().GetError())
	}
	return store, region
}

func (p *testPD) allocID() uint64 {
	p.t.Helper()
	resp, err := p.raw.AllocID(ctxT(p.t), &pdpb.AllocIDRequest{Header: p.header()})
	if err != nil || resp.GetHeader().GetError() != nil {
		p.t.Fatalf("alloc id: %v %v", err, resp.GetHeader().GetError())
	}
	return resp.GetId()
}

func (p *testPD) putStore(store *metapb.Store) *pdpb.ResponseHeader {
	p.t.Helper()
	resp, err := p.raw.PutStore(ctxT(p.t), &pdpb.PutStoreRequest{Header: p.header(), Store: store})
	if err != nil {
		p.t.Fatalf("put store: %v", err)
	}
	return resp.GetHeader()
}

// heartbeater sends region heartbeats on one stream and returns the error
// responses PD sends back.
type heartbeater struct {
	t      testing.TB
	p      *testPD
	stream pdpb.PD_RegionHeartbeatClient
	errs   chan *pdpb.RegionHeartbeatResponse
}

func (p *testPD) heartbeater() *heartbeater {
	p.t.Helper()
	stream, err := p.raw.RegionHeartbeat(ctxT(p.t))
	if err != nil {
		p.t.Fatalf("open heartbeat stream: %v", err)
	}
	h := &heartbeater{t: p.t, p: p, stream: stream, errs: make(chan *pdpb.RegionHeartbeatResponse, 100)}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				close(h.errs)
				return
			}
			h.errs <- resp
		}
	}()
	return h
}

// send reports region with leader.
func (h *heartbeater) send(region *metapb.Region, leader *metapb.Peer) {
	h.t.Helper()
	h.sendRequest(&pdpb.RegionHeartbeatRequest{Region: region, Leader: leader, Term: 1})
}

// sendRequest sends req with the cluster's header.
func (h *heartbeater) sendRequest(req *pdpb.RegionHeartbeatRequest) {
	h.t.Helper()
	req.Header = h.p.header()
	if err := h.stream.Send(req); err != nil {
		h.t.Fatalf("send heartbeat: %v", err)
	}
}

// nextError waits for PD's next error response on the stream.
func (h *heartbeater) nextError() *pdpb.RegionHeartbeatResponse {
	h.t.Helper()
	select {
	case resp, ok := <-h.errs:
		if !ok {
			h.t.Fatalf("heartbeat stream closed")
		}
		return resp
	case <-time.After(10 * time.Second):
		h.t.Fatalf("no heartbeat error response")
	}
	return nil
}

// waitRegion polls GetRegionByID until cond holds for the region PD reports.
func (p *testPD) waitRegion(id uint64, cond func(*pdpb.GetRegionResponse) bool) *pdpb.GetRegionResponse {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := p.raw.GetRegionByID(ctxT(p.t), &pdpb.GetRegionByIDRequest{Header: p.header(), RegionId: id})
		if err != nil {
			p.t.Fatalf("get region %d: %v", id, err)
		}
		if cond(resp) {
			return resp
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("region %d never reached the expected state; last %v", id, resp)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
