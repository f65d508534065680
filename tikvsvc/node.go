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
	"github.com/tinykv/tinykv/raftstore"
	"google.golang.org/grpc"
)

// Version is the TiKV version this store reports.
const Version = "8.5.4"

// defaultHeartbeatInterval is how often the store reports itself and its
// regions, unless configured.
const defaultHeartbeatInterval = 10 * time.Second

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
	// Raft tunes the raftstore; zero fields take TiKV's defaults.
	Raft RaftConfig
	// LogFile is the file Logger writes to, searched by the diagnostics
	// service (TiDB's cluster_log); empty when it writes to stderr.
	LogFile string
}

// RaftConfig is the raftstore's tuning, as TiKV's [raftstore] section.
type RaftConfig struct {
	// TickInterval is raft-base-tick-interval (1 s); ElectionTicks and
	// HeartbeatTicks are raft-election-timeout-ticks (10) and
	// raft-heartbeat-ticks (2).
	TickInterval                  time.Duration
	ElectionTicks, HeartbeatTicks int
	// HeartbeatInterval is how often the store and the regions it leads
	// are reported to PD besides the reports on change (TiKV's
	// pd-store-heartbeat-tick-interval, 10 s).
	HeartbeatInterval time.Duration
	// LogGCInterval, LogGCThreshold and LogGCCountLimit are
	// raft-log-gc-tick-interval (3 s), raft-log-gc-threshold (50) and
	// raft-log-gc-count-limit (73728).
	LogGCInterval                   time.Duration
	LogGCThreshold, LogGCCountLimit uint64
	// SplitCheckInterval is split-region-check-tick-interval (10 s); the
	// region sizes are [coprocessor]'s region-split-size (96 MiB),
	// region-max-size (144 MiB), region-split-keys (960000) and
	// region-max-keys (1440000).
	SplitCheckInterval             time.Duration
	RegionSplitSize, RegionMaxSize uint64
	RegionSplitKeys, RegionMaxKeys uint64
}

// ticks converts an interval to raft base ticks, at least one; 0 stays 0
// (the raftstore's default).
func (c RaftConfig) ticks(interval time.Duration) int {
	if interval <= 0 {
		return 0
	}
	base := c.TickInterval
	if base <= 0 {
		base = time.Second
	}
	return max(1, int(interval/base))
}

// Node is a running store: engines, identity, the raftstore and its
// transport, gRPC and status servers, and the heartbeat loop.
type Node struct {
	cfg     NodeConfig
	log     *slog.Logger
	kv      *engine.Engine
	raftDB  *engine.Engine
	pd      *pdclient.Client
	storeID uint64
	// transport and store are the raftstore: every region a Raft group.
	transport *raftstore.GRPCTransport
	store     *raftstore.Store
	svc       *Service
	grpc      *grpc.Server
	status    *statusServer
	started   time.Time
	// lastHeartbeat belongs to the heartbeat loop: when it last reported.
	lastHeartbeat time.Time
	// sizes estimates the sizes the heartbeats report.
	sizes *regionSizes
	// slow is the disk slow score, fed by the kv engine's log appends and
	// updated by each store heartbeat, which reports it.
	slow *slowScore
	// leaderChanged queues the regions to heartbeat at once: this store
	// became their leader, or their region changed while it leads.
	leaderChanged chan uint64
	// maxTS is the max_ts sync status of the regions led here; maxTSSyncs
	// queues the regions whose max_ts waits for a fresh timestamp.
	maxTS      *maxTSSync
	maxTSSyncs chan maxTSSyncTask

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// leaderChangedQueue is how many region heartbeats may wait to be sent
// early; beyond it a region waits for the periodic heartbeat.
const leaderChangedQueue = 4096

// StartNode opens the store's engines, registers with PD (bootstrapping the
// cluster on first start, or joining it empty) and starts serving.
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
	if cfg.Raft.HeartbeatInterval <= 0 {
		cfg.Raft.HeartbeatInterval = defaultHeartbeatInterval
	}
	started := time.Now()
	n = &Node{cfg: cfg, log: cfg.Logger, started: started, lastHeartbeat: started,
		leaderChanged: make(chan uint64, leaderChangedQueue),
		maxTS:         newMaxTSSync(), maxTSSyncs: make(chan maxTSSyncTask, leaderChangedQueue)}
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
	if err := n.ensureBootstrapped(ctx); err != nil {
		return nil, err
	}
	if err := n.startRaftstore(); err != nil {
		return nil, err
	}
	if err := n.serve(ctx); err != nil {
		return nil, err
	}
	if err := n.pd.PutStore(ctx, n.storeMeta()); err != nil {
		return nil, err
	}
	n.startBackground()
	n.log.Info("store started", "store-id", n.storeID, "addr", cfg.AdvertiseAddr, "status-addr", cfg.StatusAddr)
	return n, nil
}

