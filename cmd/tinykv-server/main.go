// Command tinykv-server runs one TinyKV store: the TiKV gRPC protocol on
// --addr (default 127.0.0.1:20160) and the status API on --status-addr
// (default 127.0.0.1:20180), registered with the placement driver at --pd
// (default 127.0.0.1:2379). On first start it gets a store ID from PD and,
// if PD is not bootstrapped, bootstraps the cluster with one region covering
// all keys. The store ID is kept in the data directory.
//
// Flags accept both TiKV's and the TinyKV course's names: --data-dir/-path,
// --pd/-scheduler, --addr, --advertise-addr, --status-addr, --config (TOML),
// --log-file, -L/-loglevel, --labels (k=v,k=v). Flags override the config
// file. SIGINT and SIGTERM shut the store down cleanly.
//
// On start the store executes itself again with schedtrace added to GODEBUG,
// which keeps the Go runtime's sysmon thread from parking and costs far less
// CPU under load (package sysmon says why); GODEBUG=schedtrace=0 opts out.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tinykv/tinykv/internal/logutil"
	"github.com/tinykv/tinykv/internal/sysmon"
	"github.com/tinykv/tinykv/tikvsvc"
)

// fileConfig is the TOML configuration file, in TiKV's layout.
type fileConfig struct {
	Server struct {
		Addr          string            `toml:"addr"`
		AdvertiseAddr string            `toml:"advertise-addr"`
		StatusAddr    string            `toml:"status-addr"`
		Labels        map[string]string `toml:"labels"`
	} `toml:"server"`
	Storage struct {
		DataDir string `toml:"data-dir"`
	} `toml:"storage"`
	PD struct {
		Endpoints []string `toml:"endpoints"`
	} `toml:"pd"`
	Raftstore struct {
		RaftBaseTickInterval     duration `toml:"raft-base-tick-interval"`
		RaftElectionTimeoutTicks int      `toml:"raft-election-timeout-ticks"`
		RaftHeartbeatTicks       int      `toml:"raft-heartbeat-ticks"`
		PDHeartbeatInterval      duration `toml:"pd-store-heartbeat-tick-interval"`
		RaftLogGCTickInterval    duration `toml:"raft-log-gc-tick-interval"`
		RaftLogGCThreshold       uint64   `toml:"raft-log-gc-threshold"`
		RaftLogGCCountLimit      uint64   `toml:"raft-log-gc-count-limit"`
		SplitCheckTickInterval   duration `toml:"split-region-check-tick-interval"`
	} `toml:"raftstore"`
	Coprocessor struct {
		RegionSplitSize size   `toml:"region-split-size"`
		RegionMaxSize   size   `toml:"region-max-size"`
		RegionSplitKeys uint64 `toml:"region-split-keys"`
		RegionMaxKeys   uint64 `toml:"region-max-keys"`
	} `toml:"coprocessor"`
	GC struct {
		PollSafePointInterval duration `toml:"poll-safe-point-interval"`
	} `toml:"gc"`
	Log logutil.Config `toml:"log"`
}

func main() {
	keepAwakeErr := sysmon.KeepAwake()
	if err := run(os.Args[1:], keepAwakeErr); err != nil {
		fmt.Fprintln(os.Stderr, "tinykv-server:", err)
		os.Exit(1)
	}
}

