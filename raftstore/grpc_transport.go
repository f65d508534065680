package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// The gRPC transport carries raft messages to other stores over their
// tikvpb.Tikv service, as TiKV's raft client does. For each target store it
// keeps one connection, one bounded queue and one sender goroutine, which
// drains the queue in batches onto a BatchRaft stream. A snapshot message
// goes on a Snapshot stream of its own, its data in chunks. Send never
// waits on the network: it queues the message or fails at once.

// ErrTransportClosed is returned by Send on a closed transport.
var ErrTransportClosed = errors.New("raftstore: transport closed")

// ErrTransportQueueFull is returned by Send when the queue of the target
// store is full: the store is slow or its connection is stuck.
var ErrTransportQueueFull = errors.New("raftstore: transport queue full")

// ErrTransportUnreachable is returned by Send while the target store's last
// connection attempt or stream failed; the transport tries again in the
// background after a backoff.
var ErrTransportUnreachable = errors.New("raftstore: store unreachable")

// ErrTransportSnapshotsBusy is returned by Send for a snapshot message when
// as many snapshots as the transport allows are being sent.
var ErrTransportSnapshotsBusy = errors.New("raftstore: too many snapshots in flight")

// ErrTransportNoStore is returned by Send for a message whose to_peer names
// no store.
var ErrTransportNoStore = errors.New("raftstore: raft message without a target store")

// StoreResolver maps a store id to the address of its gRPC service. The node
// backs it with PD's GetStore: a store PD does not know, and a tombstone
// store (removed from the cluster), is an error. StoreAddr must return when
// ctx ends.
type StoreResolver interface {
	StoreAddr(ctx context.Context, storeID uint64) (string, error)
}

// GRPCTransportOptions tunes a GRPCTransport. Zero (or negative) fields
// take the defaults.
type GRPCTransportOptions struct {
	// QueueSize bounds the messages waiting for one store (4096, as TiKV's
	// raft client); past it Send fails with ErrTransportQueueFull.
	QueueSize int
	// MaxBatchBytes bounds the encoded size of one BatchRaftMessage (2 MiB),
	// to stay below the receiver's gRPC message limit (4 MiB unless the
	// server raises it). A single larger message is sent alone.
	MaxBatchBytes int
	// ChunkSize bounds the snapshot data of one SnapshotChunk (1 MiB).
	ChunkSize int
	// MaxSnapshots bounds the snapshots being sent at once by the transport
	// (4); past it Send fails with ErrTransportSnapshotsBusy.
	MaxSnapshots int
	// MinBackoff and MaxBackoff bound the wait before a store is connected
	// again after a failure: MinBackoff (50 ms) after a connection that
	// delivered, doubling up to MaxBackoff (2 s) while attempts fail.
	MinBackoff, MaxBackoff time.Duration
	// ResolveTimeout bounds one address lookup (5 s).
	ResolveTimeout time.Duration
}

func (o GRPCTransportOptions) withDefaults() GRPCTransportOptions {
	positiveOr(&o.QueueSize, 4096)
	positiveOr(&o.MaxBatchBytes, 2<<20)
	positiveOr(&o.ChunkSize, 1<<20)
	positiveOr(&o.MaxSnapshots, 4)
	positiveOr(&o.MinBackoff, 50*time.Millisecond)
	positiveOr(&o.MaxBackoff, 2*time.Second)
	positiveOr(&o.ResolveTimeout, 5*time.Second)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	return o
}

func positiveOr[T int | time.Duration](field *T, value T) {
	if *field <= 0 {
		*field = value
	}
}

// transportKeepalive pings a connection every 10 s and drops it after 3 s
// without an answer (TiKV's grpc-keepalive-time and -timeout), so that a
// dead store is noticed even when no write to it fails. The receiving
// server must permit it, as tikvsvc.NewGRPCServer does.
var transportKeepalive = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 3 * time.Second, PermitWithoutStream: true}

// GRPCTransport is the Transport between the stores of a cluster, over
// gRPC. It is safe for concurrent use.
type GRPCTransport struct {
	resolver StoreResolver
	log      *slog.Logger
	opts     GRPCTransportOptions
	// ctx ends at Close; every stream, lookup and wait of the transport's
	// goroutines is bound to it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	links  map[uint64]*storeLink
	// snapshotSlots holds a token for each snapshot being sent, and sending
	// names them: raft sends a follower the same snapshot again while the
	// first is still on its way, and one copy on the wire is enough.
	snapshotSlots chan struct{}
	sending       map[snapshotKey]struct{}
	// workers counts the senders and the snapshot goroutines.
	workers sync.WaitGroup
}

