package pdsvc

import (
	"cmp"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	pdhttp "github.com/tikv/pd/client/http"
)

// hotKind is a kind of region flow: read or write.
type hotKind int

const (
	hotRead hotKind = iota
	hotWrite
)

func (k hotKind) String() string { return [...]string{"read", "write"}[k] }

// hotThreshold is the flow (per second) at which a peer counts as hot; PD's
// minimum hot thresholds.
var hotThreshold = [...]struct{ bytes, keys float64 }{
	hotRead:  {bytes: 8 << 10, keys: 128},
	hotWrite: {bytes: 1 << 10, keys: 32},
}

// hotAntiCount is how many cold reports a hot peer survives, as in PD.
const hotAntiCount = 2

// Defaults of the hot-region history ([schedule] in PD's configuration).
const (
	DefaultHotRegionsWriteInterval = 10 * time.Minute
	DefaultHotRegionsReservedDays  = 7
)

// hotPeer is one peer's flow of one kind, as PD's hot peer cache keeps it.
// Invariant: a peer in hotCache.peers has degree >= 1 or antiCount >= 1.
type hotPeer struct {
	regionID, storeID, peerID uint64
	stores                    []uint64
	isLeader, isLearner       bool
	startKey, endKey          []byte
	byteRate, keyRate         float64
	// degree counts consecutive hot reports; antiCount the cold reports
	// left before the peer is dropped.
	degree, antiCount int
	lastUpdate        time.Time
}

type peerKey struct{ regionID, storeID uint64 }

// hotCache finds hot peers from the flows in region heartbeats, serves
// /pd/api/v1/hotspot/regions/{read,write}, and records the hot peers every
// writeInterval for /pd/api/v1/hotspot/regions/history. Unlike PD, which
// stores the history on disk, it keeps the history in memory.
type hotCache struct {
	now           func() time.Time
	writeInterval time.Duration
	keep          time.Duration

	mu sync.Mutex
	// peers are the peers with flow worth tracking, by kind.
	peers [2]map[peerKey]*hotPeer
	// storeRates are each store's byte and key rates, per region, from the
	// last report, by kind.
	storeRates [2]map[uint64]map[uint64][2]float64
	// history is ordered by update time, oldest first.
	history      []*pdhttp.HistoryHotRegion
	lastRecorded time.Time
}

func newHotCache(now func() time.Time, writeInterval time.Duration, reservedDays int) *hotCache {
	c := &hotCache{now: now, writeInterval: writeInterval, keep: time.Duration(reservedDays) * 24 * time.Hour,
		lastRecorded: now()}
	for k := range c.peers {
		c.peers[k] = make(map[peerKey]*hotPeer)
		c.storeRates[k] = make(map[uint64]map[uint64][2]float64)
	}
	return c
}

// observe takes the flows of one region heartbeat: the write flow counts
// for every peer (each applies the writes), the read flow for the leader.
func (c *hotCache) observe(r *regionInfo) {
	secs := float64(r.intervalSeconds())
	if secs == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, p := range r.meta.GetPeers() {
		isLeader := p.GetId() == r.leader.GetId()
		c.update(hotWrite, r, p.GetId(), p.GetStoreId(), isLeader, float64(r.writtenBytes)/secs, float64(r.writtenKeys)/secs, now)
		if isLeader {
			c.update(hotRead, r, p.GetId(), p.GetStoreId(), true, float64(r.readBytes)/secs, float64(r.readKeys)/secs, now)
		}
	}
	if now.Sub(c.lastRecorded) >= c.writeInterval {
		c.recordHistory(now)
	}
}

// update applies one peer's report: a hot report raises its degree, a
// cold one spends its anti count.
func (c *hotCache) update(kind hotKind, r *regionInfo, peerID, storeID uint64, isLeader bool, byteRate, keyRate float64, now time.Time) {
	rates := c.storeRates[kind][storeID]
	if rates == nil {
		rates = make(map[uint64][2]float64)
		c.storeRates[kind][storeID] = rates
	}
	rates[r.meta.GetId()] = [2]float64{byteRate, keyRate}

	key := peerKey{r.meta.GetId(), storeID}
	peer := c.peers[kind][key]
	hot := byteRate >= hotThreshold[kind].bytes || keyRate >= hotThreshold[kind].keys
	switch {
	case hot && peer == nil:
		peer = &hotPeer{}
		c.peers[kind][key] = peer
		fallthrough
	case hot:
		peer.degree++
		peer.antiCount = hotAntiCount
	case peer == nil:
		return
	default:
		peer.degree--
		peer.antiCount--
		if peer.antiCount <= 0 {
			delete(c.peers[kind], key)
			return
		}
	}
	peer.regionID, peer.storeID, peer.peerID, peer.isLeader = r.meta.GetId(), storeID, peerID, isLeader
	peer.stores = peer.stores[:0]
	for _, p := range r.meta.GetPeers() {
		peer.stores = append(peer.stores, p.GetStoreId())
		if p.GetId() == peerID {
			peer.isLearner = p.GetRole() == metapb.PeerRole_Learner
		}
	}
	peer.startKey, peer.endKey = r.startKey(), r.endKey()
	peer.byteRate, peer.keyRate, peer.lastUpdate = byteRate, keyRate, now
}

