package raft

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// Short aliases for message types used throughout the tests.
const (
	msgHup        = eraftpb.MessageType_MsgHup
	msgBeat       = eraftpb.MessageType_MsgBeat
	msgProp       = eraftpb.MessageType_MsgPropose
	msgApp        = eraftpb.MessageType_MsgAppend
	msgAppResp    = eraftpb.MessageType_MsgAppendResponse
	msgVote       = eraftpb.MessageType_MsgRequestVote
	msgVoteResp   = eraftpb.MessageType_MsgRequestVoteResponse
	msgPreVote    = eraftpb.MessageType_MsgRequestPreVote
	msgPreVoteRes = eraftpb.MessageType_MsgRequestPreVoteResponse
	msgSnap       = eraftpb.MessageType_MsgSnapshot
	msgHeartbeat  = eraftpb.MessageType_MsgHeartbeat
	msgHbResp     = eraftpb.MessageType_MsgHeartbeatResponse
	msgUnreach    = eraftpb.MessageType_MsgUnreachable
	msgSnapStatus = eraftpb.MessageType_MsgSnapStatus
	msgCheckQ     = eraftpb.MessageType_MsgCheckQuorum
	msgTransfer   = eraftpb.MessageType_MsgTransferLeader
	msgTimeoutNow = eraftpb.MessageType_MsgTimeoutNow
	msgReadIndex  = eraftpb.MessageType_MsgReadIndex
	msgReadResp   = eraftpb.MessageType_MsgReadIndexResp
)

func newTestConfig(id uint64, election, heartbeat int, s Storage) *Config {
	return &Config{
		ID:              id,
		ElectionTick:    election,
		HeartbeatTick:   heartbeat,
		Storage:         s,
		MaxSizePerMsg:   noLimit,
		MaxInflightMsgs: 256,
		Rand:            rand.NewPCG(id, 7),
	}
}

// newTestMemoryStorage returns a storage bootstrapped with the given voters
// (and learners) at index 0.
func newTestMemoryStorage(voters []uint64, learners ...uint64) *MemoryStorage {
	ms := NewMemoryStorage()
	ms.snapshot.Metadata.ConfState = &eraftpb.ConfState{Voters: voters, Learners: learners}
	return ms
}

func mustNewRaft(t testing.TB, c *Config) *raft {
	t.Helper()
	r, err := newRaft(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newTestRaft(t testing.TB, id uint64, election, heartbeat int, s Storage) *raft {
	return mustNewRaft(t, newTestConfig(id, election, heartbeat, s))
}

func ids(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

func readMessages(r *raft) []eraftpb.Message {
	msgs := r.msgs
	r.msgs = nil
	return msgs
}

func step(t testing.TB, r *raft, m eraftpb.Message) error {
	t.Helper()
	return r.Step(&m)
}

func ents(terms ...uint64) []*eraftpb.Entry {
	out := make([]*eraftpb.Entry, len(terms))
	for i, term := range terms {
		out[i] = &eraftpb.Entry{Index: uint64(i + 1), Term: term}
	}
	return out
}

func propMsg(from uint64, data string) eraftpb.Message {
	return eraftpb.Message{From: from, To: from, MsgType: msgProp, Entries: []*eraftpb.Entry{{Data: []byte(data)}}}
}

// allEntries returns the whole log (stable and unstable).
func allEntries(l *raftLog) []*eraftpb.Entry {
	es, err := l.entries(l.firstIndex(), noLimit)
	if err != nil {
		panic(err)
	}
	return es
}

type connem struct{ from, to uint64 }

// network connects raft nodes in memory, delivering messages
// synchronously. A nil peer is a black hole.
type network struct {
	t       testing.TB
	peers   map[uint64]*raft
	storage map[uint64]*MemoryStorage
	dropm   map[connem]float64
	ignorem map[eraftpb.MessageType]bool
	msgHook func(eraftpb.Message) bool
	rand    *rand.Rand
}

// newNetwork creates a network of len(peers) nodes. A nil peer is replaced
// by a fresh node whose config is adjusted by cfgFn (if not nil); peers
// given explicitly are used as is. Use blackHole for a node that drops all
// messages.
func newNetwork(t testing.TB, cfgFn func(*Config), peers ...*raft) *network {
	n := len(peers)
	all := ids(n)
	nw := &network{
		t:       t,
		peers:   map[uint64]*raft{},
		storage: map[uint64]*MemoryStorage{},
		dropm:   map[connem]float64{},
		ignorem: map[eraftpb.MessageType]bool{},
		rand:    rand.New(rand.NewPCG(1, 2)),
	}
	for i, p := range peers {
		id := all[i]
		switch {
		case p == nil:
			s := newTestMemoryStorage(all)
			nw.storage[id] = s
			c := newTestConfig(id, 10, 1, s)
			if cfgFn != nil {
				cfgFn(c)
			}
			nw.peers[id] = mustNewRaft(t, c)
		case p == blackHole:
			nw.peers[id] = nil
		default:
			p.id = id
			nw.peers[id] = p
		}
	}
	return nw
}

// blackHole marks a peer slot that swallows messages.
var blackHole = &raft{}

func (nw *network) send(msgs ...eraftpb.Message) {
	for len(msgs) > 0 {
		m := msgs[0]
		msgs = msgs[1:]
		p := nw.peers[m.To]
		if p == nil {
			continue
		}
		_ = p.Step(&m)
		msgs = append(msgs, nw.filter(readMessages(p))...)
	}
}

func (nw *network) filter(msgs []eraftpb.Message) []eraftpb.Message {
	var out []eraftpb.Message
	for _, m := range msgs {
		if nw.ignorem[m.MsgType] {
			continue
		}
		if m.MsgType == msgHup {
			panic("unexpected msgHup")
		}
		if perc := nw.dropm[connem{m.From, m.To}]; perc > 0 && nw.rand.Float64() < perc {
			continue
		}
		if nw.msgHook != nil && !nw.msgHook(m) {
			continue
		}
		out = append(out, m)
	}
	return out
}

func (nw *network) campaign(id uint64) {
	nw.send(eraftpb.Message{From: id, To: id, MsgType: msgHup})
}

func (nw *network) propose(id uint64, data string) {
	nw.send(propMsg(id, data))
}

func (nw *network) drop(from, to uint64, perc float64) { nw.dropm[connem{from, to}] = perc }

func (nw *network) cut(a, b uint64) {
	nw.drop(a, b, 2)
	nw.drop(b, a, 2)
}

func (nw *network) isolate(id uint64) {
	for other := range nw.peers {
		if other != id {
			nw.cut(id, other)
		}
	}
}

func (nw *network) ignore(t eraftpb.MessageType) { nw.ignorem[t] = true }

func (nw *network) recover() {
	nw.dropm = map[connem]float64{}
	nw.ignorem = map[eraftpb.MessageType]bool{}
}

// tickN ticks a node n times, delivering its output after each tick.
func (nw *network) tickN(id uint64, n int) {
	for range n {
		nw.peers[id].tick()
		nw.send(nw.filter(readMessages(nw.peers[id]))...)
	}
}

func entryData(es []*eraftpb.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Data))
	}
	return out
}

func sortedIDs(m map[uint64]*raft) []uint64 {
	var out []uint64
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// setRandomizedElectionTimeout pins the randomized timeout for a test.
func setRandomizedElectionTimeout(r *raft, v int) { r.randomizedElectionTimeout = v }

// isLearner reports whether r is a learner in its own configuration.
func isLearner(r *raft) bool {
	pr := r.trk.progress.get(r.id)
	return pr != nil && pr.IsLearner
}
