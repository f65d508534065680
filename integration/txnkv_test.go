package integration

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tikv/client-go/v2/config"
	tikverr "github.com/tikv/client-go/v2/error"
	"github.com/tikv/client-go/v2/kv"
	"github.com/tikv/client-go/v2/tikv"
	"github.com/tikv/client-go/v2/tikvrpc"
	"github.com/tikv/client-go/v2/tikvrpc/interceptor"
	"github.com/tikv/client-go/v2/txnkv"
	"github.com/tikv/client-go/v2/txnkv/transaction"
	"github.com/tinykv/tinykv/internal/testutil"
)

func accountKey(i int) []byte { return []byte(fmt.Sprintf("acct/%04d", i)) }

func encodeBalance(v int) []byte { return []byte(fmt.Sprintf("%d", v)) }

func decodeBalance(t testing.TB, b []byte) int {
	var v int
	if _, err := fmt.Sscanf(string(b), "%d", &v); err != nil {
		t.Fatalf("balance %q: %v", b, err)
	}
	return v
}

// sumBalances reads all accounts in one snapshot through a scan.
func sumBalances(t testing.TB, ctx context.Context, cli *txnkv.Client, accounts int) int {
	txn, err := cli.Begin()
	require(t, err, "begin reader")
	it, err := txn.Iter([]byte("acct/"), []byte("acct0"))
	require(t, err, "iter")
	defer it.Close()
	sum, n := 0, 0
	var seen []string
	for it.Valid() {
		sum += decodeBalance(t, it.Value())
		seen = append(seen, string(it.Key()))
		n++
		require(t, it.Next(), "next")
	}
	if n != accounts {
		t.Fatalf("snapshot saw %d accounts, want %d (phantom or lost rows): %v", n, accounts, seen)
	}
	return sum
}

