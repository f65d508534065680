package pdsvc

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Config configures a placement driver server. The TOML names follow PD's
// configuration file.
type Config struct {
	// Name is the member name, unique in the PD cluster.
	Name string `toml:"name"`
	// DataDir holds the embedded etcd data.
	DataDir string `toml:"data-dir"`
	// ClientURLs are the comma-separated URLs that serve PD gRPC, etcd and
	// the HTTP API.
	ClientURLs string `toml:"client-urls"`
	// AdvertiseClientURLs are the client URLs announced to clients; they
	// default to ClientURLs.
	AdvertiseClientURLs string `toml:"advertise-client-urls"`
	// PeerURLs serve etcd peer traffic.
	PeerURLs string `toml:"peer-urls"`
	// AdvertisePeerURLs default to PeerURLs.
	AdvertisePeerURLs string `toml:"advertise-peer-urls"`
	// InitialCluster is etcd's initial-cluster; it defaults to this member.
	InitialCluster string `toml:"initial-cluster"`
	// MaxRequestBytes bounds one gRPC request to any service on the port.
	MaxRequestBytes uint `toml:"max-request-bytes"`
	// Schedule is PD's [schedule] section, of which the hot-region history,
	// store down time and operator wait times are used.
	Schedule ScheduleConfig `toml:"schedule"`
	// Replication is PD's [replication] section.
	Replication ReplicationConfig `toml:"replication"`

	// Logger receives all logs, etcd's included. Nil means slog.Default().
	Logger *slog.Logger `toml:"-"`
	// LogFile is the file Logger writes to, searched by the diagnostics
	// service (TiDB's cluster_log); empty when it writes to stderr.
	LogFile string `toml:"-"`
	// Now is the clock; nil means time.Now. Tests inject it.
	Now func() time.Time `toml:"-"`
	// ScheduleRounds, if set, replaces the scheduling timer (tests inject
	// it): every channel received runs one round of the schedulers, and is
	// closed once the round has started its operators and sent their first
	// steps.
	ScheduleRounds <-chan chan struct{} `toml:"-"`
	// ScheduleSeed seeds the schedulers' random choice of regions; 0 seeds
	// from the clock. Tests set it to replay a run.
	ScheduleSeed uint64 `toml:"-"`
}

// ScheduleConfig holds the [schedule] settings PD honours.
type ScheduleConfig struct {
	// HotRegionsWriteInterval is how often the hot regions are recorded for
	// /pd/api/v1/hotspot/regions/history; 0 means the default, 10m.
	HotRegionsWriteInterval time.Duration `toml:"hot-regions-write-interval"`
	// HotRegionsReservedDays is how long the records are kept; 0 means the
	// default, 7.
	HotRegionsReservedDays int `toml:"hot-regions-reserved-days"`
	// MaxStoreDownTime is how long a store may go without a heartbeat
	// before the replica checker replaces the peers its regions' leaders
	// report as down; 0 means PD's default, 30m.
	MaxStoreDownTime time.Duration `toml:"max-store-down-time"`
	// RegionOperatorWaitTime is how long an operator that adds or removes
	// peers may run before it times out; 0 means 10m, PD's wait for slow
	// steps. It is TinyKV's setting: PD derives the time from region size.
	RegionOperatorWaitTime time.Duration `toml:"region-operator-wait-time"`
	// LeaderOperatorWaitTime is the same for an operator that only moves
	// the leader or splits; 0 means 60s, PD's wait for fast steps.
	LeaderOperatorWaitTime time.Duration `toml:"leader-operator-wait-time"`
	// LeaderScheduleLimit bounds the running operators that move a leader;
	// balance-leader starts none beyond it. 0 means PD's default, 4.
	LeaderScheduleLimit int `toml:"leader-schedule-limit"`
	// RegionScheduleLimit bounds the running operators that add or remove
	// peers; balance-region starts none beyond it. 0 means PD's default,
	// 2048.
	RegionScheduleLimit int `toml:"region-schedule-limit"`
	// TolerantSizeRatio sets how far two stores' scores may differ before
	// a balance scheduler moves anything between them (see worthMoving and
	// worthMovingLeader in schedule_env.go); 0 means PD's automatic ratio.
	TolerantSizeRatio float64 `toml:"tolerant-size-ratio"`
	// StoreBalanceRate is how many peers per minute the balance-region
	// scheduler and the scatterer may add to, and remove from, each store
	// (PD's per-store limit, add-peer and remove-peer each); 0 means PD's
	// default, 15.
	StoreBalanceRate float64 `toml:"store-balance-rate"`
	// SplitWaitTime bounds how long SplitRegions waits, per attempt, for
	// the heartbeats that show its splits; 0 means PD's 1m.
	SplitWaitTime time.Duration `toml:"split-wait-time"`
}

