package tikvsvc

import (
	"runtime"
	"sync"
	"testing"
	"time"
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
