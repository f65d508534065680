package tikvsvc

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
)

// The disk slow score follows TiKV's (components/health_controller,
// slow_score.rs): each disk write is an inspection, and one slower than
// slowScoreTimeout (TiKV's raftstore.inspect-interval) is a timeout. Every
// round the score is updated from the share of timeouts: with none it
// falls back toward 1 by 100 per slowScoreRecovery; with some it is
// multiplied by 1 + min(share, slowScoreTimeoutShare)/slowScoreTimeoutShare,
// that is, it at most doubles per round, up to maxSlowScore.
const (
	slowScoreTimeout      = 100 * time.Millisecond
	slowScoreTimeoutShare = 0.1
	slowScoreRecovery     = 5 * time.Minute
	minSlowScore          = 1
	maxSlowScore          = 100
)

// healthFeedbackInterval is how often a BatchCommands stream carries the
// store's health feedback unasked (TiKV's server.health-feedback-interval).
const healthFeedbackInterval = time.Second

// slowScore rates how slow the store's disk is, from 1 (healthy) to 100.
// PD's evict-slow-store scheduler reads it from the store heartbeat and
// client-go from the health feedback. Safe for concurrent use.
type slowScore struct {
	mu sync.Mutex
	// value is the score, in [minSlowScore, maxSlowScore].
	value float64
	// inspections and timeouts count the disk writes of the current round,
	// and those slower than slowScoreTimeout.
	inspections, timeouts int
	// lastUpdate is when the current round started.
	lastUpdate time.Time
}

func newSlowScore(now time.Time) *slowScore {
	return &slowScore{value: minSlowScore, lastUpdate: now}
}

// record counts one disk write that took took.
func (s *slowScore) record(took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inspections++
	if took >= slowScoreTimeout {
		s.timeouts++
	}
}

// update ends the round at now and returns the new score. running is how
// long the disk write in progress has been running (zero when none is): a
// write stuck past the timeout counts as a timed-out inspection, so that a
// disk that stops answering raises the score although no write completes.
func (s *slowScore) update(now time.Time, running time.Duration) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if running >= slowScoreTimeout {
		s.inspections++
		s.timeouts++
	}
	if s.timeouts == 0 {
		recovered := maxSlowScore * now.Sub(s.lastUpdate).Seconds() / slowScoreRecovery.Seconds()
		s.value = max(minSlowScore, s.value-recovered)
	} else {
		share := float64(s.timeouts) / float64(s.inspections)
		s.value = min(maxSlowScore, s.value*(1+min(share, slowScoreTimeoutShare)/slowScoreTimeoutShare))
	}
	s.inspections, s.timeouts, s.lastUpdate = 0, 0, now
	return s.value
}

// get returns the score as TiKV reports it: truncated to an integer.
func (s *slowScore) get() int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int32(s.value)
}

// healthReporter builds the health feedback the store sends to clients.
type healthReporter struct {
	storeID uint64
	score   *slowScore
	// seq numbers the feedback messages the store sends, on all streams.
	seq atomic.Uint64
}

func (h *healthReporter) feedback() *kvrpcpb.HealthFeedback {
	return &kvrpcpb.HealthFeedback{
		StoreId:       h.storeID,
		FeedbackSeqNo: h.seq.Add(1),
		SlowScore:     h.score.get(),
	}
}

// GetHealthFeedback returns the store's health feedback. On a
// BatchCommands stream, the batch that carries its answer carries the same
// feedback too, as with TiKV.
func (s *Service) GetHealthFeedback(_ context.Context, _ *kvrpcpb.GetHealthFeedbackRequest) (*kvrpcpb.GetHealthFeedbackResponse, error) {
	return &kvrpcpb.GetHealthFeedbackResponse{HealthFeedback: s.health.feedback()}, nil
}

// feedbackAttacher decides which batches of one BatchCommands stream carry
// the store's health feedback: a batch answering GetHealthFeedback carries
// the feedback of that answer, and otherwise a batch does once
// healthFeedbackInterval has passed since the stream last carried one.
type feedbackAttacher struct {
	health *healthReporter
	now    func() time.Time
	// last is when the stream last carried feedback; zero before the first.
	last time.Time
}

// attach sets batch's health feedback when it is due.
func (a *feedbackAttacher) attach(batch *tikvpb.BatchCommandsResponse) {
	now := a.now()
	for _, resp := range batch.GetResponses() {
		if requested := resp.GetGetHealthFeedback().GetHealthFeedback(); requested != nil {
			batch.HealthFeedback, a.last = requested, now
			return
		}
	}
	if a.last.IsZero() || now.Sub(a.last) >= healthFeedbackInterval {
		batch.HealthFeedback, a.last = a.health.feedback(), now
	}
}
