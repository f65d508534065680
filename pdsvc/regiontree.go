package pdsvc

import (
	"bytes"

	"github.com/google/btree"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
)

// regionInfo is PD's view of one region: its metadata as last reported and
// the statistics that came with that report.
type regionInfo struct {
	meta         *metapb.Region
	leader       *metapb.Peer
	downPeers    []*pdpb.PeerStats
	pendingPeers []*metapb.Peer
	term         uint64
	approxSize   uint64 // MiB, as PD keeps it (see approximateMiB)
	approxKeys   uint64
	// The flow the leader reported for interval: bytes and keys written
	// and read.
	writtenBytes, writtenKeys uint64
	readBytes, readKeys       uint64
	interval                  *pdpb.TimeInterval
}

// approximateMiB converts a reported size in bytes to PD's MiB, where any
// non-empty region counts at least 1.
func approximateMiB(bytes uint64) uint64 {
	if bytes > 0 && bytes < 1<<20 {
		return 1
	}
	return bytes >> 20
}

// intervalSeconds is the length of the report's interval, 0 if unknown.
func (r *regionInfo) intervalSeconds() uint64 {
	start, end := r.interval.GetStartTimestamp(), r.interval.GetEndTimestamp()
	if end <= start {
		return 0
	}
	return end - start
}

func (r *regionInfo) startKey() []byte { return r.meta.GetStartKey() }
func (r *regionInfo) endKey() []byte   { return r.meta.GetEndKey() }

// contains reports whether key falls in [start, end); an empty end is +inf.
func (r *regionInfo) contains(key []byte) bool {
	return bytes.Compare(r.startKey(), key) <= 0 && endAfter(r.endKey(), key)
}

// endAfter reports whether the exclusive end key lies strictly after key.
func endAfter(end, key []byte) bool {
	return len(end) == 0 || bytes.Compare(end, key) > 0
}

// toPB returns the region in the shape ScanRegions and friends send.
func (r *regionInfo) toPB() *pdpb.Region {
	leader := r.leader
	if leader == nil {
		leader = &metapb.Peer{}
	}
	return &pdpb.Region{
		Region:       r.meta,
		Leader:       leader,
		DownPeers:    r.downPeers,
		PendingPeers: r.pendingPeers,
	}
}

// regionTree indexes regions by start key. Ranges in the tree never overlap:
// inserting a region first removes every region it overlaps.
type regionTree struct {
	tree *btree.BTreeG[*regionInfo]
}

func newRegionTree() *regionTree {
	less := func(a, b *regionInfo) bool { return bytes.Compare(a.startKey(), b.startKey()) < 0 }
	return &regionTree{tree: btree.NewG(32, less)}
}

func probe(key []byte) *regionInfo {
	return &regionInfo{meta: &metapb.Region{StartKey: key}}
}

// search returns the region containing key, or nil.
func (t *regionTree) search(key []byte) *regionInfo {
	var found *regionInfo
	t.tree.DescendLessOrEqual(probe(key), func(r *regionInfo) bool {
		found = r
		return false
	})
	if found == nil || !found.contains(key) {
		return nil
	}
	return found
}

// prev returns the region that ends where the region containing key starts.
func (t *regionTree) prev(key []byte) *regionInfo {
	cur := t.search(key)
	if cur == nil || len(cur.startKey()) == 0 {
		return nil
	}
	var found *regionInfo
	t.tree.DescendLessOrEqual(probe(cur.startKey()), func(r *regionInfo) bool {
		if r == cur {
			return true
		}
		found = r
		return false
	})
	if found == nil || !bytes.Equal(found.endKey(), cur.startKey()) {
		return nil
	}
	return found
}

// overlaps returns the regions that intersect [start, end) in key order.
func (t *regionTree) overlaps(start, end []byte) []*regionInfo {
	var result []*regionInfo
	if first := t.search(start); first != nil && !bytes.Equal(first.startKey(), start) {
		result = append(result, first)
	}
	t.tree.AscendGreaterOrEqual(probe(start), func(r *regionInfo) bool {
		if len(end) > 0 && bytes.Compare(r.startKey(), end) >= 0 {
			return false
		}
		result = append(result, r)
		return true
	})
	return result
}

// scan returns up to limit regions (all if limit <= 0) that intersect
// [start, end), in key order.
func (t *regionTree) scan(start, end []byte, limit int) []*regionInfo {
	regions := t.overlaps(start, end)
	if limit > 0 && len(regions) > limit {
		regions = regions[:limit]
	}
	return regions
}

func (t *regionTree) insert(r *regionInfo) { t.tree.ReplaceOrInsert(r) }
func (t *regionTree) remove(r *regionInfo) { t.tree.Delete(r) }
func (t *regionTree) len() int             { return t.tree.Len() }

// all returns every region in key order.
func (t *regionTree) all() []*regionInfo {
	result := make([]*regionInfo, 0, t.tree.Len())
	t.tree.Ascend(func(r *regionInfo) bool {
		result = append(result, r)
		return true
	})
	return result
}
