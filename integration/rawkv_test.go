package integration

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc64"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"github.com/tikv/client-go/v2/rawkv"
	"github.com/tinykv/tinykv/internal/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// rawModel is the expected content of one column family: key -> value.
type rawModel map[string][]byte

// sortedKeys returns the model's keys in [start, end) (end empty: unbounded),
// ascending.
func (m rawModel) sortedKeys(start, end []byte) []string {
	var keys []string
	for k := range m {
		if k >= string(start) && (len(end) == 0 || k < string(end)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// checksum is TiKV's crc64-xor checksum of the model's pairs in [start, end).
func (m rawModel) checksum(start, end []byte) rawkv.RawChecksum {
	table := crc64.MakeTable(crc64.ECMA)
	var sum rawkv.RawChecksum
	for _, k := range m.sortedKeys(start, end) {
		digest := crc64.New(table)
		digest.Write([]byte(k))
		digest.Write(m[k])
		sum.Crc64Xor ^= digest.Sum64()
		sum.TotalKvs++
		sum.TotalBytes += uint64(len(k) + len(m[k]))
	}
	return sum
}

// checkScan compares a client scan result with the expected keys (in the
// order given) and, unless keyOnly, their model values.
func checkScan(t *testing.T, what string, m rawModel, want []string, keys, values [][]byte, keyOnly bool) {
	t.Helper()
	got := make([]string, len(keys))
	for i, k := range keys {
		got[i] = string(k)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: keys %q, want %q", what, got, want)
	}
	if len(values) != len(keys) {
		t.Fatalf("%s: %d values for %d keys", what, len(values), len(keys))
	}
	for i, k := range want {
		if keyOnly {
			if len(values[i]) != 0 {
				t.Fatalf("%s: key-only scan returned value %q for %q", what, values[i], k)
			}
		} else if !bytes.Equal(values[i], m[k]) {
			t.Fatalf("%s: value of %q = %q, want %q", what, k, values[i], m[k])
		}
	}
}

func rawKeys(format string, n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, format, i)
	}
	return keys
}

// TestRawKVOperations drives every raw method through client-go against a
// model: point and batch reads and writes, forward and reverse scans with
// bounds, limits and key-only, DeleteRange, Checksum, empty values, large
// values, and column-family isolation.
func TestRawKVOperations(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.rawClient()
	rnd := testutil.Rand(t)

	t.Run("PointAndBatch", func(t *testing.T) {
		v, err := cli.Get(ctx, []byte("pb/missing"))
		if err != nil || v != nil {
			t.Fatalf("get missing = %q, %v; want nil, nil", v, err)
		}
		require(t, cli.Put(ctx, []byte("pb/a"), []byte("1")), "put")
		require(t, cli.Put(ctx, []byte("pb/a"), []byte("2")), "overwrite")
		if v, err := cli.Get(ctx, []byte("pb/a")); err != nil || string(v) != "2" {
			t.Fatalf("get after overwrite = %q, %v", v, err)
		}
		// An empty value is a present key, distinct from a missing one.
		require(t, cli.Put(ctx, []byte("pb/empty"), nil), "put empty value")
		if v, err := cli.Get(ctx, []byte("pb/empty")); err != nil || v == nil || len(v) != 0 {
			t.Fatalf("get empty value = %#v, %v; want []byte{}", v, err)
		}
		// A value over Badger's 1 MiB value-log threshold round-trips.
		big := make([]byte, 3<<20)
		for i := range big {
			big[i] = byte(rnd.Uint32())
		}
		require(t, cli.Put(ctx, []byte("pb/big"), big), "put 3 MiB value")
		if v, err := cli.Get(ctx, []byte("pb/big")); err != nil || !bytes.Equal(v, big) {
			t.Fatalf("get 3 MiB value: %d bytes, %v", len(v), err)
		}

		keys := rawKeys("pb/batch/%03d", 300) // more than one client batch
		values := make([][]byte, len(keys))
		for i := range values {
			values[i] = fmt.Appendf(nil, "value-%d-%d", i, rnd.Uint64())
		}
		require(t, cli.BatchPut(ctx, keys, values), "batch put")
		query := append([][]byte{[]byte("pb/nope")}, keys...)
		query = append(query, []byte("pb/empty"), []byte("pb/zzz"))
		got, err := cli.BatchGet(ctx, query)
		require(t, err, "batch get")
		if len(got) != len(query) {
			t.Fatalf("batch get returned %d values for %d keys", len(got), len(query))
		}
		if got[0] != nil || got[len(got)-1] != nil {
			t.Fatalf("batch get of missing keys = %q, %q; want nil", got[0], got[len(got)-1])
		}
		if g := got[len(got)-2]; g == nil || len(g) != 0 {
			t.Fatalf("batch get of empty value = %#v, want []byte{}", g)
		}
		for i := range keys {
			if !bytes.Equal(got[i+1], values[i]) {
				t.Fatalf("batch get %q = %q, want %q", keys[i], got[i+1], values[i])
			}
		}

		require(t, cli.Delete(ctx, []byte("pb/a")), "delete")
		require(t, cli.Delete(ctx, []byte("pb/never-existed")), "delete missing key")
		if v, err := cli.Get(ctx, []byte("pb/a")); err != nil || v != nil {
			t.Fatalf("get after delete = %q, %v", v, err)
		}
		require(t, cli.BatchDelete(ctx, keys[:200]), "batch delete")
		got, err = cli.BatchGet(ctx, keys)
		require(t, err, "batch get after batch delete")
		for i := range keys {
			if want := values[i]; i < 200 && got[i] != nil || i >= 200 && !bytes.Equal(got[i], want) {
				t.Fatalf("after batch delete of the first 200, %q = %q", keys[i], got[i])
			}
		}
	})

	t.Run("ScanBounds", func(t *testing.T) {
		m := rawModel{}
		keys := rawKeys("sb/%02d", 20)
		values := make([][]byte, len(keys))
		for i, k := range keys {
			values[i] = fmt.Appendf(nil, "v%d", i)
			m[string(k)] = values[i]
		}
		require(t, cli.BatchPut(ctx, keys, values), "batch put")
		// Neighbours outside the prefix must never show up in bounded scans.
		require(t, cli.Put(ctx, []byte("sa"), []byte("before")), "put before")
		require(t, cli.Put(ctx, []byte("sc"), []byte("after")), "put after")
		k := func(i int) string { return fmt.Sprintf("sb/%02d", i) }
		span := func(from, to, step int) []string {
			var out []string
			for i := from; i != to; i += step {
				out = append(out, k(i))
			}
			return out
		}

		ks, vs, err := cli.Scan(ctx, []byte(k(5)), []byte(k(10)), 100)
		require(t, err, "scan")
		checkScan(t, "scan [05,10)", m, span(5, 10, 1), ks, vs, false)
		ks, vs, err = cli.Scan(ctx, []byte(k(5)+"\x00"), []byte(k(10)+"\x00"), 100)
		require(t, err, "scan")
		checkScan(t, "scan (05,10]", m, span(6, 11, 1), ks, vs, false)
		ks, vs, err = cli.Scan(ctx, []byte("sb/"), []byte("sb0"), 7)
		require(t, err, "scan with limit")
		checkScan(t, "scan limit 7", m, span(0, 7, 1), ks, vs, false)
		ks, vs, err = cli.Scan(ctx, []byte(k(15)), []byte("sb0"), 100, rawkv.ScanKeyOnly())
		require(t, err, "key-only scan")
		checkScan(t, "key-only scan", m, span(15, 20, 1), ks, vs, true)
		ks, _, err = cli.Scan(ctx, []byte(k(15)), nil, 100)
		require(t, err, "unbounded scan")
		if want := append(span(15, 20, 1), "sc"); !slices.Equal(bytesToStrings(ks), want) {
			t.Fatalf("scan from 15 unbounded = %q, want %q", ks, want)
		}
		ks, _, err = cli.Scan(ctx, []byte(k(7)), []byte(k(7)), 100)
		if err != nil || len(ks) != 0 {
			t.Fatalf("scan of empty range = %q, %v", ks, err)
		}

		ks, vs, err = cli.ReverseScan(ctx, []byte(k(10)), []byte(k(5)), 100)
		require(t, err, "reverse scan")
		checkScan(t, "reverse scan [05,10)", m, span(9, 4, -1), ks, vs, false)
		ks, vs, err = cli.ReverseScan(ctx, []byte(k(10)+"\x00"), []byte(k(5)+"\x00"), 100)
		require(t, err, "reverse scan")
		checkScan(t, "reverse scan (05,10]", m, span(10, 5, -1), ks, vs, false)
		ks, vs, err = cli.ReverseScan(ctx, []byte("sb0"), []byte("sb/"), 3)
		require(t, err, "reverse scan with limit")
		checkScan(t, "reverse scan limit 3", m, span(19, 16, -1), ks, vs, false)
		ks, vs, err = cli.ReverseScan(ctx, []byte(k(3)), []byte("sb/"), 100, rawkv.ScanKeyOnly())
		require(t, err, "key-only reverse scan")
		checkScan(t, "key-only reverse scan", m, span(2, -1, -1), ks, vs, true)
		ks, _, err = cli.ReverseScan(ctx, []byte(k(2)), nil, 3)
		require(t, err, "reverse scan down to the start")
		if want := append(span(1, -1, -1), "sa"); !slices.Equal(bytesToStrings(ks), want) {
			t.Fatalf("reverse scan below 02 unbounded = %q, want %q", ks, want)
		}

		require(t, cli.DeleteRange(ctx, []byte(k(4)), []byte(k(12))), "delete range")
		for i := 4; i < 12; i++ {
			delete(m, k(i))
		}
		ks, vs, err = cli.Scan(ctx, []byte("sb/"), []byte("sb0"), 100)
		require(t, err, "scan after delete range")
		checkScan(t, "scan after delete range", m, m.sortedKeys([]byte("sb/"), []byte("sb0")), ks, vs, false)
		for _, key := range []string{"sa", "sc"} {
			if v, err := cli.Get(ctx, []byte(key)); err != nil || v == nil {
				t.Fatalf("%q outside the deleted range: %q, %v", key, v, err)
			}
		}
		sum, err := cli.Checksum(ctx, []byte("sb/"), []byte("sb0"))
		require(t, err, "checksum")
		if want := m.checksum([]byte("sb/"), []byte("sb0")); sum != want || want.TotalKvs != 12 {
			t.Fatalf("checksum = %+v, want %+v", sum, want)
		}
	})

	// Random operations against a model, on a key space small enough that
	// operations overlap.
	t.Run("Model", func(t *testing.T) {
		m := rawModel{}
		key := func() []byte { return fmt.Appendf(nil, "m/%02d", rnd.IntN(64)) }
		bound := func() []byte {
			if rnd.IntN(8) == 0 {
				return nil
			}
			b := key()
			if rnd.IntN(3) == 0 {
				b = append(b, 0)
			}
			return b
		}
		value := func() []byte {
			if rnd.IntN(10) == 0 {
				return []byte{}
			}
			return fmt.Appendf(nil, "%x", rnd.Uint64()>>rnd.IntN(64))
		}
		distinct := func(n int) [][]byte {
			seen := map[string]bool{}
			var keys [][]byte
			for range n {
				if k := key(); !seen[string(k)] {
					seen[string(k)] = true
					keys = append(keys, k)
				}
			}
			return keys
		}
		lo, hi := []byte("m/"), []byte("m0")
		for op := range 250 {
			switch rnd.IntN(10) {
			case 0, 1:
				k, v := key(), value()
				require(t, cli.Put(ctx, k, v), "put")
				m[string(k)] = v
			case 2:
				keys := distinct(1 + rnd.IntN(10))
				values := make([][]byte, len(keys))
				for i, k := range keys {
					values[i] = value()
					m[string(k)] = values[i]
				}
				require(t, cli.BatchPut(ctx, keys, values), "batch put")
			case 3:
				k := key()
				require(t, cli.Delete(ctx, k), "delete")
				delete(m, string(k))
			case 4:
				keys := distinct(1 + rnd.IntN(6))
				require(t, cli.BatchDelete(ctx, keys), "batch delete")
				for _, k := range keys {
					delete(m, string(k))
				}
			case 5:
				if rnd.IntN(3) != 0 {
					continue
				}
				start, end := key(), key()
				if bytes.Compare(start, end) > 0 {
					start, end = end, start
				}
				require(t, cli.DeleteRange(ctx, start, end), "delete range")
				for _, k := range m.sortedKeys(start, end) {
					delete(m, k)
				}
			case 6:
				keys := distinct(1 + rnd.IntN(8))
				got, err := cli.BatchGet(ctx, keys)
				require(t, err, "batch get")
				for i, k := range keys {
					want, ok := m[string(k)]
					if (got[i] != nil) != ok || !bytes.Equal(got[i], want) {
						t.Fatalf("op %d: batch get %q = %q, want %q (present %v)", op, k, got[i], want, ok)
					}
				}
			case 7:
				start, end := bound(), bound()
				if start == nil {
					start = lo
				}
				if end == nil {
					end = hi
				}
				limit := 1 + rnd.IntN(20)
				keyOnly := rnd.IntN(3) == 0
				var opts []rawkv.RawOption
				if keyOnly {
					opts = append(opts, rawkv.ScanKeyOnly())
				}
				want := m.sortedKeys(start, end)
				if bytes.Compare(start, end) >= 0 {
					want = nil
				}
				if len(want) > limit {
					want = want[:limit]
				}
				ks, vs, err := cli.Scan(ctx, start, end, limit, opts...)
				require(t, err, "scan")
				checkScan(t, fmt.Sprintf("op %d: scan [%q,%q) limit %d", op, start, end, limit), m, want, ks, vs, keyOnly)
			case 8:
				start, end := bound(), bound()
				if start == nil {
					start = hi
				}
				if end == nil {
					end = lo
				}
				limit := 1 + rnd.IntN(20)
				keyOnly := rnd.IntN(3) == 0
				var opts []rawkv.RawOption
				if keyOnly {
					opts = append(opts, rawkv.ScanKeyOnly())
				}
				want := m.sortedKeys(end, start)
				if bytes.Compare(start, end) <= 0 {
					want = nil
				}
				slices.Reverse(want)
				if len(want) > limit {
					want = want[:limit]
				}
				ks, vs, err := cli.ReverseScan(ctx, start, end, limit, opts...)
				require(t, err, "reverse scan")
				checkScan(t, fmt.Sprintf("op %d: reverse scan (%q down to %q] limit %d", op, start, end, limit), m, want, ks, vs, keyOnly)
			case 9:
				start, end := bound(), bound()
				if start == nil {
					start = lo
				}
				if end == nil {
					end = hi
				}
				if bytes.Compare(start, end) >= 0 {
					continue
				}
				sum, err := cli.Checksum(ctx, start, end)
				require(t, err, "checksum")
				if want := m.checksum(start, end); sum != want {
					t.Fatalf("op %d: checksum [%q,%q) = %+v, want %+v", op, start, end, sum, want)
				}
			}
		}
		// Finally every key of the key space, point by point.
		for i := range 64 {
			k := fmt.Sprintf("m/%02d", i)
			v, err := cli.Get(ctx, []byte(k))
			require(t, err, "get")
			want, ok := m[k]
			if (v != nil) != ok || !bytes.Equal(v, want) {
				t.Fatalf("final get %q = %q, want %q (present %v)", k, v, want, ok)
			}
		}
	})

	t.Run("ColumnFamilies", func(t *testing.T) {
		k := []byte("cf/k")
		write, lock := rawkv.SetColumnFamily("write"), rawkv.SetColumnFamily("lock")
		require(t, cli.Put(ctx, k, []byte("in-default")), "put default")
		require(t, cli.Put(ctx, k, []byte("in-write"), write), "put write")
		require(t, cli.Put(ctx, []byte("cf/only-write"), []byte("w"), write), "put write")
		// A client whose default column family is "lock".
		lockCli := c.rawClient().SetColumnFamily("lock")
		require(t, lockCli.Put(ctx, k, []byte("in-lock")), "put lock")

		for _, tc := range []struct {
			cli  *rawkv.Client
			opts []rawkv.RawOption
			want string
		}{
			{cli, nil, "in-default"},
			{cli, []rawkv.RawOption{rawkv.SetColumnFamily("default")}, "in-default"},
			{cli, []rawkv.RawOption{write}, "in-write"},
			{cli, []rawkv.RawOption{lock}, "in-lock"},
			{lockCli, nil, "in-lock"},
		} {
			if v, err := tc.cli.Get(ctx, k, tc.opts...); err != nil || string(v) != tc.want {
				t.Fatalf("get = %q, %v; want %q", v, err, tc.want)
			}
		}
		if v, err := cli.Get(ctx, []byte("cf/only-write")); err != nil || v != nil {
			t.Fatalf("key written only to write CF is visible in default: %q, %v", v, err)
		}
		ks, vs, err := cli.Scan(ctx, []byte("cf/"), []byte("cf0"), 10, write)
		require(t, err, "scan write")
		if !slices.Equal(bytesToStrings(ks), []string{"cf/k", "cf/only-write"}) || string(vs[0]) != "in-write" {
			t.Fatalf("scan of write CF = %q %q", ks, vs)
		}
		ks, _, err = cli.Scan(ctx, []byte("cf/"), []byte("cf0"), 10)
		require(t, err, "scan default")
		if !slices.Equal(bytesToStrings(ks), []string{"cf/k"}) {
			t.Fatalf("scan of default CF = %q", ks)
		}
		ks, _, err = cli.ReverseScan(ctx, []byte("cf0"), []byte("cf/"), 10, lock)
		require(t, err, "reverse scan lock")
		if !slices.Equal(bytesToStrings(ks), []string{"cf/k"}) {
			t.Fatalf("reverse scan of lock CF = %q", ks)
		}
		got, err := cli.BatchGet(ctx, [][]byte{k, []byte("cf/only-write")}, write)
		require(t, err, "batch get write")
		if string(got[0]) != "in-write" || string(got[1]) != "w" {
			t.Fatalf("batch get of write CF = %q", got)
		}

		// Deletes stay within their column family.
		require(t, cli.Delete(ctx, k, write), "delete write")
		require(t, cli.DeleteRange(ctx, []byte("cf/"), []byte("cf0"), lock), "delete range lock")
		if v, err := cli.Get(ctx, k); err != nil || string(v) != "in-default" {
			t.Fatalf("default value after deletes in write and lock = %q, %v", v, err)
		}
		for _, opt := range []rawkv.RawOption{write, lock} {
			if v, err := cli.Get(ctx, k, opt); err != nil || v != nil {
				t.Fatalf("deleted value = %q, %v", v, err)
			}
		}
		require(t, cli.BatchDelete(ctx, [][]byte{k}), "batch delete default")
		if v, err := cli.Get(ctx, []byte("cf/only-write"), write); err != nil || string(v) != "w" {
			t.Fatalf("write-CF key after deleting in default = %q, %v", v, err)
		}

		// TTL and CAS honour the column family too.
		require(t, cli.PutWithTTL(ctx, []byte("cf/ttl"), []byte("x"), 1000, write), "put with ttl in write")
		require(t, cli.Put(ctx, []byte("cf/ttl"), []byte("x")), "put without ttl in default")
		if ttl, err := cli.GetKeyTTL(ctx, []byte("cf/ttl"), write); err != nil || ttl == nil || *ttl == 0 || *ttl > 1000 {
			t.Fatalf("ttl in write CF = %v, %v", ttl, err)
		}
		if ttl, err := cli.GetKeyTTL(ctx, []byte("cf/ttl")); err != nil || ttl == nil || *ttl != 0 {
			t.Fatalf("ttl in default CF = %v, %v", ttl, err)
		}
		casCli := c.rawClient().SetAtomicForCAS(true)
		if prev, ok, err := casCli.CompareAndSwap(ctx, []byte("cf/cas"), nil, []byte("w1"), write); err != nil || !ok || prev != nil {
			t.Fatalf("cas on absent key in write CF = %q, %v, %v", prev, ok, err)
		}
		if v, err := cli.Get(ctx, []byte("cf/cas")); err != nil || v != nil {
			t.Fatalf("cas in write CF is visible in default: %q, %v", v, err)
		}
	})
}

func bytesToStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// TestRawKVTTLAndCAS covers TTLs (GetKeyTTL, expiry from every read path)
// and compare-and-swap, including concurrent CAS increments.
func TestRawKVTTLAndCAS(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.rawClient()
	casCli := c.rawClient().SetAtomicForCAS(true)

	// Short TTLs first, so that they expire while the rest runs.
	shortKeys := [][]byte{[]byte("ttl/short/1"), []byte("ttl/short/2"), []byte("ttl/short/3")}
	written := time.Now()
	require(t, cli.PutWithTTL(ctx, shortKeys[0], []byte("a"), 1), "put ttl 1")
	require(t, cli.BatchPutWithTTL(ctx, shortKeys[1:], [][]byte{[]byte("b"), []byte("c")}, []uint64{2, 2}), "batch put ttl 2")
	// The store took its clock before this: every short key expires by
	// acked + 2 s (expiry is in whole seconds, at most ttl after the put).
	acked := time.Now()
	// Keys whose value is the same, one without TTL, to watch scans skip
	// only the expired ones.
	require(t, cli.Put(ctx, []byte("ttl/short/0"), []byte("stays")), "put")
	require(t, cli.Put(ctx, []byte("ttl/short/4"), []byte("stays")), "put")
	if v, err := cli.Get(ctx, shortKeys[2]); time.Since(written) < 900*time.Millisecond && (err != nil || string(v) != "c") {
		t.Fatalf("key with ttl 2 right after the put = %q, %v", v, err)
	}

	t.Run("GetKeyTTL", func(t *testing.T) {
		require(t, cli.PutWithTTL(ctx, []byte("ttl/long"), []byte("v"), 100), "put with ttl")
		ttl, err := cli.GetKeyTTL(ctx, []byte("ttl/long"))
		if err != nil || ttl == nil || *ttl == 0 || *ttl > 100 || *ttl < 95 {
			t.Fatalf("GetKeyTTL after ttl 100 = %v, %v", ttl, err)
		}
		if v, err := cli.Get(ctx, []byte("ttl/long")); err != nil || string(v) != "v" {
			t.Fatalf("get key with ttl = %q, %v", v, err)
		}
		require(t, cli.Put(ctx, []byte("ttl/none"), []byte("v")), "put")
		if ttl, err := cli.GetKeyTTL(ctx, []byte("ttl/none")); err != nil || ttl == nil || *ttl != 0 {
			t.Fatalf("GetKeyTTL of key without ttl = %v, %v; want 0", ttl, err)
		}
		if ttl, err := cli.GetKeyTTL(ctx, []byte("ttl/missing")); err != nil || ttl != nil {
			t.Fatalf("GetKeyTTL of missing key = %v, %v; want nil", ttl, err)
		}
		// Overwriting without TTL removes the TTL.
		require(t, cli.Put(ctx, []byte("ttl/long"), []byte("v2")), "overwrite without ttl")
		if ttl, err := cli.GetKeyTTL(ctx, []byte("ttl/long")); err != nil || ttl == nil || *ttl != 0 {
			t.Fatalf("GetKeyTTL after overwrite without ttl = %v, %v; want 0", ttl, err)
		}

		keys := rawKeys("ttl/batch/%d", 3)
		ttls := []uint64{50, 500, 5000}
		require(t, cli.BatchPutWithTTL(ctx, keys, [][]byte{{1}, {2}, {3}}, ttls), "batch put with ttls")
		for i, k := range keys {
			ttl, err := cli.GetKeyTTL(ctx, k)
			if err != nil || ttl == nil || *ttl == 0 || *ttl > ttls[i] || *ttl < ttls[i]-5 {
				t.Fatalf("GetKeyTTL of %q put with ttl %d = %v, %v", k, ttls[i], ttl, err)
			}
		}

		// A TTL so large that now+ttl overflows is as good as none: the
		// key must not be born expired (TiKV saturates the expiry time).
		for _, ttl := range []uint64{math.MaxUint64, math.MaxUint64 - 10, 1 << 63} {
			k := fmt.Appendf(nil, "ttl/huge/%d", ttl)
			require(t, cli.PutWithTTL(ctx, k, []byte("forever"), ttl), "put with huge ttl")
			if v, err := cli.Get(ctx, k); err != nil || string(v) != "forever" {
				t.Fatalf("key put with ttl %d = %q, %v; want it present", ttl, v, err)
			}
			if got, err := cli.GetKeyTTL(ctx, k); err != nil || got == nil || *got == 0 {
				t.Fatalf("GetKeyTTL of key put with ttl %d = %v, %v", ttl, got, err)
			}
		}
	})

	t.Run("CompareAndSwap", func(t *testing.T) {
		k := []byte("cas/k")
		prev, ok, err := casCli.CompareAndSwap(ctx, k, nil, []byte("v1"))
		if err != nil || !ok || prev != nil {
			t.Fatalf("CAS absent->v1 = %q, %v, %v; want nil, true", prev, ok, err)
		}
		prev, ok, err = casCli.CompareAndSwap(ctx, k, nil, []byte("v2"))
		if err != nil || ok || string(prev) != "v1" {
			t.Fatalf("CAS absent->v2 on present key = %q, %v, %v; want v1, false", prev, ok, err)
		}
		prev, ok, err = casCli.CompareAndSwap(ctx, k, []byte("wrong"), []byte("v2"))
		if err != nil || ok || string(prev) != "v1" {
			t.Fatalf("CAS wrong->v2 = %q, %v, %v; want v1, false", prev, ok, err)
		}
		if v, err := casCli.Get(ctx, k); err != nil || string(v) != "v1" {
			t.Fatalf("value after failed CAS = %q, %v", v, err)
		}
		prev, ok, err = casCli.CompareAndSwap(ctx, k, []byte("v1"), []byte("v2"))
		if err != nil || !ok || string(prev) != "v1" {
			t.Fatalf("CAS v1->v2 = %q, %v, %v; want v1, true", prev, ok, err)
		}
		if v, err := casCli.Get(ctx, k); err != nil || string(v) != "v2" {
			t.Fatalf("value after CAS = %q, %v", v, err)
		}
		// Empty values compare as values, not as absence.
		prev, ok, err = casCli.CompareAndSwap(ctx, k, []byte("v2"), []byte{})
		if err != nil || !ok || string(prev) != "v2" {
			t.Fatalf("CAS v2->empty = %q, %v, %v", prev, ok, err)
		}
		prev, ok, err = casCli.CompareAndSwap(ctx, k, nil, []byte("v3"))
		if err != nil || ok || prev == nil || len(prev) != 0 {
			t.Fatalf("CAS absent->v3 on empty value = %#v, %v, %v; want []byte{}, false", prev, ok, err)
		}
		prev, ok, err = casCli.CompareAndSwap(ctx, k, []byte{}, []byte("v3"))
		if err != nil || !ok || prev == nil || len(prev) != 0 {
			t.Fatalf("CAS empty->v3 = %#v, %v, %v", prev, ok, err)
		}
		require(t, casCli.Delete(ctx, k), "delete")
		prev, ok, err = casCli.CompareAndSwap(ctx, k, []byte("v3"), []byte("v4"))
		if err != nil || ok || prev != nil {
			t.Fatalf("CAS v3->v4 on deleted key = %q, %v, %v; want nil, false", prev, ok, err)
		}
		if v, err := casCli.Get(ctx, k); err != nil || v != nil {
			t.Fatalf("deleted key after failed CAS = %q, %v", v, err)
		}
	})

	t.Run("CASRace", func(t *testing.T) {
		const workers, perWorker = 16, 25
		k := []byte("cas/counter")
		clients := []*rawkv.Client{casCli, c.rawClient().SetAtomicForCAS(true)}
		var successes, failures atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cli := clients[w%len(clients)]
				for done := 0; done < perWorker; {
					cur, err := cli.Get(ctx, k)
					if err != nil {
						t.Errorf("get counter: %v", err)
						return
					}
					var n int
					if cur != nil {
						if n, err = strconv.Atoi(string(cur)); err != nil {
							t.Errorf("counter value %q: %v", cur, err)
							return
						}
					}
					next := []byte(strconv.Itoa(n + 1))
					prev, ok, err := cli.CompareAndSwap(ctx, k, cur, next)
					if err != nil {
						t.Errorf("cas: %v", err)
						return
					}
					if ok {
						if !bytes.Equal(prev, cur) {
							t.Errorf("successful CAS from %q returned previous value %q", cur, prev)
							return
						}
						successes.Add(1)
						done++
					} else {
						if bytes.Equal(prev, cur) && (prev == nil) == (cur == nil) {
							t.Errorf("failed CAS from %q returned the expected value as previous", cur)
							return
						}
						failures.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		v, err := cli.Get(ctx, k)
		require(t, err, "get counter")
		if want := strconv.Itoa(workers * perWorker); string(v) != want {
			t.Fatalf("counter = %q after %d successful increments (%d failed CAS), want %s",
				v, successes.Load(), failures.Load(), want)
		}
		t.Logf("%d increments, %d failed CAS", successes.Load(), failures.Load())
	})

	t.Run("Expiry", func(t *testing.T) {
		time.Sleep(time.Until(acked.Add(2050 * time.Millisecond)))
		for _, k := range shortKeys {
			if v, err := cli.Get(ctx, k); err != nil || v != nil {
				t.Fatalf("expired %q: get = %q, %v", k, v, err)
			}
			if ttl, err := cli.GetKeyTTL(ctx, k); err != nil || ttl != nil {
				t.Fatalf("expired %q: GetKeyTTL = %v, %v", k, ttl, err)
			}
		}
		got, err := cli.BatchGet(ctx, append([][]byte{[]byte("ttl/short/0")}, shortKeys...))
		require(t, err, "batch get")
		if string(got[0]) != "stays" || got[1] != nil || got[2] != nil || got[3] != nil {
			t.Fatalf("batch get after expiry = %q", got)
		}
		ks, _, err := cli.Scan(ctx, []byte("ttl/short/"), []byte("ttl/short0"), 10)
		require(t, err, "scan")
		if want := []string{"ttl/short/0", "ttl/short/4"}; !slices.Equal(bytesToStrings(ks), want) {
			t.Fatalf("scan after expiry = %q, want %q", ks, want)
		}
		ks, _, err = cli.Scan(ctx, []byte("ttl/short/"), []byte("ttl/short0"), 1, rawkv.ScanKeyOnly())
		require(t, err, "scan")
		if want := []string{"ttl/short/0"}; !slices.Equal(bytesToStrings(ks), want) {
			t.Fatalf("key-only scan limit 1 after expiry = %q, want %q", ks, want)
		}
		ks, _, err = cli.ReverseScan(ctx, []byte("ttl/short0"), []byte("ttl/short/"), 2)
		require(t, err, "reverse scan")
		if want := []string{"ttl/short/4", "ttl/short/0"}; !slices.Equal(bytesToStrings(ks), want) {
			t.Fatalf("reverse scan after expiry = %q, want %q", ks, want)
		}
		sum, err := cli.Checksum(ctx, []byte("ttl/short/"), []byte("ttl/short0"))
		require(t, err, "checksum")
		if want := (rawModel{"ttl/short/0": []byte("stays"), "ttl/short/4": []byte("stays")}).checksum(nil, nil); sum != want {
			t.Fatalf("checksum after expiry = %+v, want %+v", sum, want)
		}
		// An expired key is absent for CAS.
		prev, ok, err := casCli.CompareAndSwap(ctx, shortKeys[0], nil, []byte("reborn"))
		if err != nil || !ok || prev != nil {
			t.Fatalf("CAS absent->reborn on expired key = %q, %v, %v", prev, ok, err)
		}
		// Raw gRPC: no trace of the expired value in the response.
		kv, kvctx := rawGRPC(t, c)
		resp, err := kv.RawGet(ctx, &kvrpcpb.RawGetRequest{Context: kvctx, Key: shortKeys[1]})
		require(t, err, "RawGet")
		if !resp.GetNotFound() || len(resp.GetValue()) != 0 || resp.GetError() != "" || resp.GetRegionError() != nil {
			t.Fatalf("RawGet of expired key = %v", resp)
		}
		cas, err := kv.RawCompareAndSwap(ctx, &kvrpcpb.RawCASRequest{Context: kvctx, Key: shortKeys[2],
			PreviousValue: []byte("c"), Value: []byte("d")})
		require(t, err, "RawCompareAndSwap")
		if cas.GetSucceed() || !cas.GetPreviousNotExist() || len(cas.GetPreviousValue()) != 0 {
			t.Fatalf("RawCompareAndSwap c->d of expired key = %v", cas)
		}
		// DeleteRange also removes expired keys.
		require(t, cli.DeleteRange(ctx, []byte("ttl/short/"), []byte("ttl/short0")), "delete range")
		scan, err := kv.RawScan(ctx, &kvrpcpb.RawScanRequest{Context: kvctx, StartKey: []byte("ttl/short/"),
			EndKey: []byte("ttl/short0"), Limit: 10})
		if err != nil || len(scan.GetKvs()) != 0 {
			t.Fatalf("scan after delete range = %v, %v", scan, err)
		}
	})
}

// rawGRPC dials the store and returns a client and the context of its one
// region, as PD reports it.
func rawGRPC(t *testing.T, c *cluster) (tikvpb.TikvClient, *kvrpcpb.Context) {
	t.Helper()
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	require(t, err, "dial store")
	t.Cleanup(func() { conn.Close() })
	region, err := stockPD(t, c.pd.client).GetRegion(ctxT(t), []byte("any"))
	require(t, err, "get region")
	if region == nil || region.Meta == nil || len(region.Meta.GetPeers()) != 1 {
		t.Fatalf("region from PD: %+v", region)
	}
	peer := region.Leader
	if peer == nil || peer.GetId() == 0 {
		peer = region.Meta.GetPeers()[0]
	}
	return tikvpb.NewTikvClient(conn), &kvrpcpb.Context{
		RegionId:    region.Meta.GetId(),
		RegionEpoch: region.Meta.GetRegionEpoch(),
		Peer:        peer,
	}
}

// TestRawKVDurability: raw writes acknowledged before a SIGKILL are all
// there after the restart, and so are acknowledged deletes.
func TestRawKVDurability(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.rawClient()
	rnd := testutil.Rand(t)

	m := rawModel{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		seed := rnd.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, seed))
			for i := range 40 {
				k := fmt.Sprintf("dur/%d/%03d", w, i)
				v := fmt.Appendf(nil, "%d", r.Uint64())
				if err := cli.Put(ctx, []byte(k), v); err != nil {
					t.Errorf("put %s: %v", k, err)
					return
				}
				mu.Lock()
				m[k] = v
				mu.Unlock()
			}
		}()
	}
	batch := rawKeys("dur/batch/%03d", 200)
	values := make([][]byte, len(batch))
	for i := range values {
		values[i] = fmt.Appendf(nil, "b%d", rnd.Uint64())
	}
	require(t, cli.BatchPut(ctx, batch, values), "batch put")
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, k := range batch {
		m[string(k)] = values[i]
	}
	require(t, cli.PutWithTTL(ctx, []byte("dur/ttl"), []byte("t"), 3600), "put with ttl")
	m["dur/ttl"] = []byte("t")
	// Acknowledged deletes are durable too.
	require(t, cli.BatchDelete(ctx, batch[:50]), "batch delete")
	require(t, cli.Delete(ctx, []byte("dur/0/000")), "delete")
	require(t, cli.DeleteRange(ctx, []byte("dur/1/"), []byte("dur/1/020")), "delete range")
	for _, k := range m.sortedKeys([]byte("dur/1/"), []byte("dur/1/020")) {
		delete(m, k)
	}
	for _, k := range batch[:50] {
		delete(m, string(k))
	}
	delete(m, "dur/0/000")

	c.restartStore()

	ks, vs, err := cli.Scan(ctx, []byte("dur/"), []byte("dur0"), 10000)
	require(t, err, "scan after restart")
	checkScan(t, "scan after restart", m, m.sortedKeys([]byte("dur/"), []byte("dur0")), ks, vs, false)
	if ttl, err := cli.GetKeyTTL(ctx, []byte("dur/ttl")); err != nil || ttl == nil || *ttl == 0 || *ttl > 3600 {
		t.Fatalf("ttl after restart = %v, %v", ttl, err)
	}
	// A fresh client, which knows nothing cached, sees the same.
	got, err := c.rawClient().BatchGet(ctx, batch)
	require(t, err, "batch get")
	for i, k := range batch {
		if want, ok := m[string(k)]; (got[i] != nil) != ok || !bytes.Equal(got[i], want) {
			t.Fatalf("after restart %q = %q, want %q", k, got[i], want)
		}
	}
	sum, err := cli.Checksum(ctx, []byte("dur/"), []byte("dur0"))
	require(t, err, "checksum")
	if want := m.checksum(nil, nil); sum != want {
		t.Fatalf("checksum after restart = %+v, want %+v", sum, want)
	}
}

