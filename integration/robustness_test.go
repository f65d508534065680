package integration

import (
	"context"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// robustnessCallsPerMethod is how many random requests each method gets.
const robustnessCallsPerMethod = 25

// TestEveryStoreMethodSurvivesRandomRequests sends every tikvpb.Tikv method
// that takes one request, and every batched command, requests with random
// fields (edge numbers, keys from a small pool, random enums, nested
// messages, oneofs), most of them with a valid region context so that they
// get past the region check. A bad request must be answered (in the response's error
// fields or with a gRPC status) within the deadline: a handler that
// panicked would take the store down, and one that hung would exceed it.
// The store must then still serve reads and writes.
func TestEveryStoreMethodSurvivesRandomRequests(t *testing.T) {
	c := startCluster(t)
	s := c.storeClient(t)
	seed := randomSeed(t)
	r := rand.New(rand.NewPCG(seed, 0))
	filler := newProtoFiller(r)

	called := callEverySingleRequestMethod(t, s.tikv, filler, func(req reflect.Value) { s.withContext(r, req) },
		func(method string, req any, err error) { checkAnswered(t, c.store, seed, method, req, err) })
	if called < 60*robustnessCallsPerMethod {
		t.Fatalf("only %d calls made; the method filter is wrong", called)
	}
	s.sendRandomBatches(t, c, seed, r, filler)

	raw := c.rawClient()
	ctx := ctxT(t)
	require(t, raw.Put(ctx, []byte("after"), []byte("fuzz")), "raw put after random requests")
	got, err := raw.Get(ctx, []byte("after"))
	if err != nil || string(got) != "fuzz" {
		t.Fatalf("raw get after random requests = %q, %v", got, err)
	}
}

// randomSeedVariable names the environment variable that replays a
// randomized test with the seed a failure printed.
const randomSeedVariable = "TINYKV_SEED"

// randomSeed returns the seed of a randomized test, TINYKV_SEED when set and
// the clock otherwise, and logs it.
func randomSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(randomSeedVariable); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require(t, err, "parse "+randomSeedVariable)
	}
	t.Logf("seed %d (replay with %s=%d)", seed, randomSeedVariable, seed)
	return seed
}

// callEverySingleRequestMethod calls each method of a gRPC client that takes
// one request (unary, or server-streaming, whose stream is only opened)
// robustnessCallsPerMethod times with a random request, which prepare
// completes (most get a valid context or header, so that they reach their
// handler), and hands each outcome to answered. It returns the number of
// calls made.
func callEverySingleRequestMethod(t *testing.T, client any, filler *protoFiller, prepare func(req reflect.Value),
	answered func(method string, req any, err error)) int {
	t.Helper()
	called := 0
	methods := reflect.ValueOf(client)
	for i := range methods.NumMethod() {
		method, call := methods.Type().Method(i), methods.Method(i)
		// (ctx, *Req, ...grpc.CallOption) (*Resp or stream, error).
		if mt := call.Type(); mt.NumIn() != 3 || mt.NumOut() != 2 || !mt.IsVariadic() || mt.In(1).Kind() != reflect.Pointer {
			continue
		}
		for range robustnessCallsPerMethod {
			req := filler.message(call.Type().In(1))
			prepare(req)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out := call.Call([]reflect.Value{reflect.ValueOf(ctx), req})
			cancel()
			called++
			err, _ := out[1].Interface().(error)
			answered(method.Name, req.Interface(), err)
		}
	}
	return called
}

// withContext gives most requests that carry a region context the valid
// one, so that they reach their handler.
func (s *storeClient) withContext(r *rand.Rand, req reflect.Value) {
	setMostly(r, req, "Context", s.ctx)
}

// setMostly sets the named field of the message req points to, if it has
// one of value's type, to a copy of value four times in five.
func setMostly(r *rand.Rand, req reflect.Value, name string, value proto.Message) {
	field := req.Elem().FieldByName(name)
	if field.IsValid() && field.Type() == reflect.TypeOf(value) && r.IntN(5) != 0 {
		field.Set(reflect.ValueOf(proto.Clone(value)))
	}
}

// checkAnswered fails the test when a call was not answered: the server
// stopped serving (Unavailable) or the call ran past its deadline.
func checkAnswered(t *testing.T, server *process, seed uint64, method string, req any, err error) {
	t.Helper()
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		select {
		case <-server.exited:
			t.Fatalf("seed %d: the server exited after %s(%v): %v", seed, method, req, err)
		case <-time.After(2 * time.Second):
		}
		t.Fatalf("seed %d: %s(%v) was not answered: %v", seed, method, req, err)
	}
}

// sendRandomBatches sends random batched commands on BatchCommands
// streams, one to eight in a stream message, so that they run
// concurrently, and waits for all of their responses. A command the store
// rejects ends its stream with a status (as a failed unary call does); the
// next message opens a new stream.
func (s *storeClient) sendRandomBatches(t *testing.T, c *cluster, seed uint64, r *rand.Rand, filler *protoFiller) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stream tikvpb.Tikv_BatchCommandsClient
	for sent := 0; sent < 60*robustnessCallsPerMethod; {
		if stream == nil {
			var err error
			stream, err = s.tikv.BatchCommands(ctx)
			checkAnswered(t, c.store, seed, "BatchCommands", nil, err)
		}
		msg := s.randomBatch(r, filler, uint64(sent), 1+r.IntN(8))
		sent += len(msg.Requests)
		err := stream.Send(msg)
		if err == nil {
			err = recvWithin(func() error { return receiveAll(stream, len(msg.Requests)) }, 10*time.Second)
		}
		if err != nil {
			checkAnswered(t, c.store, seed, "BatchCommands", msg, err)
			stream = nil
		}
	}
}