func (n *Node) openEngines() error {
	opts := engine.DefaultOptions()
	opts.Logger = n.log
	kvOpts := opts
	kvOpts.LockRank = mvcc.LockRank
	// What the KV engine loses in a machine crash is applied again from
	// the raft log, which syncs (TiKV's kv WAL is not synced either).
	kvOpts.SyncWrites = false
	n.slow = newSlowScore(time.Now())
	kvOpts.OnLogSync = n.slow.record
	var err error
	if n.kv, err = engine.Open(filepath.Join(n.cfg.DataDir, "kv"), kvOpts); err != nil {
		return fmt.Errorf("open kv engine: %w", err)
	}
	n.sizes = newRegionSizes(n.kv.ApproximateSize, &n.wg)
	if n.raftDB, err = engine.Open(filepath.Join(n.cfg.DataDir, "raft"), opts); err != nil {
		return fmt.Errorf("open raft engine: %w", err)
	}
	return nil
}

// loadIdentity reads the store ID, or gets one from PD on first start. A
// data directory that belongs to another cluster is refused.
func (n *Node) loadIdentity(ctx context.Context) error {
	ident := &raft_serverpb.StoreIdent{}
	found, err := loadProto(n.raftDB, storeIdentKey, ident)
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
	return saveProto(n.raftDB, storeIdentKey, ident)
}

// ensureBootstrapped bootstraps the cluster with one region covering all
// keys, with this store's peer its only replica, unless PD is bootstrapped
// already; then the store joins empty and PD adds replicas to it. As in
// TiKV, the region is prepared locally (and marked as prepared) before PD
// hears of it: a store that loses the race to bootstrap, or crashed in
// between, clears or finishes it on its next try.
func (n *Node) ensureBootstrapped(ctx context.Context) error {
	prepared := &metapb.Region{}
	found, err := loadProto(n.raftDB, prepareBootstrapKey, prepared)
	if err != nil {
		return err
	}
	bootstrapped, err := n.pd.IsBootstrapped(ctx)
	if err != nil {
		return err
	}
	switch {
	case bootstrapped && found:
		return n.settlePrepared(ctx, prepared)
	case bootstrapped:
		return nil
	}
	if !found {
		regions, err := raftstore.LocalRegions(n.kv)
		if err != nil {
			return err
		}
		if len(regions) > 0 {
			return fmt.Errorf("data dir %s holds %d regions of a cluster PD does not know", n.cfg.DataDir, len(regions))
		}
		if prepared, err = n.prepareBootstrap(ctx); err != nil {
			return err
		}
	}
	err = n.pd.Bootstrap(ctx, n.storeMeta(), prepared)
	if errors.Is(err, pdclient.ErrAlreadyBootstrapped) {
		return n.settlePrepared(ctx, prepared)
	}
	if err != nil {
		return err
	}
	n.log.Info("cluster bootstrapped", "store-id", n.storeID, "region-id", prepared.GetId())
	return deleteKey(n.raftDB, prepareBootstrapKey)
}

// prepareBootstrap writes the first region locally, marked as prepared.
func (n *Node) prepareBootstrap(ctx context.Context) (*metapb.Region, error) {
	region, err := n.firstRegion(ctx)
	if err != nil {
		return nil, err
	}
	if err := saveProto(n.raftDB, prepareBootstrapKey, region); err != nil {
		return nil, err
	}
	if err := raftstore.BootstrapRegion(n.kv, n.raftDB, region); err != nil {
		return nil, err
	}
	return region, nil
}

