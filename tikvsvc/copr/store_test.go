package copr

import (
	"bytes"
	"context"
	"sort"
	"sync"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// memStore is an in-memory ScanFunc: a sorted map of committed pairs with
// optional locks, following KvScan's conventions (reverse: StartKey is the
// exclusive upper bound, EndKey the inclusive lower bound).
type memStore struct {
	mu    sync.Mutex
	data  map[string][]byte
	locks map[string]*kvrpcpb.LockInfo
	// lockAsPairError reports locks in a KvPair instead of ScanResponse.error.
	lockAsPairError bool
	requests        []*kvrpcpb.ScanRequest
}

func newMemStore() *memStore {
	return &memStore{data: map[string][]byte{}, locks: map[string]*kvrpcpb.LockInfo{}}
}

func (s *memStore) put(key, value []byte) { s.data[string(key)] = value }

func (s *memStore) lock(key []byte, startTS uint64) {
	s.locks[string(key)] = &kvrpcpb.LockInfo{Key: key, PrimaryLock: key, LockVersion: startTS, LockTtl: 3000}
}

func (s *memStore) sortedKeys(desc bool) []string {
	keys := make([]string, 0, len(s.data)+len(s.locks))
	seen := map[string]bool{}
	for k := range s.data {
		keys, seen[k] = append(keys, k), true
	}
	for k := range s.locks {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if desc {
		for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
			keys[i], keys[j] = keys[j], keys[i]
		}
	}
	return keys
}

// inWindow reports whether key lies in the request's key window.
func inWindow(req *kvrpcpb.ScanRequest, key []byte) bool {
	lower, upper := req.StartKey, req.EndKey
	if req.Reverse {
		lower, upper = req.EndKey, req.StartKey
	}
	return bytes.Compare(key, lower) >= 0 && (len(upper) == 0 || bytes.Compare(key, upper) < 0)
}

func (s *memStore) scan(_ context.Context, req *kvrpcpb.ScanRequest) (*kvrpcpb.ScanResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
	resp := &kvrpcpb.ScanResponse{}
	for _, k := range s.sortedKeys(req.Reverse) {
		if uint32(len(resp.Pairs)) >= req.Limit {
			break
		}
		key := []byte(k)
		if !inWindow(req, key) {
			continue
		}
		if l, ok := s.locks[k]; ok && l.LockVersion <= req.Version {
			if !s.lockAsPairError {
				return &kvrpcpb.ScanResponse{Error: &kvrpcpb.KeyError{Locked: l}}, nil
			}
			resp.Pairs = append(resp.Pairs, &kvrpcpb.KvPair{Key: key, Error: &kvrpcpb.KeyError{Locked: l}})
			continue
		}
		v, ok := s.data[k]
		if !ok {
			continue
		}
		pair := &kvrpcpb.KvPair{Key: key}
		if !req.KeyOnly {
			pair.Value = v
		}
		resp.Pairs = append(resp.Pairs, pair)
	}
	return resp, nil
}
