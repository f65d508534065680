package tikvsvc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"math"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/mvcc"
	"github.com/tinykv/tinykv/storage"
)

// rawExpirySize is the length of the expiry suffix of a stored raw value.
const rawExpirySize = 8

// rawStore implements raw (non-transactional) KV over a storage.Storage.
// Writes take latches on their keys, which makes compare-and-swap atomic
// with respect to every other raw write. Every snapshot and write is
// addressed with the request's context, kvctx.
type rawStore struct {
	storage storage.Storage
	latches *mvcc.Latches
	now     func() time.Time
}

// rawValue is a decoded stored raw value.
type rawValue struct {
	value    []byte
	expireAt uint64 // unix seconds; 0 never expires
}

func (s *rawStore) encode(value []byte, ttl uint64) []byte {
	var expireAt uint64
	if ttl > 0 {
		// As TiKV does, saturate: a TTL so large that the expiry time
		// overflows never expires, rather than being born expired.
		expireAt = uint64(s.now().Unix()) + ttl
		if expireAt < ttl {
			expireAt = math.MaxUint64
		}
	}
	out := make([]byte, 0, len(value)+rawExpirySize)
	out = append(out, value...)
	return binary.BigEndian.AppendUint64(out, expireAt)
}

// decode splits a stored value; ok is false if it has expired.
func (s *rawStore) decode(stored []byte) (v rawValue, ok bool, err error) {
	if len(stored) < rawExpirySize {
		return rawValue{}, false, fmt.Errorf("raw value of %d bytes has no expiry suffix: %w", len(stored), mvcc.ErrCorrupted)
	}
	split := len(stored) - rawExpirySize
	v = rawValue{value: stored[:split], expireAt: binary.BigEndian.Uint64(stored[split:])}
	return v, v.expireAt == 0 || v.expireAt > uint64(s.now().Unix()), nil
}

func parseCF(name string) (engine.CF, error) {
	cf, err := engine.ParseCF(name)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrInvalidCF, name)
	}
	return cf, nil
}

// get returns the live value of key, or found=false.
func (s *rawStore) get(ctx context.Context, kvctx *kvrpcpb.Context, cf engine.CF, key []byte) (v rawValue, found bool, err error) {
	snap, err := s.storage.Snapshot(ctx, kvctx)
	if err != nil {
		return rawValue{}, false, err
	}
	defer snap.Close()
	return s.getIn(snap, cf, key)
}

// getIn returns the live value of key in snap, or found=false; an expired
// value is not returned.
func (s *rawStore) getIn(snap storage.Snapshot, cf engine.CF, key []byte) (rawValue, bool, error) {
	stored, err := snap.Get(cf, key)
	if err != nil || stored == nil {
		return rawValue{}, false, err
	}
	v, live, err := s.decode(stored)
	if err != nil || !live {
		return rawValue{}, false, err
	}
	return v, true, nil
}

func (s *rawStore) batchGet(ctx context.Context, kvctx *kvrpcpb.Context, cf engine.CF, keys [][]byte) ([]*kvrpcpb.KvPair, error) {
	snap, err := s.storage.Snapshot(ctx, kvctx)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	var pairs []*kvrpcpb.KvPair
	for _, key := range keys {
		v, found, err := s.getIn(snap, cf, key)
		if err != nil {
			return nil, err
		}
		if found {
			pairs = append(pairs, &kvrpcpb.KvPair{Key: key, Value: v.value})
		}
	}
	return pairs, nil
}

// rawWrite is one raw put (or, with del, delete).
type rawWrite struct {
	key, value []byte
	ttl        uint64
	del        bool
}

// write applies writes atomically under latches.
func (s *rawStore) write(ctx context.Context, kvctx *kvrpcpb.Context, cf engine.CF, writes []rawWrite) error {
	keys := make([][]byte, len(writes))
	for i, w := range writes {
		if err := checkWriteKey(w.key); err != nil {
			return err
		}
		keys[i] = w.key
	}
	guard := s.latches.Acquire(keys)
	defer guard.Release()
	return s.storage.Write(ctx, kvctx, s.modifies(cf, writes))
}

func (s *rawStore) modifies(cf engine.CF, writes []rawWrite) []storage.Modify {
	mods := make([]storage.Modify, len(writes))
	for i, w := range writes {
		mods[i] = storage.Modify{CF: cf, Key: w.key, Delete: w.del}
		if !w.del {
			mods[i].Value = s.encode(w.value, w.ttl)
		}
	}
	return mods
}

// casResult is the outcome of a compare-and-swap.
type casResult struct {
	succeed      bool
	prevNotExist bool
	prevValue    []byte
}

// compareAndSwap writes w if the current value of w.key matches the
// expectation: absent when expectAbsent, else equal to expect.
func (s *rawStore) compareAndSwap(ctx context.Context, kvctx *kvrpcpb.Context, cf engine.CF, w rawWrite,
	expectAbsent bool, expect []byte) (casResult, error) {
	if err := checkWriteKey(w.key); err != nil {
		return casResult{}, err
	}
	guard := s.latches.Acquire([][]byte{w.key})
	defer guard.Release()
	current, found, err := s.get(ctx, kvctx, cf, w.key)
	if err != nil {
		return casResult{}, err
	}
	res := casResult{prevNotExist: !found, prevValue: current.value}
	if found == expectAbsent || (found && !bytes.Equal(current.value, expect)) {
		return res, nil
	}
	if err := s.storage.Write(ctx, kvctx, s.modifies(cf, []rawWrite{w})); err != nil {
		return casResult{}, err
	}
	res.succeed = true
	return res, nil
}