// NewGRPCTransport returns a transport that finds stores through resolver.
// It connects to a store when it first has something to send there.
func NewGRPCTransport(resolver StoreResolver, log *slog.Logger, opts GRPCTransportOptions) *GRPCTransport {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	t := &GRPCTransport{
		resolver:      resolver,
		log:           log,
		opts:          opts,
		links:         make(map[uint64]*storeLink),
		snapshotSlots: make(chan struct{}, opts.MaxSnapshots),
		sending:       make(map[snapshotKey]struct{}),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

// Send queues msg for the store of its to_peer, or, for a snapshot message,
// starts sending it on a stream of its own. It fails at once when the
// store's queue is full, the store is unreachable, too many snapshots are in
// flight or the transport is closed. A queued message may still be lost.
// msg must not be modified afterwards.
func (t *GRPCTransport) Send(msg *raft_serverpb.RaftMessage) error {
	storeID := msg.GetToPeer().GetStoreId()
	if storeID == 0 {
		return ErrTransportNoStore
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrTransportClosed
	}
	link := t.linkLocked(storeID)
	if !link.up.Load() {
		link.wake()
		return fmt.Errorf("%w: store %d", ErrTransportUnreachable, storeID)
	}
	if msg.GetMessage().GetMsgType() == eraftpb.MessageType_MsgSnapshot {
		return t.startSnapshotLocked(link, msg)
	}
	return link.enqueue(msg)
}

// Close stops every goroutine of the transport, dropping what is queued,
// and closes its connections. Send fails afterwards.
func (t *GRPCTransport) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	links := make([]*storeLink, 0, len(t.links))
	for _, l := range t.links {
		links = append(links, l)
	}
	t.mu.Unlock()
	t.cancel()
	t.workers.Wait()
	for _, l := range links {
		l.hangUp(nil)
	}
}

// linkLocked returns the link to a store, creating it and its sender on
// first use; t.mu is held and the transport is open.
func (t *GRPCTransport) linkLocked(storeID uint64) *storeLink {
	if l := t.links[storeID]; l != nil {
		return l
	}
	l := &storeLink{
		t:       t,
		storeID: storeID,
		queue:   make(chan *raft_serverpb.RaftMessage, t.opts.QueueSize),
		wakeup:  make(chan struct{}, 1),
	}
	l.up.Store(true)
	t.links[storeID] = l
	t.workers.Go(l.run)
	return l
}

// snapshotKey names a snapshot sent to a peer.
type snapshotKey struct{ regionID, peerID, index, term uint64 }

func snapshotKeyOf(msg *raft_serverpb.RaftMessage) snapshotKey {
	meta := msg.GetMessage().GetSnapshot().GetMetadata()
	return snapshotKey{msg.GetRegionId(), msg.GetToPeer().GetId(), meta.GetIndex(), meta.GetTerm()}
}

// startSnapshotLocked sends a snapshot message in the background if a slot
// is free, unless the same snapshot is on its way to the same peer; t.mu is
// held and the transport is open.
func (t *GRPCTransport) startSnapshotLocked(l *storeLink, msg *raft_serverpb.RaftMessage) error {
	key := snapshotKeyOf(msg)
	if _, ok := t.sending[key]; ok {
		t.log.Debug("the snapshot is already being sent", "store-id", l.storeID, "region-id", key.regionID,
			"to-peer", key.peerID, "index", key.index)
		return nil
	}
	select {
	case t.snapshotSlots <- struct{}{}:
	default:
		return fmt.Errorf("%w: %d already, one to store %d refused", ErrTransportSnapshotsBusy, cap(t.snapshotSlots), l.storeID)
	}
	t.sending[key] = struct{}{}
	t.workers.Go(func() {
		defer t.snapshotDone(key)
		l.sendSnapshot(msg)
	})
	return nil
}

func (t *GRPCTransport) snapshotDone(key snapshotKey) {
	t.mu.Lock()
	delete(t.sending, key)
	t.mu.Unlock()
	<-t.snapshotSlots
}

// sleep waits for d; false when the transport closes first.
func (t *GRPCTransport) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-t.ctx.Done():
		return false
	}
}

