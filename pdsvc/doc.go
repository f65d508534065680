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
// # Scheduling
//
// PD tells stores what to do in its answers on the RegionHeartbeat stream
// (coordinator.go). Each region has at most one operator
// (operator_controller.go): a list of steps (operator_step.go) — add a voter
// with a PD-allocated peer id, remove a peer, transfer the leader — each
// judged finished from the leader's reports alone. On every accepted leader
// heartbeat the region's operator advances past its finished steps and the
// current step is sent, addressed to the leader as PD addresses it (region
// id, PD's epoch, target peer), on the stream the leader's store last
// reported on (hbstreams.go); a step goes out once and again only on a
// heartbeat at least 5 s later that still shows it unfinished. An operator
// ends with success, with a timeout ([schedule] region-operator-wait-time,
// leader-operator-wait-time), as stale when the region's conf_ver moved more
// than its own steps explain (PD's rule), as replaced by an admin operator,
// or canceled over HTTP; GetOperator reports the running operator or the
// last one that ended.
//
// A region without an operator goes to the replica checker
// (replica_checker.go), which keeps [replication] max-replicas peers:
// replacing down peers once their store has been silent for [schedule]
// max-store-down-time, replacing peers on Offline and Tombstone stores, and
// adding or removing peers. New peers go to the Serving, recently heard
// store with the fewest peers. Stores become Offline or Tombstone through
// the HTTP API (DELETE /store/{id}, POST /store/{id}/state), and
// /pd/api/v1/operators creates, lists and cancels operators as pd-ctl does.
// There is no balancing yet.
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
