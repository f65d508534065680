package engine

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestOnLogSyncSeesEveryAppend checks that the observer hears of each
// write-ahead log append, with its duration, and that an engine without a
// log (no SyncWrites) reports none.
func TestOnLogSyncSeesEveryAppend(t *testing.T) {
	var mu sync.Mutex
	var took []time.Duration
	opts := diskOptions()
	opts.OnLogSync = func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		took = append(took, d)
	}
	e := openTestEngine(t, t.TempDir(), opts)
	const writes = 5
	for i := range writes {
		put(t, e, CfDefault, fmt.Sprint("k", i), "v")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, took, writes, "one append per sequential write")
	require.EqualValues(t, writes, e.CommitStats().LogSyncs)
	var sum time.Duration
	for _, d := range took {
		require.Positive(t, d)
		sum += d
	}
	require.Equal(t, e.CommitStats().LogSyncTime, sum, "the observer sees the durations the stats add up")
	require.Zero(t, e.RunningLogSync(), "no append is running between writes")

	unlogged := testOptions()
	unlogged.OnLogSync = func(time.Duration) { t.Error("an engine without a log reported an append") }
	put(t, openTestEngine(t, "", unlogged), CfDefault, "k", "v")
}

// TestRunningLogSyncMeasuresTheAppendInProgress checks the duration of an
// append that has not returned: it is what a disk that stops answering
// looks like before any append completes.
func TestRunningLogSyncMeasuresTheAppendInProgress(t *testing.T) {
	e := openTestEngine(t, t.TempDir(), diskOptions())
	now := time.Now()
	e.committer.syncStarted.Store(now.Add(-3 * time.Second).UnixNano())
	require.Equal(t, 3*time.Second, e.committer.runningSync(now))
	e.committer.syncStarted.Store(0)
	require.Zero(t, e.committer.runningSync(now))
}