// ReplicationConfig holds the [replication] settings PD honours.
type ReplicationConfig struct {
	// MaxReplicas is how many peers the replica checker keeps in each
	// region; 0 means PD's default, 3.
	MaxReplicas int `toml:"max-replicas"`
}

// Defaults for a local single-member PD.
const (
	DefaultName            = "pd"
	DefaultDataDir         = "data/pd"
	DefaultClientURL       = "http://127.0.0.1:2379"
	DefaultPeerURL         = "http://127.0.0.1:2380"
	DefaultMaxRequestBytes = 128 << 20
)

// Defaults of the replica checker and the operators it creates.
const (
	DefaultMaxReplicas            = 3
	DefaultMaxStoreDownTime       = 30 * time.Minute
	DefaultRegionOperatorWaitTime = 10 * time.Minute
	DefaultLeaderOperatorWaitTime = time.Minute
)

// Defaults of the schedulers, PD's.
const (
	DefaultLeaderScheduleLimit = 4
	DefaultRegionScheduleLimit = 2048
	DefaultStoreBalanceRate    = 15
	DefaultSplitWaitTime       = time.Minute
)

// withDefaults returns cfg with every unset field filled in.
func (cfg Config) withDefaults() Config {
	setDefault(&cfg.Name, DefaultName)
	setDefault(&cfg.DataDir, DefaultDataDir)
	setDefault(&cfg.ClientURLs, DefaultClientURL)
	setDefault(&cfg.AdvertiseClientURLs, cfg.ClientURLs)
	setDefault(&cfg.PeerURLs, DefaultPeerURL)
	setDefault(&cfg.AdvertisePeerURLs, cfg.PeerURLs)
	setDefault(&cfg.InitialCluster, initialCluster(cfg.Name, cfg.AdvertisePeerURLs))
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.Schedule.HotRegionsWriteInterval <= 0 {
		cfg.Schedule.HotRegionsWriteInterval = DefaultHotRegionsWriteInterval
	}
	if cfg.Schedule.HotRegionsReservedDays <= 0 {
		cfg.Schedule.HotRegionsReservedDays = DefaultHotRegionsReservedDays
	}
	cfg.Schedule = cfg.Schedule.withOperatorDefaults()
	if cfg.Replication.MaxReplicas <= 0 {
		cfg.Replication.MaxReplicas = DefaultMaxReplicas
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// withOperatorDefaults fills in the unset store-down and operator times
// and the scheduling limits.
func (sc ScheduleConfig) withOperatorDefaults() ScheduleConfig {
	setDefaultDuration(&sc.MaxStoreDownTime, DefaultMaxStoreDownTime)
	setDefaultDuration(&sc.RegionOperatorWaitTime, DefaultRegionOperatorWaitTime)
	setDefaultDuration(&sc.LeaderOperatorWaitTime, DefaultLeaderOperatorWaitTime)
	setDefaultDuration(&sc.SplitWaitTime, DefaultSplitWaitTime)
	setDefaultInt(&sc.LeaderScheduleLimit, DefaultLeaderScheduleLimit)
	setDefaultInt(&sc.RegionScheduleLimit, DefaultRegionScheduleLimit)
	if sc.StoreBalanceRate <= 0 {
		sc.StoreBalanceRate = DefaultStoreBalanceRate
	}
	if sc.TolerantSizeRatio < 0 {
		sc.TolerantSizeRatio = 0
	}
	return sc
}

func setDefaultInt(field *int, value int) {
	if *field <= 0 {
		*field = value
	}
}

func setDefaultDuration(field *time.Duration, value time.Duration) {
	if *field <= 0 {
		*field = value
	}
}

func setDefault(field *string, value string) {
	if *field == "" {
		*field = value
	}
}

func initialCluster(name, peerURLs string) string {
	parts := strings.Split(peerURLs, ",")
	for i, u := range parts {
		parts[i] = name + "=" + strings.TrimSpace(u)
	}
	return strings.Join(parts, ",")
}

// parseURLs parses a comma-separated URL list.
func parseURLs(list string) ([]url.URL, error) {
	var urls []url.URL
	for _, s := range strings.Split(list, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("parse url %q: %w", s, err)
		}
		if u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("url %q: want http://host:port: %w", s, ErrInvalidValue)
		}
		urls = append(urls, *u)
	}
	return urls, nil
}
