package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tinykv/tinykv/internal/proc"
)

// Counters of the stores' raft engine, whose write-ahead log holds the raft
// logs: the only log a store fsyncs (the kv engine runs without syncs).
const (
	storeWritesMetric      = "tinykv_engine_commit_writes_total"
	storeSyncsMetric       = "tinykv_engine_wal_syncs_total"
	storeSyncSecondsMetric = "tinykv_engine_wal_sync_seconds_total"
	storeRaftLabel         = `db="raft"`
)

// etcdSyncsMetric is the histogram of etcd's WAL fsyncs; every member
// embedded in this process observes into the same one.
const etcdSyncsMetric = "etcd_disk_wal_fsync_duration_seconds"

// syncSample is a reading of a system's write-ahead log counters, summed
// over its replicas.
type syncSample struct {
	syncs float64 // write-ahead log fsyncs
	// syncSeconds is the time spent in them: the record's write and its
	// fdatasync for a store, the fsync alone for etcd.
	syncSeconds float64
	// engineWrites is how many engine writes those fsyncs' group commits
	// carried; 0 when the system does not count them (etcd).
	engineWrites float64
}

func (s syncSample) minus(t syncSample) syncSample {
	return syncSample{syncs: s.syncs - t.syncs, syncSeconds: s.syncSeconds - t.syncSeconds,
		engineWrites: s.engineWrites - t.engineWrites}
}

// syncMeter reads a system's counters.
type syncMeter interface {
	sample(ctx context.Context) (syncSample, error)
}

// storeMeter reads the raft engine counters from each store's status
// /metrics.
type storeMeter struct{ statusAddrs []string }

func (m storeMeter) sample(ctx context.Context) (syncSample, error) {
	var sum syncSample
	for _, addr := range m.statusAddrs {
		s, err := scrapeStore(ctx, "http://"+addr+"/metrics")
		if err != nil {
			return syncSample{}, err
		}
		sum.syncs += s.syncs
		sum.syncSeconds += s.syncSeconds
		sum.engineWrites += s.engineWrites
	}
	return sum, nil
}

// scrapeStore reads one store's raft engine counters from url.
func scrapeStore(ctx context.Context, url string) (syncSample, error) {
	resp, err := proc.GetOK(ctx, url)
	if err != nil {
		return syncSample{}, fmt.Errorf("store metrics: %w", err)
	}
	defer resp.Body.Close()
	values, err := parseCounters(resp.Body, storeRaftLabel, storeWritesMetric, storeSyncsMetric, storeSyncSecondsMetric)
	if err != nil {
		return syncSample{}, fmt.Errorf("store metrics %s: %w", url, err)
	}
	return syncSample{engineWrites: values[storeWritesMetric], syncs: values[storeSyncsMetric],
		syncSeconds: values[storeSyncSecondsMetric]}, nil
}

// parseCounters returns the values of the samples of names that carry
// label, from a Prometheus text exposition; every name must have one.
func parseCounters(r io.Reader, label string, names ...string) (map[string]float64, error) {
	values := make(map[string]float64)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		labels, value, ok := strings.Cut(rest, "}")
		if !ok || !strings.Contains(labels, label) {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			return nil, fmt.Errorf("no value in %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("value of %q: %w", line, err)
		}
		values[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	for _, name := range names {
		if _, ok := values[name]; !ok {
			return nil, fmt.Errorf("no %s{%s}", name, label)
		}
	}
	return values, nil
}

// etcdMeter reads the embedded members' WAL fsync count from the default
// Prometheus registry, where etcd registers its metrics.
type etcdMeter struct{}

func (etcdMeter) sample(context.Context) (syncSample, error) {
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return syncSample{}, fmt.Errorf("gather etcd metrics: %w", err)
	}
	for _, f := range families {
		if f.GetName() != etcdSyncsMetric {
			continue
		}
		var sum syncSample
		for _, m := range f.GetMetric() {
			sum.syncs += float64(m.GetHistogram().GetSampleCount())
			sum.syncSeconds += m.GetHistogram().GetSampleSum()
		}
		return sum, nil
	}
	return syncSample{}, errors.New("no " + etcdSyncsMetric + " in the default registry")
}

// syncDelta is what a phase added to a system's counters.
type syncDelta struct {
	known bool // false when the system has no meter or a reading failed
	syncSample
}

// runMetered runs a phase like runPhase and records the fsyncs it caused
// when sys has a meter.
func runMetered(ctx context.Context, spec runSpec, sys system, ph phase, index int) result {
	if sys.meter == nil {
		return runPhase(ctx, spec, sys, ph, index)
	}
	before, err := sys.meter.sample(ctx)
	res := runPhase(ctx, spec, sys, ph, index)
	if err == nil {
		var after syncSample
		if after, err = sys.meter.sample(ctx); err == nil {
			res.syncs = syncDelta{known: true, syncSample: after.minus(before)}
			return res
		}
	}
	slog.Warn("fsync counters unavailable", "system", sys.name, "workload", ph.workload, "err", err)
	return res
}
