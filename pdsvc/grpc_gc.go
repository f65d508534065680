package pdsvc

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pingcap/kvproto/pkg/pdpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func (p *pdService) GetGCSafePoint(ctx context.Context, req *pdpb.GetGCSafePointRequest) (*pdpb.GetGCSafePointResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.GetGCSafePointResponse{Header: h}, err
	}
	sp, err := p.s.gc.clusterSafePoint(ctx)
	if err != nil {
		return nil, unknownStatus(err)
	}
	return &pdpb.GetGCSafePointResponse{Header: p.s.header(), SafePoint: sp}, nil
}

// UpdateGCSafePoint never moves the safe point back: it answers with the
// safe point in force, which is the old one when the request is lower.
func (p *pdService) UpdateGCSafePoint(ctx context.Context, req *pdpb.UpdateGCSafePointRequest) (*pdpb.UpdateGCSafePointResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.UpdateGCSafePointResponse{Header: h}, err
	}
	sp, err := p.s.gc.updateClusterSafePoint(ctx, req.GetSafePoint())
	if err != nil {
		return nil, unknownStatus(err)
	}
	if sp == req.GetSafePoint() {
		p.s.log.Info("updated gc safe point", "safe-point", sp)
	}
	return &pdpb.UpdateGCSafePointResponse{Header: p.s.header(), NewSafePoint: sp}, nil
}

func (p *pdService) UpdateServiceGCSafePoint(ctx context.Context, req *pdpb.UpdateServiceGCSafePointRequest) (*pdpb.UpdateServiceGCSafePointResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.UpdateServiceGCSafePointResponse{Header: h}, err
	}
	now, err := p.s.tsoNow(ctx)
	if err != nil {
		return nil, unknownStatus(err)
	}
	minimum, err := p.s.gc.updateServiceSafePoint(ctx, string(req.GetServiceId()), req.GetSafePoint(), req.GetTTL(), now)
	if err != nil {
		return nil, unknownStatus(err)
	}
	return &pdpb.UpdateServiceGCSafePointResponse{
		Header:       p.s.header(),
		ServiceId:    []byte(minimum.ServiceID),
		TTL:          minimum.ExpiredAt - now.Unix(),
		MinSafePoint: minimum.SafePoint,
	}, nil
}

// tsoNow returns the physical time of a fresh timestamp, the clock PD uses
// for safe point expiry.
func (s *Server) tsoNow(ctx context.Context) (time.Time, error) {
	physical, _, err := s.tso.generate(ctx, 1)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(physical), nil
}

func (p *pdService) GetExternalTimestamp(ctx context.Context, req *pdpb.GetExternalTimestampRequest) (*pdpb.GetExternalTimestampResponse, error) {
	if err := p.s.validate(req.GetHeader()); err != nil {
		return nil, err
	}
	ts, err := p.s.externalTimestamp(ctx)
	if err != nil {
		return nil, unknownStatus(err)
	}
	return &pdpb.GetExternalTimestampResponse{Header: p.s.header(), Timestamp: ts}, nil
}

// SetExternalTimestamp accepts a timestamp that is not ahead of the TSO and
// is above the current external timestamp; otherwise it answers
// INVALID_VALUE, as PD does.
func (p *pdService) SetExternalTimestamp(ctx context.Context, req *pdpb.SetExternalTimestampRequest) (*pdpb.SetExternalTimestampResponse, error) {
	if err := p.s.validate(req.GetHeader()); err != nil {
		return nil, err
	}
	if !p.s.cluster.isBootstrapped() {
		return &pdpb.SetExternalTimestampResponse{Header: p.s.notBootstrappedHeader()}, nil
	}
	physical, logical, err := p.s.tso.generate(ctx, 1)
	if err != nil {
		return nil, unknownStatus(err)
	}
	if err := p.s.setExternalTimestamp(ctx, req.GetTimestamp(), composeTS(physical, logical)); err != nil {
		return &pdpb.SetExternalTimestampResponse{Header: p.s.errorHeader(pdpb.ErrorType_INVALID_VALUE, err.Error())}, nil
	}
	return &pdpb.SetExternalTimestampResponse{Header: p.s.header()}, nil
}

func (s *Server) externalTimestamp(ctx context.Context) (uint64, error) {
	raw, err := s.storage.load(ctx, s.storage.externalTimestampKey())
	if err != nil || raw == nil {
		return 0, err
	}
	ts, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("decode external timestamp: %w", err)
	}
	return ts, nil
}

func (s *Server) setExternalTimestamp(ctx context.Context, ts, globalTS uint64) error {
	if ts > globalTS {
		return fmt.Errorf("the external timestamp should not be larger than global ts: %w", ErrInvalidValue)
	}
	s.externalMu.Lock()
	defer s.externalMu.Unlock()
	current, err := s.externalTimestamp(ctx)
	if err != nil {
		return err
	}
	if ts <= current {
		return fmt.Errorf("the external timestamp should be larger than current external timestamp: %w", ErrInvalidValue)
	}
	return s.storage.save(ctx, s.storage.externalTimestampKey(), []byte(strconv.FormatUint(ts, 10)))
}

