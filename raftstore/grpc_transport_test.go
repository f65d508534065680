package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// The gRPC transport and server under test: real gRPC servers on loopback
// (with gRPC's default 4 MiB receive limit, which the transport's batches
// and chunks must respect), a map-backed StoreResolver, and the cluster
// harness of cluster_test.go with its transport replaced.

// grpcTestOpts makes reconnects quick.
func grpcTestOpts(opts GRPCTransportOptions) GRPCTransportOptions {
	opts.MinBackoff, opts.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	return opts
}

func grpcTestLogger() *slog.Logger {
	if os.Getenv("RAFTSTORE_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

var errUnknownStore = errors.New("test resolver: unknown store")

// mapResolver resolves stores from a map. While blocked, lookups wait
// until released or their context ends.
type mapResolver struct {
	mu      sync.Mutex
	addrs   map[uint64]string
	gate    chan struct{}
	lookups atomic.Int64
}

func newMapResolver() *mapResolver { return &mapResolver{addrs: map[uint64]string{}} }

func (r *mapResolver) StoreAddr(ctx context.Context, storeID uint64) (string, error) {
	r.lookups.Add(1)
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	addr, ok := r.addrs[storeID]
	if !ok {
		return "", fmt.Errorf("%w %d", errUnknownStore, storeID)
	}
	return addr, nil
}

func (r *mapResolver) set(storeID uint64, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs[storeID] = addr
}

// block makes lookups wait until the returned function is called.
func (r *mapResolver) block() (release func()) {
	gate := make(chan struct{})
	r.mu.Lock()
	r.gate = gate
	r.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// tikvStub is a minimal tikvpb.TikvServer. With raft set, Raft, BatchRaft
// and Snapshot go to the RaftServer it returns (none: Unavailable, the
// store is not running); without, batches are only recorded and snapshots
// reassembled and recorded. Either way it counts what it receives.
type tikvStub struct {
	tikvpb.UnimplementedTikvServer
	raft func() *RaftServer

	mu  sync.Mutex
	got stubRecord
}

// stubRecord is what a stub received.
type stubRecord struct {
	// batches holds the number of messages and the encoded size of each
	// BatchRaftMessage.
	batches   [][2]int
	msgs      []*raft_serverpb.RaftMessage
	snapshots []*raft_serverpb.RaftMessage
	chunks    int
}

func (s *tikvStub) Raft(stream tikvpb.Tikv_RaftServer) error {
	return s.serve(func(srv *RaftServer) error { return srv.Raft(stream) }, nil)
}

func (s *tikvStub) BatchRaft(stream tikvpb.Tikv_BatchRaftServer) error {
	rec := recordingBatchStream{Tikv_BatchRaftServer: stream, stub: s}
	return s.serve(func(srv *RaftServer) error { return srv.BatchRaft(rec) }, func() error {
		return serveStream(rec.Recv, func(*tikvpb.BatchRaftMessage) {}, rec.SendAndClose)
	})
}

func (s *tikvStub) Snapshot(stream tikvpb.Tikv_SnapshotServer) error {
	rec := countingSnapshotStream{Tikv_SnapshotServer: stream, stub: s}
	return s.serve(func(srv *RaftServer) error { return srv.Snapshot(rec) }, func() error {
		msg, err := NewRaftServer(nil, nil).receiveSnapshot(rec)
		if err != nil {
			return err
		}
		s.update(func(got *stubRecord) { got.snapshots = append(got.snapshots, msg) })
		return rec.SendAndClose(&raft_serverpb.Done{})
	})
}

// serve runs delegate on the store's RaftServer, or alone on a record-only
// stub (Unimplemented when alone is nil).
func (s *tikvStub) serve(delegate func(*RaftServer) error, alone func() error) error {
	if s.raft == nil {
		if alone == nil {
			return status.Error(codes.Unimplemented, "test: record-only stub")
		}
		return alone()
	}
	srv := s.raft()
	if srv == nil {
		return status.Error(codes.Unavailable, "test: store not running")
	}
	return delegate(srv)
}

func (s *tikvStub) update(fn func(*stubRecord)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.got)
}

// record returns a copy of what the stub received.
func (s *tikvStub) record() stubRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	got.batches = slices.Clone(got.batches)
	got.msgs = slices.Clone(got.msgs)
	got.snapshots = slices.Clone(got.snapshots)
	return got
}

type recordingBatchStream struct {
	tikvpb.Tikv_BatchRaftServer
	stub *tikvStub
}

func (r recordingBatchStream) Recv() (*tikvpb.BatchRaftMessage, error) {
	batch, err := r.Tikv_BatchRaftServer.Recv()
	if err == nil {
		r.stub.update(func(got *stubRecord) {
			got.batches = append(got.batches, [2]int{len(batch.GetMsgs()), batch.Size()})
			got.msgs = append(got.msgs, batch.GetMsgs()...)
		})
	}
	return batch, err
}

type countingSnapshotStream struct {
	tikvpb.Tikv_SnapshotServer
	stub *tikvStub
}

func (c countingSnapshotStream) Recv() (*raft_serverpb.SnapshotChunk, error) {
	chunk, err := c.Tikv_SnapshotServer.Recv()
	if err == nil {
		c.stub.update(func(got *stubRecord) { got.chunks++ })
	}
	return chunk, err
}

// serveStub serves stub on a fresh loopback port until stop is called or
// the test ends; stop waits for the handlers to return.
func serveStub(t *testing.T, stub *tikvStub) (addr string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.WaitForHandlers(true),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}))
	tikvpb.RegisterTikvServer(srv, stub)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	stop = func() {
		srv.Stop()
		<-done
	}
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

