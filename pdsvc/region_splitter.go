package pdsvc

import (
	"bytes"
	"context"
	"slices"
	"time"
)

// splitterDesc is the split operators' description, PD's.
const splitterDesc = "region-splitter"

// splitGroup is the split keys that fall inside one region.
type splitGroup struct {
	region *regionInfo
	keys   [][]byte
}

// splitRegions splits the regions at keys, as PD's SplitRegions does: it
// groups the keys by the region that holds them, starts a split operator
// (SplitRegion with the USEKEY policy, sent to the leader) for each
// region, and waits until the heartbeats show a region starting at every
// key, for at most [schedule] split-wait-time or until ctx ends. Keys still
// not region starts are tried again, up to retryLimit (at most
// maxRetryLimit) more times with PD's backoff.
//
// It returns the finished percentage, 100 − 100 × unprocessed / len(keys),
// and the ids of the regions that start at the keys, sorted. Unlike PD,
// which counts a key that already starts a region as unprocessed, such a
// key counts as done: the region boundary the caller asked for exists.
func (co *coordinator) splitRegions(ctx context.Context, keys [][]byte, retryLimit int) (uint64, []uint64) {
	if len(keys) == 0 {
		return 0, nil
	}
	found := make(map[string]uint64) // split key → id of the region starting there
	for attempt := 0; ; attempt++ {
		groups := co.groupSplitKeys(unsplit(keys, found), found)
		co.waitSplits(ctx, co.startSplits(groups), found)
		if len(unsplit(keys, found)) == 0 || attempt >= min(retryLimit, maxRetryLimit) || !sleepBackoff(ctx, attempt) {
			break
		}
	}
	unprocessed := 0
	for _, k := range keys {
		if _, ok := found[string(k)]; !ok {
			unprocessed++
		}
	}
	return uint64(100 - unprocessed*100/len(keys)), co.regionsStartingAt(found)
}

// regionsStartingAt returns the ids of the regions that start at the found
// keys now, sorted: a later split may have given a key's range to a new
// region since it was found.
func (co *coordinator) regionsStartingAt(found map[string]uint64) []uint64 {
	ids := make([]uint64, 0, len(found))
	for k, id := range found {
		if r := co.cluster.regionByKey([]byte(k)); r != nil && string(r.startKey()) == k {
			id = r.meta.GetId()
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// unsplit returns the distinct keys not yet found as region starts.
func unsplit(keys [][]byte, found map[string]uint64) [][]byte {
	var result [][]byte
	seen := make(map[string]bool)
	for _, k := range keys {
		if _, ok := found[string(k)]; !ok && !seen[string(k)] {
			seen[string(k)] = true
			result = append(result, k)
		}
	}
	return result
}

// groupSplitKeys groups keys by the region holding them, each group's keys
// sorted. A key that already starts a region goes into found; a key in no
// region, or in one without a known leader, is left out.
func (co *coordinator) groupSplitKeys(keys [][]byte, found map[string]uint64) []*splitGroup {
	byRegion := make(map[uint64]*splitGroup)
	var groups []*splitGroup
	for _, k := range keys {
		r := co.cluster.regionByKey(k)
		switch {
		case r == nil:
			continue
		case bytes.Equal(r.startKey(), k):
			found[string(k)] = r.meta.GetId()
			continue
		case r.leader == nil:
			continue
		}
		g := byRegion[r.meta.GetId()]
		if g == nil {
			g = &splitGroup{region: r}
			byRegion[r.meta.GetId()] = g
			groups = append(groups, g)
		}
		g.keys = append(g.keys, k)
	}
	for _, g := range groups {
		slices.SortFunc(g.keys, bytes.Compare)
	}
	return groups
}

// startSplits starts a split operator for each group and sends its step;
// it returns the groups whose operator started. A region with a running
// operator of the same or higher priority is left for the next attempt.
func (co *coordinator) startSplits(groups []*splitGroup) []*splitGroup {
	var started []*splitGroup
	v := co.view()
	for _, g := range groups {
		r := g.region
		plan := newPlan(splitterDesc, 0, splitRegion{startKey: r.startKey(), endKey: r.endKey(), keys: g.keys})
		cmd, err := co.startPlan(plan, r, v)
		if err != nil {
			co.log.Info("split region not started", "region-id", r.meta.GetId(), "err", err)
			continue
		}
		co.send(r, cmd)
		started = append(started, g)
	}
	return started
}

// waitSplits waits until every key of groups starts a region, recording
// those that do in found, for at most split-wait-time or until ctx ends.
// It wakes on every change of PD's regions.
func (co *coordinator) waitSplits(ctx context.Context, groups []*splitGroup, found map[string]uint64) {
	if len(groups) == 0 {
		return
	}
	timer := time.NewTimer(co.cfg.SplitWaitTime)
	defer timer.Stop()
	for {
		changed := co.cluster.regionsChanged()
		if co.collectSplits(groups, found) {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// collectSplits records the keys of groups that now start a region and
// reports whether all do.
func (co *coordinator) collectSplits(groups []*splitGroup, found map[string]uint64) bool {
	all := true
	for _, g := range groups {
		for _, k := range g.keys {
			if _, ok := found[string(k)]; ok {
				continue
			}
			if r := co.cluster.regionByKey(k); r != nil && bytes.Equal(r.startKey(), k) {
				found[string(k)] = r.meta.GetId()
				continue
			}
			all = false
		}
	}
	return all
}
