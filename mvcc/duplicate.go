package mvcc

import (
	"bytes"
	"context"
	"fmt"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/tinykv/tinykv/engine"
)

// Limits of one batch of DetectDuplicates, as TiKV's duplicate detector
// uses: a batch is sent once it holds this many versions or bytes.
const (
	duplicateBatchVersions = 4096
	duplicateBatchBytes    = 1 << 20
)

// DuplicateVersion is one committed Put version of a key that an import
// wrote more than once, or over a value that was there before the import.
type DuplicateVersion struct {
	Key      []byte // raw user key
	Value    []byte // nil when key-only
	CommitTS uint64
}

// DetectDuplicates finds the raw keys in [start, end) (empty end:
// unbounded) with more than one Put version that matters to an import
// whose versions are committed after minCommitTS. For each key it walks
// the Put and Delete versions newest first, skipping Lock and Rollback
// records, and collects Puts up to and including the first Put committed
// at or before minCommitTS (the value the key had before the import); a
// Delete at or before minCommitTS ends the walk uncollected. Keys with two
// or more collected Puts are reported, all their collected versions newest
// first, keys in ascending order, through emit in batches. A Delete
// committed after minCommitTS is an error: an import writes only Puts.
// This is the contract of TiKV's DuplicateDetect. The scan reads one
// snapshot taken for reqCtx, the request's context.
func (s *Store) DetectDuplicates(ctx context.Context, reqCtx *kvrpcpb.Context, start, end []byte, minCommitTS uint64,
	keyOnly bool, emit func([]DuplicateVersion) error) error {
	return s.withReader(ctx, reqCtx, func(r *Reader) error {
		d := &duplicateDetector{reader: r, minCommitTS: minCommitTS, keyOnly: keyOnly, emit: emit}
		return d.run(start, end)
	})
}

// duplicateDetector is the state of one DetectDuplicates scan.
type duplicateDetector struct {
	reader      *Reader
	minCommitTS uint64
	keyOnly     bool
	emit        func([]DuplicateVersion) error

	// encoded is the key whose versions are being walked; puts are its
	// collected Put versions; walked is set once the version that existed
	// before the import has been met, so older versions are skipped.
	encoded []byte
	puts    []putVersion
	walked  bool

	// batch is what the next emit sends; batchBytes its key and value bytes.
	batch      []DuplicateVersion
	batchBytes int
}

type putVersion struct {
	commitTS uint64
	write    *Write
}

func (d *duplicateDetector) run(start, end []byte) error {
	it := d.reader.snap.NewIterator(engine.CfWrite, lockBounds(start, end, false))
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		encoded, commitTS, err := SplitVersionedKey(it.Key())
		if err != nil {
			return err
		}
		if !bytes.Equal(encoded, d.encoded) {
			if err := d.finishKey(); err != nil {
				return err
			}
			d.encoded, d.puts, d.walked = append(d.encoded[:0], encoded...), d.puts[:0], false
		}
		if d.walked {
			continue
		}
		write, err := currentWrite(it, encoded, commitTS)
		if err != nil {
			return err
		}
		if err := d.addVersion(commitTS, write); err != nil {
			return err
		}
	}
	if err := d.finishKey(); err != nil {
		return err
	}
	return d.flush()
}

// addVersion takes the next older version of the current key.
func (d *duplicateDetector) addVersion(commitTS uint64, write *Write) error {
	switch write.Type {
	case WriteTypeDelete:
		if commitTS > d.minCommitTS {
			return fmt.Errorf("mvcc: key %x has a delete committed at %d, after the import's min commit ts %d",
				d.encoded, commitTS, d.minCommitTS)
		}
		d.walked = true
	case WriteTypePut:
		d.puts = append(d.puts, putVersion{commitTS: commitTS, write: write})
		d.walked = commitTS <= d.minCommitTS
	}
	return nil
}

// finishKey adds the current key's versions to the batch if they are
// duplicates, and emits the batch when it is full.
func (d *duplicateDetector) finishKey() error {
	if len(d.puts) < 2 {
		return nil
	}
	raw, err := DecodeKey(d.encoded)
	if err != nil {
		return err
	}
	for _, p := range d.puts {
		version := DuplicateVersion{Key: raw, CommitTS: p.commitTS}
		if !d.keyOnly {
			if version.Value, err = d.reader.loadValue(d.encoded, p.write.StartTS, p.write.ShortValue); err != nil {
				return err
			}
		}
		d.batch = append(d.batch, version)
		d.batchBytes += len(version.Key) + len(version.Value)
	}
	if len(d.batch) >= duplicateBatchVersions || d.batchBytes >= duplicateBatchBytes {
		return d.flush()
	}
	return nil
}

func (d *duplicateDetector) flush() error {
	if len(d.batch) == 0 {
		return nil
	}
	err := d.emit(d.batch)
	d.batch, d.batchBytes = nil, 0
	return err
}
