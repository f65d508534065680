package copr

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/kvproto/pkg/errorpb"
	"github.com/pingcap/kvproto/pkg/kvrpcpb"
)

// pageSize is the number of pairs asked of the ScanFunc per call.
const pageSize = 1024

// lockedError reports a lock that blocks the read; it becomes
// Response.Locked.
type lockedError struct {
	lock *kvrpcpb.LockInfo
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("key %q is locked by transaction %d", e.lock.GetKey(), e.lock.GetLockVersion())
}

// regionError reports a region problem met by the scan; it becomes
// Response.RegionError.
type regionError struct {
	err *errorpb.Error
}

func (e *regionError) Error() string {
	return "region error: " + e.err.String()
}

// storageError is any other failure of the underlying read; it becomes
// Response.OtherError.
type storageError struct {
	err error
}

func (e *storageError) Error() string { return e.err.Error() }

func (e *storageError) Unwrap() error { return e.err }

// scanParams are what every ScanRequest of one coprocessor request shares.
type scanParams struct {
	ctx     context.Context
	scan    ScanFunc
	reqCtx  *kvrpcpb.Context
	startTS uint64
	// pagingSize is the request's paging_size: 0 without paging, else the
	// number of result rows after which a DAG request stops.
	pagingSize uint64
}

// rangeScanner pages through the coprocessor key ranges with a ScanFunc,
// in ascending or descending key order.
type rangeScanner struct {
	scanParams
	ranges  []*coprocessor.KeyRange // in scan order
	desc    bool
	keyOnly bool

	limit   int    // pairs asked per ScanRequest
	cur     int    // index of the range being read
	resume  []byte // where the next page of ranges[cur] starts, if resumed
	resumed bool
	// scannedTo is where the part of the ranges read so far ends, in scan
	// order: the exclusive end (ascending) or inclusive start (descending)
	// of what has been read, once anything has.
	scannedTo []byte
	counts    []int64 // pairs read per range, in request order
	scanned   uint64  // pairs read in total
	bytes     uint64  // key and value bytes read in total
}

// newRangeScanner checks the ranges and prepares to read them.
func newRangeScanner(p scanParams, ranges []*coprocessor.KeyRange, desc, keyOnly bool) (*rangeScanner, error) {
	for i, r := range ranges {
		if len(r.GetEnd()) > 0 && bytes.Compare(r.GetStart(), r.GetEnd()) >= 0 {
			return nil, fmt.Errorf("invalid range %d: start %x is not below end %x", i, r.GetStart(), r.GetEnd())
		}
	}
	ordered := slices.Clone(ranges)
	if desc {
		slices.Reverse(ordered)
	}
	limit := pageSize
	if p.pagingSize > 0 {
		limit = int(min(p.pagingSize, pageSize))
	}
	return &rangeScanner{
		scanParams: p,
		ranges:     ordered,
		desc:       desc,
		keyOnly:    keyOnly,
		limit:      limit,
		counts:     make([]int64, len(ranges)),
	}, nil
}

// scannedRange is the key range read so far: from the first range's start
// to where the reading got (ascending), or from there to the first range's
// end (descending). A paged DAG response carries it, and TiDB continues
// after it.
func (s *rangeScanner) scannedRange() *coprocessor.KeyRange {
	if len(s.ranges) == 0 {
		return &coprocessor.KeyRange{}
	}
	if s.desc {
		return &coprocessor.KeyRange{Start: s.scannedTo, End: s.ranges[0].GetEnd()}
	}
	return &coprocessor.KeyRange{Start: s.ranges[0].GetStart(), End: s.scannedTo}
}

// next returns the next non-empty page of pairs, or nil once every range is
// exhausted.
func (s *rangeScanner) next() ([]*kvrpcpb.KvPair, error) {
	for s.cur < len(s.ranges) {
		if err := s.ctx.Err(); err != nil {
			return nil, &storageError{err: err}
		}
		pairs, err := s.readPage()
		if err != nil {
			return nil, err
		}
		s.account(pairs)
		if err := s.advance(pairs); err != nil {
			return nil, err
		}
		if len(pairs) > 0 {
			return pairs, nil
		}
	}
	return nil, nil
}