// TestRawKVBadInput: invalid requests are refused with an error, leave no
// trace, and do not disturb the store; region errors are reported in
// region_error.
func TestRawKVBadInput(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.rawClient()
	casCli := c.rawClient().SetAtomicForCAS(true)
	kv, kvctx := rawGRPC(t, c)

	stillServes := func(what string) {
		t.Helper()
		k := []byte("bad/alive/" + what)
		require(t, cli.Put(ctx, k, []byte(what)), "put after "+what)
		if v, err := cli.Get(ctx, k); err != nil || string(v) != what {
			t.Fatalf("store after %s: get = %q, %v", what, v, err)
		}
	}

	t.Run("EmptyKey", func(t *testing.T) {
		if err := cli.Put(ctx, []byte{}, []byte("v")); err == nil {
			t.Fatalf("put of an empty key succeeded")
		}
		if err := cli.PutWithTTL(ctx, nil, []byte("v"), 10); err == nil {
			t.Fatalf("put with ttl of an empty key succeeded")
		}
		if _, _, err := casCli.CompareAndSwap(ctx, []byte{}, nil, []byte("v")); err == nil {
			t.Fatalf("CAS of an empty key succeeded")
		}
		// A batch with one empty key is refused as a whole.
		err := cli.BatchPut(ctx, [][]byte{[]byte("bad/e1"), {}, []byte("bad/e2")}, [][]byte{{1}, {2}, {3}})
		if err == nil {
			t.Fatalf("batch put with an empty key succeeded")
		}
		got, err := cli.BatchGet(ctx, [][]byte{[]byte("bad/e1"), []byte("bad/e2")})
		require(t, err, "batch get")
		if got[0] != nil || got[1] != nil {
			t.Fatalf("refused batch put wrote %q", got)
		}
		resp, err := kv.RawPut(ctx, &kvrpcpb.RawPutRequest{Context: kvctx, Key: nil, Value: []byte("v")})
		require(t, err, "RawPut")
		if resp.GetError() == "" || resp.GetRegionError() != nil {
			t.Fatalf("RawPut of an empty key = %v", resp)
		}
		ks, _, err := cli.Scan(ctx, nil, nil, 10)
		require(t, err, "scan")
		if len(ks) > 0 && len(ks[0]) == 0 {
			t.Fatalf("an empty key was stored")
		}
		stillServes("empty-key")
	})

	t.Run("KeyTooLarge", func(t *testing.T) {
		maxKey := bytes.Repeat([]byte("k"), 8<<10)
		require(t, cli.Put(ctx, maxKey, []byte("v")), "put of an 8 KiB key")
		if v, err := cli.Get(ctx, maxKey); err != nil || string(v) != "v" {
			t.Fatalf("get of an 8 KiB key = %q, %v", v, err)
		}
		over := append(bytes.Clone(maxKey), 'k')
		if err := cli.Put(ctx, over, []byte("v")); err == nil {
			t.Fatalf("put of an 8 KiB + 1 key succeeded")
		}
		if err := cli.BatchPut(ctx, [][]byte{[]byte("bad/k1"), over}, [][]byte{{1}, {2}}); err == nil {
			t.Fatalf("batch put with an 8 KiB + 1 key succeeded")
		}
		if _, _, err := casCli.CompareAndSwap(ctx, over, nil, []byte("v")); err == nil {
			t.Fatalf("CAS of an 8 KiB + 1 key succeeded")
		}
		if v, err := cli.Get(ctx, over); err != nil || v != nil {
			t.Fatalf("get of the refused key = %q, %v", v, err)
		}
		if v, err := cli.Get(ctx, []byte("bad/k1")); err != nil || v != nil {
			t.Fatalf("refused batch put wrote bad/k1: %q, %v", v, err)
		}
		stillServes("large-key")
	})

	t.Run("EntryTooLarge", func(t *testing.T) {
		huge := make([]byte, 8<<20)
		if err := cli.Put(ctx, []byte("bad/huge"), huge); err == nil {
			t.Fatalf("put of an 8 MiB value succeeded")
		}
		if _, _, err := casCli.CompareAndSwap(ctx, []byte("bad/huge"), nil, huge); err == nil {
			t.Fatalf("CAS of an 8 MiB value succeeded")
		}
		resp, err := kv.RawPut(ctx, &kvrpcpb.RawPutRequest{Context: kvctx, Key: []byte("bad/huge"), Value: huge})
		require(t, err, "RawPut")
		if tooLarge := resp.GetRegionError().GetRaftEntryTooLarge(); tooLarge == nil ||
			tooLarge.GetRegionId() != kvctx.GetRegionId() || tooLarge.GetEntrySize() < 8<<20 {
			t.Fatalf("RawPut of 8 MiB value = region error %v, error %q; want raft_entry_too_large", resp.GetRegionError(), resp.GetError())
		}
		if v, err := cli.Get(ctx, []byte("bad/huge")); err != nil || v != nil {
			t.Fatalf("refused 8 MiB value was stored: %d bytes, %v", len(v), err)
		}
		stillServes("entry-too-large")
	})

	t.Run("UnknownColumnFamily", func(t *testing.T) {
		bad := rawkv.SetColumnFamily("nonexistent")
		if err := cli.Put(ctx, []byte("bad/cf"), []byte("v"), bad); err == nil {
			t.Fatalf("put to an unknown column family succeeded")
		}
		if _, err := cli.Get(ctx, []byte("bad/cf"), bad); err == nil {
			t.Fatalf("get from an unknown column family succeeded")
		}
		if err := cli.Delete(ctx, []byte("bad/cf"), bad); err == nil {
			t.Fatalf("delete in an unknown column family succeeded")
		}
		if err := cli.BatchDelete(ctx, [][]byte{[]byte("bad/cf")}, bad); err == nil {
			t.Fatalf("batch delete in an unknown column family succeeded")
		}
		if err := cli.BatchPut(ctx, [][]byte{[]byte("bad/cf")}, [][]byte{{1}}, bad); err == nil {
			t.Fatalf("batch put to an unknown column family succeeded")
		}
		if err := cli.DeleteRange(ctx, []byte("bad/"), []byte("bad0"), bad); err == nil {
			t.Fatalf("delete range in an unknown column family succeeded")
		}
		if _, err := cli.GetKeyTTL(ctx, []byte("bad/cf"), bad); err == nil {
			t.Fatalf("GetKeyTTL in an unknown column family succeeded")
		}
		if _, _, err := casCli.CompareAndSwap(ctx, []byte("bad/cf"), nil, []byte("v"), bad); err == nil {
			t.Fatalf("CAS in an unknown column family succeeded")
		}
		for _, reverse := range []bool{false, true} {
			start, end := []byte("bad/"), []byte("bad0")
			if reverse {
				start, end = end, start
			}
			scan, err := kv.RawScan(ctx, &kvrpcpb.RawScanRequest{Context: kvctx, StartKey: start, EndKey: end,
				Limit: 10, Cf: "nonexistent", Reverse: reverse})
			require(t, err, "RawScan")
			if len(scan.GetKvs()) != 1 || scan.GetKvs()[0].GetError() == nil {
				t.Fatalf("RawScan of an unknown column family = %v", scan)
			}
		}
		bget, err := kv.RawBatchGet(ctx, &kvrpcpb.RawBatchGetRequest{Context: kvctx, Keys: [][]byte{[]byte("bad/alive/empty-key")}, Cf: "nonexistent"})
		require(t, err, "RawBatchGet")
		if len(bget.GetPairs()) != 1 || bget.GetPairs()[0].GetError() == nil {
			t.Fatalf("RawBatchGet of an unknown column family = %v", bget)
		}
		if v, err := cli.Get(ctx, []byte("bad/cf")); err != nil || v != nil {
			t.Fatalf("write to unknown CF landed in default: %q, %v", v, err)
		}
		stillServes("unknown-cf")
	})

	t.Run("ScanLimitZero", func(t *testing.T) {
		require(t, cli.BatchPut(ctx, rawKeys("bad/scan/%d", 5), rawKeys("v%d", 5)), "batch put")
		ks, _, err := cli.Scan(ctx, []byte("bad/scan/"), []byte("bad/scan0"), 0)
		if err != nil || len(ks) != 0 {
			t.Fatalf("client scan with limit 0 = %q, %v", ks, err)
		}
		for _, reverse := range []bool{false, true} {
			start, end := []byte("bad/scan/"), []byte("bad/scan0")
			if reverse {
				start, end = end, start
			}
			scan, err := kv.RawScan(ctx, &kvrpcpb.RawScanRequest{Context: kvctx, StartKey: start, EndKey: end, Reverse: reverse})
			require(t, err, "RawScan")
			if len(scan.GetKvs()) != 0 || scan.GetRegionError() != nil {
				t.Fatalf("RawScan with limit 0 (reverse %v) = %v", reverse, scan)
			}
			scan, err = kv.RawScan(ctx, &kvrpcpb.RawScanRequest{Context: kvctx, StartKey: start, EndKey: end, Reverse: reverse, Limit: 2})
			require(t, err, "RawScan")
			if len(scan.GetKvs()) != 2 {
				t.Fatalf("RawScan with limit 2 (reverse %v) = %v", reverse, scan)
			}
		}
	})

	t.Run("RegionErrors", func(t *testing.T) {
		wrongRegion := *kvctx
		wrongRegion.RegionId += 1000
		staleEpoch := *kvctx
		staleEpoch.RegionEpoch = &metapb.RegionEpoch{ConfVer: kvctx.GetRegionEpoch().GetConfVer(), Version: kvctx.GetRegionEpoch().GetVersion() + 1}
		wrongStore := *kvctx
		wrongStore.Peer = &metapb.Peer{Id: kvctx.GetPeer().GetId(), StoreId: kvctx.GetPeer().GetStoreId() + 1000}
		key := []byte("bad/region")

		for _, tc := range []struct {
			name  string
			ctx   *kvrpcpb.Context
			check func(t *testing.T, e *errorpb.Error)
		}{
			{"wrong region", &wrongRegion, func(t *testing.T, e *errorpb.Error) {
				if e.GetRegionNotFound().GetRegionId() != wrongRegion.RegionId {
					t.Fatalf("region error %v, want region_not_found for %d", e, wrongRegion.RegionId)
				}
			}},
			{"stale epoch", &staleEpoch, func(t *testing.T, e *errorpb.Error) {
				regions := e.GetEpochNotMatch().GetCurrentRegions()
				if len(regions) != 1 || regions[0].GetId() != kvctx.GetRegionId() ||
					regions[0].GetRegionEpoch().GetVersion() != kvctx.GetRegionEpoch().GetVersion() {
					t.Fatalf("region error %v, want epoch_not_match with the current region", e)
				}
			}},
			{"wrong store", &wrongStore, func(t *testing.T, e *errorpb.Error) {
				if e.GetStoreNotMatch() == nil {
					t.Fatalf("region error %v, want store_not_match", e)
				}
			}},
		} {
			for _, rpc := range rawRPCs(kv, key) {
				e, err := rpc.call(ctx, tc.ctx)
				require(t, err, tc.name+" "+rpc.name)
				if e == nil {
					t.Fatalf("%s with %s: no region error", rpc.name, tc.name)
				}
				tc.check(t, e)
			}
		}
		if v, err := cli.Get(ctx, key); err != nil || v != nil {
			t.Fatalf("a write with a region error was applied: %q, %v", v, err)
		}
		stillServes("region-errors")
	})
}