// TestOptimisticTransfers: concurrent transfers with write conflicts keep
// the total constant, and every snapshot taken meanwhile sees the same
// total and the same set of accounts (snapshot isolation).
func TestOptimisticTransfers(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.txnClient()
	const accounts, initial, workers, transfers = 10, 100, 8, 40
	setup, err := cli.Begin()
	require(t, err, "begin")
	for i := range accounts {
		require(t, setup.Set(accountKey(i), encodeBalance(initial)), "set")
	}
	require(t, setup.Commit(ctx), "setup commit")

	rng := testutil.Rand(t)
	seeds := make([]uint64, workers)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if sum := sumBalances(t, ctx, cli, accounts); sum != accounts*initial {
				t.Errorf("snapshot total %d, want %d", sum, accounts*initial)
				return
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range transfers {
				from := int((seeds[w] + uint64(i)) % accounts)
				to := int((seeds[w]/7 + uint64(3*i+1)) % accounts)
				if from == to {
					continue
				}
				for {
					err := transfer(ctx, cli, from, to, 1+i%5)
					if err == nil {
						break
					}
					if !tikverr.IsErrWriteConflict(err) {
						t.Errorf("transfer: %v", err)
						return
					}
					conflicts.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readerDone
	if sum := sumBalances(t, ctx, cli, accounts); sum != accounts*initial {
		t.Fatalf("final total %d, want %d", sum, accounts*initial)
	}
	if conflicts.Load() == 0 {
		t.Logf("no write conflicts happened; the conflict path was not exercised this run")
	}
}

func transfer(ctx context.Context, cli *txnkv.Client, from, to, amount int) error {
	txn, err := cli.Begin()
	if err != nil {
		return err
	}
	values, err := txn.BatchGet(ctx, [][]byte{accountKey(from), accountKey(to)})
	if err != nil {
		return err
	}
	var a, b int
	fmt.Sscanf(string(values[string(accountKey(from))]), "%d", &a)
	fmt.Sscanf(string(values[string(accountKey(to))]), "%d", &b)
	if err := txn.Set(accountKey(from), encodeBalance(a-amount)); err != nil {
		return err
	}
	if err := txn.Set(accountKey(to), encodeBalance(b+amount)); err != nil {
		return err
	}
	return txn.Commit(ctx)
}

// TestRepeatableReadsAndScans: a snapshot does not see later commits
// (no non-repeatable or phantom reads); reverse and key-only scans.
func TestRepeatableReadsAndScans(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.txnClient()
	w, err := cli.Begin()
	require(t, err, "begin")
	for i := range 20 {
		require(t, w.Set([]byte(fmt.Sprintf("s/%02d", i)), []byte(fmt.Sprintf("v%02d", i))), "set")
	}
	require(t, w.Commit(ctx), "commit")

	reader, err := cli.Begin()
	require(t, err, "begin reader")
	before, err := reader.Get(ctx, []byte("s/05"))
	require(t, err, "get")

	u, err := cli.Begin()
	require(t, err, "begin writer")
	require(t, u.Set([]byte("s/05"), []byte("changed")), "set")
	require(t, u.Set([]byte("s/055"), []byte("phantom")), "set")
	require(t, u.Delete([]byte("s/06")), "delete")
	require(t, u.Commit(ctx), "commit writer")

	again, err := reader.Get(ctx, []byte("s/05"))
	if err != nil || !bytes.Equal(again, before) {
		t.Fatalf("non-repeatable read: %q then %q (%v)", before, again, err)
	}
	var keys []string
	it, err := reader.IterReverse([]byte("s/10"), []byte("s/03"))
	require(t, err, "reverse iter")
	for it.Valid() {
		keys = append(keys, string(it.Key()))
		require(t, it.Next(), "next")
	}
	it.Close()
	want := []string{"s/09", "s/08", "s/07", "s/06", "s/05", "s/04", "s/03"}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("reverse scan %v, want %v", keys, want)
	}
	snap := cli.GetSnapshot(reader.StartTS())
	snap.SetKeyOnly(true)
	kit, err := snap.Iter([]byte("s/"), []byte("s0"))
	require(t, err, "key-only iter")
	n := 0
	for kit.Valid() {
		if len(kit.Value()) != 0 {
			t.Fatalf("key-only scan returned value %q for %q", kit.Value(), kit.Key())
		}
		n++
		require(t, kit.Next(), "next")
	}
	kit.Close()
	if n != 20 {
		t.Fatalf("key-only scan at the old snapshot saw %d keys, want 20", n)
	}
	latest, err := cli.Begin()
	require(t, err, "begin")
	if v, err := latest.Get(ctx, []byte("s/06")); !tikverr.IsErrNotFound(err) {
		t.Fatalf("deleted key: %q, %v", v, err)
	}
}

// commitObserver records the prewrite and commit RPCs of one transaction.
type commitObserver struct {
	mu        sync.Mutex
	prewrites []*kvrpcpb.PrewriteResponse
	commits   int
}

func (o *commitObserver) interceptor() interceptor.RPCInterceptor {
	return interceptor.NewRPCInterceptor("observe", func(next interceptor.RPCInterceptorFunc) interceptor.RPCInterceptorFunc {
		return func(target string, req *tikvrpc.Request) (*tikvrpc.Response, error) {
			resp, err := next(target, req)
			o.mu.Lock()
			defer o.mu.Unlock()
			switch req.Type {
			case tikvrpc.CmdPrewrite:
				if err == nil {
					o.prewrites = append(o.prewrites, resp.Resp.(*kvrpcpb.PrewriteResponse))
				}
			case tikvrpc.CmdCommit:
				o.commits++
			}
			return resp, err
		}
	})
}

// TestAsyncCommitAndOnePC: with async commit and 1PC enabled in the client,
// the store takes them: 1PC returns a commit ts and needs no commit RPC,
// async commit returns min_commit_ts; both leave the data readable and no
// locks behind.
func TestAsyncCommitAndOnePC(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.txnClient()

	onePC := &commitObserver{}
	txn, err := cli.Begin()
	require(t, err, "begin")
	txn.SetEnable1PC(true)
	txn.AddRPCInterceptor(onePC.interceptor())
	require(t, txn.Set([]byte("1pc/a"), []byte("1")), "set")
	require(t, txn.Set([]byte("1pc/b"), []byte("2")), "set")
	require(t, txn.Commit(ctx), "commit 1pc")
	if len(onePC.prewrites) != 1 || onePC.prewrites[0].GetOnePcCommitTs() == 0 || onePC.commits != 0 {
		t.Fatalf("1PC not taken: prewrites %v, commits %d", onePC.prewrites, onePC.commits)
	}

	async := &commitObserver{}
	txn, err = cli.Begin()
	require(t, err, "begin")
	txn.SetEnableAsyncCommit(true)
	txn.AddRPCInterceptor(async.interceptor())
	require(t, txn.Set([]byte("ac/a"), []byte("1")), "set")
	require(t, txn.Set([]byte("ac/b"), []byte("2")), "set")
	require(t, txn.Commit(ctx), "commit async")
	if len(async.prewrites) == 0 || async.prewrites[0].GetMinCommitTs() <= txn.StartTS() {
		t.Fatalf("async commit not taken: %v", async.prewrites)
	}

	reader, err := cli.Begin()
	require(t, err, "begin")
	got, err := reader.BatchGet(ctx, [][]byte{[]byte("1pc/a"), []byte("1pc/b"), []byte("ac/a"), []byte("ac/b")})
	if err != nil || len(got) != 4 {
		t.Fatalf("read back: %v %v", got, err)
	}
	waitNoLocks(t, c, ctx)
}

// waitNoLocks waits until ScanLock over the whole store finds nothing
// (async commit resolves secondaries in the background).
func waitNoLocks(t *testing.T, c *cluster, ctx context.Context) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		locks := c.scanLocks(t, ctx)
		if len(locks) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("locks left behind: %v", locks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeadClientLocksAreResolved: a client that prewrites and dies leaves
// locks; a reader resolves them to rollback (primary never committed) or
// commit (primary committed, secondary not).
func TestDeadClientLocksAreResolved(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.txnClient()
	raw := c.storeClient(t)

	startTS := c.tso(t, ctx)
	raw.prewrite(t, ctx, startTS, []byte("dead/p"), 100, kvPut("dead/p", "p"), kvPut("dead/s", "s"))
	commitStart := c.tso(t, ctx)
	raw.prewrite(t, ctx, commitStart, []byte("alive/p"), 100, kvPut("alive/p", "p"), kvPut("alive/s", "s"))
	raw.commit(t, ctx, commitStart, c.tso(t, ctx), []byte("alive/p"))

	time.Sleep(200 * time.Millisecond) // the 100 ms TTL of the dead transaction runs out
	reader, err := cli.Begin()
	require(t, err, "begin")
	if v, err := reader.Get(ctx, []byte("dead/s")); !tikverr.IsErrNotFound(err) {
		t.Fatalf("rolled-back secondary: %q %v", v, err)
	}
	if v, err := reader.Get(ctx, []byte("alive/s")); err != nil || string(v) != "s" {
		t.Fatalf("committed secondary: %q %v", v, err)
	}
	if v, err := reader.Get(ctx, []byte("dead/p")); !tikverr.IsErrNotFound(err) {
		t.Fatalf("rolled-back primary: %q %v", v, err)
	}
	late := raw.prewriteErr(t, ctx, startTS, []byte("dead/p"), 100, kvPut("dead/p", "late"))
	if late == nil {
		t.Fatalf("prewrite after rollback succeeded")
	}
}

// TestLargeTransaction commits 100k keys in one transaction. The client's
// TTL manager is set to start for this size and to beat every 50 ms, so
// the primary lock is kept alive by TxnHeartBeat while the commit runs (the
// store's metrics count them; the client sends them outside the
// transaction's interceptors). The manager starts once the primary's batch
// is prewritten and stops once the primary is committed, which can take
// less than half a second: a slower beat can miss it altogether.
func TestLargeTransaction(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.txnClient()
	restore := config.UpdateGlobal(func(conf *config.Config) { conf.TiKVClient.TTLRefreshedTxnSize = 1 << 20 })
	defer restore()
	defer func(ttl uint64) { atomic.StoreUint64(&transaction.ManagedLockTTL, ttl) }(atomic.LoadUint64(&transaction.ManagedLockTTL))
	atomic.StoreUint64(&transaction.ManagedLockTTL, 100)

	txn, err := cli.Begin()
	require(t, err, "begin")
	const n = 100_000
	value := bytes.Repeat([]byte("x"), 100)
	for i := range n {
		require(t, txn.Set([]byte(fmt.Sprintf("big/%06d", i)), value), "set")
	}
	require(t, txn.Commit(ctx), "commit 100k keys")
	reader, err := cli.Begin()
	require(t, err, "begin")
	it, err := reader.Iter([]byte("big/"), []byte("big0"))
	require(t, err, "iter")
	count := 0
	for it.Valid() {
		count++
		require(t, it.Next(), "next")
	}
	it.Close()
	if count != n {
		t.Fatalf("read back %d keys, want %d", count, n)
	}
	if beats := c.metric(t, `tikv_grpc_msg_total{type="KvTxnHeartBeat"}`); beats == 0 {
		t.Fatalf("the store served no TxnHeartBeat while %d keys were committed", n)
	}
}

// TestPessimisticLocking: lock waits end when the holder commits, no-wait
// and wait timeouts fail fast, a deadlock between two transactions is
// detected, return_values works, and a pessimistic rollback frees the key.
func TestPessimisticLocking(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.txnClient()
	seed, err := cli.Begin()
	require(t, err, "begin")
	require(t, seed.Set([]byte("p/a"), []byte("a0")), "set")
	require(t, seed.Set([]byte("p/b"), []byte("b0")), "set")
	require(t, seed.Commit(ctx), "commit")

	pessimistic := func() *transaction.KVTxn {
		txn, err := cli.Begin()
		require(t, err, "begin")
		txn.SetPessimistic(true)
		return txn
	}
	lock := func(txn *transaction.KVTxn, wait int64, keys ...string) (*kv.LockCtx, error) {
		forUpdate, err := cli.GetTimestamp(ctx)
		require(t, err, "ts")
		lctx := kv.NewLockCtx(forUpdate, wait, time.Now())
		lctx.ReturnValues = true
		lctx.Values = map[string]kv.ReturnedValue{}
		byteKeys := make([][]byte, len(keys))
		for i, k := range keys {
			byteKeys[i] = []byte(k)
		}
		return lctx, txn.LockKeys(ctx, lctx, byteKeys...)
	}

	holder := pessimistic()
	lctx, err := lock(holder, kv.LockAlwaysWait, "p/a")
	require(t, err, "holder lock")
	if string(lctx.Values["p/a"].Value) != "a0" {
		t.Fatalf("return_values gave %q", lctx.Values["p/a"].Value)
	}

	noWait := pessimistic()
	if _, err := lock(noWait, kv.LockNoWait, "p/a"); !errors.Is(err, tikverr.ErrLockAcquireFailAndNoWaitSet) {
		t.Fatalf("no-wait lock: %v", err)
	}
	require(t, noWait.Rollback(), "rollback")
	timeout := pessimistic()
	start := time.Now()
	if _, err := lock(timeout, 300, "p/a"); !errors.Is(err, tikverr.ErrLockWaitTimeout) {
		t.Fatalf("lock with 300 ms timeout: %v", err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Fatalf("timed out after %v, before the 300 ms wait", waited)
	}
	require(t, timeout.Rollback(), "rollback")

	waiter := pessimistic()
	acquired := make(chan error, 1)
	go func() {
		_, err := lock(waiter, kv.LockAlwaysWait, "p/a")
		acquired <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-acquired:
		t.Fatalf("waiter did not wait: %v", err)
	default:
	}
	require(t, holder.Set([]byte("p/a"), []byte("a1")), "set")
	require(t, holder.Commit(ctx), "holder commit")
	select {
	case err := <-acquired:
		// As in TiKV's normal wake-up mode, the woken request reports the
		// newer commit; the client retries with a fresh for_update_ts.
		if !tikverr.IsErrWriteConflict(err) {
			t.Fatalf("woken waiter: %v, want a write conflict with the holder's commit", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("waiter still blocked after the holder committed")
	}
	retry, err := lock(waiter, kv.LockAlwaysWait, "p/a")
	require(t, err, "waiter retry with a fresh for_update_ts")
	if string(retry.Values["p/a"].Value) != "a1" {
		t.Fatalf("retry returned %q, want the holder's a1", retry.Values["p/a"].Value)
	}
	require(t, waiter.Rollback(), "waiter rollback")

	t1, t2 := pessimistic(), pessimistic()
	_, err = lock(t1, kv.LockAlwaysWait, "p/a")
	require(t, err, "t1 locks a")
	_, err = lock(t2, kv.LockAlwaysWait, "p/b")
	require(t, err, "t2 locks b")
	t1Err := make(chan error, 1)
	go func() {
		_, err := lock(t1, kv.LockAlwaysWait, "p/b")
		t1Err <- err
	}()
	time.Sleep(200 * time.Millisecond)
	_, err = lock(t2, kv.LockAlwaysWait, "p/a")
	var dl *tikverr.ErrDeadlock
	if !errors.As(err, &dl) || len(dl.GetWaitChain()) < 2 {
		t.Fatalf("t2 closing the cycle got %v, want a deadlock with its wait chain", err)
	}
	require(t, t2.Rollback(), "t2 rollback")
	select {
	case err := <-t1Err:
		require(t, err, "t1 gets b after t2 rolled back")
	case <-time.After(10 * time.Second):
		t.Fatalf("t1 never got b")
	}
	require(t, t1.Rollback(), "t1 rollback")
	free := pessimistic()
	if _, err := lock(free, kv.LockNoWait, "p/a", "p/b"); err != nil {
		t.Fatalf("keys still locked after pessimistic rollbacks: %v", err)
	}
	require(t, free.Rollback(), "rollback")
}

// TestStoreRestartKeepsAcknowledgedWrites: every transaction acknowledged
// before a SIGKILL of the store is readable after it restarts.
func TestStoreRestartKeepsAcknowledgedWrites(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.txnClient()
	var acked atomic.Int64
	var ackedKeys sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				txn, err := cli.Begin()
				if err != nil {
					return
				}
				txn.Set([]byte(fmt.Sprintf("ack/%d/%06d", w, i)), []byte("v"))
				if txn.Commit(ctx) != nil {
					return
				}
				acked.Add(1)
				ackedKeys.Store(fmt.Sprintf("ack/%d/%06d", w, i), true)
			}
		}()
	}
	time.Sleep(time.Second)
	c.store.kill()
	c.startStore() // writers blocked on the dead store finish against the new one
	close(stop)
	wg.Wait()
	if acked.Load() == 0 {
		t.Fatal("nothing was acknowledged before the kill")
	}
	reader, err := cli.Begin()
	require(t, err, "begin after restart")
	missing := 0
	var firstErr error
	ackedKeys.Range(func(k, _ any) bool {
		if _, err := reader.Get(ctx, []byte(k.(string))); err != nil {
			missing++
			firstErr = cmp.Or(firstErr, err)
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes lost; first error: %v", missing, acked.Load(), firstErr)
	}
}

// TestPipelinedTransaction: a pipelined-DML transaction (client-go's
// pipelined memdb) writes its buffer to the store in flushes while it runs,
// reads back what it flushed, overwrites flushed keys in a later
// generation, and commits by its primary and a range resolve.
func TestPipelinedTransaction(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.txnClient()
	setup, err := cli.Begin()
	require(t, err, "begin")
	require(t, setup.Set([]byte("pipe/old"), []byte("committed")), "set")
	require(t, setup.Commit(ctx), "commit setup")

	txn, err := cli.Begin(tikv.WithPipelinedMemDB())
	require(t, err, "begin pipelined")
	long := bytes.Repeat([]byte("L"), 300)
	for i := range 100 {
		require(t, txn.Set([]byte(fmt.Sprintf("pipe/%03d", i)), []byte(fmt.Sprintf("v%d", i))), "set")
	}
	require(t, txn.Set([]byte("pipe/long"), long), "set long")
	require(t, txn.Delete([]byte("pipe/old")), "delete")
	flushNow := func() {
		t.Helper()
		flushed, err := txn.GetMemBuffer().Flush(true)
		require(t, err, "flush")
		if !flushed {
			t.Fatalf("a forced flush did not start")
		}
		require(t, txn.GetMemBuffer().FlushWait(), "flush wait")
	}
	flushNow()
	if got, err := txn.Get(ctx, []byte("pipe/007")); err != nil || string(got) != "v7" {
		t.Fatalf("read back a flushed key: %q %v", got, err)
	}
	if _, err := txn.Get(ctx, []byte("pipe/old")); !tikverr.IsErrNotFound(err) {
		t.Fatalf("a flushed delete reads as %v, want not found", err)
	}
	require(t, txn.Set([]byte("pipe/long"), []byte("short now")), "overwrite")
	require(t, txn.Set([]byte("pipe/007"), long), "overwrite")
	flushNow()
	got, err := txn.BatchGet(ctx, [][]byte{[]byte("pipe/long"), []byte("pipe/007"), []byte("pipe/050")})
	require(t, err, "batch get")
	if string(got["pipe/long"]) != "short now" || !bytes.Equal(got["pipe/007"], long) || string(got["pipe/050"]) != "v50" {
		t.Fatalf("read back the second generation: %q", got)
	}
	require(t, txn.Commit(ctx), "commit pipelined")

	waitFor(t, "the flushed locks to be resolved", func() bool { return len(c.scanLocks(t, ctx)) == 0 })
	reader, err := cli.Begin()
	require(t, err, "begin reader")
	values, err := reader.BatchGet(ctx, [][]byte{[]byte("pipe/000"), []byte("pipe/007"), []byte("pipe/099"), []byte("pipe/long"), []byte("pipe/old")})
	require(t, err, "read committed")
	if string(values["pipe/000"]) != "v0" || !bytes.Equal(values["pipe/007"], long) || string(values["pipe/099"]) != "v99" ||
		string(values["pipe/long"]) != "short now" || values["pipe/old"] != nil {
		t.Fatalf("committed pipelined values: %q", values)
	}
	for _, rpc := range []string{"KvFlush", "KvBufferBatchGet", "BroadcastTxnStatus"} {
		if c.metric(t, `tikv_grpc_msg_total{type="`+rpc+`"}`) == 0 {
			t.Fatalf("the store served no %s", rpc)
		}
	}
}