// globalConfigPath resolves a request's config path inside PD's global
// config namespace.
func globalConfigPath(configPath string) (string, error) {
	if configPath == "" || configPath == strings.TrimSuffix(globalConfigPrefix, "/") {
		return globalConfigPrefix, nil
	}
	if !strings.HasPrefix(configPath, globalConfigPrefix) {
		return "", status.Errorf(codes.InvalidArgument, "global config path %q is not allowed", configPath)
	}
	return configPath, nil
}

func globalConfigKey(configPath, name string) string {
	if name == "" {
		return strings.TrimSuffix(configPath, "/")
	}
	return strings.TrimSuffix(configPath, "/") + "/" + name
}

// StoreGlobalConfig applies all changes in one etcd transaction.
func (p *pdService) StoreGlobalConfig(ctx context.Context, req *pdpb.StoreGlobalConfigRequest) (*pdpb.StoreGlobalConfigResponse, error) {
	if err := p.s.checkReady(); err != nil {
		return nil, err
	}
	configPath, err := globalConfigPath(req.GetConfigPath())
	if err != nil {
		return nil, err
	}
	ops := make([]clientv3.Op, 0, len(req.GetChanges()))
	for _, item := range req.GetChanges() {
		key := globalConfigKey(configPath, item.GetName())
		switch item.GetKind() {
		case pdpb.EventType_PUT:
			value := item.GetValue()
			if value == "" {
				value = string(item.GetPayload())
			}
			ops = append(ops, clientv3.OpPut(key, value))
		case pdpb.EventType_DELETE:
			ops = append(ops, clientv3.OpDelete(key))
		}
	}
	if _, err := p.s.client.Txn(ctx).Then(ops...).Commit(); err != nil {
		return nil, unknownStatus(fmt.Errorf("store global config: %w", err))
	}
	return &pdpb.StoreGlobalConfigResponse{}, nil
}

// LoadGlobalConfig loads the named items, or every item under the path when
// no names are given.
func (p *pdService) LoadGlobalConfig(ctx context.Context, req *pdpb.LoadGlobalConfigRequest) (*pdpb.LoadGlobalConfigResponse, error) {
	if err := p.s.checkReady(); err != nil {
		return nil, err
	}
	configPath, err := globalConfigPath(req.GetConfigPath())
	if err != nil {
		return nil, err
	}
	if req.GetNames() != nil {
		return p.loadGlobalConfigNames(ctx, configPath, req.GetNames()), nil
	}
	resp, err := p.s.client.Get(ctx, configPath, clientv3.WithPrefix())
	if err != nil {
		return nil, unknownStatus(fmt.Errorf("load global config: %w", err))
	}
	items := make([]*pdpb.GlobalConfigItem, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		items[i] = &pdpb.GlobalConfigItem{Kind: pdpb.EventType_PUT, Name: string(kv.Key), Payload: kv.Value}
	}
	return &pdpb.LoadGlobalConfigResponse{Items: items, Revision: resp.Header.GetRevision()}, nil
}

func (p *pdService) loadGlobalConfigNames(ctx context.Context, configPath string, names []string) *pdpb.LoadGlobalConfigResponse {
	items := make([]*pdpb.GlobalConfigItem, len(names))
	for i, name := range names {
		resp, err := p.s.client.Get(ctx, globalConfigKey(configPath, name))
		switch {
		case err != nil:
			items[i] = &pdpb.GlobalConfigItem{Name: name, Error: &pdpb.Error{Type: pdpb.ErrorType_UNKNOWN, Message: err.Error()}}
		case len(resp.Kvs) == 0:
			items[i] = &pdpb.GlobalConfigItem{Name: name, Error: &pdpb.Error{
				Type: pdpb.ErrorType_GLOBAL_CONFIG_NOT_FOUND, Message: "key " + name + " not found"}}
		default:
			items[i] = &pdpb.GlobalConfigItem{Name: name, Payload: resp.Kvs[0].Value, Kind: pdpb.EventType_PUT}
		}
	}
	return &pdpb.LoadGlobalConfigResponse{Items: items}
}

func (p *pdService) ReportMinResolvedTS(ctx context.Context, req *pdpb.ReportMinResolvedTsRequest) (*pdpb.ReportMinResolvedTsResponse, error) {
	if h, err := p.clusterRequest(req.GetHeader()); h != nil || err != nil {
		return &pdpb.ReportMinResolvedTsResponse{Header: h}, err
	}
	if err := p.s.cluster.setMinResolvedTS(req.GetStoreId(), req.GetMinResolvedTs()); err != nil {
		return &pdpb.ReportMinResolvedTsResponse{Header: p.s.storeErrorHeader(err)}, nil
	}
	return &pdpb.ReportMinResolvedTsResponse{Header: p.s.header()}, nil
}
