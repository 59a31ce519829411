package prefixcache

import (
	"bytes"
	"testing"
)

func entry(toks string, state int) *Entry {
	t := make([]int32, len(toks))
	for i := range len(toks) {
		t[i] = int32(toks[i])
	}
	return &Entry{Tokens: t, State: bytes.Repeat([]byte{1}, state)}
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
