package prefixcache

import (
	"testing"
)

// testState counts the states alive, so tests see each one freed once.
type testState struct {
	n     int
	live  *int
	freed bool
}

func (s *testState) Size() int { return s.n }
func (s *testState) Free() {
	if s.freed {
		panic("state freed twice")
	}
	s.freed = true
	*s.live--
}

var live int

func entry(toks string, state int) *Entry {
	t := make([]int32, len(toks))
	for i := range len(toks) {
		t[i] = int32(toks[i])
	}
	live++
	return &Entry{Tokens: t, State: &testState{n: state, live: &live}}
}

func toks(s string) []int32 { return entry(s, 0).Tokens }

func text(t []int32) string {
	b := make([]byte, len(t))
	for i, v := range t {
		b[i] = byte(v)
	}
	return string(b)
}

func TestLookupFindsLongestPrefix(t *testing.T) {
	c := New(1 << 20)
	c.Put(entry("abcdef", 10))
	c.Put(entry("abxyz", 10))
	c.Put(entry("qrs", 10))
	for _, tc := range []struct {
		prompt string
		want   int
		tokens string
	}{
		{"abcdzz", 4, "abcdef"},
		{"abxy", 4, "abxyz"},
		{"abcdefgh", 6, "abcdef"},
		{"zzz", 0, ""},
		{"qrs", 3, "qrs"},
	} {
		e, n := c.Lookup(toks(tc.prompt))
		if n != tc.want {
			t.Errorf("Lookup(%q) = %d tokens, want %d", tc.prompt, n, tc.want)
			continue
		}
		got := ""
		if e != nil {
			got = text(e.Tokens)
		}
		if got != tc.tokens {
			t.Errorf("Lookup(%q) found %q, want %q", tc.prompt, got, tc.tokens)
		}
	}
}

// The limit holds: the least recently used entries go first, and a
// lookup counts as a use.
func TestEvictsLeastRecentlyUsed(t *testing.T) {
	one := size(entry("aaaa", 100))
	c := New(3 * one)
	c.Put(entry("aaaa", 100))
	c.Put(entry("bbbb", 100))
	c.Put(entry("cccc", 100))
	c.Lookup(toks("aaaa")) // a is now the most recent; b is the oldest
	c.Put(entry("dddd", 100))
	if c.Len() != 3 || c.Bytes() != 3*one {
		t.Fatalf("len %d bytes %d, want 3 entries of %d bytes", c.Len(), c.Bytes(), 3*one)
	}
	if _, n := c.Lookup(toks("bbbb")); n != 0 {
		t.Error("b, the least recently used, should have been evicted")
	}
	for _, s := range []string{"aaaa", "cccc", "dddd"} {
		if _, n := c.Lookup(toks(s)); n != 4 {
			t.Errorf("%s was evicted", s)
		}
	}
	if c.Put(entry("huge", int(4*one))) {
		t.Error("an entry larger than the limit was kept")
	}
	if c.Len() != 3 {
		t.Errorf("a refused entry evicted others: %d left", c.Len())
	}
}

// An entry that extends another replaces it; one that another already
// covers is reported as covered.
func TestExtensionsReplacePrefixes(t *testing.T) {
	c := New(1 << 20)
	c.Put(entry("abc", 10))
	c.Put(entry("abcdef", 20))
	if c.Len() != 1 {
		t.Fatalf("len %d, want 1: abcdef replaces abc", c.Len())
	}
	if c.Bytes() != size(entry("abcdef", 20)) {
		t.Errorf("bytes %d after the replacement", c.Bytes())
	}
	if !c.Covers(toks("abcd")) || !c.Covers(toks("abcdef")) {
		t.Error("a prefix of a held entry is not reported covered")
	}
	if c.Covers(toks("abcdefg")) || c.Covers(toks("abx")) {
		t.Error("a sequence no entry holds is reported covered")
	}
}

// Every state leaves the cache freed exactly once: evicted, replaced,
// refused as too large, or cleared.
func TestStatesAreFreed(t *testing.T) {
	live = 0
	c := New(3 * size(entry("aaaa", 100)))
	live = 0
	c.Put(entry("aaaa", 100))
	c.Put(entry("bbbb", 100))
	c.Put(entry("aaaaaa", 100)) // replaces aaaa
	c.Put(entry("cccc", 100))
	c.Put(entry("dddd", 100)) // evicts bbbb
	c.Put(entry("huge", 1000))
	if live != c.Len() {
		t.Errorf("%d states alive, the cache holds %d", live, c.Len())
	}
	c.Clear()
	if live != 0 || c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("after Clear: %d alive, %d entries, %d bytes", live, c.Len(), c.Bytes())
	}
}
