package raftstore

import (
	"errors"
	"log/slog"
	"time"

	"github.com/tinykv/tinykv/engine"
)

// Config configures a Store. Zero fields take TiKV's defaults.
type Config struct {
	// StoreID is this store's id. Required.
	StoreID uint64
	// KV holds the regions' data with their apply and region states
	// (engine.CfRaft). It may run without SyncWrites: what it loses in a
	// machine crash is applied again from the raft log.
	KV *engine.Engine
	// Raft holds the raft logs and raft states. It must sync its writes.
	Raft *engine.Engine
	// Transport carries messages to other stores. Required.
	Transport Transport
	Logger    *slog.Logger

	// TickInterval is the raft base tick (TiKV's raft-base-tick-interval,
	// 1 s).
	TickInterval time.Duration
	// ElectionTicks and HeartbeatTicks count base ticks (TiKV: 10 and 2).
	ElectionTicks, HeartbeatTicks int
	// LeaseTicks is the leader lease during which reads are served without
	// a ReadIndex round; it must be below ElectionTicks, the difference
	// bounding clock drift (TiKV: raft-store-max-leader-lease 9 s with a
	// 10 s election timeout). 0 means ElectionTicks-1; negative disables
	// lease reads.
	LeaseTicks int
	// MaxSizePerMsg bounds the entries of one append message (TiKV's
	// raft-max-size-per-msg, 1 MiB); MaxInflightMsgs bounds the appends in
	// flight to one follower (raft-max-inflight-msgs, 256).
	MaxSizePerMsg   uint64
	MaxInflightMsgs int
	// RaftEntryMaxSize is the largest command proposed (raft-entry-max-size,
	// 8 MiB); larger ones get RaftEntryTooLarge.
	RaftEntryMaxSize uint64
	// Pollers and ApplyPollers size the goroutine pools that drive the
	// peers and the appliers (TiKV's store-pool-size and apply-pool-size,
	// 2 each); MaxBatch is how many FSMs one poll round takes (256).
	Pollers, ApplyPollers, MaxBatch int
	// Seed seeds the peers' election timeouts.
	Seed uint64

	// RaftLogGCTicks is how often (in base ticks) a leader considers
	// compacting its log (TiKV's raft-log-gc-tick-interval, 3 s).
	// RaftLogGCThreshold is how many replicated entries wait for
	// compaction (raft-log-gc-threshold, 50); past RaftLogGCCountLimit
	// entries (raft-log-gc-count-limit, 73728 with the default region size)
	// the log is compacted even if a slow follower then needs a snapshot.
	RaftLogGCTicks                          int
	RaftLogGCThreshold, RaftLogGCCountLimit uint64
	// SnapshotWorkers bounds the snapshots built at once (2).
	SnapshotWorkers int

	// SplitCheckTicks is how often (in base ticks) a leader considers
	// checking its region's size (split-region-check-tick-interval, 10 s).
	// A region past RegionMaxSize bytes or RegionMaxKeys keys (144 MiB,
	// 1.44 M) splits every RegionSplitSize bytes or RegionSplitKeys keys
	// (96 MiB, 960 k).
	SplitCheckTicks                int
	RegionMaxSize, RegionSplitSize uint64
	RegionMaxKeys, RegionSplitKeys uint64
	// SplitKey maps a data key to the key a split there would use (the
	// transaction layer drops the timestamp so that a key's versions stay
	// together); nil keeps keys as they are.
	SplitKey func(key []byte) []byte
	// PD allocates the ids of split regions; without it the store does
	// not split.
	PD PDClient
	// MaxPeerDownDuration is how long a leader goes without hearing from a
	// peer before it reports the peer down to PD (TiKV's
	// max-peer-down-duration, 10 minutes).
	MaxPeerDownDuration time.Duration
	// OnLeaderChange, if set, is called with a region's id and leader true
	// when this store's peer became its leader or, leading, saw the region
	// change (conf change, split, a pending peer caught up) — the node
	// heartbeats the region to PD at once — and with leader false when the
	// peer stopped leading. It runs on a poller goroutine and must not
	// block.
	OnLeaderChange func(regionID uint64, leader bool)
}

// ErrConfig is returned by Start for a configuration missing a required
// field.
var ErrConfig = errors.New("raftstore: invalid config")

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.StoreID == 0 || cfg.KV == nil || cfg.Raft == nil || cfg.Transport == nil {
		return cfg, ErrConfig
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&cfg.TickInterval, time.Second)
	setDefault(&cfg.ElectionTicks, 10)
	setDefault(&cfg.HeartbeatTicks, 2)
	setDefault(&cfg.MaxSizePerMsg, 1<<20)
	setDefault(&cfg.MaxInflightMsgs, 256)
	setDefault(&cfg.RaftEntryMaxSize, 8<<20)
	setDefault(&cfg.Pollers, 2)
	setDefault(&cfg.ApplyPollers, 2)
	setDefault(&cfg.MaxBatch, 256)
	setDefault(&cfg.RaftLogGCTicks, 3)
	setDefault(&cfg.RaftLogGCThreshold, 50)
	setDefault(&cfg.RaftLogGCCountLimit, 73728)
	setDefault(&cfg.SnapshotWorkers, 2)
	setDefault(&cfg.MaxPeerDownDuration, 10*time.Minute)
	setDefault(&cfg.SplitCheckTicks, 10)
	setDefault(&cfg.RegionSplitSize, 96<<20)
	setDefault(&cfg.RegionMaxSize, cfg.RegionSplitSize/2*3)
	setDefault(&cfg.RegionSplitKeys, 960000)
	setDefault(&cfg.RegionMaxKeys, cfg.RegionSplitKeys/2*3)
	if cfg.SplitKey == nil {
		cfg.SplitKey = func(key []byte) []byte { return key }
	}
	setDefault(&cfg.LeaseTicks, cfg.ElectionTicks-1)
	if cfg.LeaseTicks < 0 {
		cfg.LeaseTicks = 0
	}
	if cfg.ElectionTicks <= cfg.HeartbeatTicks || cfg.LeaseTicks >= cfg.ElectionTicks {
		return cfg, ErrConfig
	}
	return cfg, nil
}

func setDefault[T comparable](field *T, value T) {
	var zero T
	if *field == zero {
		*field = value
	}
}
