package raftstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_cmdpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/storage"
)

// The generic scenarios record every client operation, with the times it
// was called and answered, and check at the end that the history is
// linearizable with porcupine, against a key-value model partitioned by
// key (keys of the default CF). Reads that fail are left out, since they
// have no effect; so are write attempts that failed definitely (see
// failedDefinitely). A write attempt that failed ambiguously is kept with
// no answer: it returns at the end of the history, so it may take effect
// at any point after its call, or (placed last) not at all.

// linearizabilityTimeout bounds a scenario's check. The histories are
// small once reads are merged (addGet), so the check takes milliseconds;
// if it ever runs out, porcupine's Unknown is logged and taken as a pass,
// rather than letting the check dominate the package's test time.
const linearizabilityTimeout = 5 * time.Second

// kvKind is what an operation does to its key.
type kvKind uint8

const (
	kvGet kvKind = iota
	kvPut
	kvAppend
	kvDelete
)

// kvInput is an operation on one key; value is what a put or an append
// writes.
type kvInput struct {
	kind  kvKind
	key   string
	value string
}

// kvOutput is an operation's answer: the value a get read ("" for an
// absent key), or whether a write failed ambiguously.
type kvOutput struct {
	value     string
	ambiguous bool
}

// kvModel is the sequential specification of one key: its state is the
// value, "" when absent; put sets it, append extends it, delete clears it,
// and a get must read it. A write's answer constrains nothing.
var kvModel = porcupine.Model{
	Partition: partitionByKey,
	Init:      func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		value, in := state.(string), input.(kvInput)
		switch in.kind {
		case kvGet:
			return output.(kvOutput).value == value, value
		case kvPut:
			return true, in.value
		case kvAppend:
			return true, value + in.value
		default:
			return true, ""
		}
	},
	DescribeOperation: describeOperation,
	DescribeState:     func(state any) string { return strconv.Quote(state.(string)) },
}

// partitionByKey splits a history into one history per key, in key order.
func partitionByKey(ops []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range ops {
		key := op.Input.(kvInput).key
		byKey[key] = append(byKey[key], op)
	}
	keys := make([]string, 0, len(byKey))
	for key := range byKey {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	parts := make([][]porcupine.Operation, 0, len(keys))
	for _, key := range keys {
		parts = append(parts, byKey[key])
	}
	return parts
}

func describeOperation(input, output any) string {
	in, out := input.(kvInput), output.(kvOutput)
	var s string
	switch in.kind {
	case kvGet:
		return fmt.Sprintf("get(%q) -> %q", in.key, out.value)
	case kvPut:
		s = fmt.Sprintf("put(%q, %q)", in.key, in.value)
	case kvAppend:
		s = fmt.Sprintf("append(%q, %q)", in.key, in.value)
	default:
		s = fmt.Sprintf("delete(%q)", in.key)
	}
	if out.ambiguous {
		return s + " -> unknown"
	}
	return s + " -> ok"
}

// openReturn is the return time of a write still in flight, or answered
// ambiguously: it ends with the history.
const openReturn = math.MaxInt64

// historyOp is one operation of a history.
type historyOp struct {
	client    int
	in        kvInput
	out       kvOutput
	call, ret int64
	// failed marks a write that failed definitely: it is left out.
	failed bool
}

// keyLog is what merging reads needs to know of one key.
type keyLog struct {
	writes  []int // indexes in history.ops
	lastGet int   // index in history.ops, or -1
}

// history records the operations of a run, one per key an operation
// touches, timed by clock (nanoseconds since the history began).
type history struct {
	mu    sync.Mutex
	clock func() int64
	last  int64 // the last time tick gave
	ops   []historyOp
	keys  map[string]*keyLog
}

func newHistory() *history {
	start := time.Now()
	return &history{clock: func() int64 { return int64(time.Since(start)) }, keys: map[string]*keyLog{}}
}

// now returns the time.
func (h *history) now() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tick()
}

// tick returns the time, later than any it gave before; h.mu is held.
func (h *history) tick() int64 {
	h.last = max(h.clock(), h.last+1)
	return h.last
}

func (h *history) key(key string) *keyLog {
	k := h.keys[key]
	if k == nil {
		k = &keyLog{lastGet: -1}
		h.keys[key] = k
	}
	return k
}