// storeLink is the transport's side of one target store.
type storeLink struct {
	t       *GRPCTransport
	storeID uint64
	queue   chan *raft_serverpb.RaftMessage
	// up is false from a failed connection attempt or stream until a stream
	// opens again; meanwhile Send fails at once, so raft sees the store
	// unreachable.
	up atomic.Bool
	// wakeup asks the sender, once its backoff is over, to connect again
	// though nothing is queued: Send queues nothing while the store is down.
	wakeup chan struct{}

	mu sync.Mutex
	// conn is nil until the address is resolved and after a failure, so
	// that every new connection resolves the address again: a store may
	// restart elsewhere.
	conn *grpc.ClientConn
}

func (l *storeLink) enqueue(msg *raft_serverpb.RaftMessage) error {
	select {
	case l.queue <- msg:
		return nil
	default:
		return fmt.Errorf("%w: store %d", ErrTransportQueueFull, l.storeID)
	}
}

func (l *storeLink) wake() {
	select {
	case l.wakeup <- struct{}{}:
	default:
	}
}

// run is the link's sender. It connects when there is something to send,
// streams batches until the stream breaks, then drops what is queued,
// backs off and starts again.
func (l *storeLink) run() {
	opts := &l.t.opts
	backoff := opts.MinBackoff
	for {
		first, ok := l.next()
		if !ok {
			return
		}
		delivered, err := l.stream(first)
		if l.t.ctx.Err() != nil {
			return
		}
		l.down(err)
		if delivered {
			backoff = opts.MinBackoff
		}
		if !l.t.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, opts.MaxBackoff)
	}
}

// next waits for a message to send or a wake-up (then the message is nil);
// false when the transport closes.
func (l *storeLink) next() (*raft_serverpb.RaftMessage, bool) {
	select {
	case msg := <-l.queue:
		return msg, true
	case <-l.wakeup:
		return nil, true
	case <-l.t.ctx.Done():
		return nil, false
	}
}

// stream opens a BatchRaft stream and sends first, if any, and then what is
// queued on it, until the stream fails or the transport closes. delivered
// reports whether a batch went out.
func (l *storeLink) stream(first *raft_serverpb.RaftMessage) (delivered bool, err error) {
	conn, err := l.dial()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(l.t.ctx)
	defer cancel()
	stream, err := tikvpb.NewTikvClient(conn).BatchRaft(ctx)
	if err != nil {
		l.hangUp(conn)
		return false, fmt.Errorf("raftstore: open a raft stream to store %d: %w", l.storeID, err)
	}
	l.up.Store(true)
	delivered, err = l.pump(stream, first)
	if err != nil {
		l.hangUp(conn)
		return delivered, fmt.Errorf("raftstore: send raft messages to store %d: %w", l.storeID, err)
	}
	return delivered, nil
}

// pump sends batches on stream until a send fails or the transport closes
// (then err is nil).
func (l *storeLink) pump(stream tikvpb.Tikv_BatchRaftClient, next *raft_serverpb.RaftMessage) (delivered bool, err error) {
	for {
		if next == nil {
			select {
			case next = <-l.queue:
			case <-l.t.ctx.Done():
				return delivered, nil
			}
		}
		var batch []*raft_serverpb.RaftMessage
		batch, next = l.batch(next)
		if err := stream.Send(&tikvpb.BatchRaftMessage{Msgs: batch}); err != nil {
			return delivered, streamError(stream, err)
		}
		delivered = true
	}
}

// batch returns first and the messages queued after it while their encoded
// size stays within the budget, and the message that would have exceeded
// it, which starts the next batch. A message over the budget goes alone.
func (l *storeLink) batch(first *raft_serverpb.RaftMessage) ([]*raft_serverpb.RaftMessage, *raft_serverpb.RaftMessage) {
	batch := []*raft_serverpb.RaftMessage{first}
	size := batchedSize(first)
	for {
		select {
		case msg := <-l.queue:
			n := batchedSize(msg)
			if size+n > l.t.opts.MaxBatchBytes {
				return batch, msg
			}
			batch, size = append(batch, msg), size+n
		default:
			return batch, nil
		}
	}
}

// batchedSize is the encoded size of msg as an element of
// BatchRaftMessage.msgs: a one-byte tag, the length and the message.
func batchedSize(msg *raft_serverpb.RaftMessage) int {
	n := msg.Size()
	return 1 + varintLen(uint64(n)) + n
}

func varintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// streamError is the error a failed send on a client stream stands for:
// io.EOF means the server ended the stream, and its status is what
// CloseAndRecv returns.
func streamError(stream interface {
	CloseAndRecv() (*raft_serverpb.Done, error)
}, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	if _, recvErr := stream.CloseAndRecv(); recvErr != nil {
		return recvErr
	}
	return err
}

