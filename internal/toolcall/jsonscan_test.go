package toolcall

import (
	"encoding/json"
	"math/rand"
	"strings"
	"testing"
)

func scanAll(s string) (scanStatus, int) {
	var j jsonScanner
	return j.feed([]byte(s))
}

func TestJSONScanner(t *testing.T) {
	tests := []struct {
		in   string
		want scanStatus
		end  int // for scanDone; -1: the whole input
	}{
		{`{}`, scanDone, -1},
		{` {"a": 1} tail`, scanDone, 9},
		{`[1, -2.5e+3, 0, true, false, null, "x\"\u00e9\n"]`, scanDone, -1},
		{`{"a": {"b": [{}, []]}}`, scanDone, -1},
		{`{"a": 10}`, scanDone, -1},
		{`{"a": 1`, scanMore, 0},
		{`{"a": "\u00`, scanMore, 0},
		{`{"a": tr`, scanMore, 0},
		{`{"a": 1.`, scanMore, 0},
		{`{"a": -`, scanMore, 0},
		{``, scanMore, 0},
		{`  `, scanMore, 0},
		{`"a"`, scanBad, 0},
		{`1`, scanBad, 0},
		{`{a}`, scanBad, 0},
		{`{"a" 1}`, scanBad, 0},
		{`{"a": 01}`, scanBad, 0},
		{`{"a": 1.e5}`, scanBad, 0},
		{`{"a": +1}`, scanBad, 0},
		{`{"a": tru}`, scanBad, 0},
		{`{"a": "\x"}`, scanBad, 0},
		{`{"a": "\u12g4"}`, scanBad, 0},
		{"{\"a\": \"\n\"}", scanBad, 0},
		{`{"a": 1,}`, scanBad, 0},
		{`[1,]`, scanBad, 0},
		{`[1 2]`, scanBad, 0},
		{`{"a": 1]`, scanBad, 0},
		{`{,}`, scanBad, 0},
	}
	for _, tt := range tests {
		st, end := scanAll(tt.in)
		if tt.end < 0 {
			tt.end = len(tt.in)
		}
		if st != tt.want || st == scanDone && end != tt.end {
			t.Errorf("scan(%q) = %v, %d; want %v, %d", tt.in, st, end, tt.want, tt.end)
		}
	}
}

// The scanner agrees with encoding/json: on random JSON-ish text it is
// done exactly where a valid object or array ends, every prefix of a
// valid one is a valid prefix, and what it calls bad is not valid JSON
// however it goes on (checked with the endings that would fix a prefix).
func TestJSONScannerAgreesWithEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	atoms := []string{"{", "}", "[", "]", ",", ":", " ", "\"a\"", "\"\\u00e9\"", "\"\\q\"", "1", "-0.5e3", "01", "true", "nul", "null", "\"", "x", "\n"}
	valid := 0
	for range 200000 {
		var b strings.Builder
		for n := 1 + rng.Intn(12); n > 0; n-- {
			b.WriteString(atoms[rng.Intn(len(atoms))])
		}
		s := b.String()
		st, end := scanAll(s)
		trimmed := strings.TrimLeft(s, " \n")
		container := trimmed != "" && (trimmed[0] == '{' || trimmed[0] == '[')
		switch {
		case st == scanDone:
			if !json.Valid([]byte(s[:end])) || !container {
				t.Fatalf("scan(%q) done at %d, but %q is not a valid object or array", s, end, s[:end])
			}
			for k := range end {
				if st, _ := scanAll(s[:k]); st != scanMore {
					t.Fatalf("scan(%q) = %v, but it is a prefix of %q", s[:k], st, s[:end])
				}
			}
			valid++
		case json.Valid([]byte(s)) && container:
			t.Fatalf("scan(%q) = %v, but it is valid JSON", s, st)
		case st == scanBad && container:
			for _, fix := range []string{"", "}", "]", "\"}", "\"]", "0}", "0]", ": 1}", "}}", "]]", "]}", "}]"} {
				if json.Valid([]byte(s + fix)) {
					t.Fatalf("scan(%q) = bad, but %q is valid", s, s+fix)
				}
			}
		}
	}
	if valid < 100 {
		t.Errorf("only %d valid samples; the generator is off", valid)
	}
}
