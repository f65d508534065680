package pdsvc

import (
	"context"
	"fmt"

	"github.com/pingcap/kvproto/pkg/meta_storagepb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// metaStorageService implements meta_storagepb.MetaStorage over the embedded
// etcd. Every response carries a header: the resource group client
// dereferences it unconditionally.
type metaStorageService struct {
	meta_storagepb.UnimplementedMetaStorageServer
	s *Server
}

func (m *metaStorageService) header(revision int64) *meta_storagepb.ResponseHeader {
	return &meta_storagepb.ResponseHeader{ClusterId: m.s.clusterID, Revision: revision}
}

func (m *metaStorageService) errorHeader(revision int64, typ meta_storagepb.ErrorType, msg string) *meta_storagepb.ResponseHeader {
	h := m.header(revision)
	h.Error = &meta_storagepb.Error{Type: typ, Message: msg}
	return h
}

func toMetaKV(key, value []byte) *meta_storagepb.KeyValue {
	return &meta_storagepb.KeyValue{Key: key, Value: value}
}

func (m *metaStorageService) Get(ctx context.Context, req *meta_storagepb.GetRequest) (*meta_storagepb.GetResponse, error) {
	if err := m.s.checkReady(); err != nil {
		return nil, err
	}
	var opts []clientv3.OpOption
	if end := req.GetRangeEnd(); end != nil {
		opts = append(opts, clientv3.WithRange(string(end)))
	}
	if rev := req.GetRevision(); rev != 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	if limit := req.GetLimit(); limit != 0 {
		opts = append(opts, clientv3.WithLimit(limit))
	}
	resp, err := m.s.client.Get(ctx, string(req.GetKey()), opts...)
	if err != nil {
		return &meta_storagepb.GetResponse{Header: m.errorHeader(0, meta_storagepb.ErrorType_UNKNOWN, err.Error())}, nil
	}
	out := &meta_storagepb.GetResponse{Header: m.header(resp.Header.GetRevision()), Count: resp.Count, More: resp.More}
	for _, kv := range resp.Kvs {
		out.Kvs = append(out.Kvs, toMetaKV(kv.Key, kv.Value))
	}
	return out, nil
}

func (m *metaStorageService) Put(ctx context.Context, req *meta_storagepb.PutRequest) (*meta_storagepb.PutResponse, error) {
	if err := m.s.checkReady(); err != nil {
		return nil, err
	}
	var opts []clientv3.OpOption
	if lease := req.GetLease(); lease != 0 {
		opts = append(opts, clientv3.WithLease(clientv3.LeaseID(lease)))
	}
	if req.GetPrevKv() {
		opts = append(opts, clientv3.WithPrevKV())
	}
	resp, err := m.s.client.Put(ctx, string(req.GetKey()), string(req.GetValue()), opts...)
	if err != nil {
		return &meta_storagepb.PutResponse{Header: m.errorHeader(0, meta_storagepb.ErrorType_UNKNOWN, err.Error())}, nil
	}
	out := &meta_storagepb.PutResponse{Header: m.header(resp.Header.GetRevision())}
	if resp.PrevKv != nil {
		out.PrevKv = toMetaKV(resp.PrevKv.Key, resp.PrevKv.Value)
	}
	return out, nil
}

func (m *metaStorageService) Delete(ctx context.Context, req *meta_storagepb.DeleteRequest) (*meta_storagepb.DeleteResponse, error) {
	if err := m.s.checkReady(); err != nil {
		return nil, err
	}
	var opts []clientv3.OpOption
	if end := req.GetRangeEnd(); end != nil {
		opts = append(opts, clientv3.WithRange(string(end)))
	}
	if req.GetPrevKv() {
		opts = append(opts, clientv3.WithPrevKV())
	}
	resp, err := m.s.client.Delete(ctx, string(req.GetKey()), opts...)
	if err != nil {
		return &meta_storagepb.DeleteResponse{Header: m.errorHeader(0, meta_storagepb.ErrorType_UNKNOWN, err.Error())}, nil
	}
	out := &meta_storagepb.DeleteResponse{Header: m.header(resp.Header.GetRevision()), Deleted: resp.Deleted}
	for _, kv := range resp.PrevKvs {
		out.PrevKvs = append(out.PrevKvs, toMetaKV(kv.Key, kv.Value))
	}
	return out, nil
}

// Watch streams etcd events until the client goes away. A compacted start
// revision is reported as DATA_COMPACTED, as PD does.
func (m *metaStorageService) Watch(req *meta_storagepb.WatchRequest, stream meta_storagepb.MetaStorage_WatchServer) error {
	if err := m.s.checkReady(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	var opts []clientv3.OpOption
	if end := req.GetRangeEnd(); end != nil {
		opts = append(opts, clientv3.WithRange(string(end)))
	}
	if rev := req.GetStartRevision(); rev != 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	if req.GetPrevKv() {
		opts = append(opts, clientv3.WithPrevKV())
	}
	for resp := range m.s.client.Watch(clientv3.WithRequireLeader(ctx), string(req.GetKey()), opts...) {
		if err := resp.Err(); err != nil {
			return m.sendWatchError(stream, req.GetStartRevision(), resp, err)
		}
		if len(resp.Events) == 0 {
			continue
		}
		if err := stream.Send(m.watchResponse(resp)); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("meta storage: watch channel closed unexpectedly")
}

func (m *metaStorageService) watchResponse(resp clientv3.WatchResponse) *meta_storagepb.WatchResponse {
	events := make([]*meta_storagepb.Event, len(resp.Events))
	for i, e := range resp.Events {
		events[i] = &meta_storagepb.Event{
			Type: meta_storagepb.Event_EventType(e.Type),
			Kv: &meta_storagepb.KeyValue{
				Key:            e.Kv.Key,
				Value:          e.Kv.Value,
				CreateRevision: e.Kv.CreateRevision,
				ModRevision:    e.Kv.ModRevision,
				Version:        e.Kv.Version,
				Lease:          e.Kv.Lease,
			},
		}
		if e.PrevKv != nil {
			events[i].PrevKv = toMetaKV(e.PrevKv.Key, e.PrevKv.Value)
		}
	}
	return &meta_storagepb.WatchResponse{
		Header:          m.header(resp.Header.GetRevision()),
		Events:          events,
		CompactRevision: resp.CompactRevision,
	}
}

func (m *metaStorageService) sendWatchError(stream meta_storagepb.MetaStorage_WatchServer, startRev int64, resp clientv3.WatchResponse, err error) error {
	out := &meta_storagepb.WatchResponse{CompactRevision: resp.CompactRevision}
	if startRev < resp.CompactRevision {
		out.Header = m.errorHeader(resp.Header.GetRevision(), meta_storagepb.ErrorType_DATA_COMPACTED,
			fmt.Sprintf("required watch revision: %d is smaller than current compact/min revision %d.", startRev, resp.CompactRevision))
	} else {
		out.Header = m.errorHeader(resp.Header.GetRevision(), meta_storagepb.ErrorType_UNKNOWN,
			fmt.Sprintf("watch channel meet other error %s.", err))
	}
	if sendErr := stream.Send(out); sendErr != nil {
		return sendErr
	}
	return err
}
