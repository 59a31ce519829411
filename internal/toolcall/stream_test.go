package toolcall

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// streamed feeds pieces to a Stream and returns all the content it
// released and the calls.
func streamed(f Format, pieces []string) (string, []Call) {
	s := NewStream(f)
	var b strings.Builder
	for _, p := range pieces {
		b.WriteString(s.Push(p))
	}
	rest, calls := s.Finish()
	return b.String() + rest, calls
}

// streamTexts are the parse tables' texts plus ones whose splits are
// tricky: multi-byte and whitespace runes at the edges, markers that
// start and stop.
func streamTexts() map[Format][]string {
	extra := []string{
		"  \u3000hello\u3000 ",
		"é<tool_call>ü",
		"<tool_ca<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>",
		"a [TOOL_CAL [TOOL_CALLS]f[ARGS]{}",
		"<|python_ta <|python_tag|>{\"name\": \"f\", \"parameters\": {}}; \u00a0",
		"\u00a0{\"name\": \"f\", \"parameters\": {}}",
		"{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {}}]}\u3000",
		"text\n\n",
	}
	out := map[Format][]string{}
	for f, cases := range allCases {
		for _, c := range cases {
			out[f] = append(out[f], c.text)
		}
		out[f] = append(out[f], extra...)
		for _, other := range allCases {
			for _, c := range other[:min(4, len(other))] {
				out[f] = append(out[f], c.text)
			}
		}
	}
	return out
}

// However the output is split, the stream releases what Parse returns for
// the whole text, and the same calls.
func TestStreamMatchesParse(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for f, texts := range streamTexts() {
		for _, text := range texts {
			wantContent, wantCalls := f.Parse(text)
			check := func(how string, pieces []string) {
				t.Helper()
				content, calls := streamed(f, pieces)
				if content != wantContent || !reflect.DeepEqual(calls, wantCalls) {
					t.Errorf("%s: %s %q: streamed = %q, %q; Parse = %q, %q", f, how, pieces, content, calls, wantContent, wantCalls)
				}
			}
			for i := 0; i <= len(text); i++ {
				check("split", []string{text[:i], text[i:]})
			}
			bytes := make([]string, len(text))
			for i := 0; i < len(text); i++ {
				bytes[i] = text[i : i+1]
			}
			check("bytes", bytes)
			for range 20 {
				var pieces []string
				for rest := text; rest != ""; {
					n := min(1+rng.Intn(6), len(rest))
					pieces = append(pieces, rest[:n])
					rest = rest[n:]
				}
				check("random", pieces)
			}
		}
	}
}

