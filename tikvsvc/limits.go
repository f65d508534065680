package tikvsvc

import (
	"errors"
	"fmt"

	"github.com/pingcap/kvproto/pkg/errorpb"
)

// Limits TiKV applies to requests, with its default values.
const (
	// maxKeySize is TiKV's storage.max-key-size.
	maxKeySize = 8 << 10
	// maxEntrySize is TiKV's raft-entry-max-size: a write larger than one raft
	// entry is refused with raft_entry_too_large.
	maxEntrySize = 8 << 20
)

// Sentinel errors of the service, reported in the responses' error fields.
var (
	// ErrEmptyKey is returned for a write of an empty key.
	ErrEmptyKey = errors.New("empty key is not allowed")
	// ErrKeyTooLarge is returned for a key over maxKeySize.
	ErrKeyTooLarge = errors.New("key is too large")
	// ErrInvalidCF is returned for a column family name that is not
	// "default", "lock" or "write".
	ErrInvalidCF = errors.New("invalid cf name")
)

func checkWriteKey(key []byte) error {
	switch {
	case len(key) == 0:
		return ErrEmptyKey
	case len(key) > maxKeySize:
		return fmt.Errorf("%w: %d bytes, max %d", ErrKeyTooLarge, len(key), maxKeySize)
	}
	return nil
}

// entryTooLarge returns the region error for a write of size bytes, or nil
// when it fits in one raft entry.
func entryTooLarge(regionID uint64, size int) *errorpb.Error {
	if size <= maxEntrySize {
		return nil
	}
	return &errorpb.Error{
		Message:           fmt.Sprintf("raft entry is too large, region %d, entry size %d", regionID, size),
		RaftEntryTooLarge: &errorpb.RaftEntryTooLarge{RegionId: regionID, EntrySize: uint64(size)},
	}
}
