package main

import (
	"fmt"
	"net/url"
	"time"

	"github.com/tinykv/tinykv/internal/proc"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// etcdStartTimeout bounds how long the embedded etcd may take to serve.
const etcdStartTimeout = time.Minute

// etcdPeer is a single-member etcd embedded in this process, with fsync on
// (etcd's default), and a client connected to it.
type etcdPeer struct {
	server *embed.Etcd
	cli    *clientv3.Client
}

// startEtcd starts etcd with its data in dir on free loopback ports.
func startEtcd(dir string) (*etcdPeer, error) {
	cfg, err := etcdConfig(dir)
	if err != nil {
		return nil, err
	}
	server, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-server.Server.ReadyNotify():
	case err := <-server.Err():
		server.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	case <-time.After(etcdStartTimeout):
		server.Close()
		return nil, fmt.Errorf("etcd not ready after %s", etcdStartTimeout)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{cfg.ListenClientUrls[0].Host},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		server.Close()
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return &etcdPeer{server: server, cli: cli}, nil
}

func etcdConfig(dir string) (*embed.Config, error) {
	addrs, err := proc.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	client := url.URL{Scheme: "http", Host: addrs[0]}
	peer := url.URL{Scheme: "http", Host: addrs[1]}
	cfg := embed.NewConfig()
	cfg.Name = "bench"
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	return cfg, nil
}

// close stops the client and then the server.
func (p *etcdPeer) close() error {
	err := p.cli.Close()
	p.server.Close()
	if err != nil {
		return fmt.Errorf("close etcd client: %w", err)
	}
	return nil
}
