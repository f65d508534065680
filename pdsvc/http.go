package pdsvc

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	pdhttp "github.com/tikv/pd/client/http"
)

// httpHandler serves PD's HTTP API under /pd/. The JSON shapes are those the
// stock PD HTTP client decodes (github.com/tikv/pd/client/http); any path we
// do not serve answers 404, which TiDB treats as "feature absent".
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	routes := map[string]http.HandlerFunc{
		"GET /pd/api/v1/status":                           s.handleStatus,
		"GET /pd/api/v1/version":                          s.handleVersion,
		"GET /pd/api/v1/health":                           s.handleHealth,
		"GET /pd/api/v1/members":                          s.handleMembers,
		"GET /pd/api/v1/cluster":                          s.handleCluster,
		"GET /pd/api/v1/config":                           s.handleConfig,
		"GET /pd/api/v1/config/cluster-version":           s.handleClusterVersion,
		"GET /pd/api/v1/stores":                           s.handleStores,
		"GET /pd/api/v1/store/{id}":                       s.handleStore,
		"GET /pd/api/v1/regions":                          s.handleRegions,
		"GET /pd/api/v1/region/id/{id}":                   s.handleRegionByID,
		"GET /pd/api/v1/region/key/{key}":                 s.handleRegionByKey,
		"GET /pd/api/v1/min-resolved-ts":                  s.handleMinResolvedTS,
		"GET /pd/api/v1/stats/region":                     s.handleRegionStats,
		"GET /pd/api/v1/hotspot/regions/read":             s.handleHotRegions(hotRead),
		"GET /pd/api/v1/hotspot/regions/write":            s.handleHotRegions(hotWrite),
		"GET /pd/api/v1/hotspot/regions/history":          s.handleHotRegionsHistory,
		"GET /pd/api/v1/config/region-label/rules":        s.handleGetLabelRules,
		"GET /pd/api/v1/config/region-label/rules/ids":    s.handleGetLabelRulesByIDs,
		"PATCH /pd/api/v1/config/region-label/rules":      s.handlePatchLabelRules,
		"GET /pd/api/v1/config/region-label/rule/{id}":    s.handleGetLabelRule,
		"DELETE /pd/api/v1/config/region-label/rule/{id}": s.handleDeleteLabelRule,
		"POST /pd/api/v1/config/region-label/rule":        s.handleSetLabelRule,
		"GET /pd/api/v1/operators":                        s.handleOperators,
		"POST /pd/api/v1/operators":                       s.handleCreateOperator,
		"DELETE /pd/api/v1/operators":                     s.handleDeleteOperators,
		"GET /pd/api/v1/operators/{region_id}":            s.handleOperator,
		"DELETE /pd/api/v1/operators/{region_id}":         s.handleDeleteOperator,
		"DELETE /pd/api/v1/store/{id}":                    s.handleDeleteStore,
		"POST /pd/api/v1/store/{id}/state":                s.handleSetStoreState,
		"GET /pd/api/v1/schedulers":                       s.handleSchedulers,
		"POST /pd/api/v1/schedulers":                      s.handleAddScheduler,
		"DELETE /pd/api/v1/schedulers/{name}":             s.handleRemoveScheduler,
	}
	for pattern, handler := range routes {
		mux.Handle(pattern, s.requireReady(handler))
	}
	return mux
}

func (s *Server) requireReady(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkReady(); err != nil {
			http.Error(w, "server not started", http.StatusServiceUnavailable)
			return
		}
		next(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, msg)
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, pdhttp.State{
		Version:        "v" + Version,
		StartTimestamp: s.startTime.Unix(),
	})
}

func (s *Server) handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": "v" + Version})
}

// handleHealth reports every member healthy: a member that answers is one
// that is serving.
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	members, _ := s.members()
	result := make([]pdhttp.Health, len(members))
	for i, m := range members {
		result[i] = pdhttp.Health{Name: m.Name, MemberID: m.MemberId, ClientUrls: m.ClientUrls, Health: true}
	}
	writeJSON(w, http.StatusOK, result)
}

func (s *Server) handleMembers(w http.ResponseWriter, _ *http.Request) {
	members, self := s.members()
	writeJSON(w, http.StatusOK, pdhttp.MembersInfo{Header: s.header(), Members: members, Leader: self, EtcdLeader: self})
}

