package engine

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// DefaultMemTableSize is the memtable size Open uses when
// Options.MemTableSize is zero. Badger caps one transaction at 15% of a
// memtable, so this default admits atomic batches of about 200k entries or
// 19 MiB.
const DefaultMemTableSize = 128 << 20

// numCompactors is the number of Badger compaction workers, Badger's
// minimum. Each polls for work every 50 ms, idle or not, so Badger's
// default of four per database kept an idle store waking 160 times a second;
// two keep up with compaction on the small machines a local cluster runs on.
const numCompactors = 2

// MinMemTableSize is the smallest Options.MemTableSize Open accepts: Badger
// needs a transaction (15% of a memtable) to hold a 1 MiB value.
const MinMemTableSize = 8 << 20

// Options configures Open. Start from DefaultOptions: the zero value has
// SyncWrites off.
type Options struct {
	// SyncWrites makes Write return only after its data is fsynced, so an
	// acknowledged write survives power loss. Without it, acknowledged writes
	// still survive a process crash (SIGKILL) but not a machine crash.
	SyncWrites bool

	// InMemory keeps all data in memory, for tests. The dir passed to Open is
	// ignored and nothing survives Close.
	InMemory bool

	// Logger receives Badger's warnings and errors; nil discards them.
	Logger *slog.Logger

	// MemTableSize is the size of one Badger memtable in bytes; it bounds the
	// largest atomic batch (15% of it). Zero means DefaultMemTableSize;
	// otherwise it must be at least MinMemTableSize.
	MemTableSize int64

	// BlockCacheSize is the size of Badger's block cache in bytes. Zero means
	// Badger's default (256 MiB).
	BlockCacheSize int64

	// LockRank, when set, ranks each CfLock entry by its value, and the engine
	// keeps an index of the lock table by rank beside it, so that
	// Snapshot.NextRankedLock finds the lowest ranks without reading every
	// lock. The MVCC layer ranks a lock by its transaction's start_ts. It must
	// be a pure function of the value and must not keep the slice.
	LockRank func(value []byte) uint64

	// OnLogSync, when set, is told how long each write-ahead log append (one
	// write and one fdatasync) took, failed ones included. The store's disk
	// slow score is computed from it. It runs on the commit path, so it must
	// return quickly.
	OnLogSync func(took time.Duration)

	// walSegmentSize is the size of one write-ahead log segment; tests
	// shrink it. Zero means defaultWALSegmentSize.
	walSegmentSize int64
	// valueLogFileSize and valueLogGCInterval size Badger's value log files
	// and pace their garbage collection; tests shrink them. Zero means
	// defaultValueLogFileSize and defaultValueLogGCInterval.
	valueLogFileSize   int64
	valueLogGCInterval time.Duration
}

// DefaultOptions returns durable on-disk options.
func DefaultOptions() Options {
	return Options{SyncWrites: true}
}

// writeAheadLog reports whether the engine keeps its own write-ahead log:
// durable writes on disk. Badger then runs without syncing (see wal).
func (o Options) writeAheadLog() bool { return o.SyncWrites && !o.InMemory }

func (o Options) walSegment() int64 {
	if o.walSegmentSize == 0 {
		return defaultWALSegmentSize
	}
	return o.walSegmentSize
}

func (o Options) valueLogGCEvery() time.Duration {
	if o.valueLogGCInterval == 0 {
		return defaultValueLogGCInterval
	}
	return o.valueLogGCInterval
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) badgerOptions(dir string) badger.Options {
	badgerDir := dir
	if o.InMemory {
		badgerDir = ""
	}
	opts := badger.DefaultOptions(badgerDir).
		WithInMemory(o.InMemory).
		WithSyncWrites(false).
		WithLogger(badgerLogger{o.logger()}).
		WithLoggingLevel(badger.WARNING).
		WithDetectConflicts(false).
		WithNumCompactors(numCompactors).
		WithMemTableSize(DefaultMemTableSize).
		WithValueLogFileSize(defaultValueLogFileSize)
	if o.valueLogFileSize > 0 {
		opts = opts.WithValueLogFileSize(o.valueLogFileSize)
	}
	if o.MemTableSize > 0 {
		opts = opts.WithMemTableSize(o.MemTableSize)
	}
	if o.BlockCacheSize > 0 {
		opts = opts.WithBlockCacheSize(o.BlockCacheSize)
	}
	return opts
}

// badgerLogger forwards Badger's warnings and errors to slog and drops its
// info and debug messages, which are frequent and meant for Badger developers.
type badgerLogger struct{ logger *slog.Logger }

func (l badgerLogger) Errorf(format string, args ...any) { l.log(slog.LevelError, format, args) }

func (l badgerLogger) Warningf(format string, args ...any) { l.log(slog.LevelWarn, format, args) }

func (l badgerLogger) Infof(string, ...any) {}

func (l badgerLogger) Debugf(string, ...any) {}

func (l badgerLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !l.logger.Enabled(ctx, level) {
		return
	}
	message := strings.TrimSpace(fmt.Sprintf(format, args...))
	l.logger.Log(ctx, level, message, "component", "badger")
}
