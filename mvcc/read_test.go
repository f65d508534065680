package mvcc

import (
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/internal/testutil"
)

func (h *harness) scan(req *kvrpcpb.ScanRequest) *kvrpcpb.ScanResponse {
	h.t.Helper()
	if req.Context == nil {
		req.Context = &kvrpcpb.Context{}
	}
	resp, err := h.store.Scan(h.ctx, req)
	require.NoError(h.t, err)
	require.Nil(h.t, resp.Error)
	return resp
}

func pairStrings(pairs []*kvrpcpb.KvPair) []string {
	var out []string
	for _, p := range pairs {
		switch {
		case p.Error != nil:
			out = append(out, string(p.Key)+"!locked")
		default:
			out = append(out, string(p.Key)+"="+string(p.Value))
		}
	}
	return out
}

// scanFixture: a, ab, b (deleted at 40), c (version 2 at 50), d (only a
// rollback), e (locked by txn 60), f.
func scanFixture(t *testing.T) *harness {
	h := newHarness(t)
	h.mustPrewritePut("a", 10, "a", "1", "ab", "2", "b", "3", "c", "4", "f", "6")
	h.mustCommit(10, 20, "a", "ab", "b", "c", "f")
	h.mustPrewrite(prewriteReq("b", 30, del("b")))
	h.mustCommit(30, 40, "b")
	h.mustPrewritePut("c", 45, "c", "4b")
	h.mustCommit(45, 50, "c")
	require.Nil(t, h.rollback(55, "d"))
	h.mustPrewritePut("e", 60, "e", "5")
	return h
}

func TestScan(t *testing.T) {
	h := scanFixture(t)
	tests := []struct {
		name string
		req  *kvrpcpb.ScanRequest
		want []string
	}{
		{"forward all", &kvrpcpb.ScanRequest{Version: 100},
			[]string{"a=1", "ab=2", "c=4b", "e!locked", "f=6"}},
		{"forward old snapshot", &kvrpcpb.ScanRequest{Version: 30},
			[]string{"a=1", "ab=2", "b=3", "c=4", "f=6"}},
		{"bounds", &kvrpcpb.ScanRequest{Version: 30, StartKey: []byte("ab"), EndKey: []byte("c")},
			[]string{"ab=2", "b=3"}},
		{"limit", &kvrpcpb.ScanRequest{Version: 100, Limit: 2},
			[]string{"a=1", "ab=2"}},
		{"key only", &kvrpcpb.ScanRequest{Version: 30, KeyOnly: true, Limit: 2},
			[]string{"a=", "ab="}},
		{"reverse all", &kvrpcpb.ScanRequest{Version: 100, Reverse: true},
			[]string{"f=6", "e!locked", "c=4b", "ab=2", "a=1"}},
		{"reverse bounds: start exclusive upper, end inclusive lower", &kvrpcpb.ScanRequest{
			Version: 30, Reverse: true, StartKey: []byte("c"), EndKey: []byte("ab")},
			[]string{"b=3", "ab=2"}},
		{"reverse limit", &kvrpcpb.ScanRequest{Version: 30, Reverse: true, Limit: 2},
			[]string{"f=6", "c=4"}},
		{"lock below read ts only", &kvrpcpb.ScanRequest{Version: 59, StartKey: []byte("d")},
			[]string{"f=6"}},
		{"RC ignores locks", &kvrpcpb.ScanRequest{Version: 100, StartKey: []byte("e"),
			Context: &kvrpcpb.Context{IsolationLevel: kvrpcpb.IsolationLevel_RC}},
			[]string{"f=6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, pairStrings(h.scan(tt.req).Pairs))
		})
	}
}

