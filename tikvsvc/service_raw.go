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
	region, regionErr := s.regions.Check(ctx)
	if regionErr != nil {
		return nil, 0, regionErr, nil
	}
	if regionErr := checkRawKeys(region, keys...); regionErr != nil {
		return nil, 0, regionErr, nil
	}
	cf, err := parseCF(cfName)
	return region, cf, nil, err
}

// rawCall runs a raw command after rawRequest's checks; run gets the
// region and the column family. failed builds the response for a failed
// check or a failure of run, which answer splits: a region error alone, or
// any other error alone.
func rawCall[Resp any](s *Service, kvctx *kvrpcpb.Context, cfName string, keys [][]byte,
	run func(*metapb.Region, engine.CF) (Resp, error), failed func(*errorpb.Error, error) Resp) (Resp, error) {
	region, cf, regionErr, err := s.rawRequest(kvctx, cfName, keys...)
	if regionErr != nil || err != nil {
		return failed(regionErr, err), nil
	}
	resp, err := run(region, cf)
	return answer(resp, err, failed), nil
}

func (s *Service) RawGet(ctx context.Context, req *kvrpcpb.RawGetRequest) (*kvrpcpb.RawGetResponse, error) {
	return rawCall(s, req.GetContext(), req.GetCf(), [][]byte{req.GetKey()},
		func(_ *metapb.Region, cf engine.CF) (*kvrpcpb.RawGetResponse, error) {
			v, found, err := s.raw.get(ctx, req.GetContext(), cf, req.GetKey())
			return &kvrpcpb.RawGetResponse{Value: v.value, NotFound: !found}, err
		},
		func(e *errorpb.Error, err error) *kvrpcpb.RawGetResponse {
			return &kvrpcpb.RawGetResponse{RegionError: e, Error: errString(err)}
		})
}

func (s *Service) RawBatchGet(ctx context.Context, req *kvrpcpb.RawBatchGetRequest) (*kvrpcpb.RawBatchGetResponse, error) {
	return rawCall(s, req.GetContext(), req.GetCf(), req.GetKeys(),
		func(_ *metapb.Region, cf engine.CF) (*kvrpcpb.RawBatchGetResponse, error) {
			pairs, err := s.raw.batchGet(ctx, req.GetContext(), cf, req.GetKeys())
			return &kvrpcpb.RawBatchGetResponse{Pairs: pairs}, err
		},
		func(e *errorpb.Error, err error) *kvrpcpb.RawBatchGetResponse {
			return &kvrpcpb.RawBatchGetResponse{RegionError: e, Pairs: abortPairs(err)}
		})
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
	regionErr, err = splitRegionError(s.raw.write(ctx, kvctx, cf, writes))
	return regionErr, errString(err)
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
	return rawCall(s, req.GetContext(), req.GetCf(), nil,
		func(region *metapb.Region, cf engine.CF) (*kvrpcpb.RawScanResponse, error) {
			limit := int(req.GetLimit())
			if limit == 0 {
				return &kvrpcpb.RawScanResponse{}, nil
			}
			r := clampToRegion(rawScanRange{start: req.GetStartKey(), end: req.GetEndKey(), reverse: req.GetReverse()}, region)
			var kvs []*kvrpcpb.KvPair
			err := s.raw.scan(ctx, req.GetContext(), cf, r, req.GetKeyOnly(), func(key, value []byte) bool {
				kvs = append(kvs, &kvrpcpb.KvPair{Key: key, Value: value})
				return len(kvs) < limit
			})
			return &kvrpcpb.RawScanResponse{Kvs: kvs}, err
		},
		func(e *errorpb.Error, err error) *kvrpcpb.RawScanResponse {
			return &kvrpcpb.RawScanResponse{RegionError: e, Kvs: abortPairs(err)}
		})
}

