package raftstore

import (
	"encoding/binary"
	"fmt"
)

// Local keys, in TiKV's layout (components/keys): every key starts with 0x01.
//
// In the raft engine (CfDefault):
//
//	0x01 0x02 <region id> 0x01 <index>   a raft log entry (eraftpb.Entry)
//	0x01 0x02 <region id> 0x02           RaftLocalState (hard state, last index)
//
// In the KV engine (engine.CfRaft), written in the same batches as the data:
//
//	0x01 0x02 <region id> 0x03           RaftApplyState (applied, truncated)
//	0x01 0x03 <region id> 0x01           RegionLocalState (peer state, region)
//
// Ids and indexes are big-endian, so a region's log sorts by index.
const (
	localPrefix         = 0x01
	regionRaftPrefix    = 0x02
	regionMetaPrefix    = 0x03
	raftLogSuffix       = 0x01
	raftStateSuffix     = 0x02
	applyStateSuffix    = 0x03
	regionStateSuffix   = 0x01
	regionIDKeyLen      = 2 + 8
	raftLogKeyLen       = regionIDKeyLen + 1 + 8
	regionStateKeyLen   = regionIDKeyLen + 1
	regionMetaPrefixEnd = regionMetaPrefix + 1
)

func regionKey(prefix byte, regionID uint64, suffix byte) []byte {
	key := make([]byte, 0, raftLogKeyLen)
	key = append(key, localPrefix, prefix)
	key = binary.BigEndian.AppendUint64(key, regionID)
	return append(key, suffix)
}

// raftLogKey is the key of the entry at index of the region's log.
func raftLogKey(regionID, index uint64) []byte {
	return binary.BigEndian.AppendUint64(regionKey(regionRaftPrefix, regionID, raftLogSuffix), index)
}

// raftLogIndex decodes the index of a raft log key.
func raftLogIndex(key []byte) (uint64, error) {
	if len(key) != raftLogKeyLen {
		return 0, fmt.Errorf("raftstore: raft log key %x has length %d, want %d", key, len(key), raftLogKeyLen)
	}
	return binary.BigEndian.Uint64(key[regionIDKeyLen+1:]), nil
}

func raftStateKey(regionID uint64) []byte {
	return regionKey(regionRaftPrefix, regionID, raftStateSuffix)
}

func applyStateKey(regionID uint64) []byte {
	return regionKey(regionRaftPrefix, regionID, applyStateSuffix)
}

func regionStateKey(regionID uint64) []byte {
	return regionKey(regionMetaPrefix, regionID, regionStateSuffix)
}

// regionStateRange bounds every region state key.
func regionStateRange() (lower, upper []byte) {
	return []byte{localPrefix, regionMetaPrefix}, []byte{localPrefix, regionMetaPrefixEnd}
}

// regionIDOfStateKey decodes the region id of a region state key.
func regionIDOfStateKey(key []byte) (uint64, error) {
	if len(key) != regionStateKeyLen {
		return 0, fmt.Errorf("raftstore: region state key %x has length %d, want %d", key, len(key), regionStateKeyLen)
	}
	return binary.BigEndian.Uint64(key[2:regionIDKeyLen]), nil
}