func TestReadsThroughLocks(t *testing.T) {
	h := newHarness(t)
	h.mustPrewritePut("k", 10, "k", "old")
	h.mustCommit(10, 20, "k")
	h.mustPrewritePut("k", 30, "k", "new")
	get := func(ctx *kvrpcpb.Context, version uint64) *kvrpcpb.GetResponse {
		resp, err := h.store.Get(h.ctx, &kvrpcpb.GetRequest{Context: ctx, Key: []byte("k"), Version: version})
		require.NoError(t, err)
		return resp
	}
	tests := []struct {
		name    string
		ctx     *kvrpcpb.Context
		version uint64
		want    string // "locked" for a KeyIsLocked error
	}{
		{"SI blocked", &kvrpcpb.Context{}, 40, "locked"},
		{"SI below lock", &kvrpcpb.Context{}, 25, "old"},
		{"resolved lock is skipped", &kvrpcpb.Context{ResolvedLocks: []uint64{30}}, 40, "old"},
		{"committed lock is read through", &kvrpcpb.Context{CommittedLocks: []uint64{30}}, 40, "new"},
		{"other resolved lock does not help", &kvrpcpb.Context{ResolvedLocks: []uint64{31}}, 40, "locked"},
		{"RC ignores locks", &kvrpcpb.Context{IsolationLevel: kvrpcpb.IsolationLevel_RC}, 40, "old"},
		{"latest read of the primary skips its lock", &kvrpcpb.Context{}, MaxTS, "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(tt.ctx, tt.version)
			if tt.want == "locked" {
				require.NotNil(t, resp.Error.Locked)
				require.Equal(t, uint64(30), resp.Error.Locked.LockVersion)
				return
			}
			require.Nil(t, resp.Error)
			require.Equal(t, tt.want, string(resp.Value))
		})
	}

	// Lock-type and pessimistic locks never block; min_commit_ts above the
	// read does not either.
	h.mustPrewrite(prewriteReq("m", 50, lockOp("m")))
	h.mustPessimisticLock("n", 50, 50, "n")
	minCommit := prewriteReq("o", 50, put("o", "v"))
	minCommit.MinCommitTs = 70
	h.mustPrewrite(minCommit)
	for _, k := range []string{"m", "n", "o"} {
		h.mustGetNone(k, 60)
	}
	h.mustGetLocked("o", 70)

	batch, err := h.store.BatchGet(h.ctx, &kvrpcpb.BatchGetRequest{
		Context: &kvrpcpb.Context{}, Keys: rawKeys([]string{"k", "m", "missing"}), Version: 40})
	require.NoError(t, err)
	require.Equal(t, []string{"k!locked"}, pairStrings(batch.Pairs))
	batch, err = h.store.BatchGet(h.ctx, &kvrpcpb.BatchGetRequest{
		Context: &kvrpcpb.Context{}, Keys: rawKeys([]string{"k", "missing"}), Version: 25})
	require.NoError(t, err)
	require.Equal(t, []string{"k=old"}, pairStrings(batch.Pairs))
}

func TestReadsRaiseMaxTS(t *testing.T) {
	h := newHarness(t)
	h.mustGetNone("k", 500)
	require.Equal(t, uint64(500), h.store.cm.MaxTS())
	h.mustGetNone("k", MaxTS)
	require.Equal(t, uint64(500), h.store.cm.MaxTS(), "MaxTS reads do not move max_ts")
	h.scan(&kvrpcpb.ScanRequest{Version: 600})
	require.Equal(t, uint64(600), h.store.cm.MaxTS())
	rc := &kvrpcpb.GetRequest{Context: &kvrpcpb.Context{IsolationLevel: kvrpcpb.IsolationLevel_RC}, Key: []byte("k"), Version: 700}
	_, err := h.store.Get(h.ctx, rc)
	require.NoError(t, err)
	require.Equal(t, uint64(600), h.store.cm.MaxTS(), "RC reads do not check locks nor move max_ts")
}

// scanModel is the expected history of a randomized scan test: per key,
// its committed Put and Delete records, and the start_ts of a pending Put
// lock (0 without one), whose min_commit_ts is start_ts + 1.
type scanModel struct {
	keys    []string
	commits map[string][]modelCommit // oldest first
	locked  map[string]uint64
}