func (s *Server) handleClusterVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Version)
}

func (s *Server) handleCluster(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, &metapb.Cluster{Id: s.clusterID, MaxPeerCount: uint32(s.cfg.Replication.MaxReplicas)})
}

func (s *Server) handleConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"name":                  s.cfg.Name,
		"data-dir":              s.cfg.DataDir,
		"client-urls":           s.cfg.ClientURLs,
		"advertise-client-urls": s.cfg.AdvertiseClientURLs,
		"peer-urls":             s.cfg.PeerURLs,
		"advertise-peer-urls":   s.cfg.AdvertisePeerURLs,
		"initial-cluster":       s.cfg.InitialCluster,
		"replication": map[string]any{
			"max-replicas":           s.cfg.Replication.MaxReplicas,
			"location-labels":        "",
			"enable-placement-rules": false,
		},
		"schedule": s.scheduleConfigJSON(),
	})
}

// scheduleConfigJSON is the [schedule] section as PD's /config shows it.
func (s *Server) scheduleConfigJSON() map[string]any {
	sc := s.cfg.Schedule
	return map[string]any{
		"max-store-down-time":        sc.MaxStoreDownTime.String(),
		"leader-schedule-limit":      sc.LeaderScheduleLimit,
		"region-schedule-limit":      sc.RegionScheduleLimit,
		"tolerant-size-ratio":        sc.TolerantSizeRatio,
		"store-balance-rate":         sc.StoreBalanceRate,
		"hot-regions-write-interval": sc.HotRegionsWriteInterval.String(),
		"hot-regions-reserved-days":  sc.HotRegionsReservedDays,
	}
}

func (s *Server) handleStores(w http.ResponseWriter, _ *http.Request) {
	stores := s.cluster.allStores(true)
	info := pdhttp.StoresInfo{Count: len(stores), Stores: make([]pdhttp.StoreInfo, len(stores))}
	for i, st := range stores {
		info.Stores[i] = s.storeJSON(st)
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) handleStore(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid store id")
		return
	}
	st, err := s.cluster.getStore(id)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.storeJSON(st))
}

func (s *Server) storeJSON(st *storeInfo) pdhttp.StoreInfo {
	m := st.meta
	labels := make([]pdhttp.StoreLabel, len(m.GetLabels()))
	for i, l := range m.GetLabels() {
		labels[i] = pdhttp.StoreLabel{Key: l.GetKey(), Value: l.GetValue()}
	}
	leaders, regions := s.storeRegionCounts(m.GetId())
	stats := st.stats
	return pdhttp.StoreInfo{
		Store: pdhttp.MetaStore{
			ID:             int64(m.GetId()),
			Address:        m.GetAddress(),
			State:          int64(m.GetState()),
			StateName:      m.GetState().String(),
			Version:        m.GetVersion(),
			Labels:         labels,
			StatusAddress:  m.GetStatusAddress(),
			GitHash:        m.GetGitHash(),
			StartTimestamp: m.GetStartTimestamp(),
		},
		Status: pdhttp.StoreStatus{
			Capacity:        byteSize(stats.GetCapacity()),
			Available:       byteSize(stats.GetAvailable()),
			LeaderCount:     int64(leaders),
			LeaderWeight:    1,
			RegionCount:     int64(regions),
			RegionWeight:    1,
			StartTS:         time.Unix(m.GetStartTimestamp(), 0),
			LastHeartbeatTS: st.lastHeartbeat,
			Uptime:          s.uptime(m.GetStartTimestamp()).String(),
		},
	}
}

// uptime is how long a store has run, measured from its reported start.
func (s *Server) uptime(startUnix int64) time.Duration {
	if startUnix == 0 {
		return 0
	}
	return s.cfg.Now().Sub(time.Unix(startUnix, 0)).Truncate(time.Second)
}

// storeRegionCounts counts the leaders and peers a store holds.
func (s *Server) storeRegionCounts(storeID uint64) (leaders, peers int) {
	for _, r := range s.cluster.allRegions() {
		if r.leader.GetStoreId() == storeID {
			leaders++
		}
		for _, p := range r.meta.GetPeers() {
			if p.GetStoreId() == storeID {
				peers++
			}
		}
	}
	return leaders, peers
}

// byteSize renders a byte count the way PD's typeutil.ByteSize does.
func byteSize(b uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(b), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + units[i]
}

