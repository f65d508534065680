// Package storage is the seam between TinyKV's request layers and the data:
// the transaction layer (package mvcc), raw KV and the import service read
// and write the data they serve through a Storage.
//
// A Write is a batch of Modify (puts and deletes of engine keys in one
// column family each) applied atomically; a Snapshot is a consistent view
// of the column families that includes every Write returned before it was
// taken. Both take the kvrpcpb.Context of the request being served, so that
// a replicated store can address the region, epoch and peer the client
// named, and check leadership there; background work that serves no request
// passes nil.
//
// NewStandalone serves one local engine: it ignores the request context
// and never fails with a region error. A replicated store implements Write
// by proposing the modifies to the Raft group of the region the request
// addresses and returning once they are applied on the leader, and checks
// in Snapshot that it may serve reads there.
//
// # Region errors
//
// A failure that the client must handle as a region problem — not leader,
// epoch not match, region not found, a key outside the region — is returned
// as a *RegionError carrying the errorpb.Error to send, possibly wrapped.
// The layers above pass it through untouched (it is never a transaction's
// key error) and the service puts it in the response's region_error field,
// so that the client refreshes its region cache and retries; AsRegionError
// finds it in an error chain.
package storage
