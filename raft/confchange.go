package raft

import (
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/eraftpb"
)

// ConfChangeI is a configuration change: either *eraftpb.ConfChange (a
// single-step change) or *eraftpb.ConfChangeV2 (possibly joint).
type ConfChangeI interface {
	Marshal() ([]byte, error)
}

// confChangeToV2 normalises a ConfChangeI to a ConfChangeV2 together with
// the entry type used to propose it.
func confChangeToV2(cc ConfChangeI) (*eraftpb.ConfChangeV2, eraftpb.EntryType, error) {
	switch c := cc.(type) {
	case *eraftpb.ConfChange:
		return &eraftpb.ConfChangeV2{
			Changes: []*eraftpb.ConfChangeSingle{{ChangeType: c.ChangeType, NodeId: c.NodeId}},
			Context: c.Context,
		}, eraftpb.EntryType_EntryConfChange, nil
	case *eraftpb.ConfChangeV2:
		return c, eraftpb.EntryType_EntryConfChangeV2, nil
	}
	return nil, 0, fmt.Errorf("raft: unsupported conf change type %T", cc)
}

// decodeConfChange decodes a conf change entry.
func decodeConfChange(e *eraftpb.Entry) (*eraftpb.ConfChangeV2, error) {
	switch e.EntryType {
	case eraftpb.EntryType_EntryConfChange:
		var cc eraftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return nil, err
		}
		v2, _, err := confChangeToV2(&cc)
		return v2, err
	case eraftpb.EntryType_EntryConfChangeV2:
		var cc eraftpb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			return nil, err
		}
		return &cc, nil
	}
	return nil, fmt.Errorf("raft: entry type %s is not a conf change", e.EntryType)
}

// leavesJoint reports whether cc is the empty change that leaves a joint
// configuration.
func leavesJoint(cc *eraftpb.ConfChangeV2) bool {
	return len(cc.Changes) == 0 && cc.Transition == eraftpb.ConfChangeTransition_Auto
}

// entersJoint reports whether cc must use joint consensus, and if so
// whether the joint config is left automatically.
func entersJoint(cc *eraftpb.ConfChangeV2) (autoLeave, ok bool) {
	if cc.Transition == eraftpb.ConfChangeTransition_Auto && len(cc.Changes) <= 1 {
		return false, false
	}
	return cc.Transition != eraftpb.ConfChangeTransition_Explicit, true
}

// changer computes a new configuration from the current one. It never
// mutates its inputs; the result is installed with raft.switchToConfig.
type changer struct {
	config    trackerConfig
	progress  progressMap
	lastIndex uint64
	tracker   *tracker
}

func newChanger(t *tracker, lastIndex uint64) *changer {
	return &changer{
		config:    t.config.clone(),
		progress:  t.progress.clone(),
		lastIndex: lastIndex,
		tracker:   t,
	}
}

var (
	errAlreadyJoint = errors.New("raft: config is already joint")
	errNotJoint     = errors.New("raft: config is not joint")
	errNoVoters     = errors.New("raft: removed all voters")
)

// apply computes the result of applying cc to the configuration.
func (c *changer) apply(cc *eraftpb.ConfChangeV2) error {
	if leavesJoint(cc) {
		return c.leaveJoint()
	}
	if autoLeave, ok := entersJoint(cc); ok {
		return c.enterJoint(autoLeave, cc.Changes)
	}
	return c.simple(cc.Changes)
}

// enterJoint makes the current voters the outgoing config and applies the
// changes to the incoming config. Reference: Raft paper section 6.
func (c *changer) enterJoint(autoLeave bool, ccs []*eraftpb.ConfChangeSingle) error {
	if c.config.joint() {
		return errAlreadyJoint
	}
	if len(c.config.voters[0]) == 0 {
		return errors.New("raft: can't make a zero-voter config joint")
	}
	c.config.voters[1] = c.config.voters[0].clone()
	if err := c.applyChanges(ccs); err != nil {
		return err
	}
	c.config.autoLeave = autoLeave
	return c.check()
}

// leaveJoint drops the outgoing config, turning learnersNext into learners
// and removing members that are in neither config.
func (c *changer) leaveJoint() error {
	if !c.config.joint() {
		return errNotJoint
	}
	for id := range c.config.learnersNext {
		c.addLearnerSet(id)
		c.progress.get(id).IsLearner = true
	}
	c.config.learnersNext = nil
	for id := range c.config.voters[1] {
		_, isVoter := c.config.voters[0][id]
		_, isLearner := c.config.learners[id]
		if !isVoter && !isLearner {
			c.progress.delete(id)
		}
	}
	c.config.voters[1] = nil
	c.config.autoLeave = false
	return c.check()
}

// simple applies changes that alter at most one voter, without joint
// consensus.
func (c *changer) simple(ccs []*eraftpb.ConfChangeSingle) error {
	if c.config.joint() {
		return errors.New("raft: can't apply simple config change in joint config")
	}
	before := c.config.voters[0].clone()
	if err := c.applyChanges(ccs); err != nil {
		return err
	}
	if symDiff(before, c.config.voters[0]) > 1 {
		return errors.New("raft: more than one voter changed without entering joint config")
	}
	return c.check()
}

func (c *changer) applyChanges(ccs []*eraftpb.ConfChangeSingle) error {
	for _, cc := range ccs {
		if cc.NodeId == None {
			continue
		}
		switch cc.ChangeType {
		case eraftpb.ConfChangeType_AddNode:
			c.makeVoter(cc.NodeId)
		case eraftpb.ConfChangeType_AddLearnerNode:
			c.makeLearner(cc.NodeId)
		case eraftpb.ConfChangeType_RemoveNode:
			c.remove(cc.NodeId)
		default:
			return fmt.Errorf("raft: unexpected conf change type %d", cc.ChangeType)
		}
	}
	if len(c.config.voters[0]) == 0 {
		return errNoVoters
	}
	return nil
}

