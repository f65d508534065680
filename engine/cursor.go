package engine

import (
	"bytes"

	"github.com/dgraph-io/badger/v4"
)

// cursor walks stored keys in one direction. A forward cursor's seek finds
// the smallest key >= target, a reverse cursor's the largest key <= target;
// next moves one key on in the cursor's direction. key and value may be
// called only while valid; key aliases the cursor's storage and must not be
// modified; value returns a copy.
type cursor interface {
	seek(target []byte)
	next()
	valid() bool
	key() []byte
	value() ([]byte, error)
	valueSize() int64
	close()
}

// badgerCursor is a cursor over a Badger iterator.
type badgerCursor struct{ it *badger.Iterator }

func (c badgerCursor) seek(target []byte)     { c.it.Seek(target) }
func (c badgerCursor) next()                  { c.it.Next() }
func (c badgerCursor) valid() bool            { return c.it.Valid() }
func (c badgerCursor) key() []byte            { return c.it.Item().Key() }
func (c badgerCursor) value() ([]byte, error) { return c.it.Item().ValueCopy(nil) }
func (c badgerCursor) valueSize() int64       { return c.it.Item().ValueSize() }
func (c badgerCursor) close()                 { c.it.Close() }

// treeCursor is a cursor over a lock table snapshot. Each step is a
// descent from the root: lock ranges are short, so there is no iterator
// state to keep.
type treeCursor struct {
	tree    *lockTree
	reverse bool
	// cur is the entry the cursor is on, when ok.
	cur storedEntry
	ok  bool
}

func (c *treeCursor) seek(target []byte) { c.moveTo(target, false) }

func (c *treeCursor) next() { c.moveTo(c.cur.key, true) }

// moveTo positions the cursor on the first entry at or past from in its
// direction, or past it when strictly is set.
func (c *treeCursor) moveTo(from []byte, strictly bool) {
	c.ok = false
	visit := func(e storedEntry) bool {
		if strictly && bytes.Equal(e.key, from) {
			return true
		}
		c.cur, c.ok = e, true
		return false
	}
	if c.reverse {
		c.tree.DescendLessOrEqual(storedEntry{key: from}, visit)
	} else {
		c.tree.AscendGreaterOrEqual(storedEntry{key: from}, visit)
	}
}

func (c *treeCursor) valid() bool            { return c.ok }
func (c *treeCursor) key() []byte            { return c.cur.key }
func (c *treeCursor) value() ([]byte, error) { return bytes.Clone(c.cur.value), nil }
func (c *treeCursor) valueSize() int64       { return int64(len(c.cur.value)) }
func (c *treeCursor) close()                 {}
