package mvcc

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/internal/testutil"
)

const (
	bankAccounts       = 8
	bankInitialBalance = 1000
	bankLockTTL        = 20 // ms; short, so abandoned locks expire during the test
)

// testTSO hands out increasing timestamps whose physical part follows the
// clock, so lock TTLs expire in real time.
type testTSO struct {
	start time.Time
	last  atomic.Uint64
}

func (o *testTSO) next() uint64 {
	for {
		last := o.last.Load()
		ts := max(last+1, ComposeTS(uint64(time.Since(o.start).Milliseconds())+1, 0))
		if o.last.CompareAndSwap(last, ts) {
			return ts
		}
	}
}

type commitMode int

const (
	modeTwoPC commitMode = iota
	modeAsyncCommit
	modeOnePC
	modePessimistic
	numCommitModes
)

// bankClient plays a client-go transaction runner against a Store,
// including lock resolution and crashes (abandoned transactions).
type bankClient struct {
	t     *testing.T
	ctx   context.Context
	store *Store
	tso   *testTSO
	rng   *rand.Rand
}

func account(i int) []byte { return []byte(fmt.Sprintf("acct-%02d", i)) }

// TestBankTransfersKeepTotal runs concurrent transfers in every commit mode
// with random client crashes; every snapshot read of all accounts, and the
// final state, must add up to the initial total.
func TestBankTransfersKeepTotal(t *testing.T) {
	h := newHarness(t)
	rng := testutil.Rand(t)
	tso := &testTSO{start: time.Now()}
	setup := &bankClient{t: t, ctx: h.ctx, store: h.store, tso: tso, rng: rng}
	setup.initAccounts()

	const workers, transfersPerWorker = 4, 120
	var wg sync.WaitGroup
	var committed atomic.Int64
	for w := range workers + 1 {
		client := &bankClient{t: t, ctx: h.ctx, store: h.store, tso: tso, rng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w == workers {
				client.auditUntil(&committed, workers*transfersPerWorker/2)
				return
			}
			for range transfersPerWorker {
				if client.transfer() {
					committed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, bankAccounts*bankInitialBalance, setup.snapshotTotal(tso.next()))
	require.Positive(t, committed.Load())
	t.Logf("%d transfers committed", committed.Load())
}

func (c *bankClient) initAccounts() {
	var muts []*kvrpcpb.Mutation
	for i := range bankAccounts {
		muts = append(muts, &kvrpcpb.Mutation{Op: kvrpcpb.Op_Put, Key: account(i), Value: []byte(strconv.Itoa(bankInitialBalance))})
	}
	startTS := c.tso.next()
	resp, err := c.store.Prewrite(c.ctx, &kvrpcpb.PrewriteRequest{Mutations: muts, PrimaryLock: account(0), StartVersion: startTS, LockTtl: 3000})
	require.NoError(c.t, err)
	require.Empty(c.t, resp.Errors)
	commit, err := c.store.Commit(c.ctx, &kvrpcpb.CommitRequest{StartVersion: startTS, CommitVersion: c.tso.next(), Keys: rawKeysOf(muts)})
	require.NoError(c.t, err)
	require.Nil(c.t, commit.Error)
}

func rawKeysOf(muts []*kvrpcpb.Mutation) [][]byte {
	keys := make([][]byte, len(muts))
	for i, m := range muts {
		keys[i] = m.Key
	}
	return keys
}

// auditUntil checks snapshots until enough transfers committed: each must
// add up to the total, and reading it again later must give the same
// balances (nothing may commit at or below a timestamp already read).
func (c *bankClient) auditUntil(committed *atomic.Int64, target int) {
	for committed.Load() < int64(target) && !c.t.Failed() {
		ts := c.tso.next()
		first := c.snapshot(ts)
		if total := sum(first); total != bankAccounts*bankInitialBalance {
			c.t.Errorf("snapshot total at %d is %d, want %d", ts, total, bankAccounts*bankInitialBalance)
			return
		}
		time.Sleep(time.Millisecond)
		if again := c.snapshot(ts); !maps.Equal(first, again) {
			c.t.Errorf("snapshot at %d changed: %v then %v", ts, first, again)
			return
		}
	}
}

func sum(balances map[string]int) int {
	total := 0
	for _, b := range balances {
		total += b
	}
	return total
}

func (c *bankClient) snapshotTotal(ts uint64) int { return sum(c.snapshot(ts)) }

// snapshot scans every account at ts, resolving locks in the way.
func (c *bankClient) snapshot(ts uint64) map[string]int {
	for {
		resp, err := c.store.Scan(c.ctx, &kvrpcpb.ScanRequest{Context: &kvrpcpb.Context{}, Version: ts, Limit: bankAccounts + 1})
		require.NoError(c.t, err)
		if resp.Error != nil {
			c.resolve(resp.Error.Locked, ts)
			continue
		}
		balances, blocked := make(map[string]int), false
		for _, pair := range resp.Pairs {
			if pair.Error != nil {
				c.resolve(pair.Error.Locked, ts)
				blocked = true
				continue
			}
			balances[string(pair.Key)] = balance(c.t, pair.Value)
		}
		if !blocked {
			require.Len(c.t, balances, bankAccounts)
			return balances
		}
	}
}

func balance(t *testing.T, value []byte) int {
	n, err := strconv.Atoi(string(value))
	require.NoError(t, err)
	return n
}

// transfer moves a random amount between two accounts; it reports whether
// the transfer committed (an abandoned transfer may still commit later,
// through lock resolution, and is not counted).
func (c *bankClient) transfer() bool {
	from, to := c.rng.IntN(bankAccounts), c.rng.IntN(bankAccounts-1)
	if to >= from {
		to++
	}
	keys := [][]byte{account(from), account(to)}
	mode := commitMode(c.rng.IntN(int(numCommitModes)))
	startTS := c.tso.next()
	req := &kvrpcpb.PrewriteRequest{PrimaryLock: keys[0], StartVersion: startTS, LockTtl: bankLockTTL, MinCommitTs: startTS + 1}
	balances, ok := c.readBalances(mode, req, keys)
	if !ok {
		return false
	}
	amount := c.rng.IntN(50) + 1
	req.Mutations = []*kvrpcpb.Mutation{
		{Op: kvrpcpb.Op_Put, Key: keys[0], Value: []byte(strconv.Itoa(balances[0] - amount))},
		{Op: kvrpcpb.Op_Put, Key: keys[1], Value: []byte(strconv.Itoa(balances[1] + amount))},
	}
	switch mode {
	case modeAsyncCommit:
		req.UseAsyncCommit, req.Secondaries = true, keys[1:]
	case modeOnePC:
		req.TryOnePc = true
	case modePessimistic:
		req.PessimisticActions = []kvrpcpb.PrewriteRequest_PessimisticAction{
			kvrpcpb.PrewriteRequest_DO_PESSIMISTIC_CHECK, kvrpcpb.PrewriteRequest_DO_PESSIMISTIC_CHECK}
	}
	return c.prewriteAndCommit(req, keys)
}

// readBalances reads both balances: at start_ts, or for a pessimistic
// transaction by locking the keys at a fresh for_update_ts.
func (c *bankClient) readBalances(mode commitMode, req *kvrpcpb.PrewriteRequest, keys [][]byte) ([]int, bool) {
	if mode != modePessimistic {
		return []int{c.readKey(keys[0], req.StartVersion), c.readKey(keys[1], req.StartVersion)}, true
	}
	req.ForUpdateTs = c.tso.next()
	req.MinCommitTs = req.ForUpdateTs + 1
	lockReq := &kvrpcpb.PessimisticLockRequest{
		PrimaryLock: keys[0], StartVersion: req.StartVersion, ForUpdateTs: req.ForUpdateTs,
		LockTtl: bankLockTTL, ReturnValues: true,
		Mutations: []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_PessimisticLock, Key: keys[0]}, {Op: kvrpcpb.Op_PessimisticLock, Key: keys[1]}},
	}
	resp, err := c.store.PessimisticLock(c.ctx, lockReq)
	require.NoError(c.t, err)
	if len(resp.Errors) > 0 {
		c.handleErrors(resp.Errors, req.StartVersion)
		c.rollback(req.StartVersion, keys)
		return nil, false
	}
	return []int{balance(c.t, resp.Values[0]), balance(c.t, resp.Values[1])}, true
}

func (c *bankClient) readKey(key []byte, ts uint64) int {
	for {
		resp, err := c.store.Get(c.ctx, &kvrpcpb.GetRequest{Context: &kvrpcpb.Context{}, Key: key, Version: ts})
		require.NoError(c.t, err)
		if resp.Error == nil {
			require.False(c.t, resp.NotFound)
			return balance(c.t, resp.Value)
		}
		c.resolve(resp.Error.Locked, ts)
	}
}

func (c *bankClient) prewriteAndCommit(req *kvrpcpb.PrewriteRequest, keys [][]byte) bool {
	resp, err := c.store.Prewrite(c.ctx, req)
	require.NoError(c.t, err)
	if len(resp.Errors) > 0 {
		c.handleErrors(resp.Errors, req.StartVersion)
		c.rollback(req.StartVersion, keys)
		return false
	}
	if req.TryOnePc && resp.OnePcCommitTs != 0 {
		return true
	}
	if c.rng.IntN(20) == 0 {
		return false // crash after prewrite: resolvers decide
	}
	commitTS := resp.MinCommitTs
	if commitTS == 0 {
		commitTS = c.tso.next()
	}
	for {
		commit, err := c.store.Commit(c.ctx, &kvrpcpb.CommitRequest{StartVersion: req.StartVersion, CommitVersion: commitTS, Keys: keys[:1]})
		require.NoError(c.t, err)
		if commit.Error == nil {
			break
		}
		if expired := commit.Error.CommitTsExpired; expired != nil && resp.MinCommitTs == 0 {
			commitTS = c.tso.next()
			continue
		}
		require.Zero(c.t, resp.MinCommitTs, "an async-commit transaction cannot fail to commit: %v", commit.Error)
		c.rollback(req.StartVersion, keys)
		return false
	}
	if c.rng.IntN(20) == 0 {
		return true // crash after the primary: the secondary is resolved later
	}
	commit, err := c.store.Commit(c.ctx, &kvrpcpb.CommitRequest{StartVersion: req.StartVersion, CommitVersion: commitTS, Keys: keys[1:]})
	require.NoError(c.t, err)
	require.Nil(c.t, commit.Error, "secondary commit after the primary committed")
	return true
}

func (c *bankClient) rollback(startTS uint64, keys [][]byte) {
	resp, err := c.store.BatchRollback(c.ctx, &kvrpcpb.BatchRollbackRequest{StartVersion: startTS, Keys: keys})
	require.NoError(c.t, err)
	require.Nil(c.t, resp.Error)
}

// handleErrors resolves the locks behind KeyIsLocked errors; conflicts
// just abort the transaction.
func (c *bankClient) handleErrors(errs []*kvrpcpb.KeyError, callerStartTS uint64) {
	for _, keyErr := range errs {
		if keyErr.Locked != nil {
			c.resolve(keyErr.Locked, callerStartTS)
		}
	}
}

// resolve does what client-go's lock resolver does for one lock.
func (c *bankClient) resolve(lock *kvrpcpb.LockInfo, callerStartTS uint64) {
	now := c.tso.next()
	status, err := c.store.CheckTxnStatus(c.ctx, &kvrpcpb.CheckTxnStatusRequest{
		PrimaryKey: lock.PrimaryLock, LockTs: lock.LockVersion, CallerStartTs: callerStartTS,
		CurrentTs: now, RollbackIfNotExist: true,
	})
	require.NoError(c.t, err)
	require.Nil(c.t, status.Error)
	switch {
	case status.CommitVersion != 0:
		c.resolveTxn(lock.LockVersion, status.CommitVersion)
	case status.LockInfo == nil:
		c.resolveTxn(lock.LockVersion, 0)
	case status.LockInfo.UseAsyncCommit && lockExpired(&Lock{StartTS: lock.LockVersion, TTL: status.LockTtl}, now):
		c.resolveAsyncCommit(status.LockInfo)
	case status.Action != kvrpcpb.Action_MinCommitTSPushed:
		time.Sleep(time.Millisecond)
	}
}

func (c *bankClient) resolveTxn(startTS, commitTS uint64) {
	resp, err := c.store.ResolveLock(c.ctx, &kvrpcpb.ResolveLockRequest{StartVersion: startTS, CommitVersion: commitTS})
	require.NoError(c.t, err)
	require.Nil(c.t, resp.Error)
}

// resolveAsyncCommit decides an async-commit transaction from its
// secondaries: committed if all are locked (at the largest min_commit_ts)
// or one is committed, rolled back otherwise.
func (c *bankClient) resolveAsyncCommit(primary *kvrpcpb.LockInfo) {
	resp, err := c.store.CheckSecondaryLocks(c.ctx, &kvrpcpb.CheckSecondaryLocksRequest{
		Keys: primary.Secondaries, StartVersion: primary.LockVersion,
	})
	require.NoError(c.t, err)
	require.Nil(c.t, resp.Error)
	switch {
	case resp.CommitTs != 0:
		c.resolveTxn(primary.LockVersion, resp.CommitTs)
	case len(resp.Locks) == len(primary.Secondaries):
		commitTS := primary.MinCommitTs
		for _, l := range resp.Locks {
			commitTS = max(commitTS, l.MinCommitTs)
		}
		c.resolveTxn(primary.LockVersion, commitTS)
	default:
		c.resolveTxn(primary.LockVersion, 0)
	}
}
