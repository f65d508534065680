package copr

import (
	"bytes"
	"fmt"
	"hash/crc64"

	"github.com/pingcap/kvproto/pkg/coprocessor"
	"github.com/pingcap/tipb/go-tipb"
)

var ecmaTable = crc64.MakeTable(crc64.ECMA)

// checksum accumulates TiKV's Crc64Xor checksum: the xor over all pairs of
// crc64-ECMA(key, value), where a rewrite rule replaces the key's new
// prefix by its old one (as if the data had not been restored under new
// table ids).
type checksum struct {
	rule   *tipb.ChecksumRewriteRule
	sum    uint64
	kvs    uint64
	nbytes uint64
}

func (c *checksum) add(key, value []byte) error {
	oldPrefix, newPrefix := c.rule.GetOldPrefix(), c.rule.GetNewPrefix()
	if !bytes.HasPrefix(key, newPrefix) {
		return fmt.Errorf("key %x lacks the rewrite prefix %x", key, newPrefix)
	}
	digest := crc64.Update(0, ecmaTable, oldPrefix)
	digest = crc64.Update(digest, ecmaTable, key[len(newPrefix):])
	digest = crc64.Update(digest, ecmaTable, value)
	c.sum ^= digest
	c.kvs++
	c.nbytes += uint64(len(key) + len(value) + len(oldPrefix) - len(newPrefix))
	return nil
}

// handleChecksum computes the checksum of the request's ranges at start_ts.
func handleChecksum(p scanParams, req *coprocessor.Request) *coprocessor.Response {
	creq := new(tipb.ChecksumRequest)
	if err := creq.Unmarshal(req.GetData()); err != nil {
		return errorResponse(fmt.Errorf("decode checksum request: %w", err))
	}
	if creq.GetAlgorithm() != tipb.ChecksumAlgorithm_Crc64_Xor {
		return errorResponse(fmt.Errorf("unsupported checksum algorithm %s", creq.GetAlgorithm()))
	}
	c := &checksum{rule: creq.GetRule()}
	if err := forEachPair(p, req.GetRanges(), false, c.add); err != nil {
		return errorResponse(err)
	}
	data, err := (&tipb.ChecksumResponse{Checksum: c.sum, TotalKvs: c.kvs, TotalBytes: c.nbytes}).Marshal()
	if err != nil {
		return errorResponse(fmt.Errorf("encode checksum response: %w", err))
	}
	return &coprocessor.Response{Data: data}
}
