package tikvsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/internal/diag"
	"github.com/tinykv/tinykv/internal/pdclient"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
	"google.golang.org/grpc"
)

// Version is the TiKV version this store reports.
const Version = "8.5.4"

// heartbeatInterval is how often the store reports itself and its regions.
const heartbeatInterval = 10 * time.Second

// NodeConfig configures a store process.
type NodeConfig struct {
	// DataDir holds the kv engine (DataDir/kv), the meta engine
	// (DataDir/raft) and the SSTs staged for ingest (DataDir/import).
	DataDir string
	// Addr is the gRPC listen address; AdvertiseAddr (default Addr) is
	// what PD tells clients.
	Addr, AdvertiseAddr string
	// StatusAddr serves /status, /metrics and /config; empty disables it.
	StatusAddr string
	// PDAddrs are the placement driver's client addresses.
	PDAddrs []string
	// Labels are reported to PD with the store.
	Labels []*metapb.StoreLabel
	// GCPollInterval is how often the GC safe point is read from PD;
	// 0 means DefaultGCPollInterval.
	GCPollInterval time.Duration
	Logger         *slog.Logger
	// LogFile is the file Logger writes to, searched by the diagnostics
	// service (TiDB's cluster_log); empty when it writes to stderr.
	LogFile string
}