func newTestTransport(t *testing.T, r StoreResolver, opts GRPCTransportOptions) *GRPCTransport {
	tr := NewGRPCTransport(r, grpcTestLogger(), grpcTestOpts(opts))
	t.Cleanup(tr.Close)
	return tr
}

func dialStub(t *testing.T, addr string) tikvpb.TikvClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return tikvpb.NewTikvClient(conn)
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	for end := time.Now().Add(timeout); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// appendMessage is a raft append from store 1 to store to, carrying one
// entry at index with payload bytes of data.
func appendMessage(to, index uint64, payload int) *raft_serverpb.RaftMessage {
	return &raft_serverpb.RaftMessage{
		RegionId: 1, FromPeer: &metapb.Peer{Id: 1, StoreId: 1}, ToPeer: &metapb.Peer{Id: to, StoreId: to},
		RegionEpoch: &metapb.RegionEpoch{Version: 1, ConfVer: 1},
		Message: &eraftpb.Message{MsgType: eraftpb.MessageType_MsgAppend, From: 1, To: to, Index: index,
			Entries: []*eraftpb.Entry{{Index: index + 1, Term: 6, Data: make([]byte, payload)}}},
	}
}

func snapshotMessage(regionID, to uint64, data []byte) *raft_serverpb.RaftMessage {
	return &raft_serverpb.RaftMessage{
		RegionId: regionID, FromPeer: &metapb.Peer{Id: 1, StoreId: 1}, ToPeer: &metapb.Peer{Id: to, StoreId: to},
		RegionEpoch: &metapb.RegionEpoch{Version: 1, ConfVer: 1},
		Message: &eraftpb.Message{MsgType: eraftpb.MessageType_MsgSnapshot, From: 1, To: to, Term: 6,
			Snapshot: &eraftpb.Snapshot{Data: data, Metadata: &eraftpb.SnapshotMetadata{Index: 10, Term: 6}}},
	}
}

// patterned returns n bytes that differ with seed, so that misplaced
// chunks show.
func patterned(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/251) ^ byte(i) ^ seed
	}
	return b
}

// grpcNet connects a cluster's stores over gRPC: one server per store id,
// delivering to the store running under that id, and one GRPCTransport per
// store start.
type grpcNet struct {
	resolver *mapResolver
	stubs    map[uint64]*tikvStub
	stops    []func()
	opts     GRPCTransportOptions
	cluster  atomic.Pointer[cluster]

	mu         sync.Mutex
	transports []*GRPCTransport
}