// RawBatchScan scans several ranges of the region from one snapshot, up to
// each_limit pairs from each, in the order given, as TiKV does: a range
// with an empty end key ends where the next range starts (the last one is
// unbounded), and a range that is empty by its order (start not below its
// end, or not above it when reverse) fails the request.
func (s *Service) RawBatchScan(ctx context.Context, req *kvrpcpb.RawBatchScanRequest) (*kvrpcpb.RawBatchScanResponse, error) {
	return rawCall(s, req.GetContext(), req.GetCf(), nil,
		func(region *metapb.Region, cf engine.CF) (*kvrpcpb.RawBatchScanResponse, error) {
			ranges, err := batchScanRanges(req.GetRanges(), req.GetReverse())
			limit := int(req.GetEachLimit())
			if err != nil || limit <= 0 {
				return &kvrpcpb.RawBatchScanResponse{}, err
			}
			for i := range ranges {
				ranges[i] = clampToRegion(ranges[i], region)
			}
			var kvs []*kvrpcpb.KvPair
			counts := make([]int, len(ranges))
			err = s.raw.scanRanges(ctx, req.GetContext(), cf, ranges, req.GetKeyOnly(), func(i int, key, value []byte) bool {
				kvs = append(kvs, &kvrpcpb.KvPair{Key: key, Value: value})
				counts[i]++
				return counts[i] < limit
			})
			return &kvrpcpb.RawBatchScanResponse{Kvs: kvs}, err
		},
		func(e *errorpb.Error, err error) *kvrpcpb.RawBatchScanResponse {
			return &kvrpcpb.RawBatchScanResponse{RegionError: e, Kvs: abortPairs(err)}
		})
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
	return rawCall(s, req.GetContext(), req.GetCf(), nil,
		func(region *metapb.Region, cf engine.CF) (*kvrpcpb.RawDeleteRangeResponse, error) {
			// Never delete past the region: an empty end key means the region's end.
			r := clampToRegion(rawScanRange{start: req.GetStartKey(), end: req.GetEndKey()}, region)
			return &kvrpcpb.RawDeleteRangeResponse{}, s.raw.deleteRange(ctx, req.GetContext(), cf, r.start, r.end)
		},
		func(e *errorpb.Error, err error) *kvrpcpb.RawDeleteRangeResponse {
			return &kvrpcpb.RawDeleteRangeResponse{RegionError: e, Error: errString(err)}
		})
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
	return rawCall(s, req.GetContext(), req.GetCf(), [][]byte{req.GetKey()},
		func(_ *metapb.Region, cf engine.CF) (*kvrpcpb.RawGetKeyTTLResponse, error) {
			v, found, err := s.raw.get(ctx, req.GetContext(), cf, req.GetKey())
			if err != nil || !found {
				return &kvrpcpb.RawGetKeyTTLResponse{NotFound: true}, err
			}
			var ttl uint64
			if now := uint64(s.raw.now().Unix()); v.expireAt > now {
				ttl = v.expireAt - now
			}
			return &kvrpcpb.RawGetKeyTTLResponse{Ttl: ttl}, nil
		},
		func(e *errorpb.Error, err error) *kvrpcpb.RawGetKeyTTLResponse {
			return &kvrpcpb.RawGetKeyTTLResponse{RegionError: e, Error: errString(err)}
		})
}

func (s *Service) RawCompareAndSwap(ctx context.Context, req *kvrpcpb.RawCASRequest) (*kvrpcpb.RawCASResponse, error) {
	return rawCall(s, req.GetContext(), req.GetCf(), [][]byte{req.GetKey()},
		func(region *metapb.Region, cf engine.CF) (*kvrpcpb.RawCASResponse, error) {
			if regionErr := entryTooLarge(region.GetId(), len(req.GetKey())+len(req.GetValue())); regionErr != nil {
				return &kvrpcpb.RawCASResponse{RegionError: regionErr}, nil
			}
			w := rawWrite{key: req.GetKey(), value: req.GetValue(), ttl: req.GetTtl()}
			res, err := s.raw.compareAndSwap(ctx, req.GetContext(), cf, w, req.GetPreviousNotExist(), req.GetPreviousValue())
			return &kvrpcpb.RawCASResponse{Succeed: res.succeed, PreviousNotExist: res.prevNotExist, PreviousValue: res.prevValue}, err
		},
		func(e *errorpb.Error, err error) *kvrpcpb.RawCASResponse {
			return &kvrpcpb.RawCASResponse{RegionError: e, Error: errString(err)}
		})
}

// RawChecksum sums the region's part of each range (the default column
// family), as the client adds up the answers of consecutive regions.
func (s *Service) RawChecksum(ctx context.Context, req *kvrpcpb.RawChecksumRequest) (*kvrpcpb.RawChecksumResponse, error) {
	return rawCall(s, req.GetContext(), "", nil,
		func(region *metapb.Region, _ engine.CF) (*kvrpcpb.RawChecksumResponse, error) {
			if req.GetAlgorithm() != kvrpcpb.ChecksumAlgorithm_Crc64_Xor {
				return &kvrpcpb.RawChecksumResponse{Error: "unsupported checksum algorithm " + req.GetAlgorithm().String()}, nil
			}
			ranges := make([]*kvrpcpb.KeyRange, len(req.GetRanges()))
			for i, kr := range req.GetRanges() {
				r := clampToRegion(rawScanRange{start: kr.GetStartKey(), end: kr.GetEndKey()}, region)
				ranges[i] = &kvrpcpb.KeyRange{StartKey: r.start, EndKey: r.end}
			}
			sum, kvs, size, err := s.raw.checksum(ctx, req.GetContext(), ranges)
			return &kvrpcpb.RawChecksumResponse{Checksum: sum, TotalKvs: kvs, TotalBytes: size}, err
		},
		func(e *errorpb.Error, err error) *kvrpcpb.RawChecksumResponse {
			return &kvrpcpb.RawChecksumResponse{RegionError: e, Error: errString(err)}
		})
}
