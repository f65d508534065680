package mvcc

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// flashbackFixture writes, in [k, l):
//   - k: Put v1 (1→2), a rolled-back Put (4), Delete (8→9), Put v2 (11→12)
//   - k2: a long value (1→2), then Put short (11→12)
//   - k3: created after version 3 (11→12)
//   - k4: unchanged since version 3 (1→2)
//   - k5: locked by the unfinished transaction 13
func flashbackFixture(t *testing.T) (*harness, string) {
	h := newHarness(t)
	long := strings.Repeat("L", maxShortValueLen+1)
	h.mustPrewritePut("k", 1, "k", "v1", "k2", long, "k4", "same")
	h.mustCommit(1, 2, "k", "k2", "k4")
	h.mustPrewritePut("k", 4, "k", "rolled-back")
	require.Nil(t, h.rollback(4, "k"))
	h.mustPrewrite(prewriteReq("k", 8, del("k")))
	h.mustCommit(8, 9, "k")
	h.mustPrewritePut("k", 11, "k", "v2", "k2", "short", "k3", "new")
	h.mustCommit(11, 12, "k", "k2", "k3")
	h.mustPrewritePut("k5", 13, "k5", "pending")
	return h, long
}

// TestFlashback follows TiKV's two phases: Prepare rolls back the range's
// locks and locks its first key; Flashback writes every changed key's value
// at the version and commits that lock. Keys unchanged since the version
// get no record.
func TestFlashback(t *testing.T) {
	h, long := flashbackFixture(t)
	start, end := []byte("k"), []byte("l")
	const version, startTS, commitTS = 3, 20, 21

	require.ErrorIs(t, h.store.Flashback(h.ctx, nil, start, end, startTS, commitTS, version), ErrFlashbackNotPrepared)
	require.NoError(t, h.store.PrepareFlashback(h.ctx, nil, start, end, startTS, version))
	require.NoError(t, h.store.PrepareFlashback(h.ctx, nil, start, end, startTS, version)) // a retry changes nothing
	require.Nil(t, h.loadLock("k5"), "prepare rolls back the range's locks")
	require.NotNil(t, h.writeAt("k5", 13), "with a rollback record")
	lock := h.loadLock("k")
	require.Equal(t, uint64(startTS), lock.StartTS)
	require.Equal(t, "v1", string(lock.ShortValue))

	require.NoError(t, h.store.Flashback(h.ctx, nil, start, end, startTS, commitTS, version))
	h.mustGet("k", commitTS, "v1")
	h.mustGet("k2", commitTS, long)
	h.mustGetNone("k3", commitTS)
	h.mustGet("k4", commitTS, "same")
	h.mustGetNone("k5", commitTS)
	require.Nil(t, h.writeAt("k4", commitTS), "unchanged keys are not rewritten")
	require.Nil(t, h.loadLock("k"))
	h.mustGet("k2", 12, "short") // history below commit_ts stays

	require.ErrorIs(t, h.store.Flashback(h.ctx, nil, start, end, startTS, commitTS, version), ErrFlashbackNotPrepared,
		"a finished range is no longer prepared")
	require.GreaterOrEqual(t, h.store.ConcurrencyManager().MaxTS(), uint64(commitTS))
}

// TestFlashbackToLaterVersions flashes one key back repeatedly, to each
// point of its history, as TiKV's own test does.
func TestFlashbackToLaterVersions(t *testing.T) {
	h, _ := flashbackFixture(t)
	ts := uint64(30)
	for _, step := range []struct {
		version uint64
		want    string // "" for no value
	}{{1, ""}, {2, "v1"}, {5, "v1"}, {10, ""}, {13, "v2"}, {2, "v1"}} {
		start, commit := ts, ts+1
		require.NoError(t, h.store.PrepareFlashback(h.ctx, nil, []byte("k"), []byte("k0"), start, step.version))
		require.NoError(t, h.store.Flashback(h.ctx, nil, []byte("k"), []byte("k0"), start, commit, step.version))
		if step.want == "" {
			h.mustGetNone("k", commit)
		} else {
			h.mustGet("k", commit, step.want)
		}
		ts += 2
	}
}
