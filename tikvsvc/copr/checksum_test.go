package copr

import (
	"context"
	"hash/crc64"
	"testing"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/tipb/go-tipb"
	"github.com/stretchr/testify/require"
)

func runChecksum(t *testing.T, s *memStore, creq *tipb.ChecksumRequest, ranges []*coprocessor.KeyRange) *tipb.ChecksumResponse {
	data, err := creq.Marshal()
	require.NoError(t, err)
	resp := Handle(context.Background(), s.scan, &coprocessor.Request{Tp: ReqTypeChecksum, Data: data, Ranges: ranges, StartTs: startTS})
	require.Empty(t, resp.OtherError)
	var out tipb.ChecksumResponse
	require.NoError(t, out.Unmarshal(resp.Data))
	return &out
}

// TestChecksumKnownValue pins the algorithm to CRC-64/XZ (crc64fast, which
// TiKV uses): its check value for "123456789" is 0x995dc9bbdf1939fa.
func TestChecksumKnownValue(t *testing.T) {
	s := newMemStore()
	s.put([]byte("1234"), []byte("56789"))
	got := runChecksum(t, s, &tipb.ChecksumRequest{}, []*coprocessor.KeyRange{{Start: []byte("0"), End: []byte("9")}})
	require.Equal(t, &tipb.ChecksumResponse{Checksum: 0x995dc9bbdf1939fa, TotalKvs: 1, TotalBytes: 9}, got)
}

func TestChecksumOfTable(t *testing.T) {
	s := peopleStore(t)
	var want tipb.ChecksumResponse
	table := crc64.MakeTable(crc64.ECMA)
	for k, v := range s.data {
		h := crc64.New(table)
		h.Write([]byte(k))
		h.Write(v)
		want.Checksum ^= h.Sum64()
		want.TotalKvs++
		want.TotalBytes += uint64(len(k) + len(v))
	}
	ranges := append(tableRange(), append(indexRange(ageIndexID), indexRange(nameIdxID)...)...)
	require.Equal(t, &want, runChecksum(t, s, &tipb.ChecksumRequest{ScanOn: tipb.ChecksumScanOn_Table}, ranges))
	require.Equal(t, uint64(18), want.TotalKvs)

	rows := runChecksum(t, s, &tipb.ChecksumRequest{}, tableRange())
	require.Equal(t, uint64(6), rows.TotalKvs)
}

func TestChecksumRewriteRule(t *testing.T) {
	s := newMemStore()
	s.put([]byte("new_a"), []byte("1"))
	s.put([]byte("new_b"), []byte("22"))
	rule := &tipb.ChecksumRewriteRule{OldPrefix: []byte("old_"), NewPrefix: []byte("new_")}
	got := runChecksum(t, s, &tipb.ChecksumRequest{Rule: rule}, []*coprocessor.KeyRange{{Start: []byte("new_"), End: []byte("new`")}})

	s2 := newMemStore()
	s2.put([]byte("old_a"), []byte("1"))
	s2.put([]byte("old_b"), []byte("22"))
	want := runChecksum(t, s2, &tipb.ChecksumRequest{}, []*coprocessor.KeyRange{{Start: []byte("old_"), End: []byte("old`")}})
	require.Equal(t, want, got)
}

func TestChecksumLocked(t *testing.T) {
	s := peopleStore(t)
	key := []byte(tableRange()[0].Start)
	s.lock(append(key, 1), 50)
	data, err := (&tipb.ChecksumRequest{}).Marshal()
	require.NoError(t, err)
	resp := Handle(context.Background(), s.scan, &coprocessor.Request{Tp: ReqTypeChecksum, Data: data, Ranges: tableRange(), StartTs: startTS})
	require.NotNil(t, resp.Locked)
}
