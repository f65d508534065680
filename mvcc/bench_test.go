package mvcc

import (
	"context"
	"fmt"
	"testing"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/storage"
)

// benchKeys is the number of keys BenchmarkScan loads, each with
// benchVersions committed versions.
const (
	benchKeys     = 10000
	benchVersions = 3
)

// loadVersions commits benchVersions versions of benchKeys keys, one
// transaction per version, and returns the store and a timestamp above
// every commit.
func loadVersions(b *testing.B) (*Store, uint64) {
	e, err := engine.Open(b.TempDir(), engine.Options{InMemory: true, LockRank: LockRank})
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, e.Close()) })
	s := NewStore(storage.NewStandalone(e), NewConcurrencyManager(1))
	ctx := context.Background()
	ts := uint64(10)
	for v := range benchVersions {
		var muts []*kvrpcpb.Mutation
		var keys [][]byte
		for i := range benchKeys {
			key := fmt.Appendf(nil, "key%06d", i)
			muts = append(muts, &kvrpcpb.Mutation{Op: kvrpcpb.Op_Put, Key: key, Value: fmt.Appendf(nil, "value%d-%d", i, v)})
			keys = append(keys, key)
		}
		resp, err := s.Prewrite(ctx, &kvrpcpb.PrewriteRequest{Context: &kvrpcpb.Context{}, Mutations: muts,
			PrimaryLock: keys[0], StartVersion: ts, LockTtl: 3000})
		require.NoError(b, err)
		require.Empty(b, resp.Errors)
		commit, err := s.Commit(ctx, &kvrpcpb.CommitRequest{Context: &kvrpcpb.Context{}, Keys: keys, StartVersion: ts, CommitVersion: ts + 1})
		require.NoError(b, err)
		require.Nil(b, commit.Error)
		ts += 2
	}
	return s, ts
}

// BenchmarkScan reads 100 consecutive keys, each with three versions, with
// one Scan, forward or reverse, and, as the peer in the same run, with 100
// point Gets: a scan should cost less per key than a point read, which has
// to seek.
func BenchmarkScan(b *testing.B) {
	s, ts := loadVersions(b)
	ctx := context.Background()
	b.Run("scan100", func(b *testing.B) {
		i := 0
		for b.Loop() {
			start := fmt.Appendf(nil, "key%06d", (i*100)%(benchKeys-100))
			resp, err := s.Scan(ctx, &kvrpcpb.ScanRequest{Context: &kvrpcpb.Context{}, StartKey: start, Limit: 100, Version: ts})
			if err != nil || len(resp.Pairs) != 100 {
				b.Fatalf("scan: %v, %d pairs", err, len(resp.Pairs))
			}
			i++
		}
	})
	b.Run("reverse100", func(b *testing.B) {
		i := 0
		for b.Loop() {
			end := fmt.Appendf(nil, "key%06d", 100+(i*100)%(benchKeys-100))
			resp, err := s.Scan(ctx, &kvrpcpb.ScanRequest{Context: &kvrpcpb.Context{}, StartKey: end, Limit: 100, Version: ts, Reverse: true})
			if err != nil || len(resp.Pairs) != 100 {
				b.Fatalf("reverse scan: %v, %d pairs", err, len(resp.Pairs))
			}
			i++
		}
	})
	b.Run("get100", func(b *testing.B) {
		i := 0
		for b.Loop() {
			first := (i * 100) % (benchKeys - 100)
			for k := first; k < first+100; k++ {
				resp, err := s.Get(ctx, &kvrpcpb.GetRequest{Context: &kvrpcpb.Context{}, Key: fmt.Appendf(nil, "key%06d", k), Version: ts})
				if err != nil || resp.NotFound {
					b.Fatalf("get: %v, not found %v", err, resp.GetNotFound())
				}
			}
			i++
		}
	})
}

// BenchmarkLockedTxns finds the transactions holding locks while one
// pipelined transaction holds 100k locks and ten others one each, as the
// resolved ts does every second; the peer in the same run reads every lock
// (ScanLocks), which is what finding them cost before locks were ranked by
// start_ts.
func BenchmarkLockedTxns(b *testing.B) {
	e, err := engine.Open(b.TempDir(), engine.Options{InMemory: true, LockRank: LockRank})
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, e.Close()) })
	s := NewStore(storage.NewStandalone(e), NewConcurrencyManager(1))
	ctx := context.Background()
	const pipelinedLocks = 100000
	for chunk := 0; chunk < pipelinedLocks; chunk += 10000 {
		var muts []*kvrpcpb.Mutation
		for i := chunk; i < chunk+10000; i++ {
			muts = append(muts, &kvrpcpb.Mutation{Op: kvrpcpb.Op_Put, Key: fmt.Appendf(nil, "bulk%07d", i), Value: []byte("v")})
		}
		resp, err := s.Flush(ctx, &kvrpcpb.FlushRequest{Context: &kvrpcpb.Context{}, Mutations: muts,
			PrimaryKey: []byte("bulk0000000"), StartTs: 100, Generation: 1, LockTtl: 3000})
		require.NoError(b, err)
		require.Empty(b, resp.Errors)
	}
	for i := range 10 {
		key := fmt.Appendf(nil, "small%02d", i)
		resp, err := s.Prewrite(ctx, &kvrpcpb.PrewriteRequest{Context: &kvrpcpb.Context{}, PrimaryLock: key,
			Mutations: []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_Put, Key: key, Value: []byte("v")}}, StartVersion: uint64(200 + i), LockTtl: 3000})
		require.NoError(b, err)
		require.Empty(b, resp.Errors)
	}
	b.Run("ranked", func(b *testing.B) {
		for b.Loop() {
			txns := 0
			require.NoError(b, s.LockedTxns(ctx, MaxTS, func(uint64, uint64) { txns++ }))
			require.Equal(b, 11, txns)
		}
	})
	b.Run("scan-every-lock", func(b *testing.B) {
		for b.Loop() {
			err := s.withReader(ctx, nil, func(r *Reader) error {
				locks, err := r.ScanLocks(nil, nil, 0, func(*Lock) bool { return true })
				require.Len(b, locks, pipelinedLocks+10)
				return err
			})
			require.NoError(b, err)
		}
	})
}
