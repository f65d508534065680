package tikvsvc

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/pingcap/kvproto/pkg/tikvpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxBatchResponses bounds how many ready responses one
// BatchCommandsResponse carries.
const maxBatchResponses = 128

// batchResult is one answered request of a BatchCommands stream.
type batchResult struct {
	id   uint64
	resp *tikvpb.BatchCommandsResponse_Response
}

// BatchCommands is client-go's default transport: each stream message
// carries many requests, each answered with a response of the same type and
// the same request ID. Requests run concurrently; responses are sent in
// batches as they complete, in any order. A request whose handler fails
// with a gRPC error (a command this store does not serve) ends the stream
// with that error, as a failed unary call would; failures in storage are
// answered inside the responses. When the client closes its side, the
// requests in flight are still answered.
func (s *Service) BatchCommands(stream tikvpb.Tikv_BatchCommandsServer) error {
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	out := newResponder(stream, cancel, &feedbackAttacher{health: s.health, now: s.now})
	go func() { cancel(s.receiveBatches(ctx, stream, out, cancel)) }()
	<-ctx.Done()
	out.close()
	if cause := context.Cause(ctx); !errors.Is(cause, io.EOF) {
		return cause
	}
	return nil
}

// receiveBatches runs every request until the stream ends or a handler
// fails: a point read (KvGet), which never waits, runs on this goroutine,
// sparing the handoff to a worker; every other request runs on a worker of
// the stream. At the end of the stream it waits for the requests in flight,
// so their results are sent before it returns io.EOF.
func (s *Service) receiveBatches(ctx context.Context, stream tikvpb.Tikv_BatchCommandsServer,
	out *responder, fail context.CancelCauseFunc) error {
	var inflight sync.WaitGroup
	workers := newWorkerPool()
	defer workers.close()
	defer inflight.Wait()
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		if len(req.GetRequestIds()) != len(req.GetRequests()) {
			return status.Errorf(codes.InvalidArgument, "batch of %d requests has %d ids",
				len(req.GetRequests()), len(req.GetRequestIds()))
		}
		for i, r := range req.GetRequests() {
			id := req.GetRequestIds()[i]
			if _, pointRead := r.GetCmd().(*tikvpb.BatchCommandsRequest_Request_Get); pointRead {
				s.runBatched(ctx, id, r, out, fail)
				continue
			}
			inflight.Add(1)
			workers.run(func() {
				defer inflight.Done()
				s.runBatched(ctx, id, r, out, fail)
			})
		}
	}
}

// workerPool runs tasks on goroutines that stay for further tasks, so a
// request does not pay for a new goroutine growing its stack again. It
// never queues: a task goes to an idle worker, or to a new one. Its owner
// calls run and close from one goroutine.
type workerPool struct {
	// idle carries a task to a worker waiting for one; it is unbuffered, so a
	// send succeeds only when a worker is idle.
	idle chan func()
}

func newWorkerPool() *workerPool { return &workerPool{idle: make(chan func())} }

func (p *workerPool) run(task func()) {
	select {
	case p.idle <- task:
	default:
		go p.work(task)
	}
}

func (p *workerPool) work(task func()) {
	for ; task != nil; task = <-p.idle {
		task()
	}
}

// close lets the workers exit once their current tasks are done.
func (p *workerPool) close() { close(p.idle) }

func (s *Service) runBatched(ctx context.Context, id uint64, r *tikvpb.BatchCommandsRequest_Request,
	out *responder, fail context.CancelCauseFunc) {
	start := time.Now()
	resp, method, err := s.dispatch(ctx, r)
	observe(method, start)
	if err != nil {
		fail(err)
		return
	}
	out.deliver(batchResult{id: id, resp: resp})
}

// responder sends the results of one stream. There is no sender goroutine:
// the goroutine that delivers a result while no send is running becomes the
// sender, and sends that result together with every result delivered while
// it was sending, until none is left. So a response costs no goroutine
// handoff, and responses that complete together share a stream message.
type responder struct {
	stream tikvpb.Tikv_BatchCommandsServer
	fail   context.CancelCauseFunc
	// feedback adds the store's health feedback to the batches that are
	// due to carry it; guarded by mu.
	feedback *feedbackAttacher

	mu sync.Mutex
	// idle is signalled when sending becomes false.
	idle *sync.Cond
	// pending holds the results delivered but not yet taken by the sender.
	pending []batchResult
	// sending reports that a goroutine is sending; only it calls stream.Send.
	sending bool
	// closed is set once the stream's handler is returning, or a send
	// failed; results delivered after it are dropped, as gRPC allows no
	// Send after the handler returns.
	closed bool
}

func newResponder(stream tikvpb.Tikv_BatchCommandsServer, fail context.CancelCauseFunc, feedback *feedbackAttacher) *responder {
	r := &responder{stream: stream, fail: fail, feedback: feedback}
	r.idle = sync.NewCond(&r.mu)
	return r
}

