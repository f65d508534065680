package pdsvc

import (
	"context"
	"encoding/binary"
	"fmt"
	"path"
	"strconv"

	"github.com/gogo/protobuf/proto"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Key layout in the embedded etcd. Everything that belongs to one cluster
// lives under /pd/<cluster id>/, as in PD; keys that clients read directly
// (global config, resource groups) sit where PD puts them.
//
//	/pd/cluster_id                            8-byte big-endian cluster ID
//	/pd/<id>/raft                             metapb.Cluster: present once bootstrapped
//	/pd/<id>/raft/s/<%020d store id>          metapb.Store
//	/pd/<id>/raft/r/<%020d region id>         pdpb.Region (meta and last known leader)
//	/pd/<id>/alloc_id                         8-byte big-endian ID high-water mark
//	/pd/<id>/timestamp                        8-byte big-endian TSO window end, unix ms
//	/pd/<id>/external_timestamp               decimal external timestamp
//	/pd/<id>/gc/safe_point                    hex cluster GC safe point
//	/pd/<id>/gc/safe_point/service/<service>  JSON serviceSafePoint
//	/pd/<id>/schedulers/removed               JSON list of the removed schedulers' names
//	/global/config/<name>                     global config items
//	resource_group/settings/<name>            resource_manager.ResourceGroup
//	resource_group/controller                 JSON controller config
const (
	clusterIDKey          = "/pd/cluster_id"
	globalConfigPrefix    = "/global/config/"
	resourceGroupPrefix   = "resource_group/settings/"
	resourceControllerKey = "resource_group/controller"
)

// storage reads and writes the cluster's durable state in etcd.
type storage struct {
	client *clientv3.Client
	root   string // "/pd/<cluster id>"
}

func newStorage(client *clientv3.Client, clusterID uint64) *storage {
	return &storage{client: client, root: "/pd/" + strconv.FormatUint(clusterID, 10)}
}

func (s *storage) clusterKey() string             { return s.root + "/raft" }
func (s *storage) storeKey(id uint64) string      { return fmt.Sprintf("%s/raft/s/%020d", s.root, id) }
func (s *storage) storePrefix() string            { return s.root + "/raft/s/" }
func (s *storage) regionKey(id uint64) string     { return fmt.Sprintf("%s/raft/r/%020d", s.root, id) }
func (s *storage) regionPrefix() string           { return s.root + "/raft/r/" }
func (s *storage) allocIDKey() string             { return s.root + "/alloc_id" }
func (s *storage) timestampKey() string           { return s.root + "/timestamp" }
func (s *storage) externalTimestampKey() string   { return s.root + "/external_timestamp" }
func (s *storage) gcSafePointKey() string         { return s.root + "/gc/safe_point" }
func (s *storage) serviceSafePointPrefix() string { return s.root + "/gc/safe_point/service/" }
func (s *storage) disabledSchedulersKey() string  { return s.root + "/schedulers/removed" }

func (s *storage) serviceSafePointKey(service string) string {
	return path.Join(s.serviceSafePointPrefix(), service)
}

// load returns the value at key, or nil if it does not exist.
func (s *storage) load(ctx context.Context, key string) ([]byte, error) {
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("pd storage: load %q: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}

// loadPrefix returns the values of every key under prefix, in key order.
func (s *storage) loadPrefix(ctx context.Context, prefix string) ([][]byte, error) {
	resp, err := s.client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("pd storage: load prefix %q: %w", prefix, err)
	}
	values := make([][]byte, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		values[i] = kv.Value
	}
	return values, nil
}

func (s *storage) save(ctx context.Context, key string, value []byte) error {
	if _, err := s.client.Put(ctx, key, string(value)); err != nil {
		return fmt.Errorf("pd storage: save %q: %w", key, err)
	}
	return nil
}

func (s *storage) remove(ctx context.Context, key string) error {
	if _, err := s.client.Delete(ctx, key); err != nil {
		return fmt.Errorf("pd storage: remove %q: %w", key, err)
	}
	return nil
}

func (s *storage) saveProto(ctx context.Context, key string, msg proto.Message) error {
	value, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("pd storage: encode %q: %w", key, err)
	}
	return s.save(ctx, key, value)
}

func (s *storage) loadUint64(ctx context.Context, key string) (uint64, error) {
	value, err := s.load(ctx, key)
	if err != nil || value == nil {
		return 0, err
	}
	if len(value) != 8 {
		return 0, fmt.Errorf("pd storage: %q holds %d bytes, want 8", key, len(value))
	}
	return binary.BigEndian.Uint64(value), nil
}

func (s *storage) saveUint64(ctx context.Context, key string, v uint64) error {
	return s.save(ctx, key, binary.BigEndian.AppendUint64(nil, v))
}

// loadOrCreateClusterID returns the persisted cluster ID, creating it with
// candidate if none exists yet. The compare-and-set makes creation happen
// exactly once even if two servers race.
func loadOrCreateClusterID(ctx context.Context, client *clientv3.Client, candidate uint64) (uint64, error) {
	value := string(binary.BigEndian.AppendUint64(nil, candidate))
	resp, err := client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(clusterIDKey), "=", 0)).
		Then(clientv3.OpPut(clusterIDKey, value)).
		Else(clientv3.OpGet(clusterIDKey)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("pd storage: create cluster id: %w", err)
	}
	if resp.Succeeded {
		return candidate, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) != 1 || len(kvs[0].Value) != 8 {
		return 0, fmt.Errorf("pd storage: malformed cluster id at %q", clusterIDKey)
	}
	return binary.BigEndian.Uint64(kvs[0].Value), nil
}
