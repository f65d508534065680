package pdsvc

import (
	"encoding/json"
	"errors"
	"net/http"
)

// handleSchedulers lists the running schedulers' names, as PD does; with
// ?status=disabled the removed ones, with ?status=paused none (nothing is
// paused here).
func (s *Server) handleSchedulers(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Query().Get("status") {
	case "paused":
		writeJSON(w, http.StatusOK, []string{})
	case "disabled":
		writeJSON(w, http.StatusOK, s.co.schedulers.names(true))
	default:
		writeJSON(w, http.StatusOK, s.co.schedulers.names(false))
	}
}

// handleAddScheduler starts a removed scheduler from {"name": ...}: 200
// "The scheduler is created.", 400 for a missing or unknown name, 500 if it
// runs already ("scheduler existed"), as in PD.
func (s *Server) handleAddScheduler(w http.ResponseWriter, r *http.Request) {
	var input map[string]any
	if err := json.NewDecoder(r.Body).Decode(&input); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	name, ok := input["name"].(string)
	if !ok {
		writeError(w, http.StatusBadRequest, "missing scheduler name")
		return
	}
	err := s.co.schedulers.set(r.Context(), name, true)
	switch {
	case errors.Is(err, errUnknownScheduler):
		writeError(w, http.StatusBadRequest, "unknown scheduler")
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		s.log.Info("scheduler added", "scheduler", name)
		writeJSON(w, http.StatusOK, "The scheduler is created.")
	}
}

// handleRemoveScheduler removes a running scheduler: 200 "The scheduler is
// removed.", 404 if it does not run, as in PD. Its running operators go on.
func (s *Server) handleRemoveScheduler(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := s.co.schedulers.set(r.Context(), name, false)
	switch {
	case errors.Is(err, errSchedulerNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		s.log.Info("scheduler removed", "scheduler", name)
		writeJSON(w, http.StatusOK, "The scheduler is removed.")
	}
}