// newGRPCCluster is newPartialCluster over gRPC. At the end of the test the
// servers and transports stop before the stores do.
func newGRPCCluster(t *testing.T, n, voters int, opts GRPCTransportOptions) (*cluster, *grpcNet) {
	g := &grpcNet{resolver: newMapResolver(), stubs: map[uint64]*tikvStub{}, opts: grpcTestOpts(opts)}
	for id := uint64(1); id <= uint64(n); id++ {
		stub := &tikvStub{raft: func() *RaftServer { return g.raftServer(id) }}
		addr, stop := serveStub(t, stub)
		g.stubs[id], g.stops = stub, append(g.stops, stop)
		g.resolver.set(id, addr)
	}
	c := newPartialCluster(t, n, voters, nil, nil, func(cfg *Config) { cfg.Transport = g.transport() })
	g.cluster.Store(c)
	t.Cleanup(g.close)
	return c, g
}

func (g *grpcNet) transport() Transport {
	tr := NewGRPCTransport(g.resolver, grpcTestLogger(), g.opts)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.transports = append(g.transports, tr)
	return tr
}

// raftServer returns a server for the store running under id, or nil.
func (g *grpcNet) raftServer(id uint64) *RaftServer {
	c := g.cluster.Load()
	if c == nil {
		return nil
	}
	c.net.mu.Lock()
	s := c.net.stores[id]
	c.net.mu.Unlock()
	if s == nil {
		return nil
	}
	return NewRaftServer(s, grpcTestLogger())
}

