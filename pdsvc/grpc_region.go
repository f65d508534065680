package pdsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
)

// RegionHeartbeat consumes a store's region reports. It answers a rejected
// report with an error, and sends operator steps for the regions a store
// leads on the stream that store last reported on (see coordinator).
func (p *pdService) RegionHeartbeat(stream pdpb.PD_RegionHeartbeatServer) error {
	if err := p.s.checkReady(); err != nil {
		return err
	}
	hs := newHBStream(stream)
	defer hs.close()
	defer p.s.co.streams.unbind(hs)
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := p.s.validate(req.GetHeader()); err != nil {
			return err
		}
		if !p.s.cluster.isBootstrapped() {
			return hs.reply(&pdpb.RegionHeartbeatResponse{Header: p.s.notBootstrappedHeader()})
		}
		if err := p.handleRegionHeartbeat(stream.Context(), hs, req); err != nil {
			if sendErr := hs.reply(p.heartbeatError(req, err)); sendErr != nil {
				return sendErr
			}
		}
	}
}

// handleRegionHeartbeat records a leader's report that arrived on hs and
// lets the coordinator answer it with an operator step.
func (p *pdService) handleRegionHeartbeat(ctx context.Context, hs *hbStream, req *pdpb.RegionHeartbeatRequest) error {
	storeID := req.GetLeader().GetStoreId()
	if _, err := p.s.cluster.getStore(storeID); err != nil {
		return err
	}
	if err := validateHeartbeat(req); err != nil {
		return err
	}
	p.s.co.streams.bind(storeID, hs)
	region := &regionInfo{
		meta:         req.GetRegion(),
		leader:       req.GetLeader(),
		downPeers:    req.GetDownPeers(),
		pendingPeers: req.GetPendingPeers(),
		term:         req.GetTerm(),
		approxSize:   approximateMiB(req.GetApproximateSize()),
		approxKeys:   req.GetApproximateKeys(),
		writtenBytes: req.GetBytesWritten(),
		writtenKeys:  req.GetKeysWritten(),
		readBytes:    req.GetBytesRead(),
		readKeys:     req.GetKeysRead(),
		interval:     req.GetInterval(),
	}
	if err := p.s.cluster.processRegionHeartbeat(ctx, region); err != nil {
		return err
	}
	p.s.hot.observe(region)
	p.s.co.onRegionHeartbeat(ctx, region)
	return nil
}

func validateHeartbeat(req *pdpb.RegionHeartbeatRequest) error {
	region := req.GetRegion()
	switch {
	case req.GetLeader() == nil:
		return fmt.Errorf("invalid request leader, region %d: %w", region.GetId(), ErrInvalidValue)
	case region.GetId() == 0:
		return fmt.Errorf("invalid request region: %w", ErrInvalidValue)
	case len(region.GetPeers()) == 0:
		return fmt.Errorf("invalid region, zero region peer count: region %d: %w", region.GetId(), ErrInvalidValue)
	case len(region.GetEndKey()) > 0 && bytes.Compare(region.GetStartKey(), region.GetEndKey()) >= 0:
		return fmt.Errorf("invalid region range [%x, %x): %w", region.GetStartKey(), region.GetEndKey(), ErrInvalidValue)
	}
	return nil
}

func (p *pdService) heartbeatError(req *pdpb.RegionHeartbeatRequest, err error) *pdpb.RegionHeartbeatResponse {
	return &pdpb.RegionHeartbeatResponse{
		Header:      p.s.unknownHeader(err),
		RegionId:    req.GetRegion().GetId(),
		RegionEpoch: req.GetRegion().GetRegionEpoch(),
		TargetPeer:  req.GetLeader(),
	}
}

// regionResponse builds a GetRegion-style response; a nil region is "not
// found", which PD reports as a success with no region.
func (p *pdService) regionResponse(r *regionInfo) *pdpb.GetRegionResponse {
	if r == nil {
		return &pdpb.GetRegionResponse{Header: p.s.header()}
	}
	return &pdpb.GetRegionResponse{
		Header:       p.s.header(),
		Region:       r.meta,
		Leader:       r.leader,
		DownPeers:    r.downPeers,
		PendingPeers: r.pendingPeers,
	}
}

// clusterRequest runs the checks shared by requests that need a bootstrapped cluster and reports
// the header to answer with when the lookup cannot proceed.
func (p *pdService) clusterRequest(header *pdpb.RequestHeader) (*pdpb.ResponseHeader, error) {
	if err := p.s.validate(header); err != nil {
		return nil, err
	}
	if !p.s.cluster.isBootstrapped() {
		return p.s.notBootstrappedHeader(), nil
	}
	return nil, nil
}

