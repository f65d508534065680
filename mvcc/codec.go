package mvcc

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The memcomparable byte encoding (TiKV's codec "EncodeBytes"): the raw key
// is cut into groups of encGroupSize bytes; every group is written padded
// with zeros to encGroupSize bytes and followed by a marker byte,
// encMarker minus the number of pad bytes. The last group always has at
// least one pad byte, so the encoding of a key is never a prefix of the
// encoding of another key, and encoded keys sort as raw keys do.
const (
	encGroupSize = 8
	encMarker    = 0xff
	encPad       = 0x00
)

// tsLen is the length of the timestamp suffix of a versioned key.
const tsLen = 8

// physicalShift is the number of logical bits of a TSO timestamp: the
// physical part (milliseconds) is ts >> physicalShift.
const physicalShift = 18

// MaxTS is the largest timestamp. A read at MaxTS reads the latest version.
const MaxTS = math.MaxUint64

// Physical returns the physical (millisecond) part of a TSO timestamp.
func Physical(ts uint64) uint64 { return ts >> physicalShift }

// ComposeTS builds a TSO timestamp from its physical and logical parts.
func ComposeTS(physical, logical uint64) uint64 { return physical<<physicalShift | logical }

// EncodeBytes appends the memcomparable encoding of raw to dst.
func EncodeBytes(dst, raw []byte) []byte {
	for start := 0; ; start += encGroupSize {
		remaining := len(raw) - start
		if remaining >= encGroupSize {
			dst = append(dst, raw[start:start+encGroupSize]...)
			dst = append(dst, encMarker)
			continue
		}
		pad := encGroupSize - remaining
		dst = append(dst, raw[start:]...)
		for range pad {
			dst = append(dst, encPad)
		}
		return append(dst, encMarker-byte(pad))
	}
}

// DecodeBytes decodes one memcomparable-encoded key from the front of b and
// returns it with the bytes that follow it.
func DecodeBytes(b []byte) (raw, rest []byte, err error) {
	raw = []byte{}
	for {
		if len(b) < encGroupSize+1 {
			return nil, nil, fmt.Errorf("mvcc: decode bytes: truncated group: %w", ErrCorrupted)
		}
		group, marker := b[:encGroupSize], b[encGroupSize]
		b = b[encGroupSize+1:]
		pad := encMarker - int(marker)
		if pad == 0 {
			raw = append(raw, group...)
			continue
		}
		if pad > encGroupSize {
			return nil, nil, fmt.Errorf("mvcc: decode bytes: bad marker %#x: %w", marker, ErrCorrupted)
		}
		for _, p := range group[encGroupSize-pad:] {
			if p != encPad {
				return nil, nil, fmt.Errorf("mvcc: decode bytes: non-zero pad: %w", ErrCorrupted)
			}
		}
		return append(raw, group[:encGroupSize-pad]...), b, nil
	}
}

// EncodeKey returns the memcomparable encoding of a raw user key: the key of
// its lock in CfLock, and the prefix of its versions in CfDefault and
// CfWrite.
func EncodeKey(raw []byte) []byte {
	return EncodeBytes(make([]byte, 0, (len(raw)/encGroupSize+1)*(encGroupSize+1)+tsLen), raw)
}

// DecodeKey returns the raw user key of an encoded key.
func DecodeKey(encoded []byte) ([]byte, error) {
	raw, rest, err := DecodeBytes(encoded)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("mvcc: decode key: %d trailing bytes: %w", len(rest), ErrCorrupted)
	}
	return raw, nil
}

// VersionedKey returns encoded followed by the version suffix of ts: ^ts in
// big-endian, so that newer versions of a key sort first.
func VersionedKey(encoded []byte, ts uint64) []byte {
	out := make([]byte, len(encoded), len(encoded)+tsLen)
	copy(out, encoded)
	return binary.BigEndian.AppendUint64(out, ^ts)
}

// SplitVersionedKey splits a CfDefault or CfWrite key into the encoded user
// key and the version timestamp. The returned key aliases versioned.
func SplitVersionedKey(versioned []byte) (encoded []byte, ts uint64, err error) {
	if len(versioned) < tsLen {
		return nil, 0, fmt.Errorf("mvcc: versioned key of %d bytes: %w", len(versioned), ErrCorrupted)
	}
	split := len(versioned) - tsLen
	return versioned[:split], ^binary.BigEndian.Uint64(versioned[split:]), nil
}

// keyVersionsEnd returns the smallest byte string above every versioned key
// of the encoded key. Since an encoding ends with a marker below 0xff,
// incrementing its last byte is enough, and because encodings are
// prefix-free, no version of another key lies in [encoded, end).
func keyVersionsEnd(encoded []byte) []byte {
	end := append([]byte(nil), encoded...)
	end[len(end)-1]++
	return end
}
