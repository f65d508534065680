package tikvsvc

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gogo/protobuf/proto"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/raft_serverpb"
	"github.com/tinykv/tinykv/engine"
)

// Local metadata lives in the store's meta (raft) engine under TiKV's local
// key layout: 0x01 0x01 for the store ident, 0x01 0x03 <region id> 0x01 for
// a region's local state.
var storeIdentKey = []byte{0x01, 0x01}

func regionStateKey(regionID uint64) []byte {
	key := []byte{0x01, 0x03}
	key = binary.BigEndian.AppendUint64(key, regionID)
	return append(key, 0x01)
}

var regionStatePrefix = []byte{0x01, 0x03}

// loadProto reads a message from the meta engine; found is false if absent.
func loadProto(e *engine.Engine, key []byte, msg proto.Message) (found bool, err error) {
	raw, err := e.Get(engine.CfDefault, key)
	if errors.Is(err, engine.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load %x: %w", key, err)
	}
	if err := proto.Unmarshal(raw, msg); err != nil {
		return false, fmt.Errorf("decode %x: %w", key, err)
	}
	return true, nil
}

func saveProto(e *engine.Engine, key []byte, msg proto.Message) error {
	raw, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %x: %w", key, err)
	}
	wb := engine.NewWriteBatch()
	wb.Put(engine.CfDefault, key, raw)
	if err := e.Write(wb); err != nil {
		return fmt.Errorf("save %x: %w", key, err)
	}
	return nil
}

// loadRegions returns every region whose local state the store keeps.
func loadRegions(e *engine.Engine) ([]*metapb.Region, error) {
	var regions []*metapb.Region
	var decodeErr error
	upper := []byte{0x01, 0x04}
	err := e.Scan(engine.CfDefault, engine.IterOptions{LowerBound: regionStatePrefix, UpperBound: upper}, func(_, value []byte) bool {
		state := &raft_serverpb.RegionLocalState{}
		if decodeErr = proto.Unmarshal(value, state); decodeErr != nil {
			return false
		}
		if state.GetState() != raft_serverpb.PeerState_Tombstone {
			regions = append(regions, state.GetRegion())
		}
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, fmt.Errorf("load region states: %w", err)
	}
	return regions, nil
}

func saveRegion(e *engine.Engine, region *metapb.Region) error {
	return saveProto(e, regionStateKey(region.GetId()),
		&raft_serverpb.RegionLocalState{State: raft_serverpb.PeerState_Normal, Region: region})
}

func removeRegion(e *engine.Engine, regionID uint64) error {
	wb := engine.NewWriteBatch()
	wb.Delete(engine.CfDefault, regionStateKey(regionID))
	return e.Write(wb)
}
