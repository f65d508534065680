package mvcc

import (
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/storage"
)

// txn buffers the modifies of one command; the command's Store.execute
// writes them atomically when the command succeeds. Keys are encoded.
type txn struct {
	modifies []storage.Modify
}

func (t *txn) putLock(encoded []byte, lock *Lock) {
	t.modifies = append(t.modifies, storage.Modify{CF: engine.CfLock, Key: encoded, Value: lock.Marshal()})
}

func (t *txn) unlock(encoded []byte) {
	t.modifies = append(t.modifies, storage.Modify{CF: engine.CfLock, Key: encoded, Delete: true})
}

func (t *txn) putValue(encoded []byte, startTS uint64, value []byte) {
	t.modifies = append(t.modifies, storage.Modify{CF: engine.CfDefault, Key: VersionedKey(encoded, startTS), Value: value})
}

func (t *txn) deleteValue(encoded []byte, startTS uint64) {
	t.modifies = append(t.modifies, storage.Modify{CF: engine.CfDefault, Key: VersionedKey(encoded, startTS), Delete: true})
}

func (t *txn) putWrite(encoded []byte, commitTS uint64, write *Write) {
	t.modifies = append(t.modifies, storage.Modify{CF: engine.CfWrite, Key: VersionedKey(encoded, commitTS), Value: write.Marshal()})
}

func (t *txn) deleteWrite(encoded []byte, commitTS uint64) {
	t.modifies = append(t.modifies, storage.Modify{CF: engine.CfWrite, Key: VersionedKey(encoded, commitTS), Delete: true})
}

// splitValue returns what a lock or write record of a Put stores inline
// and what goes to CfDefault: short values inline, longer ones apart.
func splitValue(value []byte) (short, long []byte) {
	if len(value) <= maxShortValueLen {
		if value == nil {
			value = []byte{}
		}
		return value, nil
	}
	return nil, value
}