// Node is a running store: engines, identity, gRPC and status servers, and
// the heartbeat loop.
type Node struct {
	cfg     NodeConfig
	log     *slog.Logger
	kv      *engine.Engine
	meta    *engine.Engine
	pd      *pdclient.Client
	storeID uint64
	svc     *Service
	grpc    *grpc.Server
	status  *statusServer
	started time.Time
	// lastHeartbeat belongs to the heartbeat loop: when it last reported.
	lastHeartbeat time.Time
	// sizes estimates the sizes the heartbeats report.
	sizes *regionSizes
	// slow is the disk slow score, fed by the kv engine's log appends and
	// updated by each store heartbeat, which reports it.
	slow *slowScore

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartNode opens the store's engines, registers with PD (bootstrapping the
// cluster on first start) and starts serving.
func StartNode(ctx context.Context, cfg NodeConfig) (n *Node, err error) {
	if cfg.AdvertiseAddr == "" {
		cfg.AdvertiseAddr = cfg.Addr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.GCPollInterval <= 0 {
		cfg.GCPollInterval = DefaultGCPollInterval
	}
	started := time.Now()
	n = &Node{cfg: cfg, log: cfg.Logger, started: started, lastHeartbeat: started}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := n.openEngines(); err != nil {
		return nil, err
	}
	if n.pd, err = pdclient.Dial(ctx, cfg.PDAddrs, n.log); err != nil {
		return nil, err
	}
	if err := n.loadIdentity(ctx); err != nil {
		return nil, err
	}
	regions, err := n.ensureBootstrapped(ctx)
	if err != nil {
		return nil, err
	}
	if err := n.serve(ctx, regions); err != nil {
		return nil, err
	}
	if err := n.pd.PutStore(ctx, n.storeMeta()); err != nil {
		return nil, err
	}
	n.startBackground()
	n.log.Info("store started", "store-id", n.storeID, "addr", cfg.AdvertiseAddr, "status-addr", cfg.StatusAddr)
	return n, nil
}

// metaCacheSize is the memtable and block cache size of the meta engine,
// which holds only the store ident and region states.
const metaCacheSize = engine.MinMemTableSize

func (n *Node) openEngines() error {
	opts := engine.DefaultOptions()
	opts.Logger = n.log
	kvOpts := opts
	kvOpts.LockRank = mvcc.LockRank
	n.slow = newSlowScore(time.Now())
	kvOpts.OnLogSync = n.slow.record
	var err error
	if n.kv, err = engine.Open(filepath.Join(n.cfg.DataDir, "kv"), kvOpts); err != nil {
		return fmt.Errorf("open kv engine: %w", err)
	}
	n.sizes = newRegionSizes(n.kv.ApproximateSize, &n.wg)
	opts.MemTableSize, opts.BlockCacheSize = metaCacheSize, metaCacheSize
	if n.meta, err = engine.Open(filepath.Join(n.cfg.DataDir, "raft"), opts); err != nil {
		return fmt.Errorf("open raft engine: %w", err)
	}
	return nil
}

// loadIdentity reads the store ID, or gets one from PD on first start. A
// data directory that belongs to another cluster is refused.
func (n *Node) loadIdentity(ctx context.Context) error {
	ident := &raft_serverpb.StoreIdent{}
	found, err := loadProto(n.meta, storeIdentKey, ident)
	if err != nil {
		return err
	}
	if found {
		if ident.GetClusterId() != n.pd.ClusterID() {
			return fmt.Errorf("data dir %s belongs to cluster %d, PD serves cluster %d",
				n.cfg.DataDir, ident.GetClusterId(), n.pd.ClusterID())
		}
		n.storeID = ident.GetStoreId()
		return nil
	}
	if n.storeID, err = n.pd.AllocID(ctx); err != nil {
		return err
	}
	ident = &raft_serverpb.StoreIdent{ClusterId: n.pd.ClusterID(), StoreId: n.storeID}
	return saveProto(n.meta, storeIdentKey, ident)
}

// ensureBootstrapped returns the store's regions, bootstrapping the cluster
// with one region covering all keys if PD is not bootstrapped yet. The
// region is saved locally before PD hears of it, so a crash in between is
// repaired by the next start.
func (n *Node) ensureBootstrapped(ctx context.Context) ([]*metapb.Region, error) {
	regions, err := loadRegions(n.meta)
	if err != nil {
		return nil, err
	}
	bootstrapped, err := n.pd.IsBootstrapped(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case bootstrapped && len(regions) == 0:
		return nil, errors.New("the cluster is bootstrapped and this store holds no region; a store cannot join an existing cluster yet")
	case bootstrapped:
		return regions, nil
	}
	if len(regions) == 0 {
		region, err := n.firstRegion(ctx)
		if err != nil {
			return nil, err
		}
		if err := saveRegion(n.meta, region); err != nil {
			return nil, err
		}
		regions = []*metapb.Region{region}
	}
	if err := n.pd.Bootstrap(ctx, n.storeMeta(), regions[0]); err != nil {
		if errors.Is(err, pdclient.ErrAlreadyBootstrapped) {
			_ = removeRegion(n.meta, regions[0].GetId())
			return nil, errors.New("another store bootstrapped the cluster first; a store cannot join an existing cluster yet")
		}
		return nil, err
	}
	n.log.Info("cluster bootstrapped", "store-id", n.storeID, "region-id", regions[0].GetId())
	return regions, nil
}

func (n *Node) firstRegion(ctx context.Context) (*metapb.Region, error) {
	regionID, err := n.pd.AllocID(ctx)
	if err != nil {
		return nil, err
	}
	peerID, err := n.pd.AllocID(ctx)
	if err != nil {
		return nil, err
	}
	return &metapb.Region{
		Id:          regionID,
		RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: 1},
		Peers:       []*metapb.Peer{{Id: peerID, StoreId: n.storeID}},
	}, nil
}

// serve starts the gRPC and status servers.
func (n *Node) serve(ctx context.Context, regions []*metapb.Region) error {
	maxTS, err := n.pd.TS(ctx)
	if err != nil {
		return fmt.Errorf("initial max ts: %w", err)
	}
	n.svc, err = NewService(ServiceConfig{
		StoreID:      n.storeID,
		Regions:      regions,
		Storage:      storage.NewStandalone(n.kv),
		Logger:       n.log,
		InitialMaxTS: maxTS,
		ImportDir:    filepath.Join(n.cfg.DataDir, "import"),
		slowScore:    n.slow,
	})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", n.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", n.cfg.Addr, err)
	}
	n.grpc = NewGRPCServer(n.svc)
	diag.Register(n.grpc, n.cfg.LogFile)
	go func() {
		if err := n.grpc.Serve(lis); err != nil {
			n.log.Error("grpc server stopped", "err", err)
		}
	}()
	if n.cfg.StatusAddr != "" {
		if n.status, err = startStatusServer(n.cfg.StatusAddr, n); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) storeMeta() *metapb.Store {
	return &metapb.Store{
		Id:             n.storeID,
		Address:        n.cfg.AdvertiseAddr,
		StatusAddress:  n.cfg.StatusAddr,
		Version:        Version,
		Labels:         n.cfg.Labels,
		StartTimestamp: n.started.Unix(),
		DeployPath:     n.cfg.DataDir,
	}
}

