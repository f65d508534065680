package engine

import "errors"

var (
	// ErrNotFound is returned by Get when the key is absent from the CF.
	ErrNotFound = errors.New("engine: key not found")

	// ErrClosed is returned by Write after Close has begun.
	ErrClosed = errors.New("engine: closed")

	// ErrBatchTooLarge is returned by Write when a batch is larger than one
	// atomic Badger transaction can hold (see Engine.MaxBatchEntries and
	// Engine.MaxBatchBytes). Nothing of the batch is applied. Split it, or use
	// WriteNonAtomic if the caller can tolerate a partially applied batch.
	ErrBatchTooLarge = errors.New("engine: write batch too large for one atomic commit")

	// ErrKeyTooLarge is returned by Write when a key is longer than
	// MaxKeySize. Nothing of the batch is applied.
	ErrKeyTooLarge = errors.New("engine: key too large")

	// ErrKeyOnly is returned by Iterator.Value on an iterator opened with
	// IterOptions.KeyOnly.
	ErrKeyOnly = errors.New("engine: value read on a key-only iterator")

	// ErrWALCorrupt is returned by Open when the write-ahead log is damaged
	// anywhere but in the tail of its last segment (a torn tail is an
	// unacknowledged write, and is cut off).
	ErrWALCorrupt = errors.New("engine: write-ahead log corrupt")

	// ErrUnknownCF is returned by ParseCF for a name that is not a column
	// family.
	ErrUnknownCF = errors.New("engine: unknown column family")
)
