package tikvsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/raftstore"
)

// statusServer serves TiKV's status HTTP API: /status, /metrics (Prometheus
// text format), /config (GET as nested JSON, POST to change values) and
// /debug/pprof/ (Go's profiles; TiKV serves its own at the same paths).
type statusServer struct {
	srv  *http.Server
	node *Node

	mu sync.Mutex
	// config is the flattened configuration: "section.key" -> value.
	config map[string]any
}

func startStatusServer(addr string, node *Node) (*statusServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status server: listen on %s: %w", addr, err)
	}
	s := &statusServer{node: node, config: defaultConfig(node.cfg)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", s.handleStatus)
	engines := prometheus.NewRegistry()
	engines.MustRegister(engineCollector{"kv": node.kv, "raft": node.raftDB}, readCollector{node.store})
	gatherers := prometheus.Gatherers{metricsRegistry, engines}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /config", s.handleGetConfig)
	mux.HandleFunc("POST /config", s.handlePostConfig)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			node.log.Error("status server stopped", "err", err)
		}
	}()
	return s, nil
}

func (s *statusServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// defaultConfig is the part of TiKV's configuration that clients read:
// TiDB's GC checks storage.engine, client tools check api-version, TiDB's
// ingest (fast ADD INDEX) sizes its regions by the coprocessor split
// settings (TiKV's defaults).
func defaultConfig(cfg NodeConfig) map[string]any {
	return map[string]any{
		"server.addr":                   cfg.Addr,
		"server.advertise-addr":         cfg.AdvertiseAddr,
		"server.status-addr":            cfg.StatusAddr,
		"storage.data-dir":              cfg.DataDir,
		"storage.engine":                "raft-kv",
		"storage.api-version":           1,
		"storage.enable-ttl":            true,
		"storage.max-key-size":          maxKeySize,
		"raftstore.raft-entry-max-size": fmt.Sprintf("%dMiB", maxEntrySize>>20),
		"pd.endpoints":                  cfg.PDAddrs,
		"coprocessor.region-split-size": "96MiB",
		"coprocessor.region-max-size":   "144MiB",
		"coprocessor.region-split-keys": 960000,
		"coprocessor.region-max-keys":   1440000,
	}
}

func (s *statusServer) handleStatus(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
}

func (s *statusServer) handleGetConfig(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	nested := nest(s.config)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(nested)
}

// handlePostConfig applies a JSON object of flattened keys, as TiDB's
// SET CONFIG sends. Unknown keys are rejected and nothing is applied.
func (s *statusServer) handlePostConfig(w http.ResponseWriter, r *http.Request) {
	var changes map[string]any
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&changes); err != nil {
		http.Error(w, "invalid config json: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range changes {
		if _, ok := s.config[key]; !ok {
			http.Error(w, fmt.Sprintf("unknown config %q", key), http.StatusBadRequest)
			return
		}
	}
	for key, value := range changes {
		s.config[key] = value
	}
	w.WriteHeader(http.StatusOK)
}

// nest turns {"a.b": v} into {"a": {"b": v}}.
func nest(flat map[string]any) map[string]any {
	out := make(map[string]any)
	for key, value := range flat {
		parts := strings.Split(key, ".")
		m := out
		for _, part := range parts[:len(parts)-1] {
			child, ok := m[part].(map[string]any)
			if !ok {
				child = make(map[string]any)
				m[part] = child
			}
			m = child
		}
		m[parts[len(parts)-1]] = value
	}
	return out
}

// metricsRegistry holds the store's metrics, served at /metrics.
var metricsRegistry = prometheus.NewRegistry()

var (
	grpcRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tikv_grpc_msg_total", Help: "gRPC requests handled, by method.",
	}, []string{"type"})
	grpcDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tikv_grpc_msg_duration_seconds", Help: "gRPC request handling time, by method.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
	}, []string{"type"})
)

func init() {
	metricsRegistry.MustRegister(grpcRequests, grpcDuration,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
}

// observe records one handled request of method.
func observe(method string, start time.Time) {
	grpcRequests.WithLabelValues(method).Inc()
	grpcDuration.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

// Descriptions of the engine metrics; the db label names the engine ("kv"
// for data, "raft" for the raft logs and the store ident).
var (
	engineCommitGroupsDesc = prometheus.NewDesc("tinykv_engine_commit_groups_total",
		"Group commits of the engine.", []string{"db"}, nil)
	engineCommitWritesDesc = prometheus.NewDesc("tinykv_engine_commit_writes_total",
		"Writes carried by the engine's group commits.", []string{"db"}, nil)
	engineLogSyncsDesc = prometheus.NewDesc("tinykv_engine_wal_syncs_total",
		"Write-ahead log appends (one write and one fdatasync each).", []string{"db"}, nil)
	engineLogSyncSecondsDesc = prometheus.NewDesc("tinykv_engine_wal_sync_seconds_total",
		"Time spent in write-ahead log appends.", []string{"db"}, nil)
)

// engineCollector exports the group-commit counts of a node's engines, by
// db label. A node registers it in a registry of its own, so that nodes in
// one process do not collide.
type engineCollector map[string]*engine.Engine

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- engineCommitGroupsDesc
	ch <- engineCommitWritesDesc
	ch <- engineLogSyncsDesc
	ch <- engineLogSyncSecondsDesc
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	for db, e := range c {
		stats := e.CommitStats()
		ch <- prometheus.MustNewConstMetric(engineCommitGroupsDesc, prometheus.CounterValue, float64(stats.Groups), db)
		ch <- prometheus.MustNewConstMetric(engineCommitWritesDesc, prometheus.CounterValue, float64(stats.Writes), db)
		ch <- prometheus.MustNewConstMetric(engineLogSyncsDesc, prometheus.CounterValue, float64(stats.LogSyncs), db)
		ch <- prometheus.MustNewConstMetric(engineLogSyncSecondsDesc, prometheus.CounterValue, stats.LogSyncTime.Seconds(), db)
	}
}

var raftstoreReadsDesc = prometheus.NewDesc("tinykv_raftstore_reads_total",
	"Reads asked of the raftstore, by how they are confirmed: lease (the leader's lease), read_index (a ReadIndex round on the leader), replica (on a follower, by the leader's read index).",
	[]string{"kind"}, nil)

// readCollector exports the raftstore's read counts.
type readCollector struct{ store *raftstore.Store }

func (c readCollector) Describe(ch chan<- *prometheus.Desc) { ch <- raftstoreReadsDesc }

func (c readCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.store.ReadStats()
	for kind, n := range map[string]uint64{"lease": stats.Lease, "read_index": stats.ReadIndex, "replica": stats.Replica} {
		ch <- prometheus.MustNewConstMetric(raftstoreReadsDesc, prometheus.CounterValue, float64(n), kind)
	}
}
