package mvcc

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLockRoundTrip(t *testing.T) {
	tests := []*Lock{
		{Type: LockTypePut, Primary: []byte("pk"), StartTS: 1, TTL: 10, ShortValue: []byte("v")},
		{Type: LockTypePut, Primary: []byte("pk"), StartTS: 1, TTL: 10, ShortValue: []byte{}},
		{Type: LockTypeDelete, Primary: []byte{}, StartTS: 1 << 60, TTL: 3000},
		{Type: LockTypeLock, Primary: []byte("p"), StartTS: 7, TTL: 0, ForUpdateTS: 9, TxnSize: 3, MinCommitTS: 11},
		{Type: LockTypePessimistic, Primary: []byte("p"), StartTS: 7, TTL: 20000, ForUpdateTS: 8, MinCommitTS: 9,
			LockedWithConflict: true},
		{Type: LockTypePut, Primary: []byte("p"), StartTS: 7, TTL: 1, MinCommitTS: 20, UseAsyncCommit: true,
			Secondaries: [][]byte{[]byte("s1"), {}, []byte("s3")}, RollbackTS: []uint64{8, 12}},
		{Type: LockTypePut, Primary: []byte("p"), StartTS: 7, TTL: 1, UseAsyncCommit: true},
		{Type: LockTypeDelete, Primary: []byte("p"), StartTS: 7, TTL: 1, LastChangeTS: 5, VersionsToLastChange: 2,
			TxnSource: 1, Generation: 4},
	}
	for _, lock := range tests {
		decoded, err := UnmarshalLock(lock.Marshal())
		require.NoError(t, err)
		require.Equal(t, lock, decoded)
	}
}

// TestLockTiKVBytes pins the byte layout TiKV uses.
func TestLockTiKVBytes(t *testing.T) {
	lock := &Lock{Type: LockTypePut, Primary: []byte("pk"), StartTS: 300, TTL: 10, ShortValue: []byte("v"),
		ForUpdateTS: 2, MinCommitTS: 301}
	want := []byte{'P', 4, 'p', 'k', 0xac, 0x02, 10, 'v', 1, 'v',
		'f', 0, 0, 0, 0, 0, 0, 0, 2, 'c', 0, 0, 0, 0, 0, 0, 0x01, 0x2d}
	require.Equal(t, want, lock.Marshal())
}

func TestWriteRoundTrip(t *testing.T) {
	tests := []*Write{
		{Type: WriteTypePut, StartTS: 5, ShortValue: []byte("value")},
		{Type: WriteTypePut, StartTS: 5, ShortValue: []byte{}},
		{Type: WriteTypePut, StartTS: 5},
		{Type: WriteTypeDelete, StartTS: 1 << 62},
		{Type: WriteTypeLock, StartTS: 5, HasOverlappedRollback: true},
		newRollback(9, false),
		newRollback(9, true),
		{Type: WriteTypePut, StartTS: 5, HasGCFence: true, GCFence: 0, LastChangeTS: 3, VersionsToLastChange: 1, TxnSource: 2},
	}
	for _, w := range tests {
		decoded, err := UnmarshalWrite(w.Marshal())
		require.NoError(t, err)
		require.Equal(t, w, decoded)
	}
	require.True(t, newRollback(9, true).IsProtectedRollback())
	require.False(t, newRollback(9, false).IsProtectedRollback())
}

func TestWriteTiKVBytes(t *testing.T) {
	require.Equal(t, []byte{'P', 5, 'v', 2, 'h', 'i'}, (&Write{Type: WriteTypePut, StartTS: 5, ShortValue: []byte("hi")}).Marshal())
	require.Equal(t, []byte{'R', 9, 'v', 1, 'p'}, newRollback(9, true).Marshal())
	require.Equal(t, []byte{'L', 5, 'R'}, (&Write{Type: WriteTypeLock, StartTS: 5, HasOverlappedRollback: true}).Marshal())
}

func TestRecordDecodeRejectsCorruption(t *testing.T) {
	for _, bad := range [][]byte{{}, {'X', 0, 1, 1}, {'P', 4, 'p'}, {'P', 0, 1, 1, 'z'}, {'P', 0, 1, 1, 'v', 5, 'a'}} {
		_, err := UnmarshalLock(bad)
		require.True(t, errors.Is(err, ErrCorrupted), "lock %x: %v", bad, err)
	}
	for _, bad := range [][]byte{{}, {'X', 1}, {'P'}, {'P', 1, 'q'}, {'P', 1, 'F', 1}} {
		_, err := UnmarshalWrite(bad)
		require.True(t, errors.Is(err, ErrCorrupted), "write %x: %v", bad, err)
	}
}
