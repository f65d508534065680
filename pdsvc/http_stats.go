package pdsvc

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	pdhttp "github.com/tikv/pd/client/http"
)

// emptyRegionMiB is the size at or below which PD counts a region as
// empty.
const emptyRegionMiB = 1

// handleRegionStats serves /pd/api/v1/stats/region?start_key=&end_key=: the
// sizes, counts and flows of the regions overlapping the range (keys are
// the raw region keys, URL-escaped), summed as PD sums them. With `count`
// only the number of regions is given. TiDB's SHOW TABLE ... DISTRIBUTIONS
// adds `use_hot`, for which PD takes the flows from its hot statistics;
// here they are the regions' last reported flows either way.
func (s *Server) handleRegionStats(w http.ResponseWriter, r *http.Request) {
	query := r.URL.Query()
	regions := s.cluster.regionsInRange([]byte(query.Get("start_key")), []byte(query.Get("end_key")))
	if query.Has("count") {
		writeJSON(w, http.StatusOK, pdhttp.RegionStats{Count: len(regions)})
		return
	}
	writeJSON(w, http.StatusOK, regionStats(regions))
}

func regionStats(regions []*regionInfo) *pdhttp.RegionStats {
	st := &pdhttp.RegionStats{
		StoreLeaderCount: map[uint64]int{}, StorePeerCount: map[uint64]int{},
		StorePeerSize: map[uint64]int64{}, StorePeerKeys: map[uint64]int64{},
		StoreWriteBytes: map[uint64]uint64{}, StoreWriteKeys: map[uint64]uint64{},
		StoreLeaderReadBytes: map[uint64]uint64{}, StoreLeaderReadKeys: map[uint64]uint64{},
		StorePeerReadBytes: map[uint64]uint64{}, StorePeerReadKeys: map[uint64]uint64{},
		StoreEngine: map[uint64]string{},
	}
	for _, r := range regions {
		st.Count++
		if r.approxSize <= emptyRegionMiB {
			st.EmptyCount++
		}
		st.StorageSize += int64(r.approxSize)
		st.StorageKeys += int64(r.approxKeys)
		leader := r.leader.GetStoreId()
		st.StoreLeaderCount[leader]++
		st.StoreLeaderReadBytes[leader] += r.readBytes
		st.StoreLeaderReadKeys[leader] += r.readKeys
		for _, p := range r.meta.GetPeers() {
			store := p.GetStoreId()
			st.StorePeerCount[store]++
			st.StorePeerSize[store] += int64(r.approxSize)
			st.StorePeerKeys[store] += int64(r.approxKeys)
			st.StoreWriteBytes[store] += r.writtenBytes
			st.StoreWriteKeys[store] += r.writtenKeys
			st.StorePeerReadBytes[store] += r.readBytes
			st.StorePeerReadKeys[store] += r.readKeys
			st.StoreEngine[store] = "tikv"
		}
	}
	return st
}

// handleHotRegions serves /pd/api/v1/hotspot/regions/{read,write}: the hot
// peers of the kind, per store (see hotCache).
func (s *Server) handleHotRegions(kind hotKind) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.hot.hotPeers(kind))
	}
}

// handleHotRegionsHistory serves /pd/api/v1/hotspot/regions/history: the
// recorded hot peers that the JSON body (a GET with a body, as PD's client
// and TiDB send it) selects; no body selects all.
func (s *Server) handleHotRegionsHistory(w http.ResponseWriter, r *http.Request) {
	var req pdhttp.HistoryHotRegionsRequest
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req)
	if err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid history hot regions request: "+err.Error())
		return
	}
	history := s.hot.historyMatching(&req)
	if history == nil {
		history = []*pdhttp.HistoryHotRegion{}
	}
	writeJSON(w, http.StatusOK, pdhttp.HistoryHotRegions{HistoryHotRegion: history})
}