func (g *grpcNet) close() {
	for _, stop := range g.stops {
		stop()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, tr := range g.transports {
		tr.Close()
	}
}

// TestGRPCTransportReplicates: three stores over gRPC elect a leader, and a
// write acknowledged by it is applied on every store; every store's server
// received raft messages.
func TestGRPCTransportReplicates(t *testing.T) {
	c, g := newGRPCCluster(t, 3, 3, GRPCTransportOptions{})
	c.leader()
	c.mustPut("k1", "v1")
	c.mustGet("k1", "v1")
	require.NoError(t, c.write(putReq("k2", "v2"), deleteReq("k1")))
	for _, id := range c.ids {
		c.mustEngineEqual(id, "k2", "v2")
		c.mustEngineNone(id, "k1")
		require.NotEmpty(t, g.stubs[id].record().msgs, "store %d got nothing over gRPC", id)
	}
}

// TestGRPCTransportSnapshotToNewPeer: a peer added on an empty store is
// filled by a snapshot many chunks long, which is reassembled and applied;
// the new peer then replicates. (TestGRPCTransportSnapshotChunks sends one
// past gRPC's default message limit.)
func TestGRPCTransportSnapshotToNewPeer(t *testing.T) {
	const chunkSize, valueSize, values = 32 << 10, 64 << 10, 16
	c, g := newGRPCCluster(t, 3, 2, GRPCTransportOptions{ChunkSize: chunkSize})
	want := map[string]string{}
	for i := range values {
		key := fmt.Sprintf("big%d", i)
		want[key] = string(patterned(valueSize, byte(i)))
		c.mustPut(key, want[key])
	}
	require.NoError(t, c.changePeer(eraftpb.ConfChangeType_AddNode, &metapb.Peer{Id: 3, StoreId: 3}))
	for key, value := range want {
		waitFor(t, 10*time.Second, func() bool {
			got, ok := c.engineValue(3, key)
			return ok && got == value
		}, "store 3 to hold "+key)
	}
	require.GreaterOrEqual(t, g.stubs[3].record().chunks, 1+values*valueSize/chunkSize)
	c.mustPut("after", "snapshot")
	c.mustEngineEqual(3, "after", "snapshot")
}

// TestGRPCTransportSnapshotChunks: a snapshot message goes on a Snapshot
// stream in chunks of at most ChunkSize, is reassembled whole, and the
// sender's message is left untouched.
func TestGRPCTransportSnapshotChunks(t *testing.T) {
	stub := &tikvStub{}
	addr, _ := serveStub(t, stub)
	r := newMapResolver()
	r.set(2, addr)
	tr := newTestTransport(t, r, GRPCTransportOptions{})
	data := patterned(5<<20+123, 7)
	msg := snapshotMessage(1, 2, data)
	require.NoError(t, tr.Send(msg))
	waitFor(t, 5*time.Second, func() bool { return len(stub.record().snapshots) == 1 }, "the snapshot")
	got := stub.record().snapshots[0]
	require.True(t, bytes.Equal(data, got.GetMessage().GetSnapshot().GetData()), "reassembled data differs")
	require.Equal(t, msg.GetMessage().GetSnapshot().GetMetadata(), got.GetMessage().GetSnapshot().GetMetadata())
	require.Equal(t, 1+6, stub.record().chunks, "the head and 6 chunks of at most 1 MiB")
	require.True(t, bytes.Equal(data, msg.GetMessage().GetSnapshot().GetData()), "the sender's message changed")
}

// TestGRPCSnapshotChunksSplit checks the chunking at its edges.
func TestGRPCSnapshotChunksSplit(t *testing.T) {
	for _, tc := range []struct{ size, chunk, want int }{{0, 4, 1}, {1, 4, 2}, {8, 4, 3}, {9, 4, 4}} {
		data := patterned(tc.size, 1)
		chunks := snapshotChunks(snapshotMessage(1, 2, data), tc.chunk)
		require.Len(t, chunks, tc.want, "%d bytes in chunks of %d", tc.size, tc.chunk)
		require.Empty(t, chunks[0].GetMessage().GetMessage().GetSnapshot().GetData())
		require.Empty(t, chunks[0].GetData())
		var joined []byte
		for _, chunk := range chunks[1:] {
			require.Nil(t, chunk.GetMessage())
			require.LessOrEqual(t, len(chunk.GetData()), tc.chunk)
			joined = append(joined, chunk.GetData()...)
		}
		require.True(t, bytes.Equal(data, joined))
	}
}

// TestGRPCTransportBatchBudget: messages queued while the sender connects
// go in batches that stay within the 2 MiB budget (the receiving server
// keeps gRPC's 4 MiB limit), in order; one message over the budget goes
// alone.
func TestGRPCTransportBatchBudget(t *testing.T) {
	stub := &tikvStub{}
	addr, _ := serveStub(t, stub)
	r := newMapResolver()
	r.set(2, addr)
	release := r.block()
	t.Cleanup(release)
	tr := newTestTransport(t, r, GRPCTransportOptions{})
	const small, large = 700 << 10, 2500 << 10
	for i := range 8 {
		require.NoError(t, tr.Send(appendMessage(2, uint64(i), small)))
	}
	require.NoError(t, tr.Send(appendMessage(2, 8, large)))
	release()
	waitFor(t, 5*time.Second, func() bool { return len(stub.record().msgs) == 9 }, "9 messages")
	for i, msg := range stub.record().msgs {
		require.Equal(t, uint64(i), msg.GetMessage().GetIndex(), "messages out of order")
	}
	var counts []int
	for _, shape := range stub.record().batches {
		counts = append(counts, shape[0])
		if shape[0] > 1 {
			require.LessOrEqual(t, shape[1], 2<<20, "a batch over the budget")
		}
	}
	require.Equal(t, []int{2, 2, 2, 2, 1}, counts)
}

// TestGRPCTransportRecoversWhenStoreAppears: Send never waits on a lookup;
// a store the resolver does not know becomes unreachable, Send then fails
// at once, and messages flow once the resolver knows the store.
func TestGRPCTransportRecoversWhenStoreAppears(t *testing.T) {
	stub := &tikvStub{}
	addr, _ := serveStub(t, stub)
	r := newMapResolver()
	release := r.block()
	t.Cleanup(release)
	tr := newTestTransport(t, r, GRPCTransportOptions{})
	// The lookup blocks until released: Sends return regardless.
	for i := range 10 {
		require.NoError(t, tr.Send(appendMessage(2, uint64(i), 10)))
	}
	release()
	waitFor(t, 5*time.Second, func() bool {
		return errors.Is(tr.Send(appendMessage(2, 0, 10)), ErrTransportUnreachable)
	}, "store 2 to be unreachable")
	require.Empty(t, stub.record().msgs)
	r.set(2, addr)
	waitFor(t, 5*time.Second, func() bool {
		_ = tr.Send(appendMessage(2, 0, 10))
		return len(stub.record().msgs) > 0
	}, "a message to arrive")
}

// TestGRPCTransportReresolves: a store that restarts on another port is
// found again through the resolver.
func TestGRPCTransportReresolves(t *testing.T) {
	first := &tikvStub{}
	addr, stop := serveStub(t, first)
	r := newMapResolver()
	r.set(2, addr)
	tr := newTestTransport(t, r, GRPCTransportOptions{})
	sendUntil := func(stub *tikvStub, what string) {
		waitFor(t, 5*time.Second, func() bool {
			_ = tr.Send(appendMessage(2, 0, 10))
			return len(stub.record().msgs) > 0
		}, what)
	}
	sendUntil(first, "the first server to receive")
	stop()
	second := &tikvStub{}
	addr, _ = serveStub(t, second)
	r.set(2, addr)
	sendUntil(second, "the restarted server to receive")
	require.GreaterOrEqual(t, r.lookups.Load(), int64(2))
}

// TestGRPCTransportQueueFull: with the sender stuck, Send fails with
// ErrTransportQueueFull once the queue is full, and Close still returns.
func TestGRPCTransportQueueFull(t *testing.T) {
	r := newMapResolver()
	release := r.block()
	t.Cleanup(release)
	tr := newTestTransport(t, r, GRPCTransportOptions{QueueSize: 4})
	for i := range 4 {
		require.NoError(t, tr.Send(appendMessage(2, uint64(i), 10)))
	}
	// The sender holds at most one message while its lookup waits.
	err := tr.Send(appendMessage(2, 4, 10))
	if err == nil {
		err = tr.Send(appendMessage(2, 5, 10))
	}
	require.ErrorIs(t, err, ErrTransportQueueFull)
	require.NoError(t, tr.Send(appendMessage(3, 0, 10)), "another store's queue is its own")
	tr.Close()
	require.ErrorIs(t, tr.Send(appendMessage(2, 6, 10)), ErrTransportClosed)
	tr.Close()
}

// TestGRPCTransportSnapshotLimit: a snapshot already on its way to a peer
// is not sent again; beyond MaxSnapshots in flight Send fails for a
// snapshot, and a finished snapshot frees its slot.
func TestGRPCTransportSnapshotLimit(t *testing.T) {
	stub := &tikvStub{}
	addr, _ := serveStub(t, stub)
	r := newMapResolver()
	r.set(2, addr)
	release := r.block()
	t.Cleanup(release)
	tr := newTestTransport(t, r, GRPCTransportOptions{MaxSnapshots: 1})
	snap := snapshotMessage(1, 2, []byte("data"))
	newer := snapshotMessage(1, 2, []byte("newer"))
	newer.Message.Snapshot.Metadata.Index++
	require.NoError(t, tr.Send(snap))
	require.NoError(t, tr.Send(snap), "the same snapshot again")
	require.ErrorIs(t, tr.Send(newer), ErrTransportSnapshotsBusy)
	require.NoError(t, tr.Send(appendMessage(2, 0, 10)), "plain messages are not limited")
	release()
	waitFor(t, 5*time.Second, func() bool { return len(stub.record().snapshots) > 0 }, "the snapshot")
	waitFor(t, 5*time.Second, func() bool { return tr.Send(newer) == nil }, "the snapshot to free its slot")
	tr.Close()
	sent := 0
	for _, msg := range stub.record().snapshots {
		if string(msg.GetMessage().GetSnapshot().GetData()) == "data" {
			sent++
		}
	}
	require.Equal(t, 1, sent, "the first snapshot arrived more than once")
	require.ErrorIs(t, tr.Send(&raft_serverpb.RaftMessage{Message: &eraftpb.Message{}}), ErrTransportNoStore)
}

// serveOneStore runs a one-store cluster whose store also serves a
// RaftServer over gRPC.
func serveOneStore(t *testing.T, opts ...RaftServerOption) (*cluster, tikvpb.TikvClient) {
	c := newCluster(t, 1, nil, nil)
	store := c.stores[1]
	addr, _ := serveStub(t, &tikvStub{raft: func() *RaftServer { return NewRaftServer(store, grpcTestLogger(), opts...) }})
	return c, dialStub(t, addr)
}

// sendChunks sends chunks on a Snapshot stream and returns what the server
// answered.
func sendChunks(t *testing.T, client tikvpb.TikvClient, chunks ...*raft_serverpb.SnapshotChunk) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := client.Snapshot(ctx)
	require.NoError(t, err)
	for _, chunk := range chunks {
		if stream.Send(chunk) != nil {
			break
		}
	}
	_, err = stream.CloseAndRecv()
	return err
}

