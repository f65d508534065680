package pdsvc

import (
	"context"
	"errors"
	"io"

	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
)

// pdService implements pdpb.PDServer. Methods it does not override answer
// codes.Unimplemented through the embedded UnimplementedPDServer.
type pdService struct {
	pdpb.UnimplementedPDServer
	s *Server
}

// GetMembers deliberately skips the cluster ID check: clients learn the ID
// from its response.
func (p *pdService) GetMembers(ctx context.Context, _ *pdpb.GetMembersRequest) (*pdpb.GetMembersResponse, error) {
	if err := p.s.checkReady(); err != nil {
		return nil, err
	}
	members, self := p.s.members()
	return &pdpb.GetMembersResponse{
		Header:     p.s.header(),
		Members:    members,
		Leader:     self,
		EtcdLeader: self,
	}, nil
}

// members lists the etcd members as PD members and returns this server's own
// entry, which is the PD leader of a single-member cluster.
func (s *Server) members() ([]*pdpb.Member, *pdpb.Member) {
	selfID := uint64(s.etcd.Server.ID())
	var members []*pdpb.Member
	var self *pdpb.Member
	for _, m := range s.etcd.Server.Cluster().Members() {
		member := &pdpb.Member{
			Name:       m.Name,
			MemberId:   uint64(m.ID),
			PeerUrls:   m.PeerURLs,
			ClientUrls: m.ClientURLs,
		}
		if member.MemberId == selfID {
			member.BinaryVersion = Version
			member.DeployPath = s.cfg.DataDir
			self = member
		}
		members = append(members, member)
	}
	return members, self
}

// GetClusterInfo, like GetMembers, is asked before the client knows the
// cluster ID, so it does not check it.
func (p *pdService) GetClusterInfo(ctx context.Context, _ *pdpb.GetClusterInfoRequest) (*pdpb.GetClusterInfoResponse, error) {
	if err := p.s.checkReady(); err != nil {
		return nil, err
	}
	return &pdpb.GetClusterInfoResponse{
		Header:       p.s.header(),
		ServiceModes: []pdpb.ServiceMode{pdpb.ServiceMode_PD_SVC_MODE},
	}, nil
}

// Tso answers each request with one response, in order. Its errors end the
// stream, as in PD.
func (p *pdService) Tso(stream pdpb.PD_TsoServer) error {
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
		physical, logical, err := p.s.tso.generate(stream.Context(), req.GetCount())
		if err != nil {
			return unknownStatus(err)
		}
		resp := &pdpb.TsoResponse{
			Header:    p.s.header(),
			Count:     req.GetCount(),
			Timestamp: &pdpb.Timestamp{Physical: physical, Logical: logical},
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (p *pdService) Bootstrap(ctx context.Context, req *pdpb.BootstrapRequest) (*pdpb.BootstrapResponse, error) {
	if err := p.s.validate(req.GetHeader()); err != nil {
		return nil, err
	}
	err := p.s.cluster.bootstrap(ctx, p.s.clusterID, req.GetStore(), req.GetRegion())
	switch {
	case errors.Is(err, ErrAlreadyBootstrapped):
		return &pdpb.BootstrapResponse{Header: p.s.errorHeader(pdpb.ErrorType_ALREADY_BOOTSTRAPPED, err.Error())}, nil
	case err != nil:
		return &pdpb.BootstrapResponse{Header: p.s.unknownHeader(err)}, nil
	}
	p.s.log.Info("cluster bootstrapped", "store-id", req.GetStore().GetId(), "region-id", req.GetRegion().GetId())
	return &pdpb.BootstrapResponse{Header: p.s.header()}, nil
}

func (p *pdService) IsBootstrapped(ctx context.Context, req *pdpb.IsBootstrappedRequest) (*pdpb.IsBootstrappedResponse, error) {
	if err := p.s.validate(req.GetHeader()); err != nil {
		return nil, err
	}
	return &pdpb.IsBootstrappedResponse{Header: p.s.header(), Bootstrapped: p.s.cluster.isBootstrapped()}, nil
}

func (p *pdService) AllocID(ctx context.Context, req *pdpb.AllocIDRequest) (*pdpb.AllocIDResponse, error) {
	if err := p.s.validate(req.GetHeader()); err != nil {
		return nil, err
	}
	id, err := p.s.ids.alloc(ctx, 1)
	if err != nil {
		return &pdpb.AllocIDResponse{Header: p.s.unknownHeader(err)}, nil
	}
	return &pdpb.AllocIDResponse{Header: p.s.header(), Id: id}, nil
}

func (p *pdService) GetStore(ctx context.Context, req *pdpb.GetStoreRequest) (*pdpb.GetStoreResponse, error) {
	if err := p.s.validate(req.GetHeader()); err != nil {
		return nil, err
	}
	store, err := p.s.cluster.getStore(req.GetStoreId())
	if err != nil {
		return &pdpb.GetStoreResponse{Header: p.s.storeErrorHeader(err)}, nil
	}
	return &pdpb.GetStoreResponse{Header: p.s.header(), Store: store.meta, Stats: store.stats}, nil
}

func (p *pdService) PutStore(ctx context.Context, req *pdpb.PutStoreRequest) (*pdpb.PutStoreResponse, error) {
	if err := p.s.validate(req.GetHeader()); err != nil {
		return nil, err
	}
	if err := p.s.cluster.putStore(ctx, req.GetStore()); err != nil {
		return &pdpb.PutStoreResponse{Header: p.s.storeErrorHeader(err)}, nil
	}
	p.s.log.Info("put store ok", "store-id", req.GetStore().GetId(), "address", req.GetStore().GetAddress())
	return &pdpb.PutStoreResponse{Header: p.s.header()}, nil
}

func (p *pdService) GetAllStores(ctx context.Context, req *pdpb.GetAllStoresRequest) (*pdpb.GetAllStoresResponse, error) {
	if err := p.s.validate(req.GetHeader()); err != nil {
		return nil, err
	}
	if !p.s.cluster.isBootstrapped() {
		return &pdpb.GetAllStoresResponse{Header: p.s.notBootstrappedHeader()}, nil
	}
	infos := p.s.cluster.allStores(req.GetExcludeTombstoneStores())
	stores := make([]*metapb.Store, len(infos))
	for i, info := range infos {
		stores[i] = info.meta
	}
	return &pdpb.GetAllStoresResponse{Header: p.s.header(), Stores: stores}, nil
}

func (p *pdService) StoreHeartbeat(ctx context.Context, req *pdpb.StoreHeartbeatRequest) (*pdpb.StoreHeartbeatResponse, error) {
	if err := p.s.validate(req.GetHeader()); err != nil {
		return nil, err
	}
	if req.GetStats() == nil {
		return nil, invalidArgument("invalid store heartbeat command: missing stats")
	}
	if !p.s.cluster.isBootstrapped() {
		return &pdpb.StoreHeartbeatResponse{Header: p.s.notBootstrappedHeader()}, nil
	}
	if err := p.s.cluster.storeHeartbeat(req.GetStats()); err != nil {
		return &pdpb.StoreHeartbeatResponse{Header: p.s.storeErrorHeader(err)}, nil
	}
	return &pdpb.StoreHeartbeatResponse{Header: p.s.header(), ClusterVersion: Version}, nil
}