// beginWrites records the call of a write command, one operation per key
// it writes, and returns them for endWrites. The call is timed under the
// lock, so that a read recorded later knows of it and one recorded earlier
// returned before it (see addGet).
func (h *history) beginWrites(client int, reqs []*raft_cmdpb.Request) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	call := h.tick()
	idx := make([]int, 0, len(reqs))
	for _, r := range reqs {
		in := kvInput{kind: kvDelete, key: string(r.GetDelete().GetKey())}
		if r.GetCmdType() == raft_cmdpb.CmdType_Put {
			in = kvInput{kind: kvPut, key: string(r.GetPut().GetKey()), value: string(r.GetPut().GetValue())}
		}
		k := h.key(in.key)
		k.writes = append(k.writes, len(h.ops))
		idx = append(idx, len(h.ops))
		h.ops = append(h.ops, historyOp{client: client, in: in, call: call, ret: openReturn})
	}
	return idx
}

// endWrites records the answer to a write command: success, a definite
// failure, or an ambiguous one, which stays open.
func (h *history) endWrites(idx []int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ret := h.tick()
	for _, i := range idx {
		switch {
		case err == nil:
			h.ops[i].ret = ret
		case failedDefinitely(err):
			h.ops[i].failed = true
		default:
			h.ops[i].out.ambiguous = true
		}
	}
}

// failedDefinitely reports whether a write attempt's error shows it had
// no effect: the peer refused it before proposing (NotLeader, a store,
// peer or epoch mismatch, an uninitialized peer, an entry too large), or
// the appliers rejected the committed entry as a whole (EpochNotMatch,
// KeyNotInRegion), which every replica does alike. Any other error may
// come after the proposal, which may still apply: StaleCommand,
// RegionNotFound (also how a stopping store or a destroyed peer answers
// the proposals it holds), a timed-out context.
func failedDefinitely(err error) bool {
	rerr := storage.AsRegionError(err)
	return rerr.GetNotLeader() != nil || rerr.GetEpochNotMatch() != nil || rerr.GetKeyNotInRegion() != nil ||
		rerr.GetStoreNotMatch() != nil || rerr.GetMismatchPeerId() != nil ||
		rerr.GetRegionNotInitialized() != nil || rerr.GetRaftEntryTooLarge() != nil
}

// addGets records a successful read of keys, called at call and answered
// now, that found values ("" for an absent key).
func (h *history) addGets(client int, call int64, keys, values []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ret := h.tick()
	for i, key := range keys {
		h.addGet(client, key, values[i], call, ret)
	}
}

// addGet records a get, merged into the client's last get of the key when
// that read the same value and no write of the key overlaps the span of
// the two, so that the scans' many reads of a key do not make histories
// quadratic. The merge keeps the check exact: no write can be linearized
// within the span, so the key holds the value throughout it, and the
// merged read is legal where both were. A write not recorded yet will be
// called after ret (beginWrites), outside the span.
func (h *history) addGet(client int, key, value string, call, ret int64) {
	k := h.key(key)
	if k.lastGet >= 0 {
		last := &h.ops[k.lastGet]
		from, to := min(last.call, call), max(last.ret, ret)
		if last.client == client && last.out.value == value && !h.writtenWithin(k, from, to) {
			last.call, last.ret = from, to
			return
		}
	}
	k.lastGet = len(h.ops)
	h.ops = append(h.ops, historyOp{client: client, in: kvInput{kind: kvGet, key: key}, out: kvOutput{value: value}, call: call, ret: ret})
}

// writtenWithin reports whether a write of the key, other than one that
// failed definitely, overlaps [from, to].
func (h *history) writtenWithin(k *keyLog, from, to int64) bool {
	for _, i := range k.writes {
		w := h.ops[i]
		if !w.failed && w.call <= to && w.ret >= from {
			return true
		}
	}
	return false
}

// operations returns the history for porcupine, open writes returning at
// its end.
func (h *history) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	end := h.tick()
	ops := make([]porcupine.Operation, 0, len(h.ops))
	for _, r := range h.ops {
		if r.failed {
			continue
		}
		ret := r.ret
		if ret == openReturn {
			ret = end
		}
		ops = append(ops, porcupine.Operation{ClientId: r.client, Input: r.in, Call: r.call, Output: r.out, Return: ret})
	}
	return ops
}

