package mvcc

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tinykv/tinykv/storage"
)

// ingest writes committed Put versions directly, as an import does.
func (h *harness) ingest(commitTS uint64, kvs ...string) {
	h.t.Helper()
	var mods []storage.Modify
	for i := 0; i < len(kvs); i += 2 {
		mods = append(mods, IngestPut([]byte(kvs[i]), []byte(kvs[i+1]), commitTS)...)
	}
	require.NoError(h.t, h.store.storage.Write(context.Background(), nil, mods))
}

func (h *harness) duplicates(start, end string, minCommitTS uint64, keyOnly bool) ([]string, int, error) {
	var got []string
	batches := 0
	err := h.store.DetectDuplicates(h.ctx, nil, []byte(start), []byte(end), minCommitTS, keyOnly, func(vs []DuplicateVersion) error {
		batches++
		for _, v := range vs {
			if keyOnly {
				require.Nil(h.t, v.Value)
			}
			got = append(got, fmt.Sprintf("%s@%d=%s", v.Key, v.CommitTS, v.Value))
		}
		return nil
	})
	return got, batches, err
}

// TestDetectDuplicatesReportsImportedVersionsOverEarlierValues: the import
// committed after ts 20; a key is a duplicate when the import wrote it twice
// or over a value it had before, and versions before that value, deleted
// values and rollback records do not count.
func TestDetectDuplicatesReportsImportedVersionsOverEarlierValues(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("L", 300)
	h.ingest(5, "e", "e5")
	h.ingest(10, "a", "a10", "c", "c10", "d", "d10", "e", "e10", "f", "f10", "g", long+"10")
	h.ingest(20, "c", "c20")
	h.mustPrewrite(prewriteReq("d", 14, del("d")))
	h.mustCommit(14, 15, "d")
	h.rollback(25, "f")
	h.ingest(30, "a", "a30", "b", "b30", "d", "d30", "e", "e30", "f", "f30", "g", long+"30")
	h.ingest(40, "e", "e40")

	got, _, err := h.duplicates("", "", 20, false)
	require.NoError(t, err)
	require.Equal(t, []string{
		"a@30=a30", "a@10=a10",
		"e@40=e40", "e@30=e30", "e@10=e10",
		"f@30=f30", "f@10=f10",
		"g@30=" + long + "30", "g@10=" + long + "10",
	}, got)

	got, _, err = h.duplicates("b", "f", 20, true)
	require.NoError(t, err)
	require.Equal(t, []string{"e@40=", "e@30=", "e@10="}, got, "range [b, f), key only")

	got, _, err = h.duplicates("c", "d", 0, false)
	require.NoError(t, err)
	require.Equal(t, []string{"c@20=c20", "c@10=c10"}, got, "with min commit ts 0 every version is imported")
}

// TestDetectDuplicatesRejectsDeleteAfterImportStart: an import writes only
// Puts, so a Delete committed after min_commit_ts is reported as an error.
func TestDetectDuplicatesRejectsDeleteAfterImportStart(t *testing.T) {
	h := newHarness(t)
	h.ingest(10, "k", "v")
	h.mustPrewrite(prewriteReq("k", 29, del("k")))
	h.mustCommit(29, 30, "k")
	_, _, err := h.duplicates("", "", 20, false)
	require.ErrorContains(t, err, "delete committed at 30")
}

// TestDetectDuplicatesBatches: many duplicate keys arrive in several
// batches of bounded size, keys ascending across batches.
func TestDetectDuplicatesBatches(t *testing.T) {
	h := newHarness(t)
	const keys = 3000
	var old, imported []string
	for i := range keys {
		old = append(old, fmt.Sprintf("k%05d", i), "old")
		imported = append(imported, fmt.Sprintf("k%05d", i), "new")
	}
	h.ingest(10, old...)
	h.ingest(30, imported...)
	got, batches, err := h.duplicates("", "", 20, false)
	require.NoError(t, err)
	require.Len(t, got, 2*keys)
	require.Equal(t, 2, batches, "6000 versions in batches of at most %d", duplicateBatchVersions)
	require.Equal(t, "k00000@30=new", got[0])
	require.Equal(t, fmt.Sprintf("k%05d@10=old", keys-1), got[len(got)-1])
}