// rawRPC is one raw RPC, sent with a given context, returning its region
// error.
type rawRPC struct {
	name string
	call func(ctx context.Context, kvctx *kvrpcpb.Context) (*errorpb.Error, error)
}

// rawRPCs returns every raw RPC, on key.
func rawRPCs(kv tikvpb.TikvClient, key []byte) []rawRPC {
	end := append(bytes.Clone(key), 0)
	return []rawRPC{
		{"RawGet", func(ctx context.Context, c *kvrpcpb.Context) (*errorpb.Error, error) {
			r, err := kv.RawGet(ctx, &kvrpcpb.RawGetRequest{Context: c, Key: key})
			return r.GetRegionError(), err
		}},
		{"RawBatchGet", func(ctx context.Context, c *kvrpcpb.Context) (*errorpb.Error, error) {
			r, err := kv.RawBatchGet(ctx, &kvrpcpb.RawBatchGetRequest{Context: c, Keys: [][]byte{key}})
			return r.GetRegionError(), err
		}},
		{"RawPut", func(ctx context.Context, c *kvrpcpb.Context) (*errorpb.Error, error) {
			r, err := kv.RawPut(ctx, &kvrpcpb.RawPutRequest{Context: c, Key: key, Value: []byte("v")})
			return r.GetRegionError(), err
		}},
		{"RawBatchPut", func(ctx context.Context, c *kvrpcpb.Context) (*errorpb.Error, error) {
			r, err := kv.RawBatchPut(ctx, &kvrpcpb.RawBatchPutRequest{Context: c, Pairs: []*kvrpcpb.KvPair{{Key: key, Value: []byte("v")}}})
			return r.GetRegionError(), err
		}},
		{"RawDelete", func(ctx context.Context, c *kvrpcpb.Context) (*errorpb.Error, error) {
			r, err := kv.RawDelete(ctx, &kvrpcpb.RawDeleteRequest{Context: c, Key: key})
			return r.GetRegionError(), err
		}},
		{"RawBatchDelete", func(ctx context.Context, c *kvrpcpb.Context) (*errorpb.Error, error) {
			r, err := kv.RawBatchDelete(ctx, &kvrpcpb.RawBatchDeleteRequest{Context: c, Keys: [][]byte{key}})
			return r.GetRegionError(), err
		}},
		{"RawScan", func(ctx context.Context, c *kvrpcpb.Context) (*errorpb.Error, error) {
			r, err := kv.RawScan(ctx, &kvrpcpb.RawScanRequest{Context: c, StartKey: key, EndKey: end, Limit: 1})
			return r.GetRegionError(), err
		}},
		{"RawDeleteRange", func(ctx context.Context, c *kvrpcpb.Context) (*errorpb.Error, error) {
			r, err := kv.RawDeleteRange(ctx, &kvrpcpb.RawDeleteRangeRequest{Context: c, StartKey: key, EndKey: end})
			return r.GetRegionError(), err
		}},
		{"RawGetKeyTTL", func(ctx context.Context, c *kvrpcpb.Context) (*errorpb.Error, error) {
			r, err := kv.RawGetKeyTTL(ctx, &kvrpcpb.RawGetKeyTTLRequest{Context: c, Key: key})
			return r.GetRegionError(), err
		}},
		{"RawCompareAndSwap", func(ctx context.Context, c *kvrpcpb.Context) (*errorpb.Error, error) {
			r, err := kv.RawCompareAndSwap(ctx, &kvrpcpb.RawCASRequest{Context: c, Key: key, PreviousNotExist: true, Value: []byte("v")})
			return r.GetRegionError(), err
		}},
		{"RawChecksum", func(ctx context.Context, c *kvrpcpb.Context) (*errorpb.Error, error) {
			r, err := kv.RawChecksum(ctx, &kvrpcpb.RawChecksumRequest{Context: c, Algorithm: kvrpcpb.ChecksumAlgorithm_Crc64_Xor,
				Ranges: []*kvrpcpb.KeyRange{{StartKey: key, EndKey: end}}})
			return r.GetRegionError(), err
		}},
	}
}