// check fails the test if the history is not linearizable, naming the
// first key that is not, with its operations, and writing porcupine's
// visualization of them to the test's artifact directory.
func (h *history) check(t *testing.T) {
	t.Helper()
	ops := h.operations()
	began := time.Now()
	result, bad := checkLinearizable(ops, linearizabilityTimeout)
	switch result {
	case porcupine.Ok:
		ambiguous := 0
		for _, op := range ops {
			if op.Output.(kvOutput).ambiguous {
				ambiguous++
			}
		}
		t.Logf("history of %d operations (%d ambiguous writes) is linearizable (checked in %v)", len(ops), ambiguous, time.Since(began))
		return
	case porcupine.Unknown:
		t.Logf("linearizability check of %d operations timed out after %v: taken as a pass", len(ops), linearizabilityTimeout)
		return
	}
	if bad == nil {
		t.Errorf("history of %d operations not linearizable (no single key found within %v)", len(ops), linearizabilityTimeout)
		return
	}
	path := filepath.Join(t.ArtifactDir(), "linearizability.html")
	_, info := porcupine.CheckOperationsVerbose(kvModel, bad, linearizabilityTimeout)
	if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
		t.Logf("visualize the history: %v", err)
	}
	key := bad[0].Input.(kvInput).key
	t.Errorf("history not linearizable on key %q; its %d operations (ms since start):\n%s\nvisualization: %s (kept with -artifacts)",
		key, len(bad), strings.TrimSuffix(describeOperations(bad), "\n"), path)
}

// checkLinearizable checks ops against kvModel within timeout; when they
// are not linearizable it returns the operations of the first key that is
// not.
func checkLinearizable(ops []porcupine.Operation, timeout time.Duration) (porcupine.CheckResult, []porcupine.Operation) {
	result := porcupine.CheckOperationsTimeout(kvModel, ops, timeout)
	if result != porcupine.Illegal {
		return result, nil
	}
	for _, part := range partitionByKey(ops) {
		if porcupine.CheckOperationsTimeout(kvModel, part, timeout) == porcupine.Illegal {
			return result, part
		}
	}
	return result, nil
}

// maxDescribed bounds the operations a failure lists.
const maxDescribed = 50

func describeOperations(ops []porcupine.Operation) string {
	ops = slices.Clone(ops)
	slices.SortFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	var b strings.Builder
	for i, op := range ops {
		if i == maxDescribed {
			fmt.Fprintf(&b, "  ... %d more\n", len(ops)-i)
			break
		}
		fmt.Fprintf(&b, "  client %d [%.3f, %.3f] %s\n", op.ClientId, float64(op.Call)/1e6, float64(op.Return)/1e6,
			describeOperation(op.Input, op.Output))
	}
	return b.String()
}

// recorder is a client of the cluster whose operations a history records.
type recorder struct {
	c  *cluster
	h  *history
	id int
}

// write is cluster.write, recording every attempt.
func (r recorder) write(reqs ...*raft_cmdpb.Request) error {
	return r.c.call(20*time.Second, requestKey(reqs[0]), func(s *Store, id uint64, region *metapb.Region) error {
		ctx, cancel := context.WithTimeout(context.Background(), tryTimeout)
		defer cancel()
		idx := r.h.beginWrites(r.id, reqs)
		_, err := s.Propose(ctx, &raft_cmdpb.RaftCmdRequest{Header: regionHeader(region, id), Requests: reqs})
		r.h.endWrites(idx, err)
		return err
	})
}

// scan is cluster.scan of client cli's keys [0, n), recorded when it
// succeeds as a get of each key over the whole scan: the value found, or
// "" for a key it did not return. Values name their keys (clientValue);
// one naming no key of the range, which the scenario rejects, is left out.
func (r recorder) scan(cli, n int) ([]string, error) {
	call := r.h.now()
	values, err := r.c.scan(clientKey(cli, 0), clientKey(cli, n))
	if err != nil {
		return nil, err
	}
	keys, read := make([]string, n), make([]string, n)
	for j := range n {
		keys[j] = clientKey(cli, j)
	}
	for _, v := range values {
		if j, ok := clientIndex(cli, v); ok && j < n {
			read[j] = v
		}
	}
	r.h.addGets(r.id, call, keys, read)
	return values, nil
}

// clientIndex returns j for clientValue(cli, j).
func clientIndex(cli int, value string) (int, bool) {
	f := strings.Fields(value)
	if len(f) != 4 || f[0] != "x" || f[1] != strconv.Itoa(cli) || f[3] != "y" {
		return 0, false
	}
	j, err := strconv.Atoi(f[2])
	return j, err == nil && j >= 0
}

// handEnd is the end of the hand-made histories.
const handEnd = 1000

// handOp builds a hand-made operation: value is what a get read or a write
// writes; a negative ret makes a write ambiguous, returning at handEnd.
func handOp(client int, kind kvKind, key, value string, call, ret int64) porcupine.Operation {
	o := porcupine.Operation{ClientId: client, Input: kvInput{kind: kind, key: key, value: value}, Call: call,
		Output: kvOutput{}, Return: ret}
	if kind == kvGet {
		o.Input, o.Output = kvInput{kind: kind, key: key}, kvOutput{value: value}
	}
	if ret < 0 {
		o.Output, o.Return = kvOutput{ambiguous: true}, handEnd
	}
	return o
}

