package detok

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStreamHoldsPartialCharacters(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		steps []string // text emitted after each byte
		flush string
	}{
		{"ascii", []byte("ab"), []string{"a", "b"}, ""},
		{"two-byte é", []byte("é"), []string{"", "é"}, ""},
		{"llama emoji", []byte("🦙!"), []string{"", "", "", "🦙", "!"}, ""},
		{"truncated at end", []byte{'x', 0xF0, 0x9F}, []string{"x", "", ""}, "\uFFFD\uFFFD"},
		{"invalid lead byte", []byte{0xFF, 'a'}, []string{"\uFFFD", "a"}, ""},
		{"broken sequence", []byte{0xE2, 'a'}, []string{"", "\uFFFDa"}, ""},
		{"lone continuation", []byte{0x80, 'a'}, []string{"\uFFFD", "a"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Stream
			for i, b := range tt.in {
				if got := s.Add([]byte{b}); got != tt.steps[i] {
					t.Errorf("after byte %d: have %q, want %q", i, got, tt.steps[i])
				}
			}
			if got := s.Flush(); got != tt.flush {
				t.Errorf("flush: have %q, want %q", got, tt.flush)
			}
		})
	}
}

func TestStreamWholePieces(t *testing.T) {
	var s Stream
	if got := s.Add([]byte("héllo \xF0\x9F")); got != "héllo " {
		t.Errorf("have %q, want %q", got, "héllo ")
	}
	if s.Pending() != 2 {
		t.Errorf("pending = %d, want 2", s.Pending())
	}
	if got := s.Add([]byte("\xA6\x99 ok")); got != "🦙 ok" {
		t.Errorf("have %q, want %q", got, "🦙 ok")
	}
}

func FuzzStream(f *testing.F) {
	f.Add([]byte("héllo 🦙"), uint8(1))
	f.Add([]byte{0xF0, 0x9F, 0xA6}, uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		n := int(chunk%5) + 1
		var s Stream
		var sb strings.Builder
		for i := 0; i < len(in); i += n {
			out := s.Add(in[i:min(i+n, len(in))])
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 %q", out)
			}
			sb.WriteString(out)
		}
		out := s.Flush()
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 flush %q", out)
		}
		sb.WriteString(out)
		if utf8.Valid(in) && sb.String() != string(in) {
			t.Fatalf("valid input changed: %q -> %q", in, sb.String())
		}
	})
}