// TestRawBatchScan drives RawBatchScan as TiKV serves it, unary and on a
// BatchCommands stream: up to each_limit pairs per range, in the order of
// the ranges; an empty end key ends a range at the next range's start; a
// range that is empty by its order fails the request with a key error.
func TestRawBatchScan(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.rawClient()
	kv, kvctx := rawGRPC(t, c)
	for _, prefix := range []string{"bs/a/", "bs/b/", "bs/c/"} {
		require(t, cli.BatchPut(ctx, rawKeys(prefix+"%d", 5), rawKeys("v%d", 5)), "batch put")
	}
	kr := func(start, end string) *kvrpcpb.KeyRange {
		return &kvrpcpb.KeyRange{StartKey: []byte(start), EndKey: []byte(end)}
	}
	keysOf := func(t *testing.T, kvs []*kvrpcpb.KvPair, keyOnly bool) []string {
		t.Helper()
		var keys []string
		for _, p := range kvs {
			if p.GetError() != nil {
				t.Fatalf("pair error %v", p.GetError())
			}
			if keyOnly != (len(p.GetValue()) == 0) {
				t.Fatalf("pair %q has value %q with key_only %t", p.GetKey(), p.GetValue(), keyOnly)
			}
			keys = append(keys, string(p.GetKey()))
		}
		return keys
	}
	forward := &kvrpcpb.RawBatchScanRequest{Context: kvctx, EachLimit: 2,
		Ranges: []*kvrpcpb.KeyRange{kr("bs/a/", "bs/a0"), kr("bs/b/3", ""), kr("bs/c/", "bs/c0")}}
	wantForward := []string{"bs/a/0", "bs/a/1", "bs/b/3", "bs/b/4", "bs/c/0", "bs/c/1"}

	t.Run("Unary", func(t *testing.T) {
		resp, err := kv.RawBatchScan(ctx, forward)
		require(t, err, "RawBatchScan")
		if got := keysOf(t, resp.GetKvs(), false); !slices.Equal(got, wantForward) {
			t.Fatalf("forward batch scan = %q, want %q", got, wantForward)
		}
		keyOnly := *forward
		keyOnly.KeyOnly = true
		resp, err = kv.RawBatchScan(ctx, &keyOnly)
		require(t, err, "RawBatchScan key only")
		if got := keysOf(t, resp.GetKvs(), true); !slices.Equal(got, wantForward) {
			t.Fatalf("key-only batch scan = %q, want %q", got, wantForward)
		}
		resp, err = kv.RawBatchScan(ctx, &kvrpcpb.RawBatchScanRequest{Context: kvctx, EachLimit: 2, Reverse: true,
			Ranges: []*kvrpcpb.KeyRange{kr("bs/c0", "bs/c/"), kr("bs/b/2", "")}})
		require(t, err, "RawBatchScan reverse")
		want := []string{"bs/c/4", "bs/c/3", "bs/b/1", "bs/b/0"}
		if got := keysOf(t, resp.GetKvs(), false); !slices.Equal(got, want) {
			t.Fatalf("reverse batch scan = %q, want %q", got, want)
		}
		resp, err = kv.RawBatchScan(ctx, &kvrpcpb.RawBatchScanRequest{Context: kvctx, Ranges: forward.Ranges})
		require(t, err, "RawBatchScan without limit")
		if len(resp.GetKvs()) != 0 || resp.GetRegionError() != nil {
			t.Fatalf("batch scan with each_limit 0 = %v", resp)
		}
	})

	t.Run("BadRanges", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			ranges  []*kvrpcpb.KeyRange
			reverse bool
		}{
			{"forward range backwards", []*kvrpcpb.KeyRange{kr("bs/b/", "bs/a/")}, false},
			{"reverse range forwards", []*kvrpcpb.KeyRange{kr("bs/a/", "bs/b/")}, true},
			{"open end before an earlier start", []*kvrpcpb.KeyRange{kr("bs/c/", ""), kr("bs/a/", "bs/a0")}, false},
		} {
			resp, err := kv.RawBatchScan(ctx, &kvrpcpb.RawBatchScanRequest{Context: kvctx, EachLimit: 10,
				Ranges: tc.ranges, Reverse: tc.reverse})
			require(t, err, tc.name)
			if len(resp.GetKvs()) != 1 || resp.GetKvs()[0].GetError().GetAbort() == "" {
				t.Fatalf("%s: batch scan = %v, want one pair with an abort error", tc.name, resp)
			}
		}
		resp, err := kv.RawBatchScan(ctx, &kvrpcpb.RawBatchScanRequest{Context: kvctx, EachLimit: 1,
			Ranges: forward.Ranges, Cf: "nonexistent"})
		require(t, err, "RawBatchScan of an unknown column family")
		if len(resp.GetKvs()) != 1 || resp.GetKvs()[0].GetError() == nil {
			t.Fatalf("batch scan of an unknown column family = %v", resp)
		}
		wrongRegion := *kvctx
		wrongRegion.RegionId += 1000
		resp, err = kv.RawBatchScan(ctx, &kvrpcpb.RawBatchScanRequest{Context: &wrongRegion, EachLimit: 1,
			Ranges: forward.Ranges})
		require(t, err, "RawBatchScan in a wrong region")
		if resp.GetRegionError().GetRegionNotFound() == nil {
			t.Fatalf("batch scan in a wrong region = %v, want region_not_found", resp)
		}
	})

	t.Run("Batched", func(t *testing.T) {
		stream, err := kv.BatchCommands(ctx)
		require(t, err, "open batch stream")
		scan := &tikvpb.BatchCommandsRequest_Request{Cmd: &tikvpb.BatchCommandsRequest_Request_RawBatchScan{RawBatchScan: forward}}
		for id := uint64(1); id <= 2; id++ {
			require(t, stream.Send(&tikvpb.BatchCommandsRequest{RequestIds: []uint64{id}, Requests: []*tikvpb.BatchCommandsRequest_Request{scan}}), "send")
			resp, err := stream.Recv()
			require(t, err, "receive")
			if len(resp.GetRequestIds()) != 1 || resp.GetRequestIds()[0] != id {
				t.Fatalf("batch response ids %v, want [%d]", resp.GetRequestIds(), id)
			}
			if got := keysOf(t, resp.GetResponses()[0].GetRawBatchScan().GetKvs(), false); !slices.Equal(got, wantForward) {
				t.Fatalf("batched batch scan %d = %q, want %q", id, got, wantForward)
			}
		}
	})
}

