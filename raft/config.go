package raft

import (
	"errors"
	"log/slog"
	"math/rand/v2"
)

// Config holds the parameters of a Raft node. The zero value of every
// optional field selects a documented default.
type Config struct {
	// ID is this node's identity. Required, must not be None (0).
	ID uint64

	// ElectionTick is the number of Tick calls without hearing from a
	// leader after which a follower starts an election. The actual timeout
	// is randomized in [ElectionTick, 2*ElectionTick). It must be greater
	// than HeartbeatTick; 10*HeartbeatTick is recommended.
	ElectionTick int

	// HeartbeatTick is the number of Tick calls between leader heartbeats.
	// Required, > 0.
	HeartbeatTick int

	// Storage is the node's persistent log. Required. The initial
	// HardState and ConfState are read from it, so a new cluster is
	// bootstrapped by writing a ConfState (e.g. via ApplySnapshot).
	Storage Storage

	// Applied is the last applied index when restarting. Entries up to it
	// are not handed out again. Zero means nothing was applied.
	Applied uint64

	// MaxSizePerMsg limits the byte size of the entries in one MsgApp. At
	// least one entry is always sent. 0 means one entry per message;
	// math.MaxUint64 means unlimited.
	MaxSizePerMsg uint64

	// MaxCommittedSizePerReady limits the byte size of
	// Ready.CommittedEntries (at least one entry is returned). 0 means no
	// limit.
	MaxCommittedSizePerReady uint64

	// MaxInflightMsgs bounds the number of unacknowledged MsgApp sent to a
	// follower in replicate state. Required, > 0.
	MaxInflightMsgs int

	// MaxInflightBytes additionally bounds the payload bytes in flight to
	// one follower. 0 means no byte limit.
	MaxInflightBytes uint64

	// CheckQuorum makes a leader step down if it has not heard from a
	// quorum within an election timeout, and makes followers ignore vote
	// requests while they heard from a leader within an election timeout
	// (leader lease).
	CheckQuorum bool

	// PreVote enables the pre-vote phase (Raft thesis section 9.6): a node
	// only bumps its term once a quorum says it could win, so a
	// partitioned node rejoining does not disrupt the cluster.
	PreVote bool

	// ReadOnlyOption selects how ReadIndex is served. ReadOnlyLeaseBased
	// requires CheckQuorum. The replicated store serves ReadIndex with
	// ReadOnlySafe and lease reads through LeaseTicks and
	// RawNode.LeaseValid instead of ReadOnlyLeaseBased, whose lease is not
	// tied to acknowledged heartbeats (see ReadOnlyLeaseBased).
	ReadOnlyOption ReadOnlyOption

	// LeaseTicks enables the leader lease reported by RawNode.LeaseValid:
	// a leader holds the lease for LeaseTicks ticks after sending a
	// heartbeat round that a quorum acknowledged (see lease.go). 0 disables
	// it. It must be less than ElectionTick (the difference is the margin
	// for clock-rate differences between nodes) and requires CheckQuorum.
	// Every member must use the same ElectionTick, CheckQuorum and a
	// positive LeaseTicks: followers with LeaseTicks > 0 keep the promise
	// the lease relies on, refusing votes for ElectionTick ticks after they
	// last heard from a leader or started.
	LeaseTicks int
	// FreshGroup marks a node of a group created just now, such that no
	// leader of it can have existed (the peers a region split creates): it
	// grants votes from its start instead of refusing them for ElectionTick
	// ticks as a node with LeaseTicks otherwise does, so that the group
	// elects a leader at once.
	FreshGroup bool

	// MaxUncommittedEntriesSize limits the payload bytes a leader accepts
	// into its log ahead of the application: entries count from proposal
	// until they are handed out in Ready.CommittedEntries. A proposal that
	// would exceed it is dropped with ErrProposalDropped; a proposal is
	// always accepted when nothing is outstanding, and empty entries never
	// count. 0 means no limit.
	MaxUncommittedEntriesSize uint64

	// DisableProposalForwarding makes followers drop proposals instead of
	// forwarding them to the leader.
	DisableProposalForwarding bool

	// Rand is the source of randomness for election timeouts. Inject a
	// seeded source for deterministic behaviour. nil uses a source seeded
	// from the global generator.
	Rand rand.Source

	// Logger receives rare, significant events (elections, membership
	// changes, snapshots). nil discards them.
	Logger *slog.Logger
}

// Validation errors returned by Config.validate (and thus NewRawNode).
var (
	ErrInvalidID            = errors.New("raft: cannot use none as id")
	ErrInvalidHeartbeatTick = errors.New("raft: heartbeat tick must be greater than 0")
	ErrInvalidElectionTick  = errors.New("raft: election tick must be greater than heartbeat tick")
	ErrNoStorage            = errors.New("raft: storage cannot be nil")
	ErrInvalidInflight      = errors.New("raft: max inflight messages must be greater than 0")
	ErrLeaseNeedsQuorum     = errors.New("raft: CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased")
	ErrInvalidLeaseTicks    = errors.New("raft: lease ticks must be at least 0 and less than election tick")
	ErrLeaseTicksNeedQuorum = errors.New("raft: CheckQuorum must be enabled when LeaseTicks is positive")
)

func (c *Config) validate() error {
	switch {
	case c.ID == None:
		return ErrInvalidID
	case c.HeartbeatTick <= 0:
		return ErrInvalidHeartbeatTick
	case c.ElectionTick <= c.HeartbeatTick:
		return ErrInvalidElectionTick
	case c.Storage == nil:
		return ErrNoStorage
	case c.MaxInflightMsgs <= 0:
		return ErrInvalidInflight
	case c.ReadOnlyOption == ReadOnlyLeaseBased && !c.CheckQuorum:
		return ErrLeaseNeedsQuorum
	case c.LeaseTicks < 0 || c.LeaseTicks >= c.ElectionTick:
		return ErrInvalidLeaseTicks
	case c.LeaseTicks > 0 && !c.CheckQuorum:
		return ErrLeaseTicksNeedQuorum
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Config) rand() *rand.Rand {
	if c.Rand != nil {
		return rand.New(c.Rand)
	}
	return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
}