func (p *pdService) GetRegion(ctx context.Context, req *pdpb.GetRegionRequest) (*pdpb.GetRegionResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.GetRegionResponse{Header: h}, err
	}
	return p.regionResponse(p.s.cluster.regionByKey(req.GetRegionKey())), nil
}

func (p *pdService) GetPrevRegion(ctx context.Context, req *pdpb.GetRegionRequest) (*pdpb.GetRegionResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.GetRegionResponse{Header: h}, err
	}
	return p.regionResponse(p.s.cluster.prevRegion(req.GetRegionKey())), nil
}

func (p *pdService) GetRegionByID(ctx context.Context, req *pdpb.GetRegionByIDRequest) (*pdpb.GetRegionResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.GetRegionResponse{Header: h}, err
	}
	return p.regionResponse(p.s.cluster.regionByID(req.GetRegionId())), nil
}

// ScanRegions fills both the current and the legacy response shapes.
func (p *pdService) ScanRegions(ctx context.Context, req *pdpb.ScanRegionsRequest) (*pdpb.ScanRegionsResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.ScanRegionsResponse{Header: h}, err
	}
	resp := &pdpb.ScanRegionsResponse{Header: p.s.header()}
	for _, r := range p.s.cluster.scanRegions(req.GetStartKey(), req.GetEndKey(), int(req.GetLimit())) {
		pb := r.toPB()
		resp.Regions = append(resp.Regions, pb)
		resp.RegionMetas = append(resp.RegionMetas, pb.Region)
		resp.Leaders = append(resp.Leaders, pb.Leader)
	}
	return resp, nil
}

func (p *pdService) BatchScanRegions(ctx context.Context, req *pdpb.BatchScanRegionsRequest) (*pdpb.BatchScanRegionsResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.BatchScanRegionsResponse{Header: h}, err
	}
	if err := validateKeyRanges(req.GetRanges()); err != nil {
		return &pdpb.BatchScanRegionsResponse{Header: p.s.unknownHeader(err)}, nil
	}
	regions, err := p.s.cluster.batchScan(req.GetRanges(), int(req.GetLimit()), req.GetContainAllKeyRange())
	if err != nil {
		return &pdpb.BatchScanRegionsResponse{
			Header: p.s.errorHeader(pdpb.ErrorType_REGIONS_NOT_CONTAIN_ALL_KEY_RANGE, err.Error()),
		}, nil
	}
	resp := &pdpb.BatchScanRegionsResponse{Header: p.s.header()}
	for _, r := range regions {
		resp.Regions = append(resp.Regions, r.toPB())
	}
	return resp, nil
}

// validateKeyRanges requires ordered, non-overlapping ranges with start <= end.
func validateKeyRanges(ranges []*pdpb.KeyRange) error {
	for i, kr := range ranges {
		if i > 0 && bytes.Compare(kr.GetStartKey(), ranges[i-1].GetEndKey()) < 0 {
			return errors.New("invalid key range, ranges overlapped")
		}
		if len(kr.GetEndKey()) > 0 && bytes.Compare(kr.GetStartKey(), kr.GetEndKey()) > 0 {
			return errors.New("invalid key range, start key > end key")
		}
	}
	return nil
}

func (p *pdService) AskSplit(ctx context.Context, req *pdpb.AskSplitRequest) (*pdpb.AskSplitResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.AskSplitResponse{Header: h}, err
	}
	ids, err := p.allocSplitIDs(ctx, req.GetRegion(), 1)
	if err != nil {
		return &pdpb.AskSplitResponse{Header: p.splitErrorHeader(err)}, nil
	}
	return &pdpb.AskSplitResponse{Header: p.s.header(), NewRegionId: ids[0].NewRegionId, NewPeerIds: ids[0].NewPeerIds}, nil
}

func (p *pdService) AskBatchSplit(ctx context.Context, req *pdpb.AskBatchSplitRequest) (*pdpb.AskBatchSplitResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.AskBatchSplitResponse{Header: h}, err
	}
	ids, err := p.allocSplitIDs(ctx, req.GetRegion(), req.GetSplitCount())
	if err != nil {
		return &pdpb.AskBatchSplitResponse{Header: p.splitErrorHeader(err)}, nil
	}
	return &pdpb.AskBatchSplitResponse{Header: p.s.header(), Ids: ids}, nil
}

// errMissingRegion is PD's answer to a split request without a region.
var errMissingRegion = errors.New("missing region for split")

