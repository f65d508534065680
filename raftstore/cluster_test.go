package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/internal/testutil"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
)

// The test cluster: n stores in one process, on real engines in temporary
// directories, connected by a simulated network whose filters drop
// messages (at random, seeded) or partition the stores. It plays the part
// of the TinyKV course's test_raftstore harness.

// Test timing: 10 ms ticks, elections after 10–20 ticks.
const (
	testTick          = 10 * time.Millisecond
	testElectionTicks = 10
	electionTimeout   = testElectionTicks * testTick
)

// simNetwork delivers raft messages between the cluster's stores through
// its filters. Messages are encoded and decoded on the way, as over gRPC,
// so no two stores share memory.
type simNetwork struct {
	mu     sync.Mutex
	rng    *rand.Rand
	stores map[uint64]*Store
	// group maps a store to its side of a partition; stores on different
	// sides cannot talk. Empty means no partition.
	group map[uint64]int
	// keep is the probability that a message survives each drop filter;
	// drops stack: a message passes all of them or is lost.
	keep  float64
	drops int
	// snapshots counts the snapshot messages delivered to each store.
	snapshots map[uint64]int
}

func (n *simNetwork) transport(from uint64) Transport { return storeTransport{net: n, from: from} }

type storeTransport struct {
	net  *simNetwork
	from uint64
}

var errUnreachable = errors.New("sim network: store unreachable")

func (t storeTransport) Send(msg *raft_serverpb.RaftMessage) error {
	to := msg.GetToPeer().GetStoreId()
	n := t.net
	n.mu.Lock()
	target := n.stores[to]
	cut := len(n.group) > 0 && n.group[t.from] != n.group[to]
	dropped := false
	for range n.drops {
		dropped = dropped || n.rng.Float64() >= n.keep
	}
	n.mu.Unlock()
	if target == nil || cut {
		return errUnreachable
	}
	if dropped {
		return nil
	}
	if msg.GetMessage().GetMsgType() == eraftpb.MessageType_MsgSnapshot {
		n.mu.Lock()
		n.snapshots[to]++
		n.mu.Unlock()
	}
	data, err := msg.Marshal()
	if err != nil {
		return err
	}
	copied := &raft_serverpb.RaftMessage{}
	if err := copied.Unmarshal(data); err != nil {
		return err
	}
	return target.HandleRaftMessage(copied)
}

// cluster is the harness.
type cluster struct {
	t      *testing.T
	rng    *rand.Rand
	net    *simNetwork
	ids    []uint64
	dirs   map[uint64]string
	kv     map[uint64]*engine.Engine
	raftDB map[uint64]*engine.Engine
	stores map[uint64]*Store
	region *metapb.Region
	// configure adjusts each store's configuration.
	configure func(*Config)
	// pd hands out split ids to every store.
	pd *testPD
	// leaderHint is the store the client tries first for each region.
	mu         sync.Mutex
	leaderHint map[uint64]uint64
}

// newCluster bootstraps n stores holding one region over [start, end) with
// a peer on every store (peer id = store id), and starts them. configure,
// if not nil, adjusts each store's configuration.
func newCluster(t *testing.T, n int, start, end []byte, configure ...func(*Config)) *cluster {
	return newPartialCluster(t, n, n, start, end, configure...)
}

// newPartialCluster is newCluster with the region's peers on the first
// voters stores only; the others start empty.
func newPartialCluster(t *testing.T, n, voters int, start, end []byte, configure ...func(*Config)) *cluster {
	rng := testutil.Rand(t)
	c := &cluster{
		t: t, rng: rng,
		net:    &simNetwork{rng: newRand(rng.Uint64()), stores: map[uint64]*Store{}, snapshots: map[uint64]int{}},
		dirs:   map[uint64]string{},
		kv:     map[uint64]*engine.Engine{},
		raftDB: map[uint64]*engine.Engine{},
		stores: map[uint64]*Store{},

		leaderHint: map[uint64]uint64{},
		pd:         &testPD{},
	}
	region := &metapb.Region{Id: 1, StartKey: start, EndKey: end, RegionEpoch: &metapb.RegionEpoch{Version: 1, ConfVer: 1}}
	for id := uint64(1); id <= uint64(n); id++ {
		c.ids = append(c.ids, id)
		if id <= uint64(voters) {
			region.Peers = append(region.Peers, &metapb.Peer{Id: id, StoreId: id})
		}
	}
	c.region = region
	c.configure = func(cfg *Config) {
		for _, f := range configure {
			f(cfg)
		}
	}
	root := t.TempDir()
	for _, id := range c.ids {
		c.dirs[id] = filepath.Join(root, fmt.Sprintf("store%d", id))
		c.openEngines(id)
		if id <= uint64(voters) {
			require.NoError(t, BootstrapRegion(c.kv[id], c.raftDB[id], region))
		}
		c.start(id)
	}
	t.Cleanup(func() {
		for _, id := range c.ids {
			c.stop(id)
		}
	})
	return c
}

