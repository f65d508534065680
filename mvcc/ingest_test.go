package mvcc

import (
	"context"
	"strings"
	"testing"
)

// TestIngestPutIsReadableAtAndAfterCommitTS: ingested values, short and
// long, are visible from their commit ts on and invisible before.
func TestIngestPutIsReadableAtAndAfterCommitTS(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("v", 1000)
	mods := append(IngestPut([]byte("short"), []byte("s"), 100), IngestPut([]byte("long"), []byte(long), 100)...)
	if err := h.store.storage.Write(context.Background(), nil, mods); err != nil {
		t.Fatal(err)
	}
	h.mustGet("short", 100, "s")
	h.mustGetNone("short", 99)
	h.mustGet("long", 200, long)
	h.mustGetNone("long", 50)
}