// rawScanRange describes a scan in client-go's terms: forward scans cover
// [start, end); reverse scans go down from start (exclusive) to end
// (inclusive). An empty end is unbounded.
type rawScanRange struct {
	start, end []byte
	reverse    bool
}

func (r rawScanRange) iterOptions(keyOnly bool) engine.IterOptions {
	if r.reverse {
		return engine.IterOptions{LowerBound: r.end, UpperBound: r.start, Reverse: true, KeyOnly: keyOnly}
	}
	return engine.IterOptions{LowerBound: r.start, UpperBound: r.end, KeyOnly: keyOnly}
}

// scan visits live pairs in range order until fn returns false. The value
// passed to fn is nil when keyOnly.
func (s *rawStore) scan(ctx context.Context, kvctx *kvrpcpb.Context, cf engine.CF, r rawScanRange, keyOnly bool,
	fn func(key, value []byte) bool) error {
	return s.scanRanges(ctx, kvctx, cf, []rawScanRange{r}, keyOnly, func(_ int, key, value []byte) bool {
		return fn(key, value)
	})
}

// scanRanges visits the live pairs of each range in turn, all from one
// snapshot, passing fn the range's index; fn returning false ends that
// range. The value passed to fn is nil when keyOnly.
func (s *rawStore) scanRanges(ctx context.Context, kvctx *kvrpcpb.Context, cf engine.CF, ranges []rawScanRange, keyOnly bool,
	fn func(i int, key, value []byte) bool) error {
	snap, err := s.storage.Snapshot(ctx, kvctx)
	if err != nil {
		return err
	}
	defer snap.Close()
	for i, r := range ranges {
		if err := s.scanIn(snap, cf, r, keyOnly, func(key, value []byte) bool { return fn(i, key, value) }); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// scanIn visits the live pairs of r in snap until fn returns false.
func (s *rawStore) scanIn(snap storage.Snapshot, cf engine.CF, r rawScanRange, keyOnly bool, fn func(key, value []byte) bool) error {
	it := snap.NewIterator(cf, r.iterOptions(false))
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		stored, err := it.Value()
		if err != nil {
			return err
		}
		v, live, err := s.decode(stored)
		if err != nil {
			return err
		}
		if !live {
			continue
		}
		value := v.value
		if keyOnly {
			value = nil
		}
		if !fn(bytes.Clone(it.Key()), bytes.Clone(value)) {
			return nil
		}
	}
	return nil
}

// deleteRangeBatch bounds how many keys one write of a range delete holds.
const deleteRangeBatch = 1024

// deleteRange removes every key in [start, end). It is not atomic: it
// deletes in batches, each atomic.
func (s *rawStore) deleteRange(ctx context.Context, kvctx *kvrpcpb.Context, cf engine.CF, start, end []byte) error {
	for {
		var batch []rawWrite
		err := s.scanAll(ctx, kvctx, cf, rawScanRange{start: start, end: end}, func(key []byte) bool {
			batch = append(batch, rawWrite{key: key, del: true})
			return len(batch) < deleteRangeBatch
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		keys := make([][]byte, len(batch))
		for i, w := range batch {
			keys[i] = w.key
		}
		guard := s.latches.Acquire(keys)
		err = s.storage.Write(ctx, kvctx, s.modifies(cf, batch))
		guard.Release()
		if err != nil {
			return err
		}
	}
}

// scanAll visits every stored key in range, expired or not.
func (s *rawStore) scanAll(ctx context.Context, kvctx *kvrpcpb.Context, cf engine.CF, r rawScanRange, fn func(key []byte) bool) error {
	snap, err := s.storage.Snapshot(ctx, kvctx)
	if err != nil {
		return err
	}
	defer snap.Close()
	it := snap.NewIterator(cf, r.iterOptions(true))
	defer it.Close()
	for it.Rewind(); it.Valid() && fn(bytes.Clone(it.Key())); it.Next() {
	}
	return nil
}

// checksum computes TiKV's crc64-xor checksum over the live pairs of ranges:
// each pair contributes crc64(key || value), xor-ed together.
func (s *rawStore) checksum(ctx context.Context, kvctx *kvrpcpb.Context, ranges []*kvrpcpb.KeyRange) (sum, kvs, size uint64, err error) {
	table := crc64.MakeTable(crc64.ECMA)
	for _, kr := range ranges {
		err := s.scan(ctx, kvctx, engine.CfDefault, rawScanRange{start: kr.GetStartKey(), end: kr.GetEndKey()}, false,
			func(key, value []byte) bool {
				digest := crc64.New(table)
				digest.Write(key)
				digest.Write(value)
				sum ^= digest.Sum64()
				kvs++
				size += uint64(len(key) + len(value))
				return true
			})
		if err != nil {
			return 0, 0, 0, err
		}
	}
	return sum, kvs, size, nil
}