// settlePrepared keeps the prepared region if PD knows it (this store's
// bootstrap went through before a crash) and clears it otherwise (another
// store bootstrapped the cluster).
func (n *Node) settlePrepared(ctx context.Context, prepared *metapb.Region) error {
	known, err := n.pd.RegionKnown(ctx, prepared.GetId())
	if err != nil {
		return err
	}
	if !known {
		n.log.Info("another store bootstrapped the cluster; joining it empty", "store-id", n.storeID)
		if err := raftstore.ClearBootstrappedRegion(n.kv, n.raftDB, prepared.GetId()); err != nil {
			return err
		}
	}
	return deleteKey(n.raftDB, prepareBootstrapKey)
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

// startRaftstore starts the store's peers and their transport.
func (n *Node) startRaftstore() error {
	n.transport = raftstore.NewGRPCTransport(pdResolver{pd: n.pd}, n.log, raftstore.GRPCTransportOptions{})
	store, err := raftstore.Start(raftstore.Config{
		StoreID:             n.storeID,
		KV:                  n.kv,
		Raft:                n.raftDB,
		Transport:           n.transport,
		Logger:              n.log,
		TickInterval:        n.cfg.Raft.TickInterval,
		ElectionTicks:       n.cfg.Raft.ElectionTicks,
		HeartbeatTicks:      n.cfg.Raft.HeartbeatTicks,
		RaftLogGCTicks:      n.cfg.Raft.ticks(n.cfg.Raft.LogGCInterval),
		RaftLogGCThreshold:  n.cfg.Raft.LogGCThreshold,
		RaftLogGCCountLimit: n.cfg.Raft.LogGCCountLimit,
		SplitCheckTicks:     n.cfg.Raft.ticks(n.cfg.Raft.SplitCheckInterval),
		RegionSplitSize:     n.cfg.Raft.RegionSplitSize,
		RegionMaxSize:       n.cfg.Raft.RegionMaxSize,
		RegionSplitKeys:     n.cfg.Raft.RegionSplitKeys,
		RegionMaxKeys:       n.cfg.Raft.RegionMaxKeys,
		PD:                  n.pd,
		SplitKey:            splitKey,
		OnLeaderChange:      n.noticeLeaderChange,
	})
	if err != nil {
		return fmt.Errorf("start raftstore: %w", err)
	}
	n.store = store
	return nil
}

// noticeLeaderChange queues a region this store leads for an early
// heartbeat and, when its max_ts is not synced yet, for a sync; a region it
// lost is no longer synced. It never blocks (a full queue leaves the
// region to the periodic heartbeat, which queues it again).
func (n *Node) noticeLeaderChange(regionID uint64, leader bool) {
	if !leader {
		n.maxTS.lost(regionID)
		return
	}
	n.queueMaxTSSync(regionID)
	select {
	case n.leaderChanged <- regionID:
	default:
	}
}

// maxTSSyncTask is a region whose max_ts waits for a fresh timestamp, at
// the generation of its leadership.
type maxTSSyncTask struct{ regionID, generation uint64 }

func (n *Node) queueMaxTSSync(regionID uint64) {
	if generation, needsSync := n.maxTS.led(regionID); needsSync {
		select {
		case n.maxTSSyncs <- maxTSSyncTask{regionID, generation}:
		default:
		}
	}
}

// runMaxTSSync raises max_ts to a fresh TSO timestamp for the regions
// queued, one timestamp for all waiting, and marks them synced.
func (n *Node) runMaxTSSync(ctx context.Context) {
	for {
		var tasks []maxTSSyncTask
		select {
		case <-ctx.Done():
			return
		case task := <-n.maxTSSyncs:
			tasks = append(tasks, task)
		}
		for drained := false; !drained; {
			select {
			case task := <-n.maxTSSyncs:
				tasks = append(tasks, task)
			default:
				drained = true
			}
		}
		ts, err := n.pd.TS(ctx)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("sync max ts: get a timestamp", "regions", len(tasks), "err", err)
			}
			continue
		}
		n.svc.txn.ConcurrencyManager().UpdateMaxTS(ts)
		for _, task := range tasks {
			n.maxTS.markSynced(task.regionID, task.generation)
		}
	}
}

