package synth

import (
	"fmt"
	"iter"
	"slices"
	"strings"
)

// llama.cpp token types (llama_token_type).
const (
	tokNormal  int32 = 1
	tokUnknown int32 = 2
	tokControl int32 = 3
	tokByte    int32 = 6
)

// Special token ids; llama.cpp's SPM defaults, also written explicitly.
const (
	UnkID = 0
	BOSID = 1
	EOSID = 2
)

// spaceMarker is SentencePiece's U+2581, which replaces spaces (and is
// prefixed to the text) before tokenization.
const spaceMarker = "▁"

// MinVocab is the smallest vocabulary: 3 specials, 256 byte tokens, "▁"
// and the 94 printable ASCII characters other than space.
const MinVocab = 3 + 256 + 1 + 94

// Letters by English frequency: pieces made of frequent letters get higher
// scores, so common text compresses to fewer tokens.
const (
	lowerByFreq = "etaoinsrhldcumfpgwybvkxjqz"
	upperByFreq = "TAISOCMBPWHDRLFNEGJUKVYQXZ"
	digits      = "0123456789"
)

// commonWords are the first multi-character pieces, so even a vocabulary
// of a few hundred tokens gives common English whole-word tokens; each
// word's prefixes come first so the SPM merge loop can reach the whole word
// one character at a time.
const commonWords = `the of and to in is that for it as was with be by on not he this are or
his from at which but have an they you were her she there been one all we their has would when if
so no will can more about what up out them some time only into its then than also two may first like
other after over new any these could our way most made know people year good world well back just
because through very where such should each much how those same state many here down own between work
life must take while part under want system make think say get go see use find give tell ask need
feel become leave put mean keep let begin seem help show hear play run move live believe hold bring
happen write provide sit stand lose pay meet include continue set learn change lead understand watch
follow stop create speak read allow add spend grow open walk win offer remember love consider appear
buy wait serve die send expect build stay fall cut reach kill remain model token text hello Lumen
question answer server request`

// vocabulary is the token list with its per-token scores and types, in id
// order.
type vocabulary struct {
	tokens []string
	scores []float32
	types  []int32
}

// buildVocab returns exactly n tokens (n >= MinVocab): specials, byte
// tokens "<0x00>".."<0xFF>" (llama.cpp's SPM needs them for byte fallback
// and looks up "<0x0A>" for newline), single characters, then multi-
// character pieces, every one the concatenation of two earlier pieces so
// the SPM merge loop can produce it. Scores fall with id, so shorter, more
// common merges win ties.
func buildVocab(n int) (vocabulary, error) {
	if n < MinVocab || n > MaxVocab {
		return vocabulary{}, &ConfigError{Field: "Vocab", Value: n, Reason: fmt.Sprintf("must be in %d..%d", MinVocab, MaxVocab)}
	}
	v := vocabulary{
		tokens: make([]string, 0, n),
		scores: make([]float32, 0, n),
		types:  make([]int32, 0, n),
	}
	seen := make(map[string]struct{}, n)
	add := func(tok string, typ int32) bool {
		if len(v.tokens) == n {
			return false
		}
		if _, dup := seen[tok]; dup {
			return true
		}
		seen[tok] = struct{}{}
		score := float32(0)
		if typ == tokNormal {
			score = -float32(len(v.tokens) - (3 + 256))
		}
		v.tokens = append(v.tokens, tok)
		v.scores = append(v.scores, score)
		v.types = append(v.types, typ)
		return true
	}
	add("<unk>", tokUnknown)
	add("<s>", tokControl)
	add("</s>", tokControl)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), tokByte)
	}
	add(spaceMarker, tokNormal)
	for c := byte('!'); c <= '~'; c++ {
		add(string(c), tokNormal)
	}
	for p := range pieceStream() {
		if !add(p, tokNormal) {
			break
		}
	}
	if len(v.tokens) != n {
		return vocabulary{}, &ConfigError{Field: "Vocab", Value: n, Reason: fmt.Sprintf("generator ran out of pieces at %d", len(v.tokens))}
	}
	return v, nil
}

// pieceStream yields candidate multi-character pieces in the order they
// should receive ids. Duplicates are possible and skipped by the caller.
// Each stage only uses pieces that earlier stages produced, which keeps
// every piece reachable by merging.
func pieceStream() iter.Seq[string] {
	return func(yield func(string) bool) {
		emit := func(ps []string) bool {
			for _, p := range ps {
				if !yield(p) {
					return false
				}
			}
			return true
		}
		punct := punctuation()
		lower2 := ngrams(lowerByFreq, 2)
		stages := [][]string{
			wordPieces(),
			prefixed(spaceMarker, split(lowerByFreq)),
			prefixed(spaceMarker, split(upperByFreq)),
			prefixed(spaceMarker, split(digits)),
			lower2,
			prefixed(spaceMarker, punct),
			product(upperByFreq, lowerByFreq),
			ngrams(digits, 2),
			prefixed(spaceMarker, lower2),
			prefixed(spaceMarker, product(upperByFreq, lowerByFreq)),
			ngrams(lowerByFreq, 3),
		}
		for _, s := range stages {
			if !emit(s) {
				return
			}
		}
		// Beyond ~21k pieces: "▁"+trigram and 4-grams, generated only when
		// a vocabulary that large is asked for.
		if !emit(prefixed(spaceMarker, ngrams(lowerByFreq, 3))) {
			return
		}
		emit(ngrams(lowerByFreq, 4))
	}
}

func split(s string) []string {
	out := make([]string, 0, len(s))
	for _, r := range s {
		out = append(out, string(r))
	}
	return out
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

func punctuation() []string {
	var out []string
	for c := byte('!'); c <= '~'; c++ {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			out = append(out, string(c))
		}
	}
	return out
}

// product returns every string taking one character from each alphabet in
// turn, ordered by the sum of the characters' positions in their alphabets
// (so "ee" comes before "zz"); the sort is stable, so ties keep
// lexicographic-by-position order.
func product(alphabets ...string) []string {
	type piece struct {
		s    string
		rank int
	}
	ps := []piece{{"", 0}}
	for _, a := range alphabets {
		next := make([]piece, 0, len(ps)*len(a))
		for _, p := range ps {
			for j := range len(a) {
				next = append(next, piece{p.s + a[j:j+1], p.rank + j})
			}
		}
		ps = next
	}
	slices.SortStableFunc(ps, func(a, b piece) int { return a.rank - b.rank })
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.s
	}
	return out
}

// ngrams returns every k-character string over alphabet, see product.
func ngrams(alphabet string, k int) []string {
	return product(slices.Repeat([]string{alphabet}, k)...)
}

// wordPieces returns "▁w", "▁wo", ..., "▁word" for each common word, and
// the bare pieces "wo", "wor", ..., "word" so words are also reachable
// inside longer words.
func wordPieces() []string {
	var out []string
	for _, w := range strings.Fields(commonWords) {
		for i := 1; i <= len(w); i++ {
			out = append(out, spaceMarker+w[:i])
			if i > 1 {
				out = append(out, w[:i])
			}
		}
	}
	return out
}
