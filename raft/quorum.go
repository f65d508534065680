package raft

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// voteOutcome is the outcome of a (pre-)vote count.
type voteOutcome uint8

const (
	// votePending means the outcome is not yet decided.
	votePending voteOutcome = 1 + iota
	// voteLost means a quorum can no longer be reached.
	voteLost
	// voteWon means a quorum has voted yes.
	voteWon
)

// majorityConfig is a set of voters decided by simple majority.
type majorityConfig map[uint64]struct{}

func (c majorityConfig) String() string {
	ids := c.sorted()
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return "(" + strings.Join(parts, " ") + ")"
}

func (c majorityConfig) sorted() []uint64 {
	ids := make([]uint64, 0, len(c))
	for id := range c {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (c majorityConfig) clone() majorityConfig {
	if c == nil {
		return nil
	}
	n := make(majorityConfig, len(c))
	for id := range c {
		n[id] = struct{}{}
	}
	return n
}

// committedIndex returns the largest index acknowledged by a majority, given
// each voter's acknowledged index. An empty config commits everything
// (math.MaxUint64) so that it is neutral in a joint config.
func (c majorityConfig) committedIndex(acked func(id uint64) uint64) uint64 {
	n := len(c)
	if n == 0 {
		return math.MaxUint64
	}
	var stk [7]uint64
	var srt []uint64
	if n <= len(stk) {
		srt = stk[:n]
	} else {
		srt = make([]uint64, n)
	}
	i := 0
	for id := range c {
		srt[i] = acked(id)
		i++
	}
	insertionSort(srt)
	// srt is ascending; the value at n-(n/2+1) is acked by a majority.
	return srt[n-(n/2+1)]
}

func insertionSort(s []uint64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// voteResult counts votes (true = granted). Voters missing from votes have
// not answered yet. An empty config wins.
func (c majorityConfig) voteResult(votes map[uint64]bool) voteOutcome {
	if len(c) == 0 {
		return voteWon
	}
	granted, missing := 0, 0
	for id := range c {
		v, ok := votes[id]
		switch {
		case !ok:
			missing++
		case v:
			granted++
		}
	}
	q := len(c)/2 + 1
	switch {
	case granted >= q:
		return voteWon
	case granted+missing >= q:
		return votePending
	}
	return voteLost
}

// jointConfig is the pair (incoming, outgoing) of majority configs. Outside
// of joint consensus the outgoing config is empty. Decisions require a
// majority in both.
type jointConfig [2]majorityConfig

func (c jointConfig) String() string {
	if len(c[1]) > 0 {
		return c[0].String() + "&&" + c[1].String()
	}
	return c[0].String()
}

// ids returns the union of both configs, sorted.
func (c jointConfig) ids() []uint64 {
	u := majorityConfig{}
	for _, mc := range c {
		for id := range mc {
			u[id] = struct{}{}
		}
	}
	return u.sorted()
}

func (c jointConfig) contains(id uint64) bool {
	_, in0 := c[0][id]
	_, in1 := c[1][id]
	return in0 || in1
}

func (c jointConfig) committedIndex(acked func(id uint64) uint64) uint64 {
	return min(c[0].committedIndex(acked), c[1].committedIndex(acked))
}

func (c jointConfig) voteResult(votes map[uint64]bool) voteOutcome {
	r0, r1 := c[0].voteResult(votes), c[1].voteResult(votes)
	switch {
	case r0 == r1:
		return r0
	case r0 == voteLost || r1 == voteLost:
		return voteLost
	}
	return votePending
}
