// Package prefixcache keeps saved KV-cache states of token sequences in
// host memory, bounded in bytes, so a later prompt that starts with one of
// those sequences can restore its cells instead of computing them. It is
// plain data: the caller saves and restores states through the engine,
// and calls the cache from one goroutine.
package prefixcache

import "container/list"

// State is an engine's saved cells, which may live outside the Go heap:
// the cache frees it when the entry leaves.
type State interface {
	Size() int
	Free()
}

// Entry is one saved sequence: its tokens (positions 0..len-1) and the
// engine's state of their cells.
type Entry struct {
	Tokens []int32
	State  State
}

// Cache is a least-recently-used set of entries within a byte limit.
type Cache struct {
	limit int64
	bytes int64
	lru   *list.List // of *Entry, most recently used first
}

// New returns a cache holding at most limit bytes of states (tokens
// count too, four bytes each).
func New(limit int64) *Cache {
	return &Cache{limit: limit, lru: list.New()}
}

func size(e *Entry) int64 { return int64(e.State.Size()) + 4*int64(len(e.Tokens)) }

// Len is the number of entries.
func (c *Cache) Len() int { return c.lru.Len() }

// Bytes is the memory the entries hold.
func (c *Cache) Bytes() int64 { return c.bytes }

// Lookup returns the entry sharing the longest prefix with tokens, and
// the length of that prefix (0 and nil when none shares a token). The
// entry becomes the most recently used.
func (c *Cache) Lookup(tokens []int32) (*Entry, int) {
	var best *list.Element
	n := 0
	for el := c.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*Entry)
		if len(e.Tokens) <= n || len(tokens) <= n || e.Tokens[0] != tokens[0] {
			continue
		}
		if k := CommonPrefix(e.Tokens, tokens); k > n {
			best, n = el, k
		}
	}
	if best == nil {
		return nil, 0
	}
	c.lru.MoveToFront(best)
	return best.Value.(*Entry), n
}

// Covers reports whether an entry already holds tokens (or a longer
// sequence starting with them), so saving them would add nothing.
func (c *Cache) Covers(tokens []int32) bool {
	for el := c.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*Entry)
		if len(e.Tokens) >= len(tokens) && CommonPrefix(e.Tokens, tokens) == len(tokens) {
			return true
		}
	}
	return false
}

// Put adds an entry as the most recently used, dropping entries whose
// tokens it extends and then the least recently used until it fits. The
// cache owns the entry's state from then on: an entry larger than the
// whole limit is freed at once (false).
func (c *Cache) Put(e *Entry) bool {
	sz := size(e)
	if len(e.Tokens) == 0 || sz > c.limit {
		e.State.Free()
		return false
	}
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		old := el.Value.(*Entry)
		if len(old.Tokens) <= len(e.Tokens) && CommonPrefix(old.Tokens, e.Tokens) == len(old.Tokens) {
			c.remove(el)
		}
		el = next
	}
	for c.bytes+sz > c.limit {
		c.remove(c.lru.Back())
	}
	c.lru.PushFront(e)
	c.bytes += sz
	return true
}

func (c *Cache) remove(el *list.Element) {
	e := el.Value.(*Entry)
	c.bytes -= size(e)
	c.lru.Remove(el)
	e.State.Free()
}

// Clear frees every entry.
func (c *Cache) Clear() {
	for c.lru.Len() > 0 {
		c.remove(c.lru.Back())
	}
}

// CommonPrefix is the length of the longest common prefix of a and b.
func CommonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
