package pdsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/gogo/protobuf/proto"
	rmpb "github.com/pingcap/kvproto/pkg/resource_manager"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	defaultGroupName = "default"
	// maxGroupNameLength is PD's limit on resource group names.
	maxGroupNameLength = 32
	// mediumPriority is the priority PD gives the default group.
	mediumPriority = 8
)

// Resource manager errors, with PD's normalized messages.
var (
	errGroupNotExists      = errors.New("[PD:resourcemanager:ErrGroupNotExists]the resource group does not exist")
	errDeleteReservedGroup = errors.New("[PD:resourcemanager:ErrDeleteReservedGroup]cannot delete reserved group")
	errInvalidGroup        = errors.New("[PD:resourcemanager:ErrInvalidGroup]invalid group settings")
)

// resourceManager stores resource groups where PD keeps them, so the
// MetaStorage watches of the client-side controller see every change.
type resourceManager struct {
	client *clientv3.Client
}

func groupKey(name string) string { return resourceGroupPrefix + name }

// defaultGroup is the burstable group every cluster has: a negative burst
// limit means requests never wait for tokens.
func defaultGroup() *rmpb.ResourceGroup {
	return &rmpb.ResourceGroup{
		Name: defaultGroupName,
		Mode: rmpb.GroupMode_RUMode,
		RUSettings: &rmpb.GroupRequestUnitSettings{
			RU: &rmpb.TokenBucket{Settings: &rmpb.TokenLimitSettings{FillRate: math.MaxInt32, BurstLimit: -1}},
		},
		Priority: mediumPriority,
	}
}

// ensureDefaultGroup creates the default group unless it exists.
func (rm *resourceManager) ensureDefaultGroup(ctx context.Context) error {
	value, err := proto.Marshal(defaultGroup())
	if err != nil {
		return fmt.Errorf("resource manager: encode default group: %w", err)
	}
	key := groupKey(defaultGroupName)
	_, err = rm.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value))).
		Commit()
	if err != nil {
		return fmt.Errorf("resource manager: create default group: %w", err)
	}
	return nil
}

