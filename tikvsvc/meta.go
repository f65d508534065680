package tikvsvc

import (
	"errors"
	"fmt"

	"github.com/gogo/protobuf/proto"
	"github.com/tinykv/tinykv/engine"
)

// Local metadata lives in the store's raft engine under TiKV's local key
// layout: 0x01 0x01 for the store ident, 0x01 0x04 for the region a store
// prepared to bootstrap the cluster with (TiKV's prepare-bootstrap key),
// kept until PD has it or it is cleared. The raftstore keeps its own keys
// beside them (0x01 0x02 ...).
var (
	storeIdentKey       = []byte{0x01, 0x01}
	prepareBootstrapKey = []byte{0x01, 0x04}
)

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

func deleteKey(e *engine.Engine, key []byte) error {
	wb := engine.NewWriteBatch()
	wb.Delete(engine.CfDefault, key)
	if err := e.Write(wb); err != nil {
		return fmt.Errorf("delete %x: %w", key, err)
	}
	return nil
}
