package integration

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// robustnessCallsPerMethod is how many random requests each method gets.
const robustnessCallsPerMethod = 25

// TestEveryStoreMethodSurvivesRandomRequests sends every unary tikvpb.Tikv
// method, and every batched command, requests with random fields (edge
// numbers, keys from a small pool, random enums, nested messages, oneofs),
// most of them with a valid region context so that they get past the
// region check. A bad request must be answered (in the response's error
// fields or with a gRPC status) within the deadline: a handler that
// panicked would take the store down, and one that hung would exceed it.
// The store must then still serve reads and writes.
func TestEveryStoreMethodSurvivesRandomRequests(t *testing.T) {
	c := startCluster(t)
	s := c.storeClient(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	filler := newProtoFiller(r)

	called := 0
	client := reflect.ValueOf(s.tikv)
	for i := range client.NumMethod() {
		method, call := client.Type().Method(i), client.Method(i)
		// Unary methods: (ctx, *Req, ...grpc.CallOption) (*Resp, error).
		if mt := call.Type(); mt.NumIn() != 3 || mt.NumOut() != 2 || !mt.IsVariadic() || mt.In(1).Kind() != reflect.Pointer {
			continue
		}
		for range robustnessCallsPerMethod {
			req := filler.message(call.Type().In(1))
			s.withContext(r, req)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out := call.Call([]reflect.Value{reflect.ValueOf(ctx), req})
			cancel()
			called++
			err, _ := out[1].Interface().(error)
			checkAnswered(t, c, seed, method.Name, req.Interface(), err)
		}
	}
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

// withContext gives most requests that carry a region context the valid
// one, so that they reach their handler.
func (s *storeClient) withContext(r *rand.Rand, req reflect.Value) {
	field := req.Elem().FieldByName("Context")
	if field.IsValid() && field.Type() == reflect.TypeOf(s.ctx) && r.IntN(5) != 0 {
		field.Set(reflect.ValueOf(proto.Clone(s.ctx)))
	}
}

// checkAnswered fails the test when a call was not answered: the store
// stopped serving (Unavailable) or the call ran past its deadline.
func checkAnswered(t *testing.T, c *cluster, seed uint64, method string, req any, err error) {
	t.Helper()
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		select {
		case <-c.store.exited:
			t.Fatalf("seed %d: the store exited after %s(%v): %v", seed, method, req, err)
		case <-time.After(2 * time.Second):
		}
		t.Fatalf("seed %d: %s(%v) was not answered: %v", seed, method, req, err)
	}
}

// sendRandomBatches sends random batched commands, one per stream message,
// on BatchCommands streams. A command the store rejects ends its stream
// with a status (as a failed unary call does); the next one opens a new
// stream.
func (s *storeClient) sendRandomBatches(t *testing.T, c *cluster, seed uint64, r *rand.Rand, filler *protoFiller) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reqType := reflect.TypeOf(&tikvpb.BatchCommandsRequest_Request{})
	var stream tikvpb.Tikv_BatchCommandsClient
	for i := range 60 * robustnessCallsPerMethod {
		if stream == nil {
			var err error
			stream, err = s.tikv.BatchCommands(ctx)
			checkAnswered(t, c, seed, "BatchCommands", nil, err)
		}
		batched := filler.message(reqType).Interface().(*tikvpb.BatchCommandsRequest_Request)
		if inner := batchedRequest(batched); inner.IsValid() {
			s.withContext(r, inner)
		}
		msg := &tikvpb.BatchCommandsRequest{RequestIds: []uint64{uint64(i)}, Requests: []*tikvpb.BatchCommandsRequest_Request{batched}}
		err := stream.Send(msg)
		if err == nil {
			err = recvWithin(stream, 10*time.Second)
		}
		if err != nil {
			checkAnswered(t, c, seed, "BatchCommands", batched, err)
			stream = nil
		}
	}
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

// recvWithin receives one response message, or fails with
// DeadlineExceeded when none comes within limit.
func recvWithin(stream tikvpb.Tikv_BatchCommandsClient, limit time.Duration) error {
	done := make(chan error, 1)
	go func() {
		_, err := stream.Recv()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		return status.Error(codes.DeadlineExceeded, "no batched response")
	}
}