func (p *pdService) splitErrorHeader(err error) *pdpb.ResponseHeader {
	if errors.Is(err, errMissingRegion) {
		return p.s.errorHeader(pdpb.ErrorType_REGION_NOT_FOUND, err.Error())
	}
	return p.s.unknownHeader(err)
}

// maxSplitCount bounds one AskBatchSplit, so a bad request cannot exhaust IDs.
const maxSplitCount = 4096

// allocSplitIDs checks the region against PD's view and allocates a new
// region ID plus one peer ID per existing peer for each of count splits.
func (p *pdService) allocSplitIDs(ctx context.Context, region *metapb.Region, count uint32) ([]*pdpb.SplitID, error) {
	if region == nil {
		return nil, errMissingRegion
	}
	if count == 0 || count > maxSplitCount {
		return nil, fmt.Errorf("split count %d outside [1, %d]: %w", count, maxSplitCount, ErrInvalidValue)
	}
	if err := p.checkSplitEpoch(region); err != nil {
		return nil, err
	}
	peers := uint64(len(region.GetPeers()))
	first, err := p.s.ids.alloc(ctx, uint64(count)*(1+peers))
	if err != nil {
		return nil, err
	}
	ids := make([]*pdpb.SplitID, count)
	next := first
	for i := range ids {
		ids[i] = &pdpb.SplitID{NewRegionId: next}
		next++
		for range peers {
			ids[i].NewPeerIds = append(ids[i].NewPeerIds, next)
			next++
		}
	}
	return ids, nil
}

// checkSplitEpoch rejects a split of a region PD does not know or whose
// epoch is behind PD's, as PD's ValidRegion does.
func (p *pdService) checkSplitEpoch(region *metapb.Region) error {
	current := p.s.cluster.regionByKey(region.GetStartKey())
	if current == nil {
		return fmt.Errorf("region not found, request region: %d", region.GetId())
	}
	req, cur := region.GetRegionEpoch(), current.meta.GetRegionEpoch()
	if req.GetVersion() < cur.GetVersion() || req.GetConfVer() < cur.GetConfVer() {
		return fmt.Errorf("invalid region epoch, request: %v, current: %v", req, cur)
	}
	return nil
}

func (p *pdService) ReportSplit(ctx context.Context, req *pdpb.ReportSplitRequest) (*pdpb.ReportSplitResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.ReportSplitResponse{Header: h}, err
	}
	if err := checkSplitRegions([]*metapb.Region{req.GetLeft(), req.GetRight()}); err != nil {
		return &pdpb.ReportSplitResponse{Header: p.s.unknownHeader(err)}, nil
	}
	p.s.log.Info("region split", "region-id", req.GetRight().GetId(), "new-region-id", req.GetLeft().GetId())
	return &pdpb.ReportSplitResponse{Header: p.s.header()}, nil
}

func (p *pdService) ReportBatchSplit(ctx context.Context, req *pdpb.ReportBatchSplitRequest) (*pdpb.ReportBatchSplitResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.ReportBatchSplitResponse{Header: h}, err
	}
	regions := req.GetRegions()
	if err := checkSplitRegions(regions); err != nil {
		return &pdpb.ReportBatchSplitResponse{Header: p.s.unknownHeader(err)}, nil
	}
	p.s.log.Info("region batch split", "region-id", regions[len(regions)-1].GetId(), "new-regions", len(regions)-1)
	return &pdpb.ReportBatchSplitResponse{Header: p.s.header()}, nil
}

// checkSplitRegions requires at least two regions that follow each other
// without gaps, each non-empty. As in PD, the regions themselves reach the
// cluster view through the heartbeats that follow.
func checkSplitRegions(regions []*metapb.Region) error {
	if len(regions) < 2 {
		return ErrInvalidSplit
	}
	for i := 1; i < len(regions); i++ {
		left, right := regions[i-1], regions[i]
		if left == nil || right == nil || !bytes.Equal(left.GetEndKey(), right.GetStartKey()) {
			return ErrInvalidSplit
		}
		if len(right.GetEndKey()) != 0 && bytes.Compare(left.GetStartKey(), right.GetEndKey()) >= 0 {
			return ErrInvalidSplit
		}
	}
	return nil
}