func (c *changer) makeVoter(id uint64) {
	pr := c.progress.get(id)
	if pr == nil {
		c.initProgress(id, false)
		return
	}
	pr.IsLearner = false
	delete(c.config.learners, id)
	delete(c.config.learnersNext, id)
	c.config.voters[0][id] = struct{}{}
}

// makeLearner turns id into a learner. A voter of the outgoing config only
// becomes a learner when the joint config is left (learnersNext).
func (c *changer) makeLearner(id uint64) {
	pr := c.progress.get(id)
	if pr == nil {
		c.initProgress(id, true)
		return
	}
	if pr.IsLearner {
		return
	}
	c.remove(id)
	c.progress.set(id, pr)
	if _, ok := c.config.voters[1][id]; ok {
		if c.config.learnersNext == nil {
			c.config.learnersNext = map[uint64]struct{}{}
		}
		c.config.learnersNext[id] = struct{}{}
		return
	}
	pr.IsLearner = true
	c.addLearnerSet(id)
}

func (c *changer) remove(id uint64) {
	if c.progress.get(id) == nil {
		return
	}
	delete(c.config.voters[0], id)
	delete(c.config.learners, id)
	delete(c.config.learnersNext, id)
	if _, ok := c.config.voters[1][id]; !ok {
		c.progress.delete(id)
	}
}

func (c *changer) addLearnerSet(id uint64) {
	if c.config.learners == nil {
		c.config.learners = map[uint64]struct{}{}
	}
	c.config.learners[id] = struct{}{}
}

// initProgress adds a new member. Replication starts by probing from the
// leader's last index; the member counts as recently active so that adding
// it does not immediately fail check-quorum.
func (c *changer) initProgress(id uint64, learner bool) {
	if learner {
		c.addLearnerSet(id)
	} else {
		c.config.voters[0][id] = struct{}{}
	}
	c.progress.set(id, newProgress(max(c.lastIndex, 1), c.tracker.maxInflight, c.tracker.maxInflightBytes, learner))
}

// check verifies the trackerConfig invariants.
func (c *changer) check() error {
	cfg := &c.config
	for _, ids := range []map[uint64]struct{}{cfg.voters[0], cfg.voters[1], cfg.learners, cfg.learnersNext} {
		for id := range ids {
			if c.progress.get(id) == nil {
				return fmt.Errorf("raft: no progress for %d", id)
			}
		}
	}
	for id := range cfg.learnersNext {
		if _, ok := cfg.voters[1][id]; !ok {
			return fmt.Errorf("raft: %d is in learnersNext but not outgoing voters", id)
		}
		if c.progress.get(id).IsLearner {
			return fmt.Errorf("raft: %d is in learnersNext but already a learner", id)
		}
	}
	for id := range cfg.learners {
		if cfg.voters.contains(id) {
			return fmt.Errorf("raft: %d is both learner and voter", id)
		}
		if !c.progress.get(id).IsLearner {
			return fmt.Errorf("raft: %d is a learner without the learner flag", id)
		}
	}
	if !cfg.joint() && (len(cfg.learnersNext) > 0 || cfg.autoLeave) {
		return errors.New("raft: learnersNext or autoLeave set outside a joint config")
	}
	return nil
}

func symDiff(a, b majorityConfig) int {
	n := 0
	for id := range a {
		if _, ok := b[id]; !ok {
			n++
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			n++
		}
	}
	return n
}

// restoreConfig builds the tracker configuration described by cs.
func restoreConfig(t *tracker, cs *eraftpb.ConfState, lastIndex uint64) (trackerConfig, progressMap, error) {
	if err := validateConfState(cs); err != nil {
		return trackerConfig{}, progressMap{}, err
	}
	c := &changer{
		config: trackerConfig{
			voters: jointConfig{majorityConfig{}, nil},
		},
		progress:  newProgressMap(),
		lastIndex: lastIndex,
		tracker:   t,
	}
	for _, id := range cs.GetVotersOutgoing() {
		if c.config.voters[1] == nil {
			c.config.voters[1] = majorityConfig{}
		}
		c.config.voters[1][id] = struct{}{}
		c.progress.set(id, newProgress(max(lastIndex, 1), t.maxInflight, t.maxInflightBytes, false))
	}
	for _, id := range cs.GetVoters() {
		c.makeVoter(id)
	}
	for _, id := range cs.GetLearners() {
		c.makeLearner(id)
	}
	for _, id := range cs.GetLearnersNext() {
		c.makeLearner(id)
	}
	c.config.autoLeave = cs.GetAutoLeave()
	return c.config, c.progress, c.check()
}

// validateConfState checks that learners are not voters and that
// learnersNext are outgoing voters only.
func validateConfState(cs *eraftpb.ConfState) error {
	for _, id := range cs.GetLearners() {
		if containsID(cs.GetVoters(), id) || containsID(cs.GetVotersOutgoing(), id) {
			return fmt.Errorf("raft: conf state lists %d as both learner and voter", id)
		}
	}
	for _, id := range cs.GetLearnersNext() {
		if containsID(cs.GetVoters(), id) || !containsID(cs.GetVotersOutgoing(), id) {
			return fmt.Errorf("raft: conf state lists %d in learners_next but not as outgoing voter only", id)
		}
	}
	return nil
}
