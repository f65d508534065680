package integration

import (
	"strings"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tikv/client-go/v2/kv"
)

// TestPessimisticConflictIsNotAnAssertionFailure follows issue 20 through
// client-go at assertion level Strict: a pessimistic transaction T1 locks
// A and writes B without locking it, both asserted not to exist; T2
// commits B meanwhile. T1's commit fails with the conflict on B, not with
// an assertion failure, which client-go and TiDB treat as data corruption.
// (The mvcc tests cover the primary's lock rolled back too, in both
// orders.)
func TestPessimisticConflictIsNotAnAssertionFailure(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.txnClient()

	t1, err := cli.Begin()
	require(t, err, "begin T1")
	t1.SetPessimistic(true)
	t1.SetAssertionLevel(kvrpcpb.AssertionLevel_Strict)
	require(t, t1.LockKeysWithWaitTime(ctx, kv.LockNoWait, []byte("A")), "T1 locks A")
	require(t, t1.GetMemBuffer().SetWithFlags([]byte("A"), []byte("t1"), kv.SetAssertNotExist), "T1 sets A")
	require(t, t1.GetMemBuffer().SetWithFlags([]byte("B"), []byte("t1"), kv.SetAssertNotExist), "T1 sets B")

	t2, err := cli.Begin()
	require(t, err, "begin T2")
	require(t, t2.Set([]byte("B"), []byte("t2")), "T2 sets B")
	require(t, t2.Commit(ctx), "T2 commits")

	err = t1.Commit(ctx)
	if err == nil {
		t.Fatal("T1 committed over T2's writes")
	}
	if strings.Contains(strings.ToLower(err.Error()), "assertion") {
		t.Fatalf("T1's commit failed as an assertion failure, want the conflict: %v", err)
	}
	read, err := cli.Begin()
	require(t, err, "begin reader")
	if v, err := read.Get(ctx, []byte("B")); err != nil || string(v) != "t2" {
		t.Fatalf("B = %q, %v; want T2's value", v, err)
	}
	if v, err := read.Get(ctx, []byte("A")); err == nil || len(v) > 0 {
		t.Fatalf("A = %q, %v; want it absent (T1 did not commit)", v, err)
	}
}