// What each push releases: text that cannot be part of a call goes out at
// once; only a possible marker (and whitespace that may end the content)
// is held.
func TestStreamReleases(t *testing.T) {
	tests := []struct {
		name   string
		f      Format
		pushes []string
		want   []string // released by each push, then by Finish
		calls  int
	}{
		{
			name:   "hermes plain text goes out at once",
			f:      Hermes,
			pushes: []string{"Hello", " world", "."},
			want:   []string{"Hello", " world", ".", ""},
		},
		{
			name:   "hermes holds a possible marker",
			f:      Hermes,
			pushes: []string{"Hi <tool", "_c", "at"},
			want:   []string{"Hi", "", " <tool_cat", ""},
		},
		{
			name:   "hermes releases text after a call",
			f:      Hermes,
			pushes: []string{"A<tool_call>{\"name\": \"f\",", " \"arguments\": {}}", "\n</tool_call>", "\nB", " C"},
			want:   []string{"A", "", "", "\nB", " C", ""},
			calls:  1,
		},
		{
			name:   "hermes releases a marker that cannot start a call",
			f:      Hermes,
			pushes: []string{"<tool_call>", " ok", " then"},
			want:   []string{"", "<tool_call> ok", " then", ""},
		},
		{
			name:   "hermes releases a block whose JSON is bad",
			f:      Hermes,
			pushes: []string{"<tool_call>{\"name\"", " 1", " more"},
			want:   []string{"", "<tool_call>{\"name\" 1", " more", ""},
		},
		{
			name:   "hermes holds an unterminated call until Finish",
			f:      Hermes,
			pushes: []string{"<tool_call>{\"name\": \"f\", \"arguments\": {}}"},
			want:   []string{"", "<tool_call>{\"name\": \"f\", \"arguments\": {}}"},
		},
		{
			name:   "trailing whitespace waits for more content",
			f:      Hermes,
			pushes: []string{"a \n", "b\n", "\n"},
			want:   []string{"a", " \nb", "", ""},
		},
		{
			name:   "leading whitespace is dropped",
			f:      Mistral,
			pushes: []string{"\n ", " x"},
			want:   []string{"", "x", ""},
		},
		{
			name:   "an incomplete rune waits",
			f:      Mistral,
			pushes: []string{"caf\xc3", "\xa9!"},
			want:   []string{"caf", "é!", ""},
		},
		{
			name:   "mistral holds a possible marker",
			f:      Mistral,
			pushes: []string{"Ok [TOOL", "_CALLS][{\"name\": \"f\", \"arguments\": {}}]", " bye"},
			want:   []string{"Ok", "", "  bye", ""},
			calls:  1,
		},
		{
			name:   "mistral releases a bracket that is no marker",
			f:      Mistral,
			pushes: []string{"see [1", "]"},
			want:   []string{"see [1", "]", ""},
		},
		{
			name:   "llama3 text not starting with { goes out at once",
			f:      Llama3,
			pushes: []string{"Sure", ", {\"name\": \"f\""},
			want:   []string{"Sure", ", {\"name\": \"f\"", ""},
		},
		{
			name:   "llama3 holds a leading object",
			f:      Llama3,
			pushes: []string{" {\"name\": \"f\",", " \"parameters\": {}}", "; ", "{\"name\": \"g\", \"parameters\": {}}"},
			want:   []string{"", "", "", "", ""},
			calls:  2,
		},
		{
			name:   "llama3 releases a leading object that is no call",
			f:      Llama3,
			pushes: []string{"{\"answer\": ", "42}", " fine"},
			want:   []string{"", "{\"answer\": 42}", " fine", ""},
		},
		{
			name:   "llama3 holds text after a call only while it may be a ;",
			f:      Llama3,
			pushes: []string{"{\"name\": \"f\", \"parameters\": {}}", "\n", "Done"},
			want:   []string{"", "", "Done", ""},
			calls:  1,
		},
		{
			name:   "generic releases once the output does not start with {",
			f:      Generic,
			pushes: []string{"  ", "Hi", " {"},
			want:   []string{"", "Hi", " {", ""},
		},
		{
			name:   "generic holds a leading object",
			f:      Generic,
			pushes: []string{"{\"tool_calls\": [", "{\"name\": \"f\", \"arguments\": {}}]}"},
			want:   []string{"", "", ""},
			calls:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream(tt.f)
			var got []string
			for _, p := range tt.pushes {
				got = append(got, s.Push(p))
			}
			rest, calls := s.Finish()
			got = append(got, rest)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("released %q, want %q", got, tt.want)
			}
			if len(calls) != tt.calls {
				t.Errorf("%d calls %q, want %d", len(calls), calls, tt.calls)
			}
		})
	}
}

// A long call is scanned once, not once per push: pushing a call of n
// bytes a byte at a time costs about as much as pushing it whole.
func TestStreamLongCallLinear(t *testing.T) {
	args := `{"text": "` + strings.Repeat("lorem ipsum ", 20000) + `"}`
	text := "<tool_call>{\"name\": \"write\", \"arguments\": " + args + "}</tool_call>"
	s := NewStream(Hermes)
	for i := 0; i < len(text); i++ {
		if out := s.Push(text[i : i+1]); out != "" {
			t.Fatalf("released %q inside a call", out)
		}
	}
	content, calls := s.Finish()
	if content != "" || len(calls) != 1 || len(calls[0].Arguments) != len(args)-1 {
		t.Fatalf("got %q, %d calls", content, len(calls))
	}
}