func (c *cluster) openEngines(id uint64) {
	kvOpts := engine.DefaultOptions()
	kvOpts.SyncWrites = false
	kvOpts.LockRank = mvcc.LockRank
	kv, err := engine.Open(filepath.Join(c.dirs[id], "kv"), kvOpts)
	require.NoError(c.t, err)
	raftDB, err := engine.Open(filepath.Join(c.dirs[id], "raft"), engine.DefaultOptions())
	require.NoError(c.t, err)
	c.kv[id], c.raftDB[id] = kv, raftDB
}

func (c *cluster) start(id uint64) {
	if c.kv[id] == nil {
		c.openEngines(id)
	}
	cfg := Config{
		StoreID: id, KV: c.kv[id], Raft: c.raftDB[id], Transport: c.net.transport(id),
		TickInterval: testTick, ElectionTicks: testElectionTicks, HeartbeatTicks: 2,
		Seed: c.rng.Uint64(), PD: c.pd,
	}
	if os.Getenv("RAFTSTORE_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c.configure(&cfg)
	s, err := Start(cfg)
	require.NoError(c.t, err)
	c.net.mu.Lock()
	c.net.stores[id] = s
	c.net.mu.Unlock()
	c.stores[id] = s
}

// stop closes a store and its engines, as a process exit would.
func (c *cluster) stop(id uint64) {
	s := c.stores[id]
	if s == nil {
		return
	}
	c.net.mu.Lock()
	delete(c.net.stores, id)
	c.net.mu.Unlock()
	s.Close()
	delete(c.stores, id)
	require.NoError(c.t, c.kv[id].Close())
	require.NoError(c.t, c.raftDB[id].Close())
	delete(c.kv, id)
	delete(c.raftDB, id)
}

// partition splits the stores into the given groups; stores in no group
// are alone.
func (c *cluster) partition(groups ...[]uint64) {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.net.group = map[uint64]int{}
	for _, id := range c.ids {
		c.net.group[id] = -int(id)
	}
	for g, ids := range groups {
		for _, id := range ids {
			c.net.group[id] = g
		}
	}
}

// addDrop stacks one more filter that loses each message with probability
// 1-keep.
func (c *cluster) addDrop(keep float64) {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.net.keep = keep
	c.net.drops++
}

func (c *cluster) heal() {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.net.group = nil
	c.net.drops = 0
}

// header addresses the region on storeID. The peer id is left 0
// (unchecked), since conf changes give a store's peer new ids.
func (c *cluster) header(storeID uint64) *raft_cmdpb.RaftRequestHeader {
	return &raft_cmdpb.RaftRequestHeader{
		RegionId:    c.region.GetId(),
		Peer:        &metapb.Peer{StoreId: storeID},
		RegionEpoch: c.region.GetRegionEpoch(),
	}
}

// regionOf returns the region holding key, as the store that knows the
// newest epoch of it has it (the harness's stand-in for PD's view).
func (c *cluster) regionOf(key []byte) *metapb.Region {
	var best *metapb.Region
	for _, id := range c.ids {
		s := c.stores[id]
		if s == nil {
			continue
		}
		r := s.RegionForKey(key)
		if r != nil && (best == nil || isEpochStale(best.GetRegionEpoch(), r.GetRegionEpoch())) {
			best = r
		}
	}
	if best == nil {
		return c.region
	}
	return best
}

// call runs op against the leader of the region holding key (looked up
// afresh on each attempt), following NotLeader hints and retrying region
// errors that say to, as client-go does, until it succeeds or the deadline
// passes. KeyNotInRegion for a key whose region is unchanged ends it: the
// command spans regions.
func (c *cluster) call(deadline time.Duration, key []byte, op func(s *Store, storeID uint64, region *metapb.Region) error) error {
	end := time.Now().Add(deadline)
	var last error
	for time.Now().Before(end) {
		region := c.regionOf(key)
		c.mu.Lock()
		target := c.leaderHint[region.GetId()]
		if target == 0 || c.stores[target] == nil {
			target = c.ids[c.rng.IntN(len(c.ids))]
		}
		c.mu.Unlock()
		s := c.stores[target]
		if s == nil {
			continue
		}
		last = op(s, target, region)
		rerr := storage.AsRegionError(last)
		switch {
		case last == nil:
			c.setHint(region.GetId(), target)
			return nil
		case rerr.GetNotLeader().GetLeader() != nil:
			c.setHint(region.GetId(), rerr.GetNotLeader().GetLeader().GetStoreId())
		case rerr.GetStaleCommand() != nil:
		case rerr.GetKeyNotInRegion() != nil && c.regionOf(key).GetId() == region.GetId():
			// The command spans regions: retrying will not help.
			return last
		case rerr.GetEpochNotMatch() != nil || rerr.GetKeyNotInRegion() != nil:
			time.Sleep(testTick)
		case errors.Is(last, context.DeadlineExceeded) || rerr.GetNotLeader() != nil ||
			rerr.GetRegionNotFound() != nil || rerr.GetReadIndexNotReady() != nil || rerr.GetRegionNotInitialized() != nil:
			c.setHint(region.GetId(), 0)
			time.Sleep(testTick)
		default:
			return last
		}
	}
	return fmt.Errorf("request timed out: %w", last)
}

func (c *cluster) setHint(regionID, storeID uint64) {
	c.mu.Lock()
	c.leaderHint[regionID] = storeID
	c.mu.Unlock()
}

// regionHeader addresses region on storeID; the peer id is left 0
// (unchecked).
func regionHeader(region *metapb.Region, storeID uint64) *raft_cmdpb.RaftRequestHeader {
	return &raft_cmdpb.RaftRequestHeader{RegionId: region.GetId(), Peer: &metapb.Peer{StoreId: storeID}, RegionEpoch: region.GetRegionEpoch()}
}

// tryTimeout bounds one attempt, as the course harness's one second.
const tryTimeout = time.Second

// write runs a write command on the region of its first key.
func (c *cluster) write(reqs ...*raft_cmdpb.Request) error {
	return c.call(20*time.Second, requestKey(reqs[0]), func(s *Store, id uint64, region *metapb.Region) error {
		ctx, cancel := context.WithTimeout(context.Background(), tryTimeout)
		defer cancel()
		_, err := s.Propose(ctx, &raft_cmdpb.RaftCmdRequest{Header: regionHeader(region, id), Requests: reqs})
		return err
	})
}

func requestKey(r *raft_cmdpb.Request) []byte {
	if r.GetPut() != nil {
		return r.GetPut().GetKey()
	}
	return r.GetDelete().GetKey()
}

func putReq(key, value string) *raft_cmdpb.Request {
	return &raft_cmdpb.Request{CmdType: raft_cmdpb.CmdType_Put,
		Put: &raft_cmdpb.PutRequest{Key: []byte(key), Value: []byte(value)}}
}

func deleteReq(key string) *raft_cmdpb.Request {
	return &raft_cmdpb.Request{CmdType: raft_cmdpb.CmdType_Delete, Delete: &raft_cmdpb.DeleteRequest{Key: []byte(key)}}
}

func (c *cluster) mustPut(key, value string) {
	c.t.Helper()
	require.NoError(c.t, c.write(putReq(key, value)))
}

// read runs fn on a snapshot of the leader of the region holding key.
func (c *cluster) read(key []byte, fn func(snap *RegionSnapshot) error) error {
	return c.readRegion(key, func(snap *RegionSnapshot, _ *metapb.Region) error { return fn(snap) })
}

func (c *cluster) readRegion(key []byte, fn func(snap *RegionSnapshot, region *metapb.Region) error) error {
	return c.call(20*time.Second, key, func(s *Store, id uint64, region *metapb.Region) error {
		ctx, cancel := context.WithTimeout(context.Background(), tryTimeout)
		defer cancel()
		snap, err := s.Snapshot(ctx, regionHeader(region, id))
		if err != nil {
			return err
		}
		defer snap.Close()
		return fn(snap, region)
	})
}

// get reads key through the leader; found is false when it is absent.
func (c *cluster) get(key string) (value string, found bool, err error) {
	err = c.read([]byte(key), func(snap *RegionSnapshot) error {
		v, err := snap.Get(engine.CfDefault, []byte(key))
		switch {
		case errors.Is(err, engine.ErrNotFound):
			found = false
			return nil
		case err != nil:
			return err
		}
		value, found = string(v), true
		return nil
	})
	return value, found, err
}

func (c *cluster) mustGet(key, want string) {
	c.t.Helper()
	got, found, err := c.get(key)
	require.NoError(c.t, err)
	require.True(c.t, found, "key %q", key)
	require.Equal(c.t, want, got, "key %q", key)
}

// scan returns the values of [start, end) through the leaders of the
// regions it spans, region by region as the course's Scan walks them.
func (c *cluster) scan(start, end string) ([]string, error) {
	var values []string
	from := []byte(start)
	for {
		var regionEnd []byte
		var part []string
		err := c.readRegion(from, func(snap *RegionSnapshot, region *metapb.Region) error {
			part, regionEnd = part[:0], region.GetEndKey()
			upper := []byte(end)
			if len(regionEnd) > 0 && bytes.Compare(regionEnd, upper) < 0 {
				upper = regionEnd
			}
			it := snap.NewIterator(engine.CfDefault, engine.IterOptions{LowerBound: from, UpperBound: upper})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				v, err := it.Value()
				if err != nil {
					return err
				}
				part = append(part, string(v))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		values = append(values, part...)
		if len(regionEnd) == 0 || bytes.Compare(regionEnd, []byte(end)) >= 0 {
			return values, nil
		}
		from = regionEnd
	}
}

// engineValue reads key straight from a store's KV engine.
func (c *cluster) engineValue(storeID uint64, key string) (string, bool) {
	v, err := c.kv[storeID].Get(engine.CfDefault, []byte(key))
	if errors.Is(err, engine.ErrNotFound) {
		return "", false
	}
	require.NoError(c.t, err)
	return string(v), true
}

// mustEngineEqual waits until a store's engine holds key = want.
func (c *cluster) mustEngineEqual(storeID uint64, key, want string) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		got, ok := c.engineValue(storeID, key)
		return ok && got == want
	}, 5*time.Second, 10*time.Millisecond, "store %d key %q", storeID, key)
}