// readPage reads one page of the current range.
func (s *rangeScanner) readPage() ([]*kvrpcpb.KvPair, error) {
	resp, err := s.scan(s.ctx, s.pageRequest())
	if err != nil {
		return nil, &storageError{err: fmt.Errorf("scan: %w", err)}
	}
	if resp.GetRegionError() != nil {
		return nil, &regionError{err: resp.GetRegionError()}
	}
	if err := keyError(resp.GetError()); err != nil {
		return nil, err
	}
	for _, p := range resp.GetPairs() {
		if err := keyError(p.GetError()); err != nil {
			return nil, err
		}
	}
	return resp.GetPairs(), nil
}

// pageRequest builds the ScanRequest for the next page of the current
// range. In reverse, client-go's convention applies: StartKey is the
// exclusive upper bound and EndKey the inclusive lower bound.
func (s *rangeScanner) pageRequest() *kvrpcpb.ScanRequest {
	r := s.ranges[s.cur]
	req := &kvrpcpb.ScanRequest{
		Context: s.reqCtx,
		Version: s.startTS,
		Limit:   uint32(s.limit),
		KeyOnly: s.keyOnly,
		Reverse: s.desc,
	}
	if s.desc {
		req.StartKey, req.EndKey = r.GetEnd(), r.GetStart()
	} else {
		req.StartKey, req.EndKey = r.GetStart(), r.GetEnd()
	}
	if s.resumed {
		req.StartKey = s.resume
	}
	return req
}

// advance moves past a page: to the rest of the range after a full page,
// else to the next range. It fails if a full page would not move the scan
// forward, which only a faulty ScanFunc causes.
func (s *rangeScanner) advance(pairs []*kvrpcpb.KvPair) error {
	if len(pairs) < s.limit {
		s.scannedTo = s.ranges[s.cur].GetEnd()
		if s.desc {
			s.scannedTo = s.ranges[s.cur].GetStart()
		}
		s.cur++
		s.resume, s.resumed = nil, false
		return nil
	}
	last := pairs[len(pairs)-1].GetKey()
	next := append(slices.Clone(last), 0)
	if s.desc {
		next = slices.Clone(last)
	}
	if s.resumed && !s.beyond(next) {
		return &storageError{err: fmt.Errorf("scan did not advance past key %x", s.resume)}
	}
	s.resume, s.resumed = next, true
	s.scannedTo = next
	return nil
}

// beyond reports whether key is further in scan order than the resume key.
func (s *rangeScanner) beyond(key []byte) bool {
	if s.desc {
		return bytes.Compare(key, s.resume) < 0
	}
	return bytes.Compare(key, s.resume) > 0
}

func (s *rangeScanner) account(pairs []*kvrpcpb.KvPair) {
	idx := s.cur
	if s.desc {
		idx = len(s.ranges) - 1 - s.cur
	}
	s.counts[idx] += int64(len(pairs))
	s.scanned += uint64(len(pairs))
	for _, p := range pairs {
		s.bytes += uint64(len(p.GetKey()) + len(p.GetValue()))
	}
}

// keyError turns a KeyError into a lockedError or a storageError.
func keyError(ke *kvrpcpb.KeyError) error {
	if ke == nil {
		return nil
	}
	if ke.GetLocked() != nil {
		return &lockedError{lock: ke.GetLocked()}
	}
	return &storageError{err: fmt.Errorf("key error: %s", ke.String())}
}

// forEachPair reads all ranges in ascending order and calls fn per pair.
func forEachPair(p scanParams, ranges []*coprocessor.KeyRange, keyOnly bool, fn func(key, value []byte) error) error {
	s, err := newRangeScanner(p, ranges, false, keyOnly)
	if err != nil {
		return err
	}
	for {
		pairs, err := s.next()
		if err != nil || pairs == nil {
			return err
		}
		for _, kv := range pairs {
			if err := fn(kv.GetKey(), kv.GetValue()); err != nil {
				return err
			}
		}
	}
}