// run serves until SIGINT or SIGTERM. keepAwakeErr is why the process could
// not keep the runtime's sysmon from parking (see package sysmon), if it
// could not.
func run(args []string, keepAwakeErr error) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	logger, closeLog, err := cfg.Log.Open()
	if err != nil {
		return err
	}
	defer closeLog()
	slog.SetDefault(logger)
	if keepAwakeErr != nil {
		logger.Warn("sysmon keeps the runtime's default polling", "err", keepAwakeErr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	node, err := tikvsvc.StartNode(ctx, tikvsvc.NodeConfig{
		DataDir:        cfg.Storage.DataDir,
		Addr:           cfg.Server.Addr,
		AdvertiseAddr:  cfg.Server.AdvertiseAddr,
		StatusAddr:     cfg.Server.StatusAddr,
		PDAddrs:        cfg.PD.Endpoints,
		Labels:         storeLabels(cfg.Server.Labels),
		GCPollInterval: cfg.GC.PollSafePointInterval.Duration,
		Raft: tikvsvc.RaftConfig{
			TickInterval:       cfg.Raftstore.RaftBaseTickInterval.Duration,
			ElectionTicks:      cfg.Raftstore.RaftElectionTimeoutTicks,
			HeartbeatTicks:     cfg.Raftstore.RaftHeartbeatTicks,
			HeartbeatInterval:  cfg.Raftstore.PDHeartbeatInterval.Duration,
			LogGCInterval:      cfg.Raftstore.RaftLogGCTickInterval.Duration,
			LogGCThreshold:     cfg.Raftstore.RaftLogGCThreshold,
			LogGCCountLimit:    cfg.Raftstore.RaftLogGCCountLimit,
			SplitCheckInterval: cfg.Raftstore.SplitCheckTickInterval.Duration,
			RegionSplitSize:    cfg.Coprocessor.RegionSplitSize.bytes,
			RegionMaxSize:      cfg.Coprocessor.RegionMaxSize.bytes,
			RegionSplitKeys:    cfg.Coprocessor.RegionSplitKeys,
			RegionMaxKeys:      cfg.Coprocessor.RegionMaxKeys,
		},
		Logger:  logger,
		LogFile: cfg.Log.File.Filename,
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	logger.Info("received signal, shutting down")
	node.Close()
	return nil
}

func parseConfig(args []string) (*fileConfig, error) {
	fs := flag.NewFlagSet("tinykv-server", flag.ContinueOnError)
	configPath := fs.String("config", "", "path of the TOML configuration file")
	var dataDir, pd, addr, advertise, status, logFile, logLevel, labels string
	fs.StringVar(&dataDir, "data-dir", "", "data directory (default \"data/tikv\")")
	fs.StringVar(&dataDir, "path", "", "alias of --data-dir")
	fs.StringVar(&pd, "pd", "", "PD endpoints, comma separated (default \"127.0.0.1:2379\")")
	fs.StringVar(&pd, "scheduler", "", "alias of --pd")
	fs.StringVar(&addr, "addr", "", "gRPC listen address (default \"127.0.0.1:20160\")")
	fs.StringVar(&advertise, "advertise-addr", "", "address announced to clients (default --addr)")
	fs.StringVar(&status, "status-addr", "", "status HTTP address (default \"127.0.0.1:20180\")")
	fs.StringVar(&logFile, "log-file", "", "log file (default stderr)")
	fs.StringVar(&logLevel, "L", "", "log level: debug, info, warn, error (default info)")
	fs.StringVar(&logLevel, "loglevel", "", "alias of -L")
	fs.StringVar(&labels, "labels", "", "store labels, k=v,k=v")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg := &fileConfig{}
	if *configPath != "" {
		if _, err := toml.DecodeFile(*configPath, cfg); err != nil {
			return nil, fmt.Errorf("read config %s: %w", *configPath, err)
		}
	}
	override(&cfg.Storage.DataDir, dataDir, "data/tikv")
	override(&cfg.Server.Addr, addr, "127.0.0.1:20160")
	override(&cfg.Server.AdvertiseAddr, advertise, "")
	override(&cfg.Server.StatusAddr, status, "127.0.0.1:20180")
	override(&cfg.Log.File.Filename, logFile, "")
	override(&cfg.Log.Level, logLevel, "info")
	if pd != "" {
		cfg.PD.Endpoints = strings.Split(pd, ",")
	}
	if len(cfg.PD.Endpoints) == 0 {
		cfg.PD.Endpoints = []string{"127.0.0.1:2379"}
	}
	if labels != "" {
		parsed, err := parseLabels(labels)
		if err != nil {
			return nil, err
		}
		cfg.Server.Labels = parsed
	}
	return cfg, nil
}

// duration is a TOML duration string such as "10s".
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(text []byte) error {
	parsed, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("duration %q: %w", text, err)
	}
	d.Duration = parsed
	return nil
}

// size is a TOML size string as TiKV writes them: a number and a unit, B,
// KB or KiB, MB or MiB, GB or GiB (TiKV's ReadableSize: every K is 1024).
type size struct{ bytes uint64 }

var sizeUnits = []struct {
	suffix string
	bytes  uint64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}}

func (s *size) UnmarshalText(text []byte) error {
	str := strings.TrimSpace(string(text))
	unit := uint64(1)
	for _, u := range sizeUnits {
		if trimmed, ok := strings.CutSuffix(str, u.suffix); ok {
			str, unit = strings.TrimSpace(trimmed), u.bytes
			break
		}
	}
	n, err := strconv.ParseUint(str, 10, 64)
	if err != nil || n > math.MaxUint64/unit {
		return fmt.Errorf("size %q: want a number and a unit such as 96MiB", text)
	}
	s.bytes = n * unit
	return nil
}

// override sets dst from a flag value, or to def when both are empty.
func override(dst *string, flagValue, def string) {
	switch {
	case flagValue != "":
		*dst = flagValue
	case *dst == "":
		*dst = def
	}
}

func parseLabels(s string) (map[string]string, error) {
	labels := make(map[string]string)
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want key=value", kv)
		}
		labels[k] = v
	}
	return labels, nil
}

func storeLabels(labels map[string]string) []*metapb.StoreLabel {
	var out []*metapb.StoreLabel
	for k, v := range labels {
		out = append(out, &metapb.StoreLabel{Key: k, Value: v})
	}
	return out
}
