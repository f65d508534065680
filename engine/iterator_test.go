package engine

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// iteratorTestKeys are stored in every CF, with the CF name as value; they
// include the empty key, keys that are prefixes of each other, and 0xff bytes.
var iteratorTestKeys = []string{"", "a", "a\x00", "ab", "abc", "b", "\xff", "\xff\xff"}

func keysOf(pairs []kv) []string {
	keys := []string{}
	for _, pair := range pairs {
		keys = append(keys, pair.key)
	}
	return keys
}

func TestIteratorBoundsAndSeek(t *testing.T) {
	e := openMemEngine(t)
	wb := NewWriteBatch()
	for _, cf := range AllCFs() {
		for _, key := range iteratorTestKeys {
			wb.Put(cf, []byte(key), []byte(cf.String()))
		}
	}
	require.NoError(t, e.Write(wb))
	snap := e.Snapshot()
	defer snap.Close()

	tests := []struct {
		name         string
		lower, upper string
		forward      []string
	}{
		{name: "whole CF", forward: iteratorTestKeys},
		{name: "prefix range", lower: "a", upper: "b", forward: []string{"a", "a\x00", "ab", "abc"}},
		{name: "open upper", lower: "ab", forward: []string{"ab", "abc", "b", "\xff", "\xff\xff"}},
		{name: "upper excludes 0xff", upper: "\xff", forward: []string{"", "a", "a\x00", "ab", "abc", "b"}},
		{name: "0xff lower", lower: "\xff", forward: []string{"\xff", "\xff\xff"}},
		{name: "upper between keys", lower: "a\x00", upper: "ab\x00", forward: []string{"a\x00", "ab"}},
		{name: "empty range", lower: "ab", upper: "ab", forward: []string{}},
		{name: "inverted range", lower: "b", upper: "a", forward: []string{}},
		{name: "no keys in range", lower: "c", upper: "d", forward: []string{}},
	}
	for _, tt := range tests {
		opts := IterOptions{LowerBound: []byte(tt.lower), UpperBound: []byte(tt.upper)}
		for _, cf := range AllCFs() {
			got := collect(t, snap, cf, opts, nil)
			require.Equal(t, tt.forward, keysOf(got), "%s forward %s", tt.name, cf)
			for _, pair := range got {
				require.Equal(t, cf.String(), pair.value)
			}
			opts.Reverse = true
			reversed := slices.Clone(tt.forward)
			slices.Reverse(reversed)
			require.Equal(t, reversed, keysOf(collect(t, snap, cf, opts, nil)), "%s reverse %s", tt.name, cf)
			opts.Reverse = false
		}
	}
}

func TestIteratorSeek(t *testing.T) {
	e := openMemEngine(t)
	wb := NewWriteBatch()
	for _, key := range iteratorTestKeys {
		wb.Put(CfWrite, []byte(key), nil)
		wb.Put(CfLock, []byte(key), nil)
	}
	require.NoError(t, e.Write(wb))
	snap := e.Snapshot()
	defer snap.Close()

	tests := []struct {
		name         string
		lower, upper string
		reverse      bool
		seek         string
		want         []string
	}{
		{name: "forward exact", seek: "ab", want: []string{"ab", "abc", "b", "\xff", "\xff\xff"}},
		{name: "forward between", seek: "abb", want: []string{"abc", "b", "\xff", "\xff\xff"}},
		{name: "forward empty key", seek: "", want: iteratorTestKeys},
		{name: "forward past end", seek: "\xff\xff\x00", want: []string{}},
		{name: "forward below lower clamps", lower: "b", seek: "a", want: []string{"b", "\xff", "\xff\xff"}},
		{name: "forward at upper", upper: "b", seek: "b", want: []string{}},
		{name: "reverse exact includes key", reverse: true, seek: "ab", want: []string{"ab", "a\x00", "a", ""}},
		{name: "reverse between", reverse: true, seek: "aa", want: []string{"a\x00", "a", ""}},
		{name: "reverse past end", reverse: true, seek: "\xff\xff\xff", want: []string{"\xff\xff", "\xff", "b", "abc", "ab", "a\x00", "a", ""}},
		{name: "reverse at upper excludes upper", reverse: true, upper: "b", seek: "b", want: []string{"abc", "ab", "a\x00", "a", ""}},
		{name: "reverse above upper clamps", reverse: true, upper: "ab", seek: "z", want: []string{"a\x00", "a", ""}},
		{name: "reverse below lower", reverse: true, lower: "b", seek: "abc", want: []string{}},
		{name: "reverse stops at lower", reverse: true, lower: "a\x00", seek: "b", want: []string{"b", "abc", "ab", "a\x00"}},
		{name: "reverse to empty key", reverse: true, seek: "", want: []string{""}},
	}
	for _, tt := range tests {
		opts := IterOptions{LowerBound: []byte(tt.lower), UpperBound: []byte(tt.upper), Reverse: tt.reverse, KeyOnly: true}
		got := collect(t, snap, CfWrite, opts, []byte(tt.seek))
		require.Equal(t, tt.want, keysOf(got), tt.name)
	}
}

func TestIteratorReseekAndKeyOnly(t *testing.T) {
	e := openMemEngine(t)
	put(t, e, CfDefault, "a", "1")
	put(t, e, CfDefault, "b", "2")
	snap := e.Snapshot()
	defer snap.Close()

	it := snap.NewIterator(CfDefault, IterOptions{KeyOnly: true})
	defer it.Close()
	require.False(t, it.Valid(), "a new iterator is unpositioned")
	it.Seek([]byte("b"))
	require.True(t, it.Valid())
	require.Equal(t, "b", string(it.Key()))
	_, err := it.Value()
	require.ErrorIs(t, err, ErrKeyOnly)
	it.Next()
	require.False(t, it.Valid())
	it.Rewind()
	require.True(t, it.Valid())
	require.Equal(t, "a", string(it.Key()))

	var values []string
	require.NoError(t, snap.Scan(CfDefault, IterOptions{Reverse: true}, func(key, value []byte) bool {
		values = append(values, string(key)+"="+string(value))
		return true
	}))
	require.Equal(t, []string{"b=2", "a=1"}, values)
}