// down marks the store unreachable after a failed connection attempt or
// stream, and drops what is queued for it.
func (l *storeLink) down(err error) {
	wasUp := l.up.Swap(false)
	dropped := 0
	for len(l.queue) > 0 {
		<-l.queue
		dropped++
	}
	level := slog.LevelDebug
	if wasUp {
		level = slog.LevelWarn
	}
	l.t.log.Log(l.t.ctx, level, "raft connection to a store failed", "store-id", l.storeID, "dropped", dropped, "err", err)
}

// dial returns the link's connection, resolving the store's address and
// creating one if there is none.
func (l *storeLink) dial() (*grpc.ClientConn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		return l.conn, nil
	}
	ctx, cancel := context.WithTimeout(l.t.ctx, l.t.opts.ResolveTimeout)
	defer cancel()
	addr, err := l.t.resolver.StoreAddr(ctx, l.storeID)
	if err != nil {
		return nil, fmt.Errorf("raftstore: resolve store %d: %w", l.storeID, err)
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithKeepaliveParams(transportKeepalive))
	if err != nil {
		return nil, fmt.Errorf("raftstore: connect to store %d at %s: %w", l.storeID, addr, err)
	}
	l.t.log.Debug("connecting to a store", "store-id", l.storeID, "addr", addr)
	l.conn = conn
	return conn, nil
}

// hangUp closes the link's connection if it is conn, or whatever it is
// when conn is nil; the next use resolves the address again.
func (l *storeLink) hangUp(conn *grpc.ClientConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil || (conn != nil && l.conn != conn) {
		return
	}
	if err := l.conn.Close(); err != nil {
		l.t.log.Debug("close a store connection", "store-id", l.storeID, "err", err)
	}
	l.conn = nil
}

// sendSnapshot sends a snapshot message on a Snapshot stream and logs the
// outcome. Raft learns nothing of it: Send already succeeded, and a lost
// snapshot is sent again when the follower still lags.
func (l *storeLink) sendSnapshot(msg *raft_serverpb.RaftMessage) {
	start := time.Now()
	err := l.streamSnapshot(msg)
	if l.t.ctx.Err() != nil {
		return
	}
	attrs := []any{"store-id", l.storeID, "region-id", msg.GetRegionId(), "to-peer", msg.GetToPeer().GetId(),
		"bytes", len(msg.GetMessage().GetSnapshot().GetData())}
	if err != nil {
		l.t.log.Warn("send a snapshot", append(attrs, "err", err)...)
		return
	}
	l.t.log.Debug("sent a snapshot", append(attrs, "took", time.Since(start))...)
}

// streamSnapshot sends msg's chunks on a Snapshot stream and waits for the
// receiver's Done.
func (l *storeLink) streamSnapshot(msg *raft_serverpb.RaftMessage) error {
	conn, err := l.dial()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(l.t.ctx)
	defer cancel()
	stream, err := tikvpb.NewTikvClient(conn).Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("raftstore: open a snapshot stream to store %d: %w", l.storeID, err)
	}
	for _, chunk := range snapshotChunks(msg, l.t.opts.ChunkSize) {
		if err := stream.Send(chunk); err != nil {
			return fmt.Errorf("raftstore: send a snapshot to store %d: %w", l.storeID, streamError(stream, err))
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return fmt.Errorf("raftstore: snapshot to store %d: %w", l.storeID, err)
	}
	return nil
}

// snapshotChunks splits a snapshot message for the Snapshot stream: first
// the message with its snapshot's data left out, then the data in pieces of
// at most size bytes. msg itself is left as it is: raft still holds it.
func snapshotChunks(msg *raft_serverpb.RaftMessage, size int) []*raft_serverpb.SnapshotChunk {
	head := *msg
	var data []byte
	if snap := msg.GetMessage().GetSnapshot(); snap != nil {
		m, s := *msg.Message, *snap
		data, s.Data = snap.Data, nil
		m.Snapshot = &s
		head.Message = &m
	}
	chunks := make([]*raft_serverpb.SnapshotChunk, 0, 1+(len(data)+size-1)/size)
	chunks = append(chunks, &raft_serverpb.SnapshotChunk{Message: &head})
	for len(data) > 0 {
		n := min(size, len(data))
		chunks = append(chunks, &raft_serverpb.SnapshotChunk{Data: data[:n]})
		data = data[n:]
	}
	return chunks
}
