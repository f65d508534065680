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
//
// # Balancing, splitting and scattering
//
// The coordinator runs scheduling rounds (schedulers.go) on PD's interval:
// 10 ms after a round that started an operator, growing by 1.3 up to 5 s
// while rounds start none (tests replace the timer with
// Config.ScheduleRounds). A round builds one view of the cluster
// (schedule_env.go): each store's peers, leaders and size from the region
// tree plus the influence of the running operators, and runs
// balance-leader-scheduler (balance_leader.go) and then
// balance-region-scheduler (balance_region.go) on it; every plan is
// committed to the view, so later plans see it. Operators start with their
// first step sent at once; the later steps go out on heartbeats as above.
//
//   - Scores: a store's region score is its size in MiB when every region
//     reports an approximate size, else its peer count; its leader score is
//     its leader count.
//   - Tolerance: a peer moves only if source − target > 2 × ratio ×
//     max(region score, average region score), with ratio [schedule]
//     tolerant-size-ratio or PD's automatic max(0.5 % of the largest
//     store's region count, 1); a leader only if source − target > 2 × 5
//     (or 2 × tolerant-size-ratio). The source therefore stays ahead of
//     the target after a move.
//   - Limits: [schedule] region-schedule-limit (2048) and
//     leader-schedule-limit (4) running operators; balance-leader plans at
//     most 4 transfers a round; [schedule] store-balance-rate (15 a
//     minute) peers added to, and removed from, each store by balance and
//     scatter operators (store_limit.go); and balance-region keeps a
//     region off a store it moved the region from for 10 minutes.
//
// /pd/api/v1/schedulers lists the schedulers; POST {"name": ...} and
// DELETE /pd/api/v1/schedulers/{name} add and remove them, persistently.
//
// SplitRegions (region_splitter.go) groups its keys by region, sends each
// region's leader a SplitRegion with the USEKEY policy and waits, woken by
// every region change, until a region starts at every key or [schedule]
// split-wait-time (1 m) passes, retrying as asked; it answers the finished
// percentage and the regions that start at the keys. ScatterRegion
// (region_scatter.go) moves each region's peers and leader to the stores
// its group has picked least often, as PD's scatterer does, through
// "scatter-region" operators that client-go waits for with GetOperator.
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
