package engine

import (
	"bytes"
	"fmt"
)

// CF names a column family. The three CFs share one Badger keyspace; each
// stored key is the CF's one-byte prefix followed by the user key.
type CF uint8

// The column families. Values outside this set are programming errors:
// methods that take a CF panic on them. Use ParseCF for names from the wire.
const (
	CfDefault CF = iota
	CfLock
	CfWrite
	// CfRaft is the raftstore's local state in the KV engine (each region's
	// apply state and region state, TiKV's raft CF), written in the same
	// batches as the data it describes. It is not a data CF: AllCFs leaves
	// it out, so range deletes and size estimates of data never touch it,
	// and ParseCF refuses its name, so no client request can address it.
	CfRaft
)

// MaxKeySize is the longest user key the engine stores: Badger's 65000-byte
// key limit minus the CF prefix.
const MaxKeySize = 65000 - 1

// cfPrefixes holds each CF's key prefix, indexed by CF. The prefixes are
// distinct single bytes, and prefix+1 is never a prefix, so the encoded
// range of a CF is exactly [prefix, prefix+1). None is '!', which starts
// Badger's reserved "!badger!" keys.
var cfPrefixes = [...]byte{CfDefault: 'd', CfLock: 'l', CfWrite: 'w', CfRaft: 'r'}

var cfNames = [...]string{CfDefault: "default", CfLock: "lock", CfWrite: "write", CfRaft: "raft"}

// AllCFs returns every data column family in prefix order (CfRaft is not
// one).
func AllCFs() []CF { return []CF{CfDefault, CfLock, CfWrite} }

// ParseCF maps a TiKV data column family name to a CF. The empty name means
// CfDefault, as in kvproto requests.
func ParseCF(name string) (CF, error) {
	if name == "" {
		return CfDefault, nil
	}
	for _, cf := range AllCFs() {
		if cf.String() == name {
			return cf, nil
		}
	}
	return 0, fmt.Errorf("engine: column family %q: %w", name, ErrUnknownCF)
}

// String returns the TiKV name of the CF.
func (cf CF) String() string {
	if int(cf) >= len(cfNames) {
		return fmt.Sprintf("CF(%d)", uint8(cf))
	}
	return cfNames[cf]
}

func (cf CF) prefix() byte {
	if int(cf) >= len(cfPrefixes) {
		panic(fmt.Sprintf("engine: unknown column family %d", uint8(cf)))
	}
	return cfPrefixes[cf]
}

// encodeKey returns the stored form of key in cf, in a new slice.
func encodeKey(cf CF, key []byte) []byte {
	encoded := make([]byte, 0, 1+len(key))
	encoded = append(encoded, cf.prefix())
	return append(encoded, key...)
}

// cfEnd returns the exclusive stored upper bound of cf.
func cfEnd(cf CF) []byte { return []byte{cf.prefix() + 1} }

// encodeRange returns the stored form of the user range [start, end) in cf.
// An empty end means the end of the CF (the TiKV region convention).
func encodeRange(cf CF, start, end []byte) (lower, upper []byte) {
	lower = encodeKey(cf, start)
	if len(end) == 0 {
		return lower, cfEnd(cf)
	}
	upper = encodeKey(cf, end)
	if bytes.Compare(upper, lower) < 0 {
		upper = lower
	}
	return lower, upper
}

// decodeKey strips the CF prefix from a stored key. The result aliases stored.
func decodeKey(stored []byte) []byte { return stored[1:] }
