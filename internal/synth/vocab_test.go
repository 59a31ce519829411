package synth

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBuildVocab(t *testing.T) {
	for _, n := range []int{MinVocab, 512, 1024, 32000, 100000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			v, err := buildVocab(n)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.tokens) != n || len(v.scores) != n || len(v.types) != n {
				t.Fatalf("have %d tokens %d scores %d types, want %d each", len(v.tokens), len(v.scores), len(v.types), n)
			}
			ids := make(map[string]int, n)
			for id, tok := range v.tokens {
				if prev, dup := ids[tok]; dup {
					t.Fatalf("token %q at ids %d and %d", tok, prev, id)
				}
				if tok == "" || !utf8.ValidString(tok) {
					t.Fatalf("token %d %q is empty or not UTF-8", id, tok)
				}
				ids[tok] = id
			}
			fixed := []struct {
				tok string
				id  int
				typ int32
			}{
				{"<unk>", UnkID, tokUnknown},
				{"<s>", BOSID, tokControl},
				{"</s>", EOSID, tokControl},
				{"<0x00>", 3, tokByte},
				{"<0x0A>", 13, tokByte}, // llama.cpp's SPM newline lookup
				{"<0xFF>", 258, tokByte},
				{spaceMarker, 259, tokNormal},
				{"!", 260, tokNormal},
				{"~", 353, tokNormal},
			}
			for _, f := range fixed {
				if id, ok := ids[f.tok]; !ok || id != f.id || v.types[id] != f.typ {
					t.Errorf("%q: have id %d (present %v) type %d, want id %d type %d", f.tok, id, ok, v.types[id], f.id, f.typ)
				}
			}
			// Every multi-character piece must be the concatenation of two
			// pieces with smaller ids, or SPM merging could never emit it.
			for id := MinVocab; id < n; id++ {
				tok := v.tokens[id]
				if v.types[id] != tokNormal {
					t.Fatalf("id %d %q has type %d", id, tok, v.types[id])
				}
				if v.scores[id] >= v.scores[id-1] {
					t.Fatalf("scores do not fall at id %d", id)
				}
				if !splittable(tok, id, ids) {
					t.Fatalf("piece %q (id %d) is not two earlier pieces", tok, id)
				}
			}
		})
	}
}

func splittable(tok string, id int, ids map[string]int) bool {
	for i := range tok {
		if i == 0 {
			continue
		}
		l, lok := ids[tok[:i]]
		r, rok := ids[tok[i:]]
		if lok && rok && l < id && r < id {
			return true
		}
	}
	return false
}

func TestBuildVocabRejectsSize(t *testing.T) {
	for _, n := range []int{0, MinVocab - 1, MaxVocab + 1} {
		if _, err := buildVocab(n); err == nil {
			t.Errorf("buildVocab(%d): have nil error", n)
		}
	}
}

// spmTokenize mirrors llama.cpp's SPM session: spaces become "▁" with one
// prefixed, then adjacent symbols whose concatenation is a token merge,
// highest score first and leftmost on ties; leftovers become byte tokens.
func spmTokenize(v vocabulary, text string) []int {
	ids := make(map[string]int, len(v.tokens))
	for id, tok := range v.tokens {
		ids[tok] = id
	}
	text = spaceMarker + strings.ReplaceAll(text, " ", spaceMarker)
	var syms []string
	for _, r := range text {
		syms = append(syms, string(r))
	}
	for {
		best, bestScore := -1, float32(0)
		for i := 0; i+1 < len(syms); i++ {
			if id, ok := ids[syms[i]+syms[i+1]]; ok && (best < 0 || v.scores[id] > bestScore) {
				best, bestScore = i, v.scores[id]
			}
		}
		if best < 0 {
			break
		}
		syms[best] += syms[best+1]
		syms = append(syms[:best+1], syms[best+2:]...)
	}
	var out []int
	for _, s := range syms {
		if id, ok := ids[s]; ok {
			out = append(out, id)
			continue
		}
		for i := range len(s) {
			out = append(out, ids[fmt.Sprintf("<0x%02X>", s[i])])
		}
	}
	return out
}

func spmDetokenize(v vocabulary, toks []int) string {
	var b strings.Builder
	for _, id := range toks {
		tok := v.tokens[id]
		if v.types[id] == tokByte {
			var c byte
			fmt.Sscanf(tok, "<0x%02X>", &c)
			b.WriteByte(c)
			continue
		}
		b.WriteString(strings.ReplaceAll(tok, spaceMarker, " "))
	}
	return strings.TrimPrefix(b.String(), " ")
}

func TestVocabTokenizes(t *testing.T) {
	tests := []struct {
		name     string
		vocab    int
		text     string
		maxRatio float64 // most tokens per byte of text
	}{
		{"32000 english", 32000, "the people of the world would like to know what you think about this", 0.35},
		{"1024 english", 1024, "Hello world, this is a question for the server.", 0.75},
		{"tiny vocab code", 512, "func main() { return x+1 }", 1},
		{"newline and unicode fall back to bytes", 32000, "line one\nline two: café ☃", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := buildVocab(tt.vocab)
			if err != nil {
				t.Fatal(err)
			}
			toks := spmTokenize(v, tt.text)
			if have := spmDetokenize(v, toks); have != tt.text {
				t.Errorf("round trip: have %q, want %q", have, tt.text)
			}
			if ratio := float64(len(toks)) / float64(len(tt.text)); ratio > tt.maxRatio {
				t.Errorf("%d tokens for %d bytes (%.2f per byte), want at most %.2f", len(toks), len(tt.text), ratio, tt.maxRatio)
			}
		})
	}
}