// deliver queues res and, unless another goroutine is sending, sends until
// the queue is empty or the responder is closed.
func (r *responder) deliver(res batchResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, res)
	if r.sending {
		return
	}
	r.sending = true
	for len(r.pending) > 0 && !r.closed {
		batch := r.takeBatch()
		r.mu.Unlock()
		err := r.stream.Send(batch)
		r.mu.Lock()
		if err != nil {
			r.closed = true
			r.fail(err)
		}
	}
	r.sending = false
	r.idle.Broadcast()
}

// takeBatch removes up to maxBatchResponses results from pending and
// returns them as one message, with the health feedback when it is due.
// The caller holds mu.
func (r *responder) takeBatch() *tikvpb.BatchCommandsResponse {
	n := min(len(r.pending), maxBatchResponses)
	batch := &tikvpb.BatchCommandsResponse{
		RequestIds: make([]uint64, n),
		Responses:  make([]*tikvpb.BatchCommandsResponse_Response, n),
	}
	for i, res := range r.pending[:n] {
		batch.RequestIds[i], batch.Responses[i] = res.id, res.resp
	}
	r.pending = append(r.pending[:0], r.pending[n:]...)
	r.feedback.attach(batch)
	return batch
}

// close waits for a send in progress and drops every later result.
func (r *responder) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for r.sending {
		r.idle.Wait()
	}
}

