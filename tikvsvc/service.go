package tikvsvc

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	sst "github.com/pingcap/kvproto/pkg/import_sstpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// latchSlots is the number of latch slots of raw writes.
const latchSlots = 1 << 14

// Service implements tikvpb.TikvServer. Methods it does not override answer
// codes.Unimplemented.
type Service struct {
	tikvpb.UnimplementedTikvServer

	log     *slog.Logger
	regions RegionView
	storeID uint64
	raw     *rawStore
	txn     *mvcc.Store
	waiter  *lockWaiter
	// staged holds the SSTs written through ImportSST until ingested.
	staged *importDir
	// safeTS is the store's safe ts for stale reads (see resolvedTS); it
	// never decreases.
	safeTS atomic.Uint64
	// txnStatus holds the broadcast statuses of pipelined-DML transactions.
	txnStatus *txnStatusCache
	// flows counts the regions' written and read bytes and keys for the
	// region heartbeats.
	flows *flowMeter
	// health builds the health feedback sent to clients.
	health *healthReporter
	// now is the wall clock.
	now func() time.Time
	// raft receives other stores' raft messages; nil on a standalone store.
	raft RaftHandler
	// maxTS tells the regions whose max_ts is synced for async commit and
	// 1PC; nil on a standalone store.
	maxTS *maxTSSync
}

// RaftHandler serves the store-to-store raft streams of the Tikv service.
type RaftHandler interface {
	Raft(tikvpb.Tikv_RaftServer) error
	BatchRaft(tikvpb.Tikv_BatchRaftServer) error
	Snapshot(tikvpb.Tikv_SnapshotServer) error
}

// ServiceConfig holds what a Service needs.
type ServiceConfig struct {
	StoreID uint64
	// RegionView is the store's view of its regions; nil means Regions,
	// fixed, all led by this store (the standalone store).
	RegionView RegionView
	// Regions are the regions a standalone store serves, keys encoded.
	Regions []*metapb.Region
	Storage storage.Storage
	// Raft serves the raft streams from other stores; nil answers them
	// Unimplemented (a standalone store).
	Raft   RaftHandler
	Logger *slog.Logger
	// InitialMaxTS seeds max_ts for async commit and 1PC: a fresh TSO
	// timestamp, so commit timestamps stay above every read served before a
	// restart.
	InitialMaxTS uint64
	// Now is the wall clock for raw TTLs; nil means time.Now.
	Now func() time.Time
	// ImportDir holds the SSTs staged by ImportSST Write until they are
	// ingested; it survives restarts.
	ImportDir string
	// maxTS is the max_ts sync status of the regions the store leads; nil
	// treats every region as synced (a standalone store).
	maxTS *maxTSSync
	// slowScore is the store's disk slow score; nil means one that never
	// sees a disk write, so it stays at 1.
	slowScore *slowScore
}

// NewService builds the service over storage.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	staged, err := openImportDir(cfg.ImportDir)
	if err != nil {
		return nil, err
	}
	if cfg.slowScore == nil {
		cfg.slowScore = newSlowScore(cfg.Now())
	}
	if cfg.RegionView == nil {
		cfg.RegionView = newRegions(cfg.StoreID, cfg.Regions...)
	}
	flows := newFlowMeter()
	metered := meteredStorage{Storage: cfg.Storage, meter: flows}
	return &Service{
		log:       cfg.Logger,
		regions:   cfg.RegionView,
		storeID:   cfg.StoreID,
		raw:       &rawStore{storage: metered, latches: mvcc.NewLatches(latchSlots), now: cfg.Now},
		txn:       mvcc.NewStore(metered, mvcc.NewConcurrencyManager(cfg.InitialMaxTS)),
		waiter:    newLockWaiter(cfg.Now),
		staged:    staged,
		txnStatus: newTxnStatusCache(cfg.Now),
		flows:     flows,
		health:    &healthReporter{storeID: cfg.StoreID, score: cfg.slowScore},
		now:       cfg.Now,
		raft:      cfg.Raft,
		maxTS:     cfg.maxTS,
	}, nil
}

// observeUnary records each unary call in the metrics.
func observeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	defer observe(strings.TrimPrefix(info.FullMethod, "/tikvpb.Tikv/"), time.Now())
	return handler(ctx, req)
}

// NewGRPCServer returns a gRPC server configured as client-go expects of a
// TiKV store — keepalive pings every 10 s allowed, large messages — with the
// service and the standard health service registered.
func NewGRPCServer(svc *Service) *grpc.Server {
	srv := grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 10 * time.Second, Timeout: 3 * time.Second}),
		grpc.MaxRecvMsgSize(math.MaxInt32),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.InitialWindowSize(2<<20),
		grpc.InitialConnWindowSize(128<<20),
		grpc.UnaryInterceptor(observeUnary),
	)
	tikvpb.RegisterTikvServer(srv, svc)
	sst.RegisterImportSSTServer(srv, &importService{svc: svc})
	healthSrv := health.NewServer()
	healthSrv.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, healthSrv)
	return srv
}
