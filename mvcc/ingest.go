package mvcc

import (
	"github.com/tinykv/tinykv/engine"
	"github.com/tinykv/tinykv/storage"
)

// IngestPut returns the modifies that make value the committed version of
// the raw key at commitTS, as if a transaction with start_ts = commit_ts =
// commitTS had written it: what TiKV's SST importer produces for the
// transactional key-value pairs of an ingest. Locks are neither checked nor
// written.
func IngestPut(key, value []byte, commitTS uint64) []storage.Modify {
	encoded := EncodeKey(key)
	versioned := VersionedKey(encoded, commitTS)
	write := &Write{Type: WriteTypePut, StartTS: commitTS}
	if len(value) <= maxShortValueLen {
		write.ShortValue = append([]byte{}, value...)
		return []storage.Modify{{CF: engine.CfWrite, Key: versioned, Value: write.Marshal()}}
	}
	return []storage.Modify{
		{CF: engine.CfDefault, Key: versioned, Value: value},
		{CF: engine.CfWrite, Key: versioned, Value: write.Marshal()},
	}
}