// splitKey drops the timestamp of a versioned key (an encoded user key and
// 8 bytes), so that a split keeps a key's versions together; other keys
// (raw keys, locks) split where they are.
func splitKey(key []byte) []byte {
	if _, rest, err := mvcc.DecodeBytes(key); err == nil && len(rest) == 8 {
		return key[:len(key)-8]
	}
	return key
}

// serve starts the gRPC and status servers.
func (n *Node) serve(ctx context.Context) error {
	maxTS, err := n.pd.TS(ctx)
	if err != nil {
		return fmt.Errorf("initial max ts: %w", err)
	}
	kv, err := n.store.Storage()
	if err != nil {
		return err
	}
	n.svc, err = NewService(ServiceConfig{
		StoreID:      n.storeID,
		RegionView:   raftRegions{store: n.store},
		Storage:      kv,
		Raft:         raftstore.NewRaftServer(n.store, n.log),
		Logger:       n.log,
		InitialMaxTS: maxTS,
		ImportDir:    filepath.Join(n.cfg.DataDir, "import"),
		slowScore:    n.slow,
		maxTS:        n.maxTS,
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
// resolved ts tracker, and carries out PD's operators.
func (n *Node) startBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.pd.OnHeartbeatResponse(func(resp *pdpb.RegionHeartbeatResponse) {
		n.wg.Go(func() { n.runOperator(ctx, resp) })
	})
	gc := &gcWorker{svc: n.svc, pd: n.pd, interval: n.cfg.GCPollInterval}
	resolved := &resolvedTS{svc: n.svc, pd: n.pd, storeID: n.storeID}
	n.wg.Go(func() { gc.run(ctx) })
	n.wg.Go(func() { resolved.run(ctx) })
	n.wg.Go(func() { n.runHeartbeats(ctx) })
	n.wg.Go(func() { n.runMaxTSSync(ctx) })
}

// runHeartbeats reports the store and the regions it leads to PD every
// heartbeat interval, and a region at once when its leadership or region
// changed here.
func (n *Node) runHeartbeats(ctx context.Context) {
	ticker := time.NewTicker(n.cfg.Raft.HeartbeatInterval)
	defer ticker.Stop()
	for {
		n.heartbeat(ctx)
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case regionID := <-n.leaderChanged:
				if info, ok := n.store.LeaderRegion(ctx, regionID); ok {
					n.regionHeartbeat(ctx, info, n.heartbeatInterval(time.Now()))
				}
			case <-ticker.C:
				waiting = false
			}
		}
	}
}

// heartbeat reports the store and each region it leads to PD.
func (n *Node) heartbeat(ctx context.Context) {
	regions := n.store.LeaderRegions(ctx)
	slowScore := n.slow.update(time.Now(), n.kv.RunningLogSync())
	if err := n.pd.StoreHeartbeat(ctx, n.storeStats(len(regions), slowScore)); err != nil && ctx.Err() == nil {
		n.log.Warn("store heartbeat failed", "err", err)
	}
	now := time.Now()
	interval := n.heartbeatInterval(now)
	n.lastHeartbeat = now
	for _, info := range regions {
		n.queueMaxTSSync(info.Region.GetId())
		n.regionHeartbeat(ctx, info, interval)
	}
}

func (n *Node) heartbeatInterval(now time.Time) *pdpb.TimeInterval {
	return &pdpb.TimeInterval{StartTimestamp: uint64(n.lastHeartbeat.Unix()), EndTimestamp: uint64(now.Unix())}
}

// regionHeartbeat reports one region this store leads.
func (n *Node) regionHeartbeat(ctx context.Context, info raftstore.RegionInfo, interval *pdpb.TimeInterval) {
	region := info.Region
	flow := n.svc.flows.take(region.GetId())
	size := n.sizes.estimate(region, flow)
	req := &pdpb.RegionHeartbeatRequest{
		Region:          region,
		Leader:          info.Leader,
		Term:            info.Term,
		PendingPeers:    info.PendingPeers,
		DownPeers:       info.DownPeers,
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
	if n.store != nil {
		n.store.Close()
	}
	if n.transport != nil {
		n.transport.Close()
	}
	for _, e := range []*engine.Engine{n.kv, n.raftDB} {
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