// TestRawCoprocessorWithoutPlugins: the store loads no coprocessor plugins,
// so RawCoprocessor answers, unary and batched, as TiKV does by default:
// with "Coprocessor plugin is disabled!" in the response's error, and the
// batch stream goes on serving.
func TestRawCoprocessorWithoutPlugins(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	kv, kvctx := rawGRPC(t, c)
	const disabled = "Coprocessor plugin is disabled!"
	copr := &kvrpcpb.RawCoprocessorRequest{Context: kvctx, CoprName: "example", CoprVersionReq: "1.0.0", Data: []byte("x")}
	unary, err := kv.RawCoprocessor(ctx, copr)
	if err != nil || unary.GetError() != disabled || unary.GetRegionError() != nil {
		t.Fatalf("RawCoprocessor = %v, %v; want the error %q in the response", unary, err, disabled)
	}

	stream, err := kv.BatchCommands(ctx)
	require(t, err, "open batch stream")
	for i, req := range []*tikvpb.BatchCommandsRequest_Request{
		{Cmd: &tikvpb.BatchCommandsRequest_Request_RawCoprocessor{RawCoprocessor: copr}},
		{Cmd: &tikvpb.BatchCommandsRequest_Request_RawGet{RawGet: &kvrpcpb.RawGetRequest{Context: kvctx, Key: []byte("absent")}}},
	} {
		require(t, stream.Send(&tikvpb.BatchCommandsRequest{RequestIds: []uint64{uint64(i)}, Requests: []*tikvpb.BatchCommandsRequest_Request{req}}), "send")
		resp, err := stream.Recv()
		require(t, err, "receive")
		got := resp.GetResponses()[0]
		if i == 0 && got.GetRawCoprocessor().GetError() != disabled {
			t.Fatalf("batched RawCoprocessor answered %v, want the error %q", got, disabled)
		}
		if i == 1 && !got.GetRawGet().GetNotFound() {
			t.Fatalf("raw get after RawCoprocessor answered %v", got)
		}
	}
}