func (s *Server) handleRegions(w http.ResponseWriter, _ *http.Request) {
	regions := s.cluster.allRegions()
	info := pdhttp.RegionsInfo{Count: int64(len(regions)), Regions: make([]pdhttp.RegionInfo, len(regions))}
	for i, r := range regions {
		info.Regions[i] = regionJSON(r)
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) handleRegionByID(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid region id")
		return
	}
	writeRegion(w, s.cluster.regionByID(id))
}

// handleRegionByKey takes the raw key from the path, or a hex key with
// ?format=hex, as PD does.
func (s *Server) handleRegionByKey(w http.ResponseWriter, r *http.Request) {
	key := []byte(r.PathValue("key"))
	if strings.EqualFold(r.URL.Query().Get("format"), "hex") {
		decoded, err := hex.DecodeString(string(key))
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid hex key")
			return
		}
		key = decoded
	}
	writeRegion(w, s.cluster.regionByKey(key))
}

// writeRegion answers null for an unknown region, as PD does.
func writeRegion(w http.ResponseWriter, r *regionInfo) {
	if r == nil {
		writeJSON(w, http.StatusOK, nil)
		return
	}
	writeJSON(w, http.StatusOK, regionJSON(r))
}

func regionJSON(r *regionInfo) pdhttp.RegionInfo {
	peers := make([]pdhttp.RegionPeer, len(r.meta.GetPeers()))
	for i, p := range r.meta.GetPeers() {
		peers[i] = peerJSON(p)
	}
	pending := make([]pdhttp.RegionPeer, len(r.pendingPeers))
	for i, p := range r.pendingPeers {
		pending[i] = peerJSON(p)
	}
	down := make([]pdhttp.RegionPeerStat, len(r.downPeers))
	for i, d := range r.downPeers {
		down[i] = pdhttp.RegionPeerStat{Peer: peerJSON(d.GetPeer()), DownSec: int64(d.GetDownSeconds())}
	}
	return pdhttp.RegionInfo{
		ID:       int64(r.meta.GetId()),
		StartKey: hexKey(r.startKey()),
		EndKey:   hexKey(r.endKey()),
		Epoch: pdhttp.RegionEpoch{
			ConfVer: int64(r.meta.GetRegionEpoch().GetConfVer()),
			Version: int64(r.meta.GetRegionEpoch().GetVersion()),
		},
		Peers:           peers,
		Leader:          peerJSON(r.leader),
		DownPeers:       down,
		PendingPeers:    pending,
		WrittenBytes:    r.writtenBytes,
		ReadBytes:       r.readBytes,
		ApproximateSize: int64(r.approxSize),
		ApproximateKeys: int64(r.approxKeys),
	}
}

func peerJSON(p *metapb.Peer) pdhttp.RegionPeer {
	return pdhttp.RegionPeer{
		ID:        int64(p.GetId()),
		StoreID:   int64(p.GetStoreId()),
		IsLearner: p.GetRole() == metapb.PeerRole_Learner,
	}
}

// handleMinResolvedTS reports the smallest resolved ts the stores have
// reported; scope=cluster or a store list adds the per-store values.
func (s *Server) handleMinResolvedTS(w http.ResponseWriter, r *http.Request) {
	perStore := s.cluster.minResolvedTSByStore()
	scope := r.URL.Query().Get("scope")
	selected := perStore
	if scope != "" && scope != "cluster" {
		selected = make(map[uint64]uint64)
		for _, part := range strings.Split(scope, ",") {
			id, err := strconv.ParseUint(strings.TrimSpace(part), 10, 64)
			if err != nil {
				writeError(w, http.StatusBadRequest, "invalid store id in scope")
				return
			}
			selected[id] = perStore[id]
		}
	}
	resp := map[string]any{"min_resolved_ts": minOf(selected), "is_real_time": true}
	if scope != "" {
		resp["stores_min_resolved_ts"] = selected
	}
	writeJSON(w, http.StatusOK, resp)
}

// minOf returns the smallest value, or 0 when there is none.
func minOf(values map[uint64]uint64) uint64 {
	result := uint64(math.MaxUint64)
	for _, v := range values {
		result = min(result, v)
	}
	if result == math.MaxUint64 {
		return 0
	}
	return result
}