// ScatterRegion scatters regions as PD does: with regions_id, every listed
// region (see coordinator.scatterRegions), answering the finished
// percentage; with the deprecated region_id, that one region, or the
// region and leader the request carries if PD does not know it yet,
// answering 100. Scatter failures that PD returns as errors (no region
// given, a single unknown region, the single legacy region refused) are
// gRPC errors here too.
func (p *pdService) ScatterRegion(ctx context.Context, req *pdpb.ScatterRegionRequest) (*pdpb.ScatterRegionResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.ScatterRegionResponse{Header: h}, err
	}
	ctx, cancel := answerInTime(ctx)
	defer cancel()
	if len(req.GetRegionsId()) > 0 {
		pct, err := p.s.co.scatterRegions(ctx, req.GetRegionsId(), req.GetGroup(), int(req.GetRetryLimit()), req.GetSkipStoreLimit())
		if err != nil {
			return nil, unknownStatus(err)
		}
		return &pdpb.ScatterRegionResponse{Header: p.s.header(), FinishedPercentage: pct}, nil
	}
	id := req.GetRegionId() //nolint:staticcheck // the deprecated single-region form
	r := p.s.cluster.regionByID(id)
	if r == nil {
		if req.GetRegion() == nil {
			return &pdpb.ScatterRegionResponse{
				Header: p.s.errorHeader(pdpb.ErrorType_REGION_NOT_FOUND, fmt.Sprintf("region %d not found", id)),
			}, nil
		}
		r = &regionInfo{meta: req.GetRegion(), leader: req.GetLeader()}
	}
	if err := p.s.co.scatter(ctx, r, req.GetGroup(), req.GetSkipStoreLimit()); err != nil {
		return nil, unknownStatus(err)
	}
	return &pdpb.ScatterRegionResponse{Header: p.s.header(), FinishedPercentage: 100}, nil
}

// SplitRegions splits regions at the given keys through split operators
// and waits for the heartbeats that show the splits (see
// coordinator.splitRegions); it answers the finished percentage and the ids
// of the regions that start at the keys.
func (p *pdService) SplitRegions(ctx context.Context, req *pdpb.SplitRegionsRequest) (*pdpb.SplitRegionsResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.SplitRegionsResponse{Header: h}, err
	}
	ctx, cancel := answerInTime(ctx)
	defer cancel()
	pct, ids := p.s.co.splitRegions(ctx, req.GetSplitKeys(), int(req.GetRetryLimit()))
	return &pdpb.SplitRegionsResponse{Header: p.s.header(), FinishedPercentage: pct, RegionsId: ids}, nil
}

// answerInTime returns a context that ends somewhat before ctx's deadline,
// so that a handler that waits for the cluster (splits, scatters) stops in
// time to answer what finished, rather than the client seeing only
// DeadlineExceeded.
func answerInTime(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := max(100*time.Millisecond, time.Until(deadline)/10)
	return context.WithDeadline(ctx, deadline.Add(-margin))
}

// SplitAndScatterRegions splits as SplitRegions does, then scatters the
// regions that start at the keys. Unlike PD, which fails the call when no
// region split, it then answers a scatter percentage of 0.
func (p *pdService) SplitAndScatterRegions(ctx context.Context, req *pdpb.SplitAndScatterRegionsRequest) (*pdpb.SplitAndScatterRegionsResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.SplitAndScatterRegionsResponse{Header: h}, err
	}
	ctx, cancel := answerInTime(ctx)
	defer cancel()
	splitPct, ids := p.s.co.splitRegions(ctx, req.GetSplitKeys(), int(req.GetRetryLimit()))
	resp := &pdpb.SplitAndScatterRegionsResponse{Header: p.s.header(), RegionsId: ids, SplitFinishedPercentage: splitPct}
	if len(ids) == 0 {
		return resp, nil
	}
	scatterPct, err := p.s.co.scatterRegions(ctx, ids, req.GetGroup(), int(req.GetRetryLimit()), false)
	if err != nil {
		return nil, unknownStatus(err)
	}
	resp.ScatterFinishedPercentage = scatterPct
	return resp, nil
}

// GetOperator reports the region's running operator, or else the last one
// that ended in the past 10 minutes, with PD's status (RUNNING, SUCCESS,
// TIMEOUT, CANCEL, REPLACE); without either it answers "Not Found".
func (p *pdService) GetOperator(ctx context.Context, req *pdpb.GetOperatorRequest) (*pdpb.GetOperatorResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.GetOperatorResponse{Header: h}, err
	}
	op, ok := p.s.co.ops.status(req.GetRegionId(), p.s.cfg.Now())
	if !ok {
		return &pdpb.GetOperatorResponse{Header: p.s.errorHeader(pdpb.ErrorType_REGION_NOT_FOUND, "Not Found")}, nil
	}
	return &pdpb.GetOperatorResponse{
		Header:   p.s.header(),
		RegionId: req.GetRegionId(),
		Desc:     []byte(op.desc),
		Kind:     []byte(op.kind.String()),
		Status:   op.status.toPB(),
	}, nil
}
