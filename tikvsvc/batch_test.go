package tikvsvc

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/tikvpb"
)

// TestWorkerPoolNeverQueuesAndReusesWorkers: tasks that block each other
// all run at once (a task never waits for a busy worker), later tasks run
// on the idle workers without new goroutines, and close lets every worker
// exit.
func TestWorkerPoolNeverQueuesAndReusesWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newWorkerPool()
	const tasks = 50
	var started, done sync.WaitGroup
	release := make(chan struct{})
	started.Add(tasks)
	done.Add(tasks)
	for range tasks {
		p.run(func() {
			started.Done()
			<-release // blocks until every task has started
			done.Done()
		})
	}
	started.Wait()
	close(release)
	done.Wait()
	workers := runtime.NumGoroutine() - before

	for range 1000 {
		ran := make(chan struct{})
		p.run(func() { close(ran) })
		<-ran
	}
	if grown := runtime.NumGoroutine() - before; grown > workers {
		t.Fatalf("sequential tasks started new goroutines: %d workers, then %d", workers, grown)
	}

	p.close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after close", runtime.NumGoroutine()-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeBatchStream records the messages a responder sends. Until release is
// closed, each Send first reports itself on sending and then waits.
type fakeBatchStream struct {
	tikvpb.Tikv_BatchCommandsServer
	sending chan struct{}
	release chan struct{}
	err     error

	mu   sync.Mutex
	sent [][]uint64
}

func newFakeBatchStream() *fakeBatchStream {
	return &fakeBatchStream{sending: make(chan struct{}, 1000), release: make(chan struct{})}
}

func (f *fakeBatchStream) Send(m *tikvpb.BatchCommandsResponse) error {
	f.sending <- struct{}{}
	<-f.release
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(m.GetRequestIds()) != len(m.GetResponses()) {
		return errors.New("ids and responses differ in length")
	}
	f.sent = append(f.sent, m.GetRequestIds())
	return f.err
}

func (f *fakeBatchStream) messages() [][]uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func result(id uint64) batchResult {
	return batchResult{id: id, resp: &tikvpb.BatchCommandsResponse_Response{}}
}

// TestResponderSendsEveryResultOnce: results delivered concurrently are all
// sent, each once, in messages of at most maxBatchResponses.
func TestResponderSendsEveryResultOnce(t *testing.T) {
	stream := newFakeBatchStream()
	close(stream.release)
	out := newResponder(stream, func(err error) { t.Errorf("fail(%v)", err) }, testFeedback(time.Now))
	const results = 1000
	var wg sync.WaitGroup
	for id := range uint64(results) {
		wg.Go(func() { out.deliver(result(id)) })
	}
	wg.Wait()
	seen := make(map[uint64]int)
	for _, ids := range stream.messages() {
		if len(ids) == 0 || len(ids) > maxBatchResponses {
			t.Fatalf("message of %d results", len(ids))
		}
		for _, id := range ids {
			seen[id]++
		}
	}
	for id := range uint64(results) {
		if seen[id] != 1 {
			t.Fatalf("result %d sent %d times", id, seen[id])
		}
	}
}

// TestResponderBatchesResultsDeliveredDuringASend: while one goroutine is
// sending, others only queue their results and return; the sender then
// sends them in messages of maxBatchResponses, oldest first.
func TestResponderBatchesResultsDeliveredDuringASend(t *testing.T) {
	stream := newFakeBatchStream()
	out := newResponder(stream, func(err error) { t.Errorf("fail(%v)", err) }, testFeedback(time.Now))
	first := make(chan struct{})
	go func() {
		defer close(first)
		out.deliver(result(0))
	}()
	<-stream.sending
	const queued = maxBatchResponses + 10
	for id := range uint64(queued) {
		out.deliver(result(id + 1)) // returns at once: a send is running
	}
	close(stream.release)
	<-first
	got := stream.messages()
	wantSizes := []int{1, maxBatchResponses, 10}
	if len(got) != len(wantSizes) {
		t.Fatalf("sent %d messages, want %d", len(got), len(wantSizes))
	}
	next := uint64(0)
	for i, ids := range got {
		if len(ids) != wantSizes[i] {
			t.Fatalf("message %d has %d results, want %d", i, len(ids), wantSizes[i])
		}
		for _, id := range ids {
			if id != next {
				t.Fatalf("result %d sent where %d was due", id, next)
			}
			next++
		}
	}
}

// TestResponderCloseWaitsForTheSendAndDropsTheRest: close returns only once
// the running send is done; results queued behind it, or delivered after
// close, are never sent.
func TestResponderCloseWaitsForTheSendAndDropsTheRest(t *testing.T) {
	stream := newFakeBatchStream()
	out := newResponder(stream, func(err error) { t.Errorf("fail(%v)", err) }, testFeedback(time.Now))
	go out.deliver(result(1))
	<-stream.sending
	out.deliver(result(2))
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		out.close()
	}()
	select {
	case <-closed:
		t.Fatal("close returned while a send was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(stream.release)
	<-closed
	out.deliver(result(3))
	if got := stream.messages(); !slices.EqualFunc(got, [][]uint64{{1}}, slices.Equal) {
		t.Fatalf("sent %v, want only [[1]]", got)
	}
}

// TestResponderFailsTheStreamWhenASendFails: a failed send is reported
// through fail, and later results are dropped.
func TestResponderFailsTheStreamWhenASendFails(t *testing.T) {
	stream := newFakeBatchStream()
	close(stream.release)
	stream.err = errors.New("connection reset")
	var failures []error
	out := newResponder(stream, func(err error) { failures = append(failures, err) }, testFeedback(time.Now))
	out.deliver(result(1))
	out.deliver(result(2))
	if len(failures) != 1 || !errors.Is(failures[0], stream.err) {
		t.Fatalf("fail called with %v, want once with %v", failures, stream.err)
	}
	if got := len(stream.messages()); got != 1 {
		t.Fatalf("%d messages sent, want 1", got)
	}
}

// testFeedback returns a feedback attacher for a store whose disk is
// healthy, reading the clock now.
func testFeedback(now func() time.Time) *feedbackAttacher {
	return &feedbackAttacher{health: &healthReporter{storeID: 1, score: newSlowScore(now())}, now: now}
}