// startBackground starts the heartbeat loop, the GC worker and the
// resolved ts tracker.
func (n *Node) startBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	gc := &gcWorker{svc: n.svc, pd: n.pd, interval: n.cfg.GCPollInterval}
	resolved := &resolvedTS{svc: n.svc, pd: n.pd, storeID: n.storeID}
	n.wg.Add(3)
	go func() {
		defer n.wg.Done()
		gc.run(ctx)
	}()
	go func() {
		defer n.wg.Done()
		resolved.run(ctx)
	}()
	go func() {
		defer n.wg.Done()
		ticker := time.NewTicker(heartbeatInterval)
		defer ticker.Stop()
		for {
			n.heartbeat(ctx)
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
}

// heartbeat reports the store and each region it leads to PD.
func (n *Node) heartbeat(ctx context.Context) {
	regions := n.svc.regions.all()
	slowScore := n.slow.update(time.Now(), n.kv.RunningLogSync())
	if err := n.pd.StoreHeartbeat(ctx, n.storeStats(len(regions), slowScore)); err != nil && ctx.Err() == nil {
		n.log.Warn("store heartbeat failed", "err", err)
	}
	now := time.Now()
	interval := &pdpb.TimeInterval{StartTimestamp: uint64(n.lastHeartbeat.Unix()), EndTimestamp: uint64(now.Unix())}
	n.lastHeartbeat = now
	for _, region := range regions {
		flow := n.svc.flows.take(region.GetId())
		size := n.sizes.estimate(region, flow)
		req := &pdpb.RegionHeartbeatRequest{
			Region:          region,
			Leader:          n.localPeer(region),
			Term:            1,
			BytesWritten:    flow.writtenBytes,
			KeysWritten:     flow.writtenKeys,
			BytesRead:       flow.readBytes,
			KeysRead:        flow.readKeys,
			ApproximateSize: size.Bytes,
			ApproximateKeys: size.Keys,
			Interval:        interval,
		}
		if err := n.pd.RegionHeartbeat(req); err != nil && ctx.Err() == nil {
			n.log.Warn("region heartbeat failed", "region-id", region.GetId(), "err", err)
		}
	}
}

func (n *Node) localPeer(region *metapb.Region) *metapb.Peer {
	for _, p := range region.GetPeers() {
		if p.GetStoreId() == n.storeID {
			return p
		}
	}
	return nil
}

func (n *Node) storeStats(regionCount int, slowScore float64) *pdpb.StoreStats {
	stats := &pdpb.StoreStats{
		StoreId:     n.storeID,
		RegionCount: uint32(regionCount),
		StartTime:   uint32(n.started.Unix()),
		SlowScore:   uint64(slowScore),
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(n.cfg.DataDir, &fs); err == nil {
		stats.Capacity = fs.Blocks * uint64(fs.Bsize)
		stats.Available = fs.Bavail * uint64(fs.Bsize)
	}
	stats.UsedSize = dirSize(n.cfg.DataDir)
	return stats
}

func dirSize(dir string) uint64 {
	var size uint64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				size += uint64(info.Size())
			}
		}
		return nil
	})
	return size
}

// StoreID returns the store's ID.
func (n *Node) StoreID() uint64 { return n.storeID }

// Close stops serving and closes the engines; acknowledged writes are
// already durable.
func (n *Node) Close() {
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	if n.grpc != nil {
		stopGRPC(n.grpc, 5*time.Second)
	}
	if n.status != nil {
		n.status.close()
	}
	if n.pd != nil {
		n.pd.Close()
	}
	for _, e := range []*engine.Engine{n.kv, n.meta} {
		if e != nil {
			if err := e.Close(); err != nil {
				n.log.Error("close engine", "err", err)
			}
		}
	}
	n.log.Info("store stopped", "store-id", n.storeID)
}

// stopGRPC drains the server, cutting open streams after grace.
func stopGRPC(srv *grpc.Server, grace time.Duration) {
	drained := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(grace):
		srv.Stop()
	}
}
