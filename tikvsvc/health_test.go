package tikvsvc

import (
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
)

// round records inspections disk writes, timeouts of them slow, and ends
// the round after elapsed.
func round(s *slowScore, now *time.Time, elapsed time.Duration, inspections, timeouts int) float64 {
	for i := range inspections {
		took := time.Millisecond
		if i < timeouts {
			took = slowScoreTimeout
		}
		s.record(took)
	}
	*now = now.Add(elapsed)
	return s.update(*now, 0)
}

// TestSlowScoreFollowsTiKV checks the score against TiKV's rules
// (health_controller/slow_score.rs): it starts at 1; a round whose share of
// timed-out inspections reaches 10% doubles it, a smaller share raises it
// in proportion; it never passes 100; a round without timeouts lowers it by
// 100 per 5 minutes, never below 1.
func TestSlowScoreFollowsTiKV(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := newSlowScore(now)
	const tick = 10 * time.Second
	steps := []struct {
		name                  string
		elapsed               time.Duration
		inspections, timeouts int
		want                  float64
	}{
		{"healthy start", tick, 50, 0, 1},
		{"20% timed out doubles", tick, 5, 1, 2},
		{"10% timed out doubles", tick, 10, 1, 4},
		{"5% timed out adds half", tick, 20, 1, 6},
		{"an idle disk recovers", 30 * time.Second, 0, 0, 1},
		{"recovery stops at 1", 5 * time.Minute, 0, 0, 1},
	}
	for _, step := range steps {
		if got := round(s, &now, step.elapsed, step.inspections, step.timeouts); got != step.want {
			t.Fatalf("%s: score %v, want %v", step.name, got, step.want)
		}
	}
	for range 10 {
		round(s, &now, tick, 1, 1)
	}
	if got := s.get(); got != maxSlowScore {
		t.Fatalf("score after ten slow rounds = %d, want the cap %d", got, maxSlowScore)
	}
	if got := round(s, &now, 150*time.Second, 3, 0); got != 50 {
		t.Fatalf("score after 150 s without timeouts = %v, want 50", got)
	}
}

// TestSlowScoreCountsAStuckWrite: a disk write still running past the
// timeout when the round ends counts as a timed-out inspection, so a disk
// that stops answering raises the score although no write completes.
func TestSlowScoreCountsAStuckWrite(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := newSlowScore(now)
	now = now.Add(10 * time.Second)
	if got := s.update(now, slowScoreTimeout/2); got != 1 {
		t.Fatalf("score with a write running for half the timeout = %v, want 1", got)
	}
	now = now.Add(10 * time.Second)
	if got := s.update(now, 3*time.Second); got != 2 {
		t.Fatalf("score with a write stuck for 3 s = %v, want 2", got)
	}
}

// TestFeedbackAttacherFollowsTiKV checks which batches carry the health
// feedback: the first one; then one once the interval has passed; and any
// batch answering GetHealthFeedback, with that answer's feedback.
func TestFeedbackAttacherFollowsTiKV(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	a := testFeedback(func() time.Time { return now })
	batch := func(responses ...*tikvpb.BatchCommandsResponse_Response) *kvrpcpb.HealthFeedback {
		b := &tikvpb.BatchCommandsResponse{Responses: responses}
		a.attach(b)
		return b.GetHealthFeedback()
	}
	first := batch(&tikvpb.BatchCommandsResponse_Response{})
	if first.GetStoreId() != 1 || first.GetSlowScore() != 1 || first.GetFeedbackSeqNo() == 0 {
		t.Fatalf("first batch's feedback = %v", first)
	}
	now = now.Add(healthFeedbackInterval / 2)
	if got := batch(&tikvpb.BatchCommandsResponse_Response{}); got != nil {
		t.Fatalf("batch within the interval carries %v", got)
	}
	requested, err := (&Service{health: a.health}).GetHealthFeedback(t.Context(), &kvrpcpb.GetHealthFeedbackRequest{})
	if err != nil {
		t.Fatal(err)
	}
	answer := &tikvpb.BatchCommandsResponse_Response{Cmd: &tikvpb.BatchCommandsResponse_Response_GetHealthFeedback{GetHealthFeedback: requested}}
	if got := batch(&tikvpb.BatchCommandsResponse_Response{}, answer); got != requested.GetHealthFeedback() {
		t.Fatalf("batch answering GetHealthFeedback carries %v, want the answer's %v", got, requested.GetHealthFeedback())
	}
	if requested.GetHealthFeedback().GetFeedbackSeqNo() <= first.GetFeedbackSeqNo() {
		t.Fatalf("feedback seq went from %d to %d", first.GetFeedbackSeqNo(), requested.GetHealthFeedback().GetFeedbackSeqNo())
	}
	now = now.Add(healthFeedbackInterval - time.Millisecond)
	if got := batch(&tikvpb.BatchCommandsResponse_Response{}); got != nil {
		t.Fatalf("batch within the interval of the requested feedback carries %v", got)
	}
	now = now.Add(time.Millisecond)
	if got := batch(&tikvpb.BatchCommandsResponse_Response{}); got == nil {
		t.Fatal("batch after the interval carries no feedback")
	}
}
