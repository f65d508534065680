package raft

import (
	"io"
	"log"
	"math/rand/v2"
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
	etcdraft "go.etcd.io/raft/v3"
	etcdpb "go.etcd.io/raft/v3/raftpb"
)

// The benchmarks drive this package and go.etcd.io/raft/v3 through the
// same harness: N in-memory nodes, each with a MemoryStorage, running the
// classic Ready loop (persist entries and HardState, send messages, apply
// committed entries, Advance). Messages are delivered synchronously until
// the cluster is quiet, so every iteration is one proposal proposed,
// replicated, committed and applied on every node.
//
//	go test -run '^$' -bench Propose -benchmem ./raft/

// benchPeer abstracts one node of either library. M is the message type.
type benchPeer[M any] interface {
	propose(data []byte) error
	campaign() error
	step(m M)
	// handleReady processes every pending Ready, appending the messages
	// to send to out.
	handleReady(out []M) []M
	to(m M) uint64
	isLeader() bool
	applied() int
}

type benchCluster[M any] struct {
	peers []benchPeer[M]
	msgs  []M
}

// pump runs Ready loops and delivers messages until nothing is left.
func (c *benchCluster[M]) pump() {
	for {
		c.msgs = c.msgs[:0]
		for _, p := range c.peers {
			c.msgs = p.handleReady(c.msgs)
		}
		if len(c.msgs) == 0 {
			return
		}
		for _, m := range c.msgs {
			c.peers[p2i(c.peers[0].to(m))].step(m)
		}
	}
}

func p2i(id uint64) int { return int(id - 1) }

func runProposeBench[M any](b *testing.B, peers []benchPeer[M]) {
	c := &benchCluster[M]{peers: peers}
	if err := peers[0].campaign(); err != nil {
		b.Fatal(err)
	}
	c.pump()
	if !peers[0].isLeader() {
		b.Fatal("node 1 did not become leader")
	}
	data := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := peers[0].propose(data); err != nil {
			b.Fatal(err)
		}
		c.pump()
	}
	b.StopTimer()
	for _, p := range peers {
		if p.applied() < b.N {
			b.Fatalf("only %d of %d proposals applied", p.applied(), b.N)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proposals/s")
}

func BenchmarkPropose(b *testing.B) {
	for _, n := range []int{1, 3} {
		name := map[int]string{1: "1node", 3: "3nodes"}[n]
		b.Run("ours/"+name, func(b *testing.B) {
			runProposeBench(b, newOursPeers(b, n))
		})
		b.Run("etcd/"+name, func(b *testing.B) {
			runProposeBench(b, newEtcdPeers(b, n))
		})
	}
}

// --- this package ---

type oursPeer struct {
	rn      *RawNode
	storage *MemoryStorage
	nApply  int
}

func newOursPeers(b *testing.B, n int) []benchPeer[eraftpb.Message] {
	var peers []benchPeer[eraftpb.Message]
	for _, id := range ids(n) {
		s := NewMemoryStorage()
		if err := s.ApplySnapshot(eraftpb.Snapshot{Metadata: &eraftpb.SnapshotMetadata{
			Index: 1, Term: 1, ConfState: &eraftpb.ConfState{Voters: ids(n)},
		}}); err != nil {
			b.Fatal(err)
		}
		rn, err := NewRawNode(&Config{
			ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256,
			Rand: rand.NewPCG(id, 1),
		})
		if err != nil {
			b.Fatal(err)
		}
		peers = append(peers, &oursPeer{rn: rn, storage: s})
	}
	return peers
}

func (p *oursPeer) propose(data []byte) error   { return p.rn.Propose(data) }
func (p *oursPeer) campaign() error             { return p.rn.Campaign() }
func (p *oursPeer) step(m eraftpb.Message)      { _ = p.rn.Step(m) }
func (p *oursPeer) to(m eraftpb.Message) uint64 { return m.To }
func (p *oursPeer) isLeader() bool              { return p.rn.BasicStatus().SoftState.RaftState == StateLeader }
func (p *oursPeer) applied() int                { return p.nApply }
func (p *oursPeer) handleReady(out []eraftpb.Message) []eraftpb.Message {
	for p.rn.HasReady() {
		rd := p.rn.Ready()
		if err := p.storage.Append(rd.Entries); err != nil {
			panic(err)
		}
		if !IsEmptyHardState(rd.HardState) {
			_ = p.storage.SetHardState(rd.HardState)
		}
		out = append(out, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			if len(e.Data) > 0 {
				p.nApply++
			}
		}
		p.rn.Advance()
	}
	return out
}

// --- go.etcd.io/raft/v3 ---

type etcdPeer struct {
	rn      *etcdraft.RawNode
	storage *etcdraft.MemoryStorage
	nApply  int
}

func newEtcdPeers(b *testing.B, n int) []benchPeer[*etcdpb.Message] {
	var peers []benchPeer[*etcdpb.Message]
	for _, id := range ids(n) {
		s := etcdraft.NewMemoryStorage()
		if err := s.ApplySnapshot(&etcdpb.Snapshot{Metadata: &etcdpb.SnapshotMetadata{
			Index: new(uint64(1)), Term: new(uint64(1)), ConfState: &etcdpb.ConfState{Voters: ids(n)},
		}}); err != nil {
			b.Fatal(err)
		}
		rn, err := etcdraft.NewRawNode(&etcdraft.Config{
			ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256,
			Logger: &etcdraft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
		})
		if err != nil {
			b.Fatal(err)
		}
		peers = append(peers, &etcdPeer{rn: rn, storage: s})
	}
	return peers
}

func (p *etcdPeer) propose(data []byte) error   { return p.rn.Propose(data) }
func (p *etcdPeer) campaign() error             { return p.rn.Campaign() }
func (p *etcdPeer) step(m *etcdpb.Message)      { _ = p.rn.Step(m) }
func (p *etcdPeer) to(m *etcdpb.Message) uint64 { return m.GetTo() }
func (p *etcdPeer) isLeader() bool              { return p.rn.BasicStatus().RaftState == etcdraft.StateLeader }
func (p *etcdPeer) applied() int                { return p.nApply }
func (p *etcdPeer) handleReady(out []*etcdpb.Message) []*etcdpb.Message {
	for p.rn.HasReady() {
		rd := p.rn.Ready()
		if err := p.storage.Append(rd.Entries); err != nil {
			panic(err)
		}
		if !etcdraft.IsEmptyHardState(rd.HardState) {
			_ = p.storage.SetHardState(rd.HardState)
		}
		out = append(out, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			if len(e.GetData()) > 0 {
				p.nApply++
			}
		}
		p.rn.Advance(rd)
	}
	return out
}
