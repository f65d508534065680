package pdsvc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingcap/kvproto/pkg/meta_storagepb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	rmpb "github.com/pingcap/kvproto/pkg/resource_manager"
	"github.com/tinykv/tinykv/internal/diag"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
)

// etcdStartTimeout bounds how long Start waits for the embedded etcd.
const etcdStartTimeout = time.Minute

// Server is a running placement driver.
type Server struct {
	cfg       Config
	log       *slog.Logger
	startTime time.Time

	etcd   *embed.Etcd
	client *clientv3.Client

	// The fields below are set once in Start before ready is stored; handlers
	// check ready first and may then read them without locks.
	ready     atomic.Bool
	clusterID uint64
	storage   *storage
	ids       *idAllocator
	tso       *tsoAllocator
	cluster   *cluster
	hot       *hotCache
	co        *coordinator
	gc        *gcSafePoints
	rm        *resourceManager

	// externalMu serialises external timestamp updates.
	externalMu sync.Mutex

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// Start launches the embedded etcd with our services on its client URLs,
// loads the cluster state and returns once the server is ready.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, startTime: cfg.Now()}
	ecfg, err := s.etcdConfig()
	if err != nil {
		return nil, err
	}
	s.etcd, err = embed.StartEtcd(ecfg)
	if err != nil {
		return nil, fmt.Errorf("pd: start etcd: %w", err)
	}
	if err := s.waitEtcd(ctx); err != nil {
		s.etcd.Close()
		return nil, err
	}
	s.client = v3client.New(s.etcd.Server)
	if err := s.loadState(ctx); err != nil {
		s.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.tso.run(runCtx, func(err error) { s.log.Warn("extend tso window", "err", err) })
	}()
	go func() {
		defer s.wg.Done()
		s.co.run(runCtx, cfg.ScheduleRounds)
	}()
	s.ready.Store(true)
	s.log.Info("pd server ready", "name", cfg.Name, "cluster-id", s.clusterID, "client-urls", cfg.AdvertiseClientURLs)
	return s, nil
}

func (s *Server) etcdConfig() (*embed.Config, error) {
	ecfg := embed.NewConfig()
	ecfg.Name = s.cfg.Name
	ecfg.Dir = s.cfg.DataDir
	ecfg.InitialCluster = s.cfg.InitialCluster
	ecfg.MaxRequestBytes = s.cfg.MaxRequestBytes
	ecfg.AutoCompactionMode = "periodic"
	ecfg.AutoCompactionRetention = "1h"
	ecfg.EnablePprof = true // Go's profiles under /debug/pprof/ on the client URLs, as PD serves them
	var err error
	urlLists := []struct {
		dst *[]url.URL
		src string
	}{
		{&ecfg.ListenClientUrls, s.cfg.ClientURLs},
		{&ecfg.AdvertiseClientUrls, s.cfg.AdvertiseClientURLs},
		{&ecfg.ListenPeerUrls, s.cfg.PeerURLs},
		{&ecfg.AdvertisePeerUrls, s.cfg.AdvertisePeerURLs},
	}
	for _, l := range urlLists {
		if *l.dst, err = parseURLs(l.src); err != nil {
			return nil, fmt.Errorf("pd: config: %w", err)
		}
	}
	ecfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newEtcdLogger(s.log, zapcore.WarnLevel))
	ecfg.ServiceRegister = s.registerServices
	ecfg.UserHandlers = map[string]http.Handler{"/pd/": s.httpHandler()}
	return ecfg, nil
}

func (s *Server) registerServices(gs *grpc.Server) {
	pdpb.RegisterPDServer(gs, &pdService{s: s})
	meta_storagepb.RegisterMetaStorageServer(gs, &metaStorageService{s: s})
	rmpb.RegisterResourceManagerServer(gs, &resourceManagerService{s: s})
	diag.Register(gs, s.cfg.LogFile)
}

func (s *Server) waitEtcd(ctx context.Context) error {
	timer := time.NewTimer(etcdStartTimeout)
	defer timer.Stop()
	select {
	case <-s.etcd.Server.ReadyNotify():
		return nil
	case err := <-s.etcd.Err():
		return fmt.Errorf("pd: etcd failed: %w", err)
	case <-timer.C:
		return fmt.Errorf("pd: etcd not ready after %s", etcdStartTimeout)
	case <-ctx.Done():
		return fmt.Errorf("pd: waiting for etcd: %w", ctx.Err())
	}
}

// loadState reads or creates everything the server keeps in etcd.
func (s *Server) loadState(ctx context.Context) error {
	var err error
	if s.clusterID, err = loadOrCreateClusterID(ctx, s.client, newClusterID()); err != nil {
		return err
	}
	s.storage = newStorage(s.client, s.clusterID)
	if s.ids, err = newIDAllocator(ctx, s.storage); err != nil {
		return err
	}
	if s.tso, err = newTSOAllocator(ctx, s.storage, s.cfg.Now); err != nil {
		return err
	}
	s.cluster = newCluster(s.storage, s.cfg.Now)
	s.hot = newHotCache(s.cfg.Now, s.cfg.Schedule.HotRegionsWriteInterval, s.cfg.Schedule.HotRegionsReservedDays)
	if err := s.cluster.load(ctx); err != nil {
		return err
	}
	s.co = newCoordinator(s)
	if err := s.co.schedulers.load(ctx); err != nil {
		return err
	}
	s.gc = &gcSafePoints{storage: s.storage}
	s.rm = &resourceManager{client: s.client}
	return s.rm.ensureDefaultGroup(ctx)
}

// newClusterID returns a random non-zero ID whose high bits are the creation
// time in seconds, as PD does.
func newClusterID() uint64 {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("pd: crypto/rand failed: %v", err))
	}
	return uint64(time.Now().Unix())<<32 | uint64(binary.BigEndian.Uint32(b[:]))
}

// ClusterID returns the cluster's ID.
func (s *Server) ClusterID() uint64 { return s.clusterID }

// ClientURLs returns the advertised client URLs.
func (s *Server) ClientURLs() string { return s.cfg.AdvertiseClientURLs }

// Done is closed when etcd stops by itself, for example on a fatal error.
func (s *Server) Done() <-chan struct{} { return s.etcd.Server.StopNotify() }

// Close stops the server and its embedded etcd. It is idempotent.
func (s *Server) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.ready.Store(false)
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.client != nil {
		s.client.Close()
	}
	s.etcd.Close()
	s.log.Info("pd server stopped", "name", s.cfg.Name)
}

// checkReady rejects requests until the server has loaded its state and
// after it starts closing.
func (s *Server) checkReady() error {
	if !s.ready.Load() {
		return errNotStarted
	}
	return nil
}

// validate checks readiness and the request's cluster ID.
func (s *Server) validate(header *pdpb.RequestHeader) error {
	if err := s.checkReady(); err != nil {
		return err
	}
	if header.GetClusterId() != s.clusterID {
		return mismatchClusterID(s.clusterID, header.GetClusterId())
	}
	return nil
}
