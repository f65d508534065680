// Command tinyscheduler-server runs TinyKV's placement driver: PD gRPC, the
// etcd v3 API and PD's HTTP API on one address (default 127.0.0.1:2379).
//
// Flags follow PD's: --name, --data-dir, --client-urls,
// --advertise-client-urls, --peer-urls, --advertise-peer-urls,
// --initial-cluster, --config (TOML), --log-file and -L (log level). Flags
// override the config file. SIGINT and SIGTERM shut the server down cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/BurntSushi/toml"
	"github.com/tinykv/tinykv/internal/logutil"
	"github.com/tinykv/tinykv/pdsvc"
)

// fileConfig is the TOML configuration file, in PD's layout.
type fileConfig struct {
	pdsvc.Config
	Log logutil.Config `toml:"log"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tinyscheduler-server:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
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
	cfg.Config.Logger = logger
	cfg.Config.LogFile = cfg.Log.File.Filename

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := pdsvc.Start(ctx, cfg.Config)
	if err != nil {
		return err
	}
	defer srv.Close()
	select {
	case <-ctx.Done():
		logger.Info("received signal, shutting down")
	case <-srv.Done():
		return errors.New("embedded etcd stopped")
	}
	return nil
}

func parseConfig(args []string) (*fileConfig, error) {
	fs := flag.NewFlagSet("tinyscheduler-server", flag.ContinueOnError)
	configPath := fs.String("config", "", "path of the TOML configuration file")
	name := fs.String("name", "", "member name (default \"pd\")")
	dataDir := fs.String("data-dir", "", "data directory (default \"data/pd\")")
	clientURLs := fs.String("client-urls", "", "URLs for client traffic (default \"http://127.0.0.1:2379\")")
	advClientURLs := fs.String("advertise-client-urls", "", "client URLs announced to clients")
	peerURLs := fs.String("peer-urls", "", "URLs for peer traffic (default \"http://127.0.0.1:2380\")")
	advPeerURLs := fs.String("advertise-peer-urls", "", "peer URLs announced to peers")
	initialCluster := fs.String("initial-cluster", "", "initial cluster, name=peer-url,...")
	logFile := fs.String("log-file", "", "log file (default stderr)")
	logLevel := fs.String("L", "", "log level: debug, info, warn, error (default info)")
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
	override(&cfg.Name, *name)
	override(&cfg.DataDir, *dataDir)
	override(&cfg.ClientURLs, *clientURLs)
	override(&cfg.AdvertiseClientURLs, *advClientURLs)
	override(&cfg.PeerURLs, *peerURLs)
	override(&cfg.AdvertisePeerURLs, *advPeerURLs)
	override(&cfg.InitialCluster, *initialCluster)
	override(&cfg.Log.File.Filename, *logFile)
	override(&cfg.Log.Level, *logLevel)
	return cfg, nil
}

func override(dst *string, flagValue string) {
	if flagValue != "" {
		*dst = flagValue
	}
}
