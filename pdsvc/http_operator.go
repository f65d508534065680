package pdsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/pingcap/kvproto/pkg/metapb"
)

// operatorRequest is the body of POST /pd/api/v1/operators as pd-ctl sends
// it: {"name":"transfer-leader","region_id":N,"to_store_id":M} or
// {"name":"add-peer"|"remove-peer","region_id":N,"store_id":M}.
type operatorRequest struct {
	Name      string  `json:"name"`
	RegionID  *uint64 `json:"region_id"`
	StoreID   *uint64 `json:"store_id"`
	ToStoreID *uint64 `json:"to_store_id"`
}

// store returns the store the named operator is about, or an error naming
// the missing field as PD does.
func (req operatorRequest) store() (uint64, error) {
	if req.Name == adminTransferLeader {
		if req.ToStoreID == nil {
			return 0, errors.New("missing store id to transfer leader to")
		}
		return *req.ToStoreID, nil
	}
	if req.StoreID == nil {
		return 0, errors.New("invalid store id to transfer peer to")
	}
	return *req.StoreID, nil
}

// handleCreateOperator starts an admin operator: 200 "The operator is
// created.", 400 for a malformed request, 500 when PD cannot run it.
func (s *Server) handleCreateOperator(w http.ResponseWriter, r *http.Request) {
	var req operatorRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case req.Name == "":
		writeError(w, http.StatusBadRequest, "missing operator name")
		return
	case req.Name != adminTransferLeader && req.Name != adminAddPeer && req.Name != adminRemovePeer:
		writeError(w, http.StatusBadRequest, "unknown operator")
		return
	case req.RegionID == nil:
		writeError(w, http.StatusBadRequest, "missing region id")
		return
	}
	store, err := req.store()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.co.addAdminOperator(r.Context(), req.Name, *req.RegionID, store); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, "The operator is created.")
}

// handleOperators lists the running operators in PD's text form.
func (s *Server) handleOperators(w http.ResponseWriter, _ *http.Request) {
	ops := s.co.ops.running(s.cfg.Now())
	result := make([]string, len(ops))
	for i, op := range ops {
		result[i] = op.text
	}
	writeJSON(w, http.StatusOK, result)
}

// handleOperator reports a region's operator with its status, as PD's
// OpWithStatus renders it; a region without one is a 500, as in PD.
func (s *Server) handleOperator(w http.ResponseWriter, r *http.Request) {
	id, ok := regionIDParam(w, r)
	if !ok {
		return
	}
	op, found := s.co.ops.status(id, s.cfg.Now())
	if !found {
		writeError(w, http.StatusInternalServerError, errOperatorNotFound.Error())
		return
	}
	writeJSON(w, http.StatusOK, fmt.Sprintf("status: %s, operator: %s", op.status.toPB(), op.text))
}

func (s *Server) handleDeleteOperator(w http.ResponseWriter, r *http.Request) {
	id, ok := regionIDParam(w, r)
	if !ok {
		return
	}
	if err := s.co.ops.cancel(id, s.cfg.Now()); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, "The pending operator is canceled.")
}

func (s *Server) handleDeleteOperators(w http.ResponseWriter, _ *http.Request) {
	s.co.ops.cancelAll(s.cfg.Now())
	writeJSON(w, http.StatusOK, "All pending operators are canceled.")
}

func regionIDParam(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("region_id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid region id")
		return 0, false
	}
	return id, true
}

// handleDeleteStore sets a store Offline, so that the replica checker moves
// its peers elsewhere.
func (s *Server) handleDeleteStore(w http.ResponseWriter, r *http.Request) {
	s.setStoreState(w, r, metapb.StoreState_Offline, "The store is set as Offline.")
}

// handleSetStoreState takes ?state=Up|Offline|Tombstone. PD accepts only Up
// and Offline here and buries a store itself once it holds no peers; we
// also accept Tombstone, which declares a store gone for good so that its
// peers are replaced.
func (s *Server) handleSetStoreState(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("state")
	for _, state := range []metapb.StoreState{metapb.StoreState_Up, metapb.StoreState_Offline, metapb.StoreState_Tombstone} {
		if strings.EqualFold(name, state.String()) {
			s.setStoreState(w, r, state, "The store's state is updated.")
			return
		}
	}
	writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid state %v", name))
}

// setStoreState answers 404 for an unknown store and 410 for a tombstone,
// as PD does.
func (s *Server) setStoreState(w http.ResponseWriter, r *http.Request, state metapb.StoreState, ok string) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid store id")
		return
	}
	err = s.cluster.setStoreState(r.Context(), id, state)
	switch {
	case errors.Is(err, ErrStoreNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrStoreTombstone):
		writeError(w, http.StatusGone, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.log.Info("store state set", "store-id", id, "state", state.String())
		writeJSON(w, http.StatusOK, ok)
	}
}
