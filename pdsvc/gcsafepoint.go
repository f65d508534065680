package pdsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
)

// gcWorkerService is the service ID TiDB's GC worker uses; PD keeps a safe
// point for it at all times.
const gcWorkerService = "gc_worker"

// serviceSafePoint is one service's GC safe point, in PD's JSON shape.
type serviceSafePoint struct {
	ServiceID string `json:"service_id"`
	ExpiredAt int64  `json:"expired_at"` // unix seconds; math.MaxInt64 never expires
	SafePoint uint64 `json:"safe_point"`
}

// gcSafePoints keeps the cluster GC safe point and the per-service safe
// points that hold it back.
type gcSafePoints struct {
	storage *storage

	// mu serialises read-modify-write cycles on the safe points.
	mu sync.Mutex
}

// clusterSafePoint returns the cluster GC safe point (0 if never set).
func (g *gcSafePoints) clusterSafePoint(ctx context.Context) (uint64, error) {
	raw, err := g.storage.load(ctx, g.storage.gcSafePointKey())
	if err != nil || raw == nil {
		return 0, err
	}
	sp, err := strconv.ParseUint(string(raw), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("gc: decode safe point: %w", err)
	}
	return sp, nil
}

// updateClusterSafePoint raises the cluster safe point to proposed and
// returns the safe point in force afterwards: it never moves back.
func (g *gcSafePoints) updateClusterSafePoint(ctx context.Context, proposed uint64) (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old, err := g.clusterSafePoint(ctx)
	if err != nil {
		return 0, err
	}
	if proposed <= old {
		return old, nil
	}
	if err := g.storage.save(ctx, g.storage.gcSafePointKey(), []byte(strconv.FormatUint(proposed, 16))); err != nil {
		return 0, err
	}
	return proposed, nil
}

// updateServiceSafePoint sets, refreshes or (with ttl <= 0) removes a
// service's safe point and returns the minimum over live services, as PD's
// UpdateServiceGCSafePoint does. A service may not set a safe point below the
// current minimum. gc_worker's safe point never expires.
func (g *gcSafePoints) updateServiceSafePoint(ctx context.Context, service string, safePoint uint64, ttl int64, now time.Time) (*serviceSafePoint, error) {
	if service == "" {
		return nil, fmt.Errorf("gc: empty service id: %w", ErrInvalidValue)
	}
	if service == gcWorkerService && ttl != math.MaxInt64 {
		return nil, fmt.Errorf("gc: TTL of gc_worker's service safe point must be infinity: %w", ErrInvalidValue)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if ttl <= 0 {
		if err := g.storage.remove(ctx, g.storage.serviceSafePointKey(service)); err != nil {
			return nil, err
		}
	}
	minimum, err := g.minServiceSafePoint(ctx, now)
	if err != nil {
		return nil, err
	}
	if ttl <= 0 || safePoint < minimum.SafePoint {
		return minimum, nil
	}
	entry := &serviceSafePoint{ServiceID: service, SafePoint: safePoint, ExpiredAt: expiry(now, ttl)}
	if err := g.saveService(ctx, entry); err != nil {
		return nil, err
	}
	if minimum.ServiceID == service {
		return g.minServiceSafePoint(ctx, now)
	}
	return minimum, nil
}

func expiry(now time.Time, ttl int64) int64 {
	if ttl >= math.MaxInt64-now.Unix() {
		return math.MaxInt64
	}
	return now.Unix() + ttl
}

func (g *gcSafePoints) saveService(ctx context.Context, sp *serviceSafePoint) error {
	raw, err := json.Marshal(sp)
	if err != nil {
		return fmt.Errorf("gc: encode service safe point: %w", err)
	}
	return g.storage.save(ctx, g.storage.serviceSafePointKey(sp.ServiceID), raw)
}

// minServiceSafePoint drops expired entries and returns the smallest live
// one. Like PD, it keeps a gc_worker entry: created at 0 when nothing is
// live, or at the smallest value seen when only gc_worker is missing.
func (g *gcSafePoints) minServiceSafePoint(ctx context.Context, now time.Time) (*serviceSafePoint, error) {
	all, err := g.serviceSafePoints(ctx)
	if err != nil {
		return nil, err
	}
	var minimum *serviceSafePoint
	hasGCWorker := false
	lowest := uint64(math.MaxUint64)
	for _, sp := range all {
		lowest = min(lowest, sp.SafePoint)
		hasGCWorker = hasGCWorker || sp.ServiceID == gcWorkerService
		if sp.ExpiredAt < now.Unix() {
			if err := g.storage.remove(ctx, g.storage.serviceSafePointKey(sp.ServiceID)); err != nil {
				return nil, err
			}
			continue
		}
		if minimum == nil || sp.SafePoint < minimum.SafePoint {
			minimum = sp
		}
	}
	switch {
	case minimum == nil:
		return g.initGCWorker(ctx, 0)
	case !hasGCWorker:
		return g.initGCWorker(ctx, lowest)
	}
	return minimum, nil
}

func (g *gcSafePoints) initGCWorker(ctx context.Context, safePoint uint64) (*serviceSafePoint, error) {
	sp := &serviceSafePoint{ServiceID: gcWorkerService, SafePoint: safePoint, ExpiredAt: math.MaxInt64}
	if err := g.saveService(ctx, sp); err != nil {
		return nil, err
	}
	return sp, nil
}

// serviceSafePoints returns every stored service safe point.
func (g *gcSafePoints) serviceSafePoints(ctx context.Context) ([]*serviceSafePoint, error) {
	values, err := g.storage.loadPrefix(ctx, g.storage.serviceSafePointPrefix())
	if err != nil {
		return nil, err
	}
	result := make([]*serviceSafePoint, 0, len(values))
	for _, raw := range values {
		sp := &serviceSafePoint{}
		if err := json.Unmarshal(raw, sp); err != nil {
			return nil, fmt.Errorf("gc: decode service safe point: %w", err)
		}
		result = append(result, sp)
	}
	return result, nil
}
