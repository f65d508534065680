package tikvsvc

import (
	"context"
	"math"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// resolvedTSInterval is how often the store advances its safe ts, as
// TiKV's resolved-ts.advance-ts-interval.
const resolvedTSInterval = time.Second

// tsSource issues timestamps and takes resolved-ts reports: PD.
type tsSource interface {
	TS(ctx context.Context) (uint64, error)
	ReportMinResolvedTS(ctx context.Context, storeID, ts uint64) error
}

// resolvedTS maintains the store's safe ts: every read at or below it sees
// final data, because no transaction can still commit a version at or
// below it. It is max_ts-based, like a read: the store first raises max_ts
// to a fresh timestamp T (so async-commit and 1PC prewrites from then on
// commit above T), then takes the smallest start_ts of the locks present
// (in memory and stored); safe ts = min(T, that start_ts - 1). Locks of
// pipelined-DML transactions count as their min_commit_ts instead, when
// clients broadcast it (txnStatusCache).
type resolvedTS struct {
	svc     *Service
	pd      tsSource
	storeID uint64
}

func (r *resolvedTS) run(ctx context.Context) {
	ticker := time.NewTicker(resolvedTSInterval)
	defer ticker.Stop()
	for {
		if err := r.advance(ctx); err != nil && ctx.Err() == nil {
			r.svc.log.Debug("resolved ts: advance", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (r *resolvedTS) advance(ctx context.Context) error {
	now, err := r.pd.TS(ctx)
	if err != nil {
		return err
	}
	r.svc.txn.ConcurrencyManager().UpdateMaxTS(now)
	oldest, err := r.oldestLock(ctx, now)
	if err != nil {
		return err
	}
	safe := now
	if oldest != math.MaxUint64 {
		safe = min(safe, oldest-1)
	}
	for {
		cur := r.svc.safeTS.Load()
		if safe <= cur || r.svc.safeTS.CompareAndSwap(cur, safe) {
			break
		}
	}
	return r.pd.ReportMinResolvedTS(ctx, r.storeID, r.svc.safeTS.Load())
}

// oldestLock returns the smallest ts that a lock at or below ts holds the
// safe ts under, in memory or stored: its start_ts, or for a pipelined-DML
// transaction what the txn status cache knows (see txnStatusCache). It
// returns MaxUint64 if no lock bounds the safe ts. It reads one lock per
// transaction, so a pipelined transaction's millions of locks cost no more
// than one.
func (r *resolvedTS) oldestLock(ctx context.Context, ts uint64) (uint64, error) {
	oldest := uint64(math.MaxUint64)
	err := r.svc.txn.LockedTxns(ctx, ts, func(startTS, generation uint64) {
		if bound, ok := r.svc.txnStatus.lockBound(startTS, generation); ok {
			oldest = min(oldest, bound)
		}
	})
	return oldest, err
}

// GetStoreSafeTS reports the store's safe ts for stale reads.
func (s *Service) GetStoreSafeTS(ctx context.Context, _ *kvrpcpb.StoreSafeTSRequest) (*kvrpcpb.StoreSafeTSResponse, error) {
	return &kvrpcpb.StoreSafeTSResponse{SafeTs: s.safeTS.Load()}, nil
}