// randomBatch returns a stream message of n random batched commands with
// IDs from firstID on.
func (s *storeClient) randomBatch(r *rand.Rand, filler *protoFiller, firstID uint64, n int) *tikvpb.BatchCommandsRequest {
	reqType := reflect.TypeOf(&tikvpb.BatchCommandsRequest_Request{})
	msg := &tikvpb.BatchCommandsRequest{}
	for i := range n {
		batched := filler.message(reqType).Interface().(*tikvpb.BatchCommandsRequest_Request)
		if inner := batchedRequest(batched); inner.IsValid() {
			s.withContext(r, inner)
		}
		msg.RequestIds = append(msg.RequestIds, firstID+uint64(i))
		msg.Requests = append(msg.Requests, batched)
	}
	return msg
}

// receiveAll receives stream messages until n responses have come.
func receiveAll(stream tikvpb.Tikv_BatchCommandsClient, n int) error {
	for n > 0 {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		n -= len(resp.GetResponses())
	}
	return nil
}

// batchedRequest returns the request inside a batched command's oneof
// wrapper, if it has one.
func batchedRequest(b *tikvpb.BatchCommandsRequest_Request) reflect.Value {
	cmd := reflect.ValueOf(b.GetCmd())
	if !cmd.IsValid() || cmd.Elem().NumField() != 1 {
		return reflect.Value{}
	}
	inner := cmd.Elem().Field(0)
	if inner.Kind() != reflect.Pointer || inner.IsNil() {
		return reflect.Value{}
	}
	return inner
}

// recvWithin runs recv, which receives from a stream, and fails with
// DeadlineExceeded when it has not returned within limit.
func recvWithin(recv func() error, limit time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- recv() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		return status.Error(codes.DeadlineExceeded, "no response on the stream")
	}
}

// TestEveryPDMethodSurvivesRandomRequests sends random requests to every
// pdpb.PD method that takes one request, most with the cluster's header,
// then on the Tso and RegionHeartbeat streams. Each call must be answered
// within its deadline, a Tso request too (a response or the stream's end),
// and PD must then still hand out timestamps and answer region queries.
// Random heartbeats may legitimately rewrite PD's view of the regions, so
// the check after them is that PD answers, not what.
func TestEveryPDMethodSurvivesRandomRequests(t *testing.T) {
	c := startCluster(t)
	seed := randomSeed(t)
	r := rand.New(rand.NewPCG(seed, 0))
	filler := newProtoFiller(r)
	conn, err := grpc.NewClient(c.pd.client, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require(t, err, "dial pd")
	t.Cleanup(func() { conn.Close() })
	pdc := pdpb.NewPDClient(conn)
	members, err := pdc.GetMembers(ctxT(t), &pdpb.GetMembersRequest{})
	require(t, err, "get members")
	header := &pdpb.RequestHeader{ClusterId: members.GetHeader().GetClusterId()}
	withHeader := func(req reflect.Value) { setMostly(r, req, "Header", header) }
	answered := func(method string, req any, err error) { checkAnswered(t, c.pd.process, seed, method, req, err) }

	if called := callEverySingleRequestMethod(t, pdc, filler, withHeader, answered); called < 40*robustnessCallsPerMethod {
		t.Fatalf("only %d calls made; the method filter is wrong", called)
	}
	tsoStream(t, pdc, filler, withHeader, answered)
	regionHeartbeats(t, pdc, filler, withHeader, answered)

	ctx := ctxT(t)
	tso, err := pdc.Tso(ctx)
	require(t, err, "open tso stream")
	require(t, tso.Send(&pdpb.TsoRequest{Header: header, Count: 1}), "send tso request")
	if resp, err := tso.Recv(); err != nil || resp.GetTimestamp().GetPhysical() == 0 {
		t.Fatalf("tso after random requests: %v, %v", resp, err)
	}
	_, err = pdc.GetRegion(ctx, &pdpb.GetRegionRequest{Header: header, RegionKey: []byte("k")})
	require(t, err, "get region after random requests")
}

// tsoStream sends random requests on Tso streams, opening a new stream when
// PD ends one.
func tsoStream(t *testing.T, pdc pdpb.PDClient, filler *protoFiller, prepare func(reflect.Value),
	answered func(string, any, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stream pdpb.PD_TsoClient
	for range 4 * robustnessCallsPerMethod {
		if stream == nil {
			var err error
			stream, err = pdc.Tso(ctx)
			answered("Tso", nil, err)
		}
		req := filler.message(reflect.TypeOf(&pdpb.TsoRequest{}))
		prepare(req)
		err := stream.Send(req.Interface().(*pdpb.TsoRequest))
		if err == nil {
			err = recvWithin(func() error { _, err := stream.Recv(); return err }, 10*time.Second)
		}
		if err != nil {
			answered("Tso", req.Interface(), err)
			stream = nil
		}
	}
}

// regionHeartbeats sends random region heartbeats. PD answers a heartbeat
// only when it has an operator for the region, so nothing is awaited; a
// stream PD ends is replaced.
func regionHeartbeats(t *testing.T, pdc pdpb.PDClient, filler *protoFiller, prepare func(reflect.Value),
	answered func(string, any, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stream pdpb.PD_RegionHeartbeatClient
	for range 4 * robustnessCallsPerMethod {
		if stream == nil {
			var err error
			stream, err = pdc.RegionHeartbeat(ctx)
			answered("RegionHeartbeat", nil, err)
		}
		req := filler.message(reflect.TypeOf(&pdpb.RegionHeartbeatRequest{}))
		prepare(req)
		if err := stream.Send(req.Interface().(*pdpb.RegionHeartbeatRequest)); err != nil {
			stream = nil
		}
	}
}
