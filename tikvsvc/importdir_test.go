package tikvsvc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sst "github.com/pingcap/kvproto/pkg/import_sstpb"
)

func mustOpenImportDir(t *testing.T, dir string) *importDir {
	t.Helper()
	d, err := openImportDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// stageFile writes a staged SST of n pairs k<i>=v<i> at commitTS.
func stageFile(t *testing.T, d *importDir, uuid string, commitTS uint64, n int) {
	t.Helper()
	w, err := d.create()
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.add(fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.commit(d, []byte(uuid), commitTS); err != nil {
		t.Fatal(err)
	}
}

// readStaged claims uuid and returns its commit ts and pairs as "k=v".
func readStaged(t *testing.T, d *importDir, uuid string) (uint64, []string, error) {
	t.Helper()
	r, err := d.open([]byte(uuid))
	if err != nil {
		return 0, nil, err
	}
	defer r.file.Close()
	var pairs []string
	for {
		key, value, err := r.next()
		if errors.Is(err, io.EOF) {
			return r.commitTS, pairs, nil
		}
		if err != nil {
			return 0, nil, err
		}
		pairs = append(pairs, string(key)+"="+string(value))
	}
}

func TestStagedSSTRoundTripAndRelease(t *testing.T) {
	d := mustOpenImportDir(t, t.TempDir())
	stageFile(t, d, "a", 42, 3)
	commitTS, pairs, err := readStaged(t, d, "a")
	if err != nil || commitTS != 42 || strings.Join(pairs, ",") != "k0=v0,k1=v1,k2=v2" {
		t.Fatalf("read: ts %d pairs %v err %v", commitTS, pairs, err)
	}
	if _, err := d.open([]byte("a")); err == nil {
		t.Fatal("a second claim of an sst being ingested succeeded")
	}
	if err := d.release([]byte("a"), false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readStaged(t, d, "a"); err != nil {
		t.Fatalf("after a failed ingest the sst stays for a retry: %v", err)
	}
	if err := d.release([]byte("a"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := d.open([]byte("a")); !errors.Is(err, errStagedNotFound) {
		t.Fatalf("after a successful ingest: %v, want errStagedNotFound", err)
	}
}

func TestStagedSSTCorruptionDetected(t *testing.T) {
	dir := t.TempDir()
	d := mustOpenImportDir(t, dir)
	stageFile(t, d, "a", 7, 100)
	path := d.path([]byte("a"))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{0, len(data) / 2, len(data) - 1} {
		damaged := append([]byte(nil), data...)
		damaged[at] ^= 0x10
		if err := os.WriteFile(path, damaged, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readStaged(t, d, "a"); err == nil {
			t.Fatalf("flipped byte %d of %d went unnoticed", at, len(data))
		}
	}
}

func TestOpenImportDirDropsInterruptedWrites(t *testing.T) {
	dir := t.TempDir()
	d := mustOpenImportDir(t, dir)
	stageFile(t, d, "done", 1, 1)
	if _, err := d.create(); err != nil { // a Write cut short by a restart
		t.Fatal(err)
	}
	if _, err := openImportDir(dir); err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || filepath.Base(names[0]) != fmt.Sprintf("%x%s", "done", stagedSuffix) {
		t.Fatalf("files after reopening: %v, want only the complete sst", names)
	}
}

func TestStageBatchChecksCommitTSAndOps(t *testing.T) {
	d := mustOpenImportDir(t, t.TempDir())
	w, err := d.create()
	if err != nil {
		t.Fatal(err)
	}
	defer w.abort()
	put := &sst.Pair{Key: []byte("k"), Value: []byte("v")}
	var commitTS uint64
	cases := []struct {
		batch *sst.WriteBatch
		ok    bool
	}{
		{&sst.WriteBatch{CommitTs: 0, Pairs: []*sst.Pair{put}}, false},
		{&sst.WriteBatch{CommitTs: 5, Pairs: []*sst.Pair{put}}, true},
		{&sst.WriteBatch{CommitTs: 0}, true},
		{&sst.WriteBatch{CommitTs: 6, Pairs: []*sst.Pair{put}}, false},
		{&sst.WriteBatch{CommitTs: 5, Pairs: []*sst.Pair{{Key: []byte("k"), Op: sst.Pair_Delete}}}, false},
	}
	for i, c := range cases {
		if err := stageBatch(w, c.batch, &commitTS); (err == nil) != c.ok {
			t.Fatalf("case %d: err %v, want ok=%v", i, err, c.ok)
		}
	}
	if commitTS != 5 || w.pairs != 1 {
		t.Fatalf("commit ts %d, %d pairs; want 5 and 1", commitTS, w.pairs)
	}
}