func (rm *resourceManager) get(ctx context.Context, name string) (*rmpb.ResourceGroup, error) {
	resp, err := rm.client.Get(ctx, groupKey(name))
	if err != nil {
		return nil, fmt.Errorf("resource manager: get %q: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return decodeGroup(resp.Kvs[0].Value)
}

func decodeGroup(raw []byte) (*rmpb.ResourceGroup, error) {
	group := &rmpb.ResourceGroup{}
	if err := proto.Unmarshal(raw, group); err != nil {
		return nil, fmt.Errorf("resource manager: decode group: %w", err)
	}
	return group, nil
}

func (rm *resourceManager) list(ctx context.Context) ([]*rmpb.ResourceGroup, error) {
	resp, err := rm.client.Get(ctx, resourceGroupPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("resource manager: list: %w", err)
	}
	groups := make([]*rmpb.ResourceGroup, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		group, err := decodeGroup(kv.Value)
		if err != nil {
			return nil, err
		}
		groups = append(groups, group)
	}
	return groups, nil
}

// put writes group; with mustExist it only replaces an existing group.
func (rm *resourceManager) put(ctx context.Context, group *rmpb.ResourceGroup, mustExist bool) error {
	if err := validateGroup(group); err != nil {
		return err
	}
	value, err := proto.Marshal(group)
	if err != nil {
		return fmt.Errorf("resource manager: encode group: %w", err)
	}
	key := groupKey(group.GetName())
	txn := rm.client.Txn(ctx)
	if mustExist {
		txn = txn.If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0))
	}
	resp, err := txn.Then(clientv3.OpPut(key, string(value))).Commit()
	if err != nil {
		return fmt.Errorf("resource manager: put %q: %w", group.GetName(), err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s", errGroupNotExists, group.GetName())
	}
	return nil
}

func validateGroup(group *rmpb.ResourceGroup) error {
	switch {
	case group == nil:
		return fmt.Errorf("%w: missing group", errInvalidGroup)
	case group.GetName() == "" || len(group.GetName()) > maxGroupNameLength:
		return fmt.Errorf("%w: name must have 1 to %d characters", errInvalidGroup, maxGroupNameLength)
	case group.GetMode() != rmpb.GroupMode_RUMode:
		return fmt.Errorf("%w: only RU mode is supported", errInvalidGroup)
	}
	return nil
}

func (rm *resourceManager) remove(ctx context.Context, name string) error {
	if name == defaultGroupName {
		return errDeleteReservedGroup
	}
	resp, err := rm.client.Delete(ctx, groupKey(name))
	if err != nil {
		return fmt.Errorf("resource manager: delete %q: %w", name, err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("%w: %s", errGroupNotExists, name)
	}
	return nil
}

// resourceManagerService implements resource_manager.ResourceManager.
// Failures are gRPC errors, as in PD.
type resourceManagerService struct {
	rmpb.UnimplementedResourceManagerServer
	s *Server
}

func (r *resourceManagerService) GetResourceGroup(ctx context.Context, req *rmpb.GetResourceGroupRequest) (*rmpb.GetResourceGroupResponse, error) {
	if err := r.s.checkReady(); err != nil {
		return nil, err
	}
	group, err := r.s.rm.get(ctx, req.GetResourceGroupName())
	if err != nil {
		return nil, unknownStatus(err)
	}
	if group == nil {
		return nil, unknownStatus(fmt.Errorf("%w: %s", errGroupNotExists, req.GetResourceGroupName()))
	}
	return &rmpb.GetResourceGroupResponse{Group: group}, nil
}

func (r *resourceManagerService) ListResourceGroups(ctx context.Context, _ *rmpb.ListResourceGroupsRequest) (*rmpb.ListResourceGroupsResponse, error) {
	if err := r.s.checkReady(); err != nil {
		return nil, err
	}
	groups, err := r.s.rm.list(ctx)
	if err != nil {
		return nil, unknownStatus(err)
	}
	return &rmpb.ListResourceGroupsResponse{Groups: groups}, nil
}

func (r *resourceManagerService) AddResourceGroup(ctx context.Context, req *rmpb.PutResourceGroupRequest) (*rmpb.PutResourceGroupResponse, error) {
	return r.putGroup(ctx, req.GetGroup(), false)
}

func (r *resourceManagerService) ModifyResourceGroup(ctx context.Context, req *rmpb.PutResourceGroupRequest) (*rmpb.PutResourceGroupResponse, error) {
	return r.putGroup(ctx, req.GetGroup(), true)
}

func (r *resourceManagerService) putGroup(ctx context.Context, group *rmpb.ResourceGroup, mustExist bool) (*rmpb.PutResourceGroupResponse, error) {
	if err := r.s.checkReady(); err != nil {
		return nil, err
	}
	if err := r.s.rm.put(ctx, group, mustExist); err != nil {
		return nil, unknownStatus(err)
	}
	return &rmpb.PutResourceGroupResponse{Body: "Success!"}, nil
}

func (r *resourceManagerService) DeleteResourceGroup(ctx context.Context, req *rmpb.DeleteResourceGroupRequest) (*rmpb.DeleteResourceGroupResponse, error) {
	if err := r.s.checkReady(); err != nil {
		return nil, err
	}
	if err := r.s.rm.remove(ctx, req.GetResourceGroupName()); err != nil {
		return nil, unknownStatus(err)
	}
	return &rmpb.DeleteResourceGroupResponse{Body: "Success!"}, nil
}

// AcquireTokenBuckets grants every request in full: there is no RU
// accounting, so no client ever waits for tokens.
func (r *resourceManagerService) AcquireTokenBuckets(stream rmpb.ResourceManager_AcquireTokenBucketsServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := r.s.checkReady(); err != nil {
			return err
		}
		resp, err := r.grantTokens(stream.Context(), req)
		if err != nil {
			return unknownStatus(err)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (r *resourceManagerService) grantTokens(ctx context.Context, req *rmpb.TokenBucketsRequest) (*rmpb.TokenBucketsResponse, error) {
	resp := &rmpb.TokenBucketsResponse{}
	for _, bucketReq := range req.GetRequests() {
		group, err := r.s.rm.get(ctx, bucketReq.GetResourceGroupName())
		if err != nil {
			return nil, err
		}
		if group == nil {
			continue
		}
		resp.Responses = append(resp.Responses, grantRU(group, bucketReq))
	}
	return resp, nil
}

func grantRU(group *rmpb.ResourceGroup, req *rmpb.TokenBucketRequest) *rmpb.TokenBucketResponse {
	out := &rmpb.TokenBucketResponse{ResourceGroupName: group.GetName()}
	for _, item := range req.GetRuItems().GetRequestRU() {
		out.GrantedRUTokens = append(out.GrantedRUTokens, &rmpb.GrantedRUTokenBucket{
			Type: item.GetType(),
			GrantedTokens: &rmpb.TokenBucket{
				Settings: group.GetRUSettings().GetRU().GetSettings(),
				Tokens:   item.GetValue(),
			},
		})
	}
	return out
}