// TestGRPCRaftServerRejectsBadSnapshots: the Snapshot server refuses
// streams not shaped as the transport sends them, and snapshots over its
// limit, with gRPC statuses; a well-formed snapshot the store cannot use is
// dropped by the store and answered Done.
func TestGRPCRaftServerRejectsBadSnapshots(t *testing.T) {
	c, client := serveOneStore(t, WithMaxSnapshotSize(1000))
	head := func() *raft_serverpb.SnapshotChunk {
		return &raft_serverpb.SnapshotChunk{Message: snapshotMessage(77, 1, nil)}
	}
	data := func(n int) *raft_serverpb.SnapshotChunk { return &raft_serverpb.SnapshotChunk{Data: make([]byte, n)} }
	notSnapshot := &raft_serverpb.SnapshotChunk{Message: appendMessage(1, 0, 10)}
	for _, tc := range []struct {
		name   string
		chunks []*raft_serverpb.SnapshotChunk
		want   codes.Code
	}{
		{"first chunk without a message", []*raft_serverpb.SnapshotChunk{data(10), data(10)}, codes.InvalidArgument},
		{"no chunk", nil, codes.InvalidArgument},
		{"not a snapshot message", []*raft_serverpb.SnapshotChunk{notSnapshot, data(10)}, codes.InvalidArgument},
		{"a second message", []*raft_serverpb.SnapshotChunk{head(), data(10), head()}, codes.InvalidArgument},
		{"over the limit", []*raft_serverpb.SnapshotChunk{head(), data(600), data(600)}, codes.ResourceExhausted},
		{"garbage data for an unknown region", []*raft_serverpb.SnapshotChunk{head(), data(600), data(400)}, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, status.Code(sendChunks(t, client, tc.chunks...)))
		})
	}
	c.mustPut("k", "v")
	c.mustGet("k", "v")
}

