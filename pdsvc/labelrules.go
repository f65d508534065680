package pdsvc

import (
	"encoding/json"
	"fmt"
	"net/http"

	pdhttp "github.com/tikv/pd/client/http"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Region label rules (/pd/api/v1/config/region-label/...) are stored as
// PD's JSON under /pd/<cluster id>/region_label/<rule id>. TiDB sets them for
// table attributes and to pause scheduling of ranges it ingests into.

func (s *storage) labelRulePrefix() string       { return s.root + "/region_label/" }
func (s *storage) labelRuleKey(id string) string { return s.labelRulePrefix() + id }

func (s *Server) handleGetLabelRules(w http.ResponseWriter, r *http.Request) {
	rules, err := s.loadLabelRules(r, nil)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rules)
}

// handleGetLabelRulesByIDs answers the rules whose IDs the JSON body lists.
func (s *Server) handleGetLabelRulesByIDs(w http.ResponseWriter, r *http.Request) {
	var ids []string
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&ids); err != nil {
		writeError(w, http.StatusBadRequest, "invalid rule ids: "+err.Error())
		return
	}
	rules, err := s.loadLabelRules(r, ids)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rules)
}

func (s *Server) handleGetLabelRule(w http.ResponseWriter, r *http.Request) {
	rules, err := s.loadLabelRules(r, []string{r.PathValue("id")})
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	case len(rules) == 0:
		writeError(w, http.StatusNotFound, "rule not found")
	default:
		writeJSON(w, http.StatusOK, rules[0])
	}
}

// loadLabelRules returns the stored rules, all of them when ids is nil.
func (s *Server) loadLabelRules(r *http.Request, ids []string) ([]*pdhttp.LabelRule, error) {
	var raws [][]byte
	if ids == nil {
		var err error
		if raws, err = s.storage.loadPrefix(r.Context(), s.storage.labelRulePrefix()); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		raw, err := s.storage.load(r.Context(), s.storage.labelRuleKey(id))
		if err != nil {
			return nil, err
		}
		if raw != nil {
			raws = append(raws, raw)
		}
	}
	rules := make([]*pdhttp.LabelRule, 0, len(raws))
	for _, raw := range raws {
		rule := &pdhttp.LabelRule{}
		if err := json.Unmarshal(raw, rule); err != nil {
			return nil, fmt.Errorf("decode label rule: %w", err)
		}
		rules = append(rules, rule)
	}
	return rules, nil
}

func (s *Server) handleSetLabelRule(w http.ResponseWriter, r *http.Request) {
	rule := &pdhttp.LabelRule{}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(rule); err != nil {
		writeError(w, http.StatusBadRequest, "invalid label rule: "+err.Error())
		return
	}
	s.applyLabelRules(w, r, &pdhttp.LabelRulePatch{SetRules: []*pdhttp.LabelRule{rule}}, "The rule is updated.")
}

func (s *Server) handleDeleteLabelRule(w http.ResponseWriter, r *http.Request) {
	s.applyLabelRules(w, r, &pdhttp.LabelRulePatch{DeleteRules: []string{r.PathValue("id")}}, "The rule is removed.")
}

func (s *Server) handlePatchLabelRules(w http.ResponseWriter, r *http.Request) {
	patch := &pdhttp.LabelRulePatch{}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(patch); err != nil {
		writeError(w, http.StatusBadRequest, "invalid label rule patch: "+err.Error())
		return
	}
	s.applyLabelRules(w, r, patch, "The region label rules are updated.")
}

// applyLabelRules stores and deletes rules in one etcd transaction.
func (s *Server) applyLabelRules(w http.ResponseWriter, r *http.Request, patch *pdhttp.LabelRulePatch, done string) {
	var ops []clientv3.Op
	for _, id := range patch.DeleteRules {
		ops = append(ops, clientv3.OpDelete(s.storage.labelRuleKey(id)))
	}
	for _, rule := range patch.SetRules {
		if rule == nil || rule.ID == "" {
			writeError(w, http.StatusBadRequest, "label rule without id")
			return
		}
		raw, err := json.Marshal(rule)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		ops = append(ops, clientv3.OpPut(s.storage.labelRuleKey(rule.ID), string(raw)))
	}
	if _, err := s.client.Txn(r.Context()).Then(ops...).Commit(); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, done)
}
