package integration

import (
	"fmt"
	"hash/crc64"
	"testing"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/tipb/go-tipb"
)

// TestCoprocessorChecksum sends a checksum request (tp 105, what ADMIN
// CHECKSUM TABLE pushes down) to the real store over gRPC and compares it
// with the crc64-xor of the rows written through client-go.
func TestCoprocessorChecksum(t *testing.T) {
	c := startCluster(t)
	ctx := ctxT(t)
	cli := c.txnClient()
	txn, err := cli.Begin()
	require(t, err, "begin")
	table := crc64.MakeTable(crc64.ECMA)
	var want, kvs, size uint64
	for i := range 500 {
		key, value := []byte(fmt.Sprintf("t\x80row%04d", i)), []byte(fmt.Sprintf("value-%d", i))
		require(t, txn.Set(key, value), "set")
		digest := crc64.New(table)
		digest.Write(key)
		digest.Write(value)
		want ^= digest.Sum64()
		kvs++
		size += uint64(len(key) + len(value))
	}
	require(t, txn.Set([]byte("u-outside"), []byte("not in the range")), "set")
	require(t, txn.Commit(ctx), "commit")

	s := c.storeClient(t)
	data, err := (&tipb.ChecksumRequest{ScanOn: tipb.ChecksumScanOn_Table, Algorithm: tipb.ChecksumAlgorithm_Crc64_Xor}).Marshal()
	require(t, err, "encode checksum request")
	resp, err := s.tikv.Coprocessor(ctx, &coprocessor.Request{
		Context: s.ctx, Tp: 105, Data: data, StartTs: c.tso(t, ctx),
		Ranges: []*coprocessor.KeyRange{{Start: []byte("t"), End: []byte("u")}},
	})
	require(t, err, "coprocessor")
	if resp.GetRegionError() != nil || resp.GetOtherError() != "" || resp.GetLocked() != nil {
		t.Fatalf("checksum: region %v, other %q, locked %v", resp.GetRegionError(), resp.GetOtherError(), resp.GetLocked())
	}
	var got tipb.ChecksumResponse
	require(t, got.Unmarshal(resp.Data), "decode checksum response")
	if got.Checksum != want || got.TotalKvs != kvs || got.TotalBytes != size {
		t.Fatalf("checksum %x/%d/%d, want %x/%d/%d", got.Checksum, got.TotalKvs, got.TotalBytes, want, kvs, size)
	}

	stale := *s.ctx
	stale.RegionId++
	resp, err = s.tikv.Coprocessor(ctx, &coprocessor.Request{Context: &stale, Tp: 105, Data: data})
	require(t, err, "coprocessor with a wrong region")
	if resp.GetRegionError().GetRegionNotFound() == nil {
		t.Fatalf("wrong region: %v", resp.GetRegionError())
	}
	resp, err = s.tikv.Coprocessor(ctx, &coprocessor.Request{Context: s.ctx, Tp: 999, Data: []byte("garbage")})
	require(t, err, "unknown coprocessor type")
	if resp.GetOtherError() == "" {
		t.Fatalf("unknown request type answered %v", resp)
	}
}