// TestGRPCRaftServerSurvivesGarbage: messages the store refuses or drops —
// for another store, without a raft message or epoch, for an unknown
// region — do not end a Raft or BatchRaft stream, and the store serves on.
func TestGRPCRaftServerSurvivesGarbage(t *testing.T) {
	c, client := serveOneStore(t)
	otherStore := appendMessage(9, 0, 10)
	noMessage := appendMessage(1, 0, 10)
	noMessage.Message = nil
	noEpoch := appendMessage(1, 0, 10)
	noEpoch.RegionEpoch = nil
	unknownRegion := appendMessage(1, 0, 10)
	unknownRegion.RegionId = 77
	garbage := []*raft_serverpb.RaftMessage{otherStore, noMessage, noEpoch, unknownRegion, {}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	batchStream, err := client.BatchRaft(ctx)
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, batchStream.Send(&tikvpb.BatchRaftMessage{Msgs: garbage}))
	}
	_, err = batchStream.CloseAndRecv()
	require.NoError(t, err)

	raftStream, err := client.Raft(ctx)
	require.NoError(t, err)
	for _, msg := range garbage {
		require.NoError(t, raftStream.Send(msg))
	}
	_, err = raftStream.CloseAndRecv()
	require.NoError(t, err)

	c.mustPut("k", strings.Repeat("v", 10))
	c.mustGet("k", strings.Repeat("v", 10))
}