// TestLinearizabilityCheckerRejectsStaleRead: a read of a value already
// overwritten by an acknowledged put is caught, and the key is named.
func TestLinearizabilityCheckerRejectsStaleRead(t *testing.T) {
	ops := []porcupine.Operation{
		handOp(0, kvPut, "k", "1", 0, 10),
		handOp(0, kvPut, "k", "2", 20, 30),
		handOp(1, kvGet, "other", "", 0, 100),
		handOp(1, kvGet, "k", "1", 40, 50), // after the put of "2" was acknowledged
	}
	result, bad := checkLinearizable(ops, linearizabilityTimeout)
	require.Equal(t, porcupine.Illegal, result)
	require.Len(t, bad, 3)
	require.Equal(t, "k", bad[0].Input.(kvInput).key)
}

// TestLinearizabilityCheckerRejectsLostWrite: an acknowledged put that a
// later read does not see is caught, whatever an ambiguous one did.
func TestLinearizabilityCheckerRejectsLostWrite(t *testing.T) {
	ops := []porcupine.Operation{
		handOp(0, kvPut, "k", "1", 0, 10),
		handOp(0, kvPut, "k", "2", 20, -1), // ambiguous: may apply, or not
		handOp(1, kvGet, "k", "", 30, 40),  // the acknowledged put is lost
	}
	result, _ := checkLinearizable(ops, linearizabilityTimeout)
	require.Equal(t, porcupine.Illegal, result)
}

// TestLinearizabilityCheckerAcceptsConcurrentHistory: reads concurrent with
// a write may see it or not, and an ambiguous write may apply late or
// never.
func TestLinearizabilityCheckerAcceptsConcurrentHistory(t *testing.T) {
	ops := []porcupine.Operation{
		handOp(0, kvPut, "x", "a", 0, 100),
		handOp(1, kvGet, "x", "", 10, 20), // before the concurrent put
		handOp(2, kvGet, "x", "a", 30, 40),
		handOp(1, kvAppend, "x", "b", 50, 60),
		handOp(2, kvGet, "x", "ab", 70, 80),
		handOp(0, kvPut, "y", "1", 0, -1),   // ambiguous, applied late
		handOp(1, kvGet, "y", "", 200, 210), // not yet
		handOp(2, kvGet, "y", "1", 300, 310),
		handOp(0, kvPut, "z", "1", 0, -1), // ambiguous, never applied
		handOp(0, kvDelete, "y", "", 400, 410),
		handOp(1, kvGet, "y", "", 500, 510),
	}
	result, _ := checkLinearizable(ops, linearizabilityTimeout)
	require.Equal(t, porcupine.Ok, result)
}

// tickingHistory is a history whose clock stands still, so that its
// times (from tick) follow the order of recording.
func tickingHistory() *history {
	h := newHistory()
	h.clock = func() int64 { return 0 }
	return h
}

// TestLinearizabilityHistoryMergesOnlyEquivalentReads: the recorder merges
// repeated reads of a value, but not across a write that may have applied,
// so a read going back after an ambiguous write is still caught.
func TestLinearizabilityHistoryMergesOnlyEquivalentReads(t *testing.T) {
	h := tickingHistory()
	put := []*raft_cmdpb.Request{putReq("k", "1"), putReq("j", "1")}
	h.endWrites(h.beginWrites(0, put), nil)
	for range 3 {
		h.addGets(1, h.now(), []string{"k", "j"}, []string{"1", "1"})
	}
	require.Len(t, h.operations(), 4, "the same reads with no write between are merged")

	failed := h.beginWrites(0, []*raft_cmdpb.Request{putReq("k", "2")})
	h.endWrites(failed, regionErr(errNotLeader(1, nil)))
	h.addGets(1, h.now(), []string{"k"}, []string{"1"})
	require.Len(t, h.operations(), 4, "a write that failed definitely is left out")

	ambiguous := h.beginWrites(0, []*raft_cmdpb.Request{putReq("k", "3")})
	h.endWrites(ambiguous, context.DeadlineExceeded)
	h.addGets(1, h.now(), []string{"k"}, []string{"1"})
	h.addGets(1, h.now(), []string{"k"}, []string{"3"})
	h.addGets(1, h.now(), []string{"k"}, []string{"1"}) // the value went back
	ops := h.operations()
	require.Len(t, ops, 8, "reads after an ambiguous write are not merged")
	result, bad := checkLinearizable(ops, linearizabilityTimeout)
	require.Equal(t, porcupine.Illegal, result)
	require.Equal(t, "k", bad[0].Input.(kvInput).key)
}
