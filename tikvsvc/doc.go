// Package tikvsvc is TinyKV's store front end: the tikvpb.Tikv gRPC service
// that client-go and TiDB talk to, and the store's life cycle around it
// (identity, registration with PD, heartbeats, the status HTTP server).
//
// Requests flow one way: tikvsvc checks the region context, then calls the
// transaction layer (package mvcc) or the raw layer in this package, both of
// which read and write through a storage.Storage — today a standalone
// engine, later the replicated raftstore — addressing every snapshot and
// write with the request's kvrpcpb.Context.
//
// # The region contract
//
// Every request carries a kvrpcpb.Context naming a region, its epoch and the
// peer the client believes it talks to. The service answers region problems
// in the response's region_error field, never as a gRPC error, because
// client-go treats a gRPC error as a sick store: store_not_match for another
// store's peer, region_not_found for an unknown region, epoch_not_match (with
// the current region, keys memcomparable-encoded) for a stale epoch, and
// key_not_in_region for a key outside the region. A region error returned
// by storage (a *storage.RegionError, such as not_leader from a replicated
// store) is answered the same way by every handler that reaches storage —
// transactional, raw, coprocessor and import — in region_error and nothing
// else (splitRegionError), so the client retries with a fresh region.
//
// A transactional command that fails in storage (a read error, a damaged
// record) is answered as TiKV answers it: a key error whose abort carries
// the message. A gRPC error would also end a client's BatchCommands stream,
// failing every other request in flight on it.
//
// # Raw keys
//
// Raw (non-transactional) data lives in the same column families as
// transactional data, under the raw key, with TiKV's API V1TTL value format:
// the user value followed by an 8-byte big-endian expiry time in unix
// seconds, 0 meaning none. As in TiKV's API V1, one key range should be used
// either raw or transactionally, not both.
//
// # Health feedback
//
// The store rates its disk with TiKV's slow score (1 healthy, up to 100),
// computed from how long the kv engine's write-ahead log appends take. It
// reports the score to PD in the store heartbeat, and to clients as health
// feedback: GetHealthFeedback answers with it, and every BatchCommands
// stream carries it in its first batch, at most once a second after that,
// and in any batch that answers a batched GetHealthFeedback.
package tikvsvc
