package mvcc

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEncodeBytesVectors(t *testing.T) {
	tests := []struct {
		raw  []byte
		want []byte
	}{
		{[]byte{}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0xf7}},
		{[]byte{1, 2, 3}, []byte{1, 2, 3, 0, 0, 0, 0, 0, 0xfa}},
		{[]byte{1, 2, 3, 0}, []byte{1, 2, 3, 0, 0, 0, 0, 0, 0xfb}},
		{[]byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte{1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0xf7}},
		{[]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, []byte{1, 2, 3, 4, 5, 6, 7, 8, 0xff, 9, 0, 0, 0, 0, 0, 0, 0, 0xf8}},
	}
	for _, tt := range tests {
		got := EncodeKey(tt.raw)
		require.Equal(t, tt.want, got, "encode %x", tt.raw)
		decoded, err := DecodeKey(got)
		require.NoError(t, err)
		require.Equal(t, tt.raw, decoded)
	}
}

func TestDecodeBytesRejectsCorruption(t *testing.T) {
	for _, bad := range [][]byte{
		{1, 2, 3},                            // truncated group
		{1, 2, 3, 0, 0, 0, 0, 0, 0xf0},       // pad longer than a group
		{1, 2, 3, 0, 0, 0, 0, 9, 0xfa},       // non-zero pad
		{1, 2, 3, 0, 0, 0, 0, 0, 0xfa, 0xaa}, // trailing bytes (DecodeKey)
		{1, 2, 3, 4, 5, 6, 7, 8, 0xff, 1, 2}, // truncated second group
	} {
		_, err := DecodeKey(bad)
		require.True(t, errors.Is(err, ErrCorrupted), "decode %x: %v", bad, err)
	}
}

// Versioned keys must sort by raw key, then by timestamp descending, even
// when one raw key is a prefix of another or ends in zero bytes.
func TestVersionedKeyOrdering(t *testing.T) {
	rawKeys := [][]byte{
		{}, {0}, {0, 0}, {1}, []byte("a"), []byte("a\x00"), []byte("ab"),
		[]byte("abcdefgh"), []byte("abcdefgh\x00"), []byte("abcdefghi"), {0xff}, {0xff, 0xff},
	}
	timestamps := []uint64{MaxTS, 100, 5, 1, 0}
	type version struct {
		raw []byte
		ts  uint64
	}
	var want []version
	var stored [][]byte
	for _, raw := range rawKeys {
		for _, ts := range timestamps {
			want = append(want, version{raw, ts})
			stored = append(stored, VersionedKey(EncodeKey(raw), ts))
		}
	}
	slices.SortFunc(stored, bytes.Compare)
	for i, key := range stored {
		encoded, ts, err := SplitVersionedKey(key)
		require.NoError(t, err)
		raw, err := DecodeKey(encoded)
		require.NoError(t, err)
		require.Equal(t, want[i].raw, raw, "position %d", i)
		require.Equal(t, want[i].ts, ts, "position %d", i)
	}
}

func TestKeyVersionsEndBoundsOnlyThatKey(t *testing.T) {
	encoded := EncodeKey([]byte("abcdefgh"))
	end := keyVersionsEnd(encoded)
	require.Less(t, bytes.Compare(VersionedKey(encoded, 0), end), 0)
	for _, other := range [][]byte{[]byte("abcdefgh\x00"), []byte("abcdefgi"), []byte("abcdefghi")} {
		require.GreaterOrEqual(t, bytes.Compare(VersionedKey(EncodeKey(other), MaxTS), end), 0, "%q", other)
	}
}