// leader waits for a leader and returns its store.
func (c *cluster) leader() uint64 {
	c.t.Helper()
	leader, _, ok := c.findLeader(10 * time.Second)
	require.True(c.t, ok, "no leader within 10 s")
	return leader
}

// findLeader waits up to timeout for a leader and returns its store and
// the region as it has it. Unlike leader it may run off the test's
// goroutine.
func (c *cluster) findLeader(timeout time.Duration) (uint64, *metapb.Region, bool) {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(testTick) {
		for _, id := range c.ids {
			s := c.stores[id]
			if s == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, ok := s.Status(ctx, c.region.GetId())
			cancel()
			if ok && st.Leader {
				return id, st.Region, true
			}
		}
	}
	return 0, nil, false
}

func (c *cluster) applyState(storeID uint64) *raft_serverpb.RaftApplyState {
	state := &raft_serverpb.RaftApplyState{}
	found, err := loadProto(c.kv[storeID], engine.CfRaft, applyStateKey(c.region.GetId()), state)
	require.NoError(c.t, err)
	require.True(c.t, found)
	return state
}

func (c *cluster) snapshotsTo(storeID uint64) int {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	return c.net.snapshots[storeID]
}

// mustLogBounded checks on every running store holding a peer of the
// region that log GC keeps its log within twice the count limit (the
// course's check).
func (c *cluster) mustLogBounded(limit uint64) {
	c.t.Helper()
	for _, id := range c.ids {
		if c.kv[id] == nil {
			continue
		}
		region := &raft_serverpb.RegionLocalState{}
		found, err := loadProto(c.kv[id], engine.CfRaft, regionStateKey(c.region.GetId()), region)
		require.NoError(c.t, err)
		if !found || region.GetState() != raft_serverpb.PeerState_Normal {
			continue
		}
		state := c.applyState(id)
		require.LessOrEqual(c.t, state.GetAppliedIndex()-state.GetTruncatedState().GetIndex(), 2*limit,
			"store %d: applied %d, truncated %d", id, state.GetAppliedIndex(), state.GetTruncatedState().GetIndex())
	}
}

func regionErrorOf(t *testing.T, err error) *errorpb.Error {
	t.Helper()
	rerr := storage.AsRegionError(err)
	require.NotNil(t, rerr, "want a region error, got %v", err)
	return rerr
}

// testPD allocates split ids from a counter, far above the ids tests give
// peers.
type testPD struct{ next atomic.Uint64 }

func (pd *testPD) AskBatchSplit(_ context.Context, region *metapb.Region, count int) ([]*pdpb.SplitID, error) {
	ids := make([]*pdpb.SplitID, count)
	for i := range ids {
		ids[i] = &pdpb.SplitID{NewRegionId: 1_000_000 + pd.next.Add(1)}
		for range region.GetPeers() {
			ids[i].NewPeerIds = append(ids[i].NewPeerIds, 1_000_000+pd.next.Add(1))
		}
	}
	return ids, nil
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)) }