// dispatch runs one batched request through the unary handler of its type.
func (s *Service) dispatch(ctx context.Context, r *tikvpb.BatchCommandsRequest_Request) (*tikvpb.BatchCommandsResponse_Response, string, error) {
	switch cmd := r.GetCmd().(type) {
	case *tikvpb.BatchCommandsRequest_Request_Get:
		resp, err := s.KvGet(ctx, cmd.Get)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_Get{Get: resp}}, "KvGet", err
	case *tikvpb.BatchCommandsRequest_Request_Scan:
		resp, err := s.KvScan(ctx, cmd.Scan)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_Scan{Scan: resp}}, "KvScan", err
	case *tikvpb.BatchCommandsRequest_Request_Prewrite:
		resp, err := s.KvPrewrite(ctx, cmd.Prewrite)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_Prewrite{Prewrite: resp}}, "KvPrewrite", err
	case *tikvpb.BatchCommandsRequest_Request_Commit:
		resp, err := s.KvCommit(ctx, cmd.Commit)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_Commit{Commit: resp}}, "KvCommit", err
	case *tikvpb.BatchCommandsRequest_Request_Import:
		resp, err := s.KvImport(ctx, cmd.Import)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_Import{Import: resp}}, "KvImport", err
	case *tikvpb.BatchCommandsRequest_Request_Cleanup:
		resp, err := s.KvCleanup(ctx, cmd.Cleanup)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_Cleanup{Cleanup: resp}}, "KvCleanup", err
	case *tikvpb.BatchCommandsRequest_Request_BatchGet:
		resp, err := s.KvBatchGet(ctx, cmd.BatchGet)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_BatchGet{BatchGet: resp}}, "KvBatchGet", err
	case *tikvpb.BatchCommandsRequest_Request_BatchRollback:
		resp, err := s.KvBatchRollback(ctx, cmd.BatchRollback)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_BatchRollback{BatchRollback: resp}}, "KvBatchRollback", err
	case *tikvpb.BatchCommandsRequest_Request_ScanLock:
		resp, err := s.KvScanLock(ctx, cmd.ScanLock)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_ScanLock{ScanLock: resp}}, "KvScanLock", err
	case *tikvpb.BatchCommandsRequest_Request_ResolveLock:
		resp, err := s.KvResolveLock(ctx, cmd.ResolveLock)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_ResolveLock{ResolveLock: resp}}, "KvResolveLock", err
	case *tikvpb.BatchCommandsRequest_Request_GC:
		resp, err := s.KvGC(ctx, cmd.GC)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_GC{GC: resp}}, "KvGC", err
	case *tikvpb.BatchCommandsRequest_Request_DeleteRange:
		resp, err := s.KvDeleteRange(ctx, cmd.DeleteRange)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_DeleteRange{DeleteRange: resp}}, "KvDeleteRange", err
	case *tikvpb.BatchCommandsRequest_Request_RawGet:
		resp, err := s.RawGet(ctx, cmd.RawGet)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_RawGet{RawGet: resp}}, "RawGet", err
	case *tikvpb.BatchCommandsRequest_Request_RawBatchGet:
		resp, err := s.RawBatchGet(ctx, cmd.RawBatchGet)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_RawBatchGet{RawBatchGet: resp}}, "RawBatchGet", err
	case *tikvpb.BatchCommandsRequest_Request_RawPut:
		resp, err := s.RawPut(ctx, cmd.RawPut)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_RawPut{RawPut: resp}}, "RawPut", err
	case *tikvpb.BatchCommandsRequest_Request_RawBatchPut:
		resp, err := s.RawBatchPut(ctx, cmd.RawBatchPut)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_RawBatchPut{RawBatchPut: resp}}, "RawBatchPut", err
	case *tikvpb.BatchCommandsRequest_Request_RawDelete:
		resp, err := s.RawDelete(ctx, cmd.RawDelete)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_RawDelete{RawDelete: resp}}, "RawDelete", err
	case *tikvpb.BatchCommandsRequest_Request_RawBatchDelete:
		resp, err := s.RawBatchDelete(ctx, cmd.RawBatchDelete)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_RawBatchDelete{RawBatchDelete: resp}}, "RawBatchDelete", err
	case *tikvpb.BatchCommandsRequest_Request_RawScan:
		resp, err := s.RawScan(ctx, cmd.RawScan)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_RawScan{RawScan: resp}}, "RawScan", err
	case *tikvpb.BatchCommandsRequest_Request_RawDeleteRange:
		resp, err := s.RawDeleteRange(ctx, cmd.RawDeleteRange)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_RawDeleteRange{RawDeleteRange: resp}}, "RawDeleteRange", err
	case *tikvpb.BatchCommandsRequest_Request_RawBatchScan:
		resp, err := s.RawBatchScan(ctx, cmd.RawBatchScan)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_RawBatchScan{RawBatchScan: resp}}, "RawBatchScan", err
	case *tikvpb.BatchCommandsRequest_Request_Coprocessor:
		resp, err := s.Coprocessor(ctx, cmd.Coprocessor)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_Coprocessor{Coprocessor: resp}}, "Coprocessor", err
	case *tikvpb.BatchCommandsRequest_Request_PessimisticLock:
		resp, err := s.KvPessimisticLock(ctx, cmd.PessimisticLock)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_PessimisticLock{PessimisticLock: resp}}, "KvPessimisticLock", err
	case *tikvpb.BatchCommandsRequest_Request_PessimisticRollback:
		resp, err := s.KVPessimisticRollback(ctx, cmd.PessimisticRollback)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_PessimisticRollback{PessimisticRollback: resp}}, "KVPessimisticRollback", err
	case *tikvpb.BatchCommandsRequest_Request_CheckTxnStatus:
		resp, err := s.KvCheckTxnStatus(ctx, cmd.CheckTxnStatus)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_CheckTxnStatus{CheckTxnStatus: resp}}, "KvCheckTxnStatus", err
	case *tikvpb.BatchCommandsRequest_Request_TxnHeartBeat:
		resp, err := s.KvTxnHeartBeat(ctx, cmd.TxnHeartBeat)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_TxnHeartBeat{TxnHeartBeat: resp}}, "KvTxnHeartBeat", err
	case *tikvpb.BatchCommandsRequest_Request_CheckSecondaryLocks:
		resp, err := s.KvCheckSecondaryLocks(ctx, cmd.CheckSecondaryLocks)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_CheckSecondaryLocks{CheckSecondaryLocks: resp}}, "KvCheckSecondaryLocks", err
	case *tikvpb.BatchCommandsRequest_Request_RawCoprocessor:
		resp, err := s.RawCoprocessor(ctx, cmd.RawCoprocessor)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_RawCoprocessor{RawCoprocessor: resp}}, "RawCoprocessor", err
	case *tikvpb.BatchCommandsRequest_Request_FlashbackToVersion:
		resp, err := s.KvFlashbackToVersion(ctx, cmd.FlashbackToVersion)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_FlashbackToVersion{FlashbackToVersion: resp}}, "KvFlashbackToVersion", err
	case *tikvpb.BatchCommandsRequest_Request_PrepareFlashbackToVersion:
		resp, err := s.KvPrepareFlashbackToVersion(ctx, cmd.PrepareFlashbackToVersion)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_PrepareFlashbackToVersion{PrepareFlashbackToVersion: resp}}, "KvPrepareFlashbackToVersion", err
	case *tikvpb.BatchCommandsRequest_Request_Flush:
		resp, err := s.KvFlush(ctx, cmd.Flush)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_Flush{Flush: resp}}, "KvFlush", err
	case *tikvpb.BatchCommandsRequest_Request_BufferBatchGet:
		resp, err := s.KvBufferBatchGet(ctx, cmd.BufferBatchGet)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_BufferBatchGet{BufferBatchGet: resp}}, "KvBufferBatchGet", err
	case *tikvpb.BatchCommandsRequest_Request_GetHealthFeedback:
		resp, err := s.GetHealthFeedback(ctx, cmd.GetHealthFeedback)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_GetHealthFeedback{GetHealthFeedback: resp}}, "GetHealthFeedback", err
	case *tikvpb.BatchCommandsRequest_Request_BroadcastTxnStatus:
		resp, err := s.BroadcastTxnStatus(ctx, cmd.BroadcastTxnStatus)
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_BroadcastTxnStatus{BroadcastTxnStatus: resp}}, "BroadcastTxnStatus", err
	case *tikvpb.BatchCommandsRequest_Request_Empty:
		empty := &tikvpb.BatchCommandsEmptyResponse{TestId: cmd.Empty.GetTestId()}
		return &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_Empty{Empty: empty}}, "Empty", nil
	case nil:
		// A request without a command is answered with an empty response,
		// as TiKV answers invalid requests, rather than ending the stream.
		return &tikvpb.BatchCommandsResponse_Response{}, "invalid", nil
	default:
		return nil, "Unknown", status.Errorf(codes.Unimplemented, "unknown batch command %T", cmd)
	}
}
