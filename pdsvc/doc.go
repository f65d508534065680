// Package pdsvc is TinyKV's placement driver: the server that every client and
// store talks to first. It speaks the upstream PD protocol
// (github.com/pingcap/kvproto pdpb, meta_storagepb, resource_manager) so that
// the stock PD client, client-go and TiDB can use it unmodified.
//
// # One address, three protocols
//
// Like PD, the server embeds etcd (go.etcd.io/etcd/server/v3/embed) and serves
// everything on etcd's client URL:
//
//   - gRPC: etcd's own v3 services plus pdpb.PD, meta_storagepb.MetaStorage,
//     resource_manager.ResourceManager and diagnosticspb.Diagnostics
//     (internal/diag), registered on etcd's grpc.Server
//     through embed.Config.ServiceRegister;
//   - the etcd v3 API itself, which TiDB uses for DDL ownership, schema
//     versions and the GC safe point cache;
//   - HTTP/1: the /pd/api/v1/... JSON API, mounted on etcd's HTTP mux through
//     embed.Config.UserHandlers. Unknown paths answer 404.
//
// # Durable state
//
// All cluster state lives in the embedded etcd, under the layout described in
// storage.go: the cluster ID (created once, random and non-zero), the
// bootstrap record, stores, regions, the ID allocator's high-water mark, the
// TSO window, GC safe points, external timestamp, global config and resource
// groups. A restarted server reloads all of it before it accepts requests.
//
// Region sizes and flows from the leaders' heartbeats are kept in memory
// only, as PD keeps them: /stats/region sums them over a key range, and the
// hot cache (hotspot.go) turns the flows into PD's hot peers and, every
// [schedule] hot-regions-write-interval, into the hot-region history (in
// memory here; PD stores it on disk).
//
// # Timestamps
//
// The TSO allocator (tso.go) hands out hybrid timestamps: physical
// milliseconds shifted left by 18 bits plus a logical counter. It persists a
// window ahead of the clock and, after a restart, starts past the persisted
// window, so timestamps are strictly increasing across batches, concurrent
// streams and restarts, and never go backwards when the clock does.
//
// # Errors
//
// Errors are reported where PD reports them: cluster-level conditions (not
// bootstrapped, unknown store, stale region) in ResponseHeader.error, request
// validation failures (wrong cluster ID) as gRPC status errors, and methods we
// do not implement as codes.Unimplemented.
package pdsvc
