package main

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tinykv/tinykv/internal/proc"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// etcdStartTimeout bounds how long the embedded etcd members may take to
// elect a leader and serve.
const etcdStartTimeout = time.Minute

// etcdCluster is an etcd cluster whose members are all embedded in this
// process, each with its own data directory and fsync on (etcd's default),
// and a client balancing over every member's endpoint.
type etcdCluster struct {
	members []*embed.Etcd
	cli     *clientv3.Client
}

// startEtcd starts an n-member etcd cluster with member i's data in
// dir/member<i>, on free loopback ports, and waits until every member
// serves.
func startEtcd(dir string, n int) (c *etcdCluster, err error) {
	cfgs, err := etcdConfigs(dir, n)
	if err != nil {
		return nil, err
	}
	c = &etcdCluster{}
	defer func() {
		if err != nil {
			c.stopMembers()
		}
	}()
	// Every member must be started before any can be ready: readiness
	// needs a quorum.
	for _, cfg := range cfgs {
		m, err := embed.StartEtcd(cfg)
		if err != nil {
			return nil, fmt.Errorf("start etcd member %s: %w", cfg.Name, err)
		}
		c.members = append(c.members, m)
	}
	if err := c.waitReady(); err != nil {
		return nil, err
	}
	var endpoints []string
	for _, cfg := range cfgs {
		endpoints = append(endpoints, cfg.ListenClientUrls[0].Host)
	}
	c.cli, err = clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return c, nil
}

// etcdConfigs returns the configurations of n members named bench<i> that
// know each other as the initial cluster.
func etcdConfigs(dir string, n int) ([]*embed.Config, error) {
	addrs, err := proc.FreeAddrs(2 * n)
	if err != nil {
		return nil, err
	}
	cfgs := make([]*embed.Config, n)
	var initial []string
	for i := range cfgs {
		client := url.URL{Scheme: "http", Host: addrs[2*i]}
		peer := url.URL{Scheme: "http", Host: addrs[2*i+1]}
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("bench%d", i+1)
		cfg.Dir = filepath.Join(dir, fmt.Sprintf("member%d", i+1))
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfgs[i] = cfg
		initial = append(initial, cfg.Name+"="+peer.String())
	}
	for _, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
	}
	return cfgs, nil
}

// waitReady waits until every member has joined the cluster and serves.
func (c *etcdCluster) waitReady() error {
	deadline := time.After(etcdStartTimeout)
	for _, m := range c.members {
		select {
		case <-m.Server.ReadyNotify():
		case err := <-m.Err():
			return fmt.Errorf("etcd member %s: %w", m.Config().Name, err)
		case <-deadline:
			return fmt.Errorf("etcd member %s not ready after %s", m.Config().Name, etcdStartTimeout)
		}
	}
	return nil
}

// close stops the client and then the members.
func (c *etcdCluster) close() error {
	err := c.cli.Close()
	c.stopMembers()
	if err != nil {
		return fmt.Errorf("close etcd client: %w", err)
	}
	return nil
}

// stopMembers stops every started member, the last started first.
func (c *etcdCluster) stopMembers() {
	for _, m := range slices.Backward(c.members) {
		m.Close()
	}
	c.members = nil
}
