package tikvsvc

import (
	"bytes"
	"context"
	"fmt"

	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/tinykv/tinykv/engine"
)

// rawRequest checks a raw request's region, keys and column family.
func (s *Service) rawRequest(ctx *kvrpcpb.Context, cfName string, keys ...[]byte) (*metapb.Region, engine.CF, *errorpb.Error, error) {
	region, regionErr := s.regions.check(ctx)
	if regionErr != nil {
		return nil, 0, regionErr, nil
	}
	if regionErr := checkRawKeys(region, keys...); regionErr != nil {
		return nil, 0, regionErr, nil
	}
	cf, err := parseCF(cfName)
	return region, cf, nil, err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (s *Service) RawGet(ctx context.Context, req *kvrpcpb.RawGetRequest) (*kvrpcpb.RawGetResponse, error) {
	_, cf, regionErr, err := s.rawRequest(req.GetContext(), req.GetCf(), req.GetKey())
	if regionErr != nil || err != nil {
		return &kvrpcpb.RawGetResponse{RegionError: regionErr, Error: errString(err)}, nil
	}
	v, found, err := s.raw.get(ctx, cf, req.GetKey())
	if err != nil {
		return &kvrpcpb.RawGetResponse{Error: err.Error()}, nil
	}
	return &kvrpcpb.RawGetResponse{Value: v.value, NotFound: !found}, nil
}

func (s *Service) RawBatchGet(ctx context.Context, req *kvrpcpb.RawBatchGetRequest) (*kvrpcpb.RawBatchGetResponse, error) {
	_, cf, regionErr, err := s.rawRequest(req.GetContext(), req.GetCf(), req.GetKeys()...)
	if regionErr != nil {
		return &kvrpcpb.RawBatchGetResponse{RegionError: regionErr}, nil
	}
	var pairs []*kvrpcpb.KvPair
	if err == nil {
		pairs, err = s.raw.batchGet(ctx, cf, req.GetKeys())
	}
	if err != nil {
		return &kvrpcpb.RawBatchGetResponse{Pairs: []*kvrpcpb.KvPair{{Error: &kvrpcpb.KeyError{Abort: err.Error()}}}}, nil
	}
	return &kvrpcpb.RawBatchGetResponse{Pairs: pairs}, nil
}

// rawWriteRequest checks and applies a raw write, returning the response
// fields every raw write response has.
func (s *Service) rawWriteRequest(ctx context.Context, kvctx *kvrpcpb.Context, cfName string, writes []rawWrite) (*errorpb.Error, string) {
	keys := make([][]byte, len(writes))
	size := 0
	for i, w := range writes {
		keys[i] = w.key
		size += len(w.key) + len(w.value)
	}
	region, cf, regionErr, err := s.rawRequest(kvctx, cfName, keys...)
	if regionErr != nil || err != nil {
		return regionErr, errString(err)
	}
	if regionErr := entryTooLarge(region.GetId(), size); regionErr != nil {
		return regionErr, ""
	}
	return nil, errString(s.raw.write(ctx, cf, writes))
}

func (s *Service) RawPut(ctx context.Context, req *kvrpcpb.RawPutRequest) (*kvrpcpb.RawPutResponse, error) {
	regionErr, msg := s.rawWriteRequest(ctx, req.GetContext(), req.GetCf(),
		[]rawWrite{{key: req.GetKey(), value: req.GetValue(), ttl: req.GetTtl()}})
	return &kvrpcpb.RawPutResponse{RegionError: regionErr, Error: msg}, nil
}

func (s *Service) RawBatchPut(ctx context.Context, req *kvrpcpb.RawBatchPutRequest) (*kvrpcpb.RawBatchPutResponse, error) {
	writes := make([]rawWrite, len(req.GetPairs()))
	for i, pair := range req.GetPairs() {
		writes[i] = rawWrite{key: pair.GetKey(), value: pair.GetValue(), ttl: batchTTL(req, i)}
	}
	regionErr, msg := s.rawWriteRequest(ctx, req.GetContext(), req.GetCf(), writes)
	return &kvrpcpb.RawBatchPutResponse{RegionError: regionErr, Error: msg}, nil
}

// batchTTL returns the TTL of pair i: its own, or the one TTL given for the
// whole batch.
func batchTTL(req *kvrpcpb.RawBatchPutRequest, i int) uint64 {
	switch ttls := req.GetTtls(); {
	case len(ttls) == len(req.GetPairs()):
		return ttls[i]
	case len(ttls) == 1:
		return ttls[0]
	default:
		return req.GetTtl() //nolint:staticcheck // deprecated single TTL, still sent by old clients
	}
}

func (s *Service) RawDelete(ctx context.Context, req *kvrpcpb.RawDeleteRequest) (*kvrpcpb.RawDeleteResponse, error) {
	regionErr, msg := s.rawWriteRequest(ctx, req.GetContext(), req.GetCf(), []rawWrite{{key: req.GetKey(), del: true}})
	return &kvrpcpb.RawDeleteResponse{RegionError: regionErr, Error: msg}, nil
}

func (s *Service) RawBatchDelete(ctx context.Context, req *kvrpcpb.RawBatchDeleteRequest) (*kvrpcpb.RawBatchDeleteResponse, error) {
	writes := make([]rawWrite, len(req.GetKeys()))
	for i, key := range req.GetKeys() {
		writes[i] = rawWrite{key: key, del: true}
	}
	regionErr, msg := s.rawWriteRequest(ctx, req.GetContext(), req.GetCf(), writes)
	return &kvrpcpb.RawBatchDeleteResponse{RegionError: regionErr, Error: msg}, nil
}

// RawScan returns up to limit live pairs. Forward scans cover
// [start_key, end_key); reverse scans go down from start_key (exclusive) to
// end_key (inclusive).
func (s *Service) RawScan(ctx context.Context, req *kvrpcpb.RawScanRequest) (*kvrpcpb.RawScanResponse, error) {
	region, cf, regionErr, err := s.rawRequest(req.GetContext(), req.GetCf())
	if regionErr != nil {
		return &kvrpcpb.RawScanResponse{RegionError: regionErr}, nil
	}
	var kvs []*kvrpcpb.KvPair
	if err == nil && req.GetLimit() > 0 {
		r := clampToRegion(rawScanRange{start: req.GetStartKey(), end: req.GetEndKey(), reverse: req.GetReverse()}, region)
		limit := int(req.GetLimit())
		err = s.raw.scan(ctx, cf, r, req.GetKeyOnly(), func(key, value []byte) bool {
			kvs = append(kvs, &kvrpcpb.KvPair{Key: key, Value: value})
			return len(kvs) < limit
		})
	}
	if err != nil {
		return &kvrpcpb.RawScanResponse{Kvs: []*kvrpcpb.KvPair{{Error: &kvrpcpb.KeyError{Abort: err.Error()}}}}, nil
	}
	return &kvrpcpb.RawScanResponse{Kvs: kvs}, nil
}

// RawBatchScan scans several ranges of the region from one snapshot, up to
// each_limit pairs from each, in the order given, as TiKV does: a range
// with an empty end key ends where the next range starts (the last one is
// unbounded), and a range that is empty by its order (start not below its
// end, or not above it when reverse) fails the request.
func (s *Service) RawBatchScan(ctx context.Context, req *kvrpcpb.RawBatchScanRequest) (*kvrpcpb.RawBatchScanResponse, error) {
	region, cf, regionErr, err := s.rawRequest(req.GetContext(), req.GetCf())
	if regionErr != nil {
		return &kvrpcpb.RawBatchScanResponse{RegionError: regionErr}, nil
	}
	var ranges []rawScanRange
	if err == nil {
		ranges, err = batchScanRanges(req.GetRanges(), req.GetReverse())
	}
	var kvs []*kvrpcpb.KvPair
	if limit := int(req.GetEachLimit()); err == nil && limit > 0 {
		for i := range ranges {
			ranges[i] = clampToRegion(ranges[i], region)
		}
		counts := make([]int, len(ranges))
		err = s.raw.scanRanges(ctx, cf, ranges, req.GetKeyOnly(), func(i int, key, value []byte) bool {
			kvs = append(kvs, &kvrpcpb.KvPair{Key: key, Value: value})
			counts[i]++
			return counts[i] < limit
		})
	}
	if err != nil {
		return &kvrpcpb.RawBatchScanResponse{Kvs: []*kvrpcpb.KvPair{{Error: &kvrpcpb.KeyError{Abort: err.Error()}}}}, nil
	}
	return &kvrpcpb.RawBatchScanResponse{Kvs: kvs}, nil
}

// batchScanRanges turns RawBatchScan's key ranges into scans: an empty end
// key is the next range's start key (unbounded for the last range).
func batchScanRanges(keyRanges []*kvrpcpb.KeyRange, reverse bool) ([]rawScanRange, error) {
	ranges := make([]rawScanRange, len(keyRanges))
	for i, kr := range keyRanges {
		end := kr.GetEndKey()
		if len(end) == 0 && i+1 < len(keyRanges) {
			end = keyRanges[i+1].GetStartKey()
		}
		cmp := bytes.Compare(kr.GetStartKey(), end)
		if len(end) > 0 && (!reverse && cmp >= 0 || reverse && cmp <= 0) {
			return nil, fmt.Errorf("invalid key ranges: range %d from %q to %q is empty (reverse %t)",
				i, kr.GetStartKey(), end, reverse)
		}
		ranges[i] = rawScanRange{start: kr.GetStartKey(), end: end, reverse: reverse}
	}
	return ranges, nil
}

// clampToRegion narrows a scan to the region's raw key range.
func clampToRegion(r rawScanRange, region *metapb.Region) rawScanRange {
	lower, upper := &r.start, &r.end
	if r.reverse {
		lower, upper = &r.end, &r.start
	}
	if start := region.GetStartKey(); len(start) > 0 && string(*lower) < string(start) {
		*lower = start
	}
	if end := region.GetEndKey(); len(end) > 0 && (len(*upper) == 0 || string(*upper) > string(end)) {
		*upper = end
	}
	return r
}

func (s *Service) RawDeleteRange(ctx context.Context, req *kvrpcpb.RawDeleteRangeRequest) (*kvrpcpb.RawDeleteRangeResponse, error) {
	region, cf, regionErr, err := s.rawRequest(req.GetContext(), req.GetCf())
	if regionErr != nil || err != nil {
		return &kvrpcpb.RawDeleteRangeResponse{RegionError: regionErr, Error: errString(err)}, nil
	}
	// Never delete past the region: an empty end key means the region's end.
	r := clampToRegion(rawScanRange{start: req.GetStartKey(), end: req.GetEndKey()}, region)
	err = s.raw.deleteRange(ctx, cf, r.start, r.end)
	return &kvrpcpb.RawDeleteRangeResponse{Error: errString(err)}, nil
}

// coprocessorPluginsDisabled is TiKV's answer to RawCoprocessor when it
// runs without a coprocessor plugin directory, its default. TinyKV loads no
// plugins.
const coprocessorPluginsDisabled = "Coprocessor plugin is disabled!"

// RawCoprocessor answers as TiKV does by default: with the error in the
// response (client-go returns it to the caller), before any region check.
func (s *Service) RawCoprocessor(context.Context, *kvrpcpb.RawCoprocessorRequest) (*kvrpcpb.RawCoprocessorResponse, error) {
	return &kvrpcpb.RawCoprocessorResponse{Error: coprocessorPluginsDisabled}, nil
}

// RawGetKeyTTL returns the remaining TTL in seconds, 0 for a key without one.
func (s *Service) RawGetKeyTTL(ctx context.Context, req *kvrpcpb.RawGetKeyTTLRequest) (*kvrpcpb.RawGetKeyTTLResponse, error) {
	_, cf, regionErr, err := s.rawRequest(req.GetContext(), req.GetCf(), req.GetKey())
	if regionErr != nil || err != nil {
		return &kvrpcpb.RawGetKeyTTLResponse{RegionError: regionErr, Error: errString(err)}, nil
	}
	v, found, err := s.raw.get(ctx, cf, req.GetKey())
	if err != nil {
		return &kvrpcpb.RawGetKeyTTLResponse{Error: err.Error()}, nil
	}
	if !found {
		return &kvrpcpb.RawGetKeyTTLResponse{NotFound: true}, nil
	}
	var ttl uint64
	if now := uint64(s.raw.now().Unix()); v.expireAt > now {
		ttl = v.expireAt - now
	}
	return &kvrpcpb.RawGetKeyTTLResponse{Ttl: ttl}, nil
}

func (s *Service) RawCompareAndSwap(ctx context.Context, req *kvrpcpb.RawCASRequest) (*kvrpcpb.RawCASResponse, error) {
	region, cf, regionErr, err := s.rawRequest(req.GetContext(), req.GetCf(), req.GetKey())
	if regionErr != nil || err != nil {
		return &kvrpcpb.RawCASResponse{RegionError: regionErr, Error: errString(err)}, nil
	}
	if regionErr := entryTooLarge(region.GetId(), len(req.GetKey())+len(req.GetValue())); regionErr != nil {
		return &kvrpcpb.RawCASResponse{RegionError: regionErr}, nil
	}
	w := rawWrite{key: req.GetKey(), value: req.GetValue(), ttl: req.GetTtl()}
	res, err := s.raw.compareAndSwap(ctx, cf, w, req.GetPreviousNotExist(), req.GetPreviousValue())
	if err != nil {
		return &kvrpcpb.RawCASResponse{Error: err.Error()}, nil
	}
	return &kvrpcpb.RawCASResponse{Succeed: res.succeed, PreviousNotExist: res.prevNotExist, PreviousValue: res.prevValue}, nil
}

func (s *Service) RawChecksum(ctx context.Context, req *kvrpcpb.RawChecksumRequest) (*kvrpcpb.RawChecksumResponse, error) {
	region, regionErr := s.regions.check(req.GetContext())
	if regionErr != nil {
		return &kvrpcpb.RawChecksumResponse{RegionError: regionErr}, nil
	}
	if req.GetAlgorithm() != kvrpcpb.ChecksumAlgorithm_Crc64_Xor {
		return &kvrpcpb.RawChecksumResponse{Error: "unsupported checksum algorithm " + req.GetAlgorithm().String()}, nil
	}
	// Sum only the region's part of each range, as the client adds up the
	// answers of consecutive regions.
	ranges := make([]*kvrpcpb.KeyRange, len(req.GetRanges()))
	for i, kr := range req.GetRanges() {
		r := clampToRegion(rawScanRange{start: kr.GetStartKey(), end: kr.GetEndKey()}, region)
		ranges[i] = &kvrpcpb.KeyRange{StartKey: r.start, EndKey: r.end}
	}
	sum, kvs, size, err := s.raw.checksum(ctx, ranges)
	if err != nil {
		return &kvrpcpb.RawChecksumResponse{Error: err.Error()}, nil
	}
	return &kvrpcpb.RawChecksumResponse{Checksum: sum, TotalKvs: kvs, TotalBytes: size}, nil
}