// hotPeers returns the peers of kind with a hot degree, per store, as
// /hotspot/regions/{read,write} answers them.
func (c *hotCache) hotPeers(kind hotKind) *pdhttp.StoreHotPeersInfos {
	c.mu.Lock()
	defer c.mu.Unlock()
	infos := &pdhttp.StoreHotPeersInfos{AsPeer: pdhttp.StoreHotPeersStat{}, AsLeader: pdhttp.StoreHotPeersStat{}}
	for storeID, rates := range c.storeRates[kind] {
		var total [2]float64
		for _, r := range rates {
			total[0] += r[0]
			total[1] += r[1]
		}
		infos.AsPeer[storeID] = &pdhttp.HotPeersStat{StoreByteRate: total[0], StoreKeyRate: total[1]}
		infos.AsLeader[storeID] = &pdhttp.HotPeersStat{StoreByteRate: total[0], StoreKeyRate: total[1]}
	}
	for _, p := range c.sortedPeers(kind) {
		addHotPeer(infos.AsPeer, p)
		if p.isLeader {
			addHotPeer(infos.AsLeader, p)
		}
	}
	return infos
}

func addHotPeer(stats pdhttp.StoreHotPeersStat, p *hotPeer) {
	s := stats[p.storeID]
	if s == nil {
		s = &pdhttp.HotPeersStat{}
		stats[p.storeID] = s
	}
	s.TotalBytesRate += p.byteRate
	s.TotalKeysRate += p.keyRate
	s.Count++
	s.Stats = append(s.Stats, pdhttp.HotPeerStatShow{
		StoreID: p.storeID, Stores: slices.Clone(p.stores), IsLeader: p.isLeader, IsLearner: p.isLearner,
		RegionID: p.regionID, HotDegree: p.degree, ByteRate: p.byteRate, KeyRate: p.keyRate,
		AntiCount: p.antiCount, LastUpdateTime: p.lastUpdate,
	})
}

// sortedPeers returns the peers of kind with a positive degree, by region
// and store. The caller holds mu.
func (c *hotCache) sortedPeers(kind hotKind) []*hotPeer {
	var peers []*hotPeer
	for _, p := range c.peers[kind] {
		if p.degree > 0 {
			peers = append(peers, p)
		}
	}
	slices.SortFunc(peers, func(a, b *hotPeer) int {
		return cmp.Or(cmp.Compare(a.regionID, b.regionID), cmp.Compare(a.storeID, b.storeID))
	})
	return peers
}

// recordHistory appends the current hot peers to the history and drops
// the records older than the reserved days. The caller holds mu.
func (c *hotCache) recordHistory(now time.Time) {
	c.lastRecorded = now
	for _, kind := range []hotKind{hotRead, hotWrite} {
		for _, p := range c.sortedPeers(kind) {
			c.history = append(c.history, &pdhttp.HistoryHotRegion{
				UpdateTime: now.UnixMilli(), RegionID: p.regionID, PeerID: p.peerID, StoreID: p.storeID,
				IsLeader: p.isLeader, IsLearner: p.isLearner, HotRegionType: kind.String(),
				HotDegree: int64(p.degree), FlowBytes: p.byteRate, KeyRate: p.keyRate,
				StartKey: hexKey(p.startKey), EndKey: hexKey(p.endKey),
			})
		}
	}
	cutoff := now.Add(-c.keep).UnixMilli()
	drop := 0
	for drop < len(c.history) && c.history[drop].UpdateTime < cutoff {
		drop++
	}
	c.history = slices.Delete(c.history, 0, drop)
}

// historyMatching returns the recorded hot peers the request selects.
func (c *hotCache) historyMatching(req *pdhttp.HistoryHotRegionsRequest) []*pdhttp.HistoryHotRegion {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*pdhttp.HistoryHotRegion
	for _, h := range c.history {
		if historySelects(req, h) {
			out = append(out, h)
		}
	}
	return out
}

func historySelects(req *pdhttp.HistoryHotRegionsRequest, h *pdhttp.HistoryHotRegion) bool {
	in := func(want []uint64, v uint64) bool { return len(want) == 0 || slices.Contains(want, v) }
	inBool := func(want []bool, v bool) bool { return len(want) == 0 || slices.Contains(want, v) }
	return (req.StartTime == 0 || h.UpdateTime >= req.StartTime) &&
		(req.EndTime == 0 || h.UpdateTime <= req.EndTime) &&
		in(req.RegionIDs, h.RegionID) && in(req.StoreIDs, h.StoreID) && in(req.PeerIDs, h.PeerID) &&
		inBool(req.IsLeaders, h.IsLeader) && inBool(req.IsLearners, h.IsLearner) &&
		(len(req.HotRegionTypes) == 0 || slices.Contains(req.HotRegionTypes, h.HotRegionType))
}

// hexKey is a key as PD's HTTP API writes region keys: upper-case hex.
func hexKey(key []byte) string { return strings.ToUpper(hex.EncodeToString(key)) }
