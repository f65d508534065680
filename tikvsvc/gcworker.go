package tikvsvc

import (
	"context"
	"time"
)

// DefaultGCPollInterval is how often the store asks PD for the GC safe
// point, as TiKV's gc.poll-safe-point-interval.
const DefaultGCPollInterval = 10 * time.Second

// safePointSource reports the cluster GC safe point.
type safePointSource interface {
	GCSafePoint(ctx context.Context) (uint64, error)
}

// gcWorker polls PD's GC safe point and, each time it advances, removes the
// versions below it from every region the store serves (keeping, per key,
// the newest version visible at the safe point).
type gcWorker struct {
	svc      *Service
	pd       safePointSource
	interval time.Duration
	// done is the safe point the last complete GC pass ran at.
	done uint64
}

func (w *gcWorker) run(ctx context.Context) {
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			w.tick(ctx)
		}
	}
}

// tick runs one GC pass if the safe point moved.
func (w *gcWorker) tick(ctx context.Context) {
	safePoint, err := w.pd.GCSafePoint(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.svc.log.Warn("gc: get safe point", "err", err)
		}
		return
	}
	if safePoint <= w.done {
		return
	}
	for _, region := range w.svc.regions.Led(ctx) {
		start, end, err := rawRegionRange(region)
		if err == nil {
			err = w.svc.txn.GC(ctx, regionContext(region, w.svc.storeID), start, end, safePoint)
		}
		if err != nil {
			w.svc.log.Warn("gc: region", "region-id", region.GetId(), "safe-point", safePoint, "err", err)
			return
		}
	}
	w.svc.log.Info("gc: pass done", "safe-point", safePoint)
	w.done = safePoint
}