type modelCommit struct {
	commitTS uint64
	value    string // "" for a Delete
	deleted  bool
}

// expect returns what a scan of [start, end) at ts shows, as pairStrings.
func (m *scanModel) expect(ts uint64, start, end string, reverse bool, limit int) []string {
	var out []string
	for i := range m.keys {
		key := m.keys[i]
		if reverse {
			key = m.keys[len(m.keys)-1-i]
		}
		if key < start || (end != "" && key >= end) || (limit > 0 && len(out) == limit) {
			continue
		}
		// A lock hides the key from reads at or above its min_commit_ts
		// (start_ts + 1 here): below it, the transaction cannot commit.
		if lockTS := m.locked[key]; lockTS != 0 && lockTS+1 <= ts {
			out = append(out, key+"!locked")
			continue
		}
		var visible *modelCommit
		for j, c := range m.commits[key] {
			if c.commitTS <= ts {
				visible = &m.commits[key][j]
			}
		}
		if visible != nil && !visible.deleted {
			out = append(out, key+"="+visible.value)
		}
	}
	return out
}

// TestScanRandomHistories checks forward and reverse scans against a model
// over keys with from a few to dozens of write records: up to and more than
// seekBound of them newer than the read, older than it, or Lock and
// Rollback records in between, so that both the stepping and the seeking
// paths of the scanner are taken.
func TestScanRandomHistories(t *testing.T) {
	rng := testutil.Rand(t)
	h := newHarness(t)
	m := &scanModel{commits: map[string][]modelCommit{}, locked: map[string]uint64{}}
	for i := range 20 {
		m.keys = append(m.keys, fmt.Sprintf("k%02d", i))
	}
	ts := uint64(10)
	for range 300 {
		// Half of the records go to three hot keys, so that keys have from
		// a few to dozens of records.
		key := m.keys[rng.IntN(len(m.keys))]
		if rng.IntN(2) == 0 {
			key = m.keys[rng.IntN(3)]
		}
		ts += 2
		switch rng.IntN(5) {
		case 0, 1:
			value := fmt.Sprintf("v%d", ts)
			h.mustPrewritePut(key, ts, key, value)
			h.mustCommit(ts, ts+1, key)
			m.commits[key] = append(m.commits[key], modelCommit{commitTS: ts + 1, value: value})
		case 2:
			h.mustPrewrite(prewriteReq(key, ts, del(key)))
			h.mustCommit(ts, ts+1, key)
			m.commits[key] = append(m.commits[key], modelCommit{commitTS: ts + 1, deleted: true})
		case 3:
			h.mustPrewrite(prewriteReq(key, ts, lockOp(key)))
			h.mustCommit(ts, ts+1, key)
		default:
			require.Nil(t, h.rollback(ts, key))
		}
	}
	for _, key := range m.keys[:4] {
		ts += 2
		h.mustPrewritePut(key, ts, key, "pending")
		m.locked[key] = ts
	}
	for range 300 {
		readTS := 10 + rng.Uint64N(ts+4-10)
		a, b := m.keys[rng.IntN(len(m.keys))], m.keys[rng.IntN(len(m.keys))]
		start, end := min(a, b), max(a, b)
		if rng.IntN(4) == 0 {
			end = ""
		}
		reverse, limit := rng.IntN(2) == 0, rng.IntN(6)
		req := &kvrpcpb.ScanRequest{Version: readTS, StartKey: []byte(start), EndKey: []byte(end), Limit: uint32(limit), Reverse: reverse}
		if reverse {
			req.StartKey, req.EndKey = []byte(end), []byte(start)
		}
		got := pairStrings(h.scan(req).Pairs)
		want := m.expect(readTS, start, end, reverse, limit)
		require.Equal(t, want, got, "scan [%q, %q) at %d, reverse %v, limit %d", start, end, readTS, reverse, limit)
	}
}
