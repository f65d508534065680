package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Badger keeps values of 1 MiB and more in value log files, which the LSM
// tree only points to. Overwriting or deleting such a value (an MVCC
// version that GC removed, a raw key written again) leaves it in its file
// until the file is rewritten, and Badger rewrites files only when asked.
// The engine asks periodically; without it a store whose large values
// change grows without bound (measured: 6 MiB of live 2 MiB values
// overwritten 600 times held 1.2 GiB of value log).

// defaultValueLogGCInterval is how often the engine rewrites value log
// files that are mostly garbage. With nothing to reclaim a round costs
// Badger a look at its discard statistics.
const defaultValueLogGCInterval = time.Minute

// valueLogGCDiscardRatio is the share of a value log file that must be
// garbage before it is rewritten (Badger's recommended ratio): at most
// about twice the live large values are kept on disk, besides the file
// being written.
const valueLogGCDiscardRatio = 0.5

// defaultValueLogFileSize is the size at which Badger starts a new value
// log file. Only files before the one being written are rewritten, so this
// bounds the garbage that GC cannot reach yet (Badger's default is 1 GiB).
const defaultValueLogFileSize = 256 << 20

// pinPrefix matches no stored key (every key starts with a column family
// byte), so an iterator over it reads nothing and holds only the memtables.
var pinPrefix = []byte("\x00pin")

// valueLogGC rewrites value log files whose values are mostly overwritten
// or deleted, in the background, until it is stopped.
//
// Badger deletes a rewritten file at once, without first syncing the moved
// values and the pointers to them (it runs without SyncWrites: the
// engine's write-ahead log makes commits durable, but these writes are
// Badger's own). A machine crash right after would lose values that were
// committed long before. Badger postpones deleting the file while any
// iterator is open, so one is held across each rewrite and closed (letting
// Badger delete the file) only after syncFiles has made the moved data
// durable. If that fails the iterator is never closed: the file stays on
// disk and GC stops.
type valueLogGC struct {
	db       *badger.DB
	logger   *slog.Logger
	interval time.Duration
	// syncFiles makes everything Badger has written durable:
	// syncBadgerFiles, or a failure in tests.
	syncFiles func(*badger.DB) error
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

func startValueLogGC(db *badger.DB, logger *slog.Logger, interval time.Duration) *valueLogGC {
	g := &valueLogGC{db: db, logger: logger, interval: interval, syncFiles: syncBadgerFiles,
		stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

func (g *valueLogGC) run() {
	defer close(g.done)
	ticker := time.NewTicker(g.interval)
	defer ticker.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-ticker.C:
			if err := g.collect(); err != nil {
				g.logger.Error("engine: value log gc stopped", "err", err)
				return
			}
		}
	}
}

// close stops GC and waits for a rewrite in progress; closing again does
// nothing.
func (g *valueLogGC) close() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.done
}

// collect rewrites files until none is garbage enough or GC is stopped.
func (g *valueLogGC) collect() error {
	for {
		select {
		case <-g.stop:
			return nil
		default:
		}
		rewritten, err := g.rewriteOne()
		if err != nil || !rewritten {
			return err
		}
	}
}

// rewriteOne rewrites the value log file with the most garbage, if one
// has at least valueLogGCDiscardRatio, and reports whether it did.
func (g *valueLogGC) rewriteOne() (bool, error) {
	txn := g.db.NewTransactionAt(0, false)
	pin := txn.NewIterator(badger.IteratorOptions{Prefix: pinPrefix})
	err := g.db.RunValueLogGC(valueLogGCDiscardRatio)
	if err == nil {
		if serr := g.syncFiles(g.db); serr != nil {
			return false, fmt.Errorf("engine: value log gc: sync the rewritten values (the old file is kept): %w", serr)
		}
	}
	pin.Close()
	txn.Discard()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
		return false, nil
	}
	return false, fmt.Errorf("engine: value log gc: %w", err)
}

// syncBadgerFiles makes everything Badger has written so far durable.
// Badger's DB.Sync syncs only its current memtable log and value log file;
// a value log file it has moved past, or the log of a memtable waiting to be
// flushed, is synced here through a descriptor of its own (an fsync flushes
// a file's dirty pages whichever descriptor it comes through). A memtable
// log that is gone was flushed to an SST, which Badger syncs.
func syncBadgerFiles(db *badger.DB) error {
	if err := db.Sync(); err != nil {
		return fmt.Errorf("engine: sync badger: %w", err)
	}
	opts := db.Opts()
	for _, files := range []struct{ dir, ext string }{{opts.ValueDir, ".vlog"}, {opts.Dir, ".mem"}} {
		dir, ext := files.dir, files.ext
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("engine: sync badger files: %w", err)
		}
		for _, entry := range entries {
			if filepath.Ext(entry.Name()) != ext {
				continue
			}
			if err := syncPath(filepath.Join(dir, entry.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("engine: sync badger files: %w", err)
			}
		}
	}
	return nil
}
