// Package detok assembles streamed token pieces into text without ever
// emitting half of a UTF-8 character. It owns only that byte bookkeeping;
// the pieces come from the model's vocabulary.
package detok

import "unicode/utf8"

// Stream turns a sequence of token pieces into valid UTF-8 text. When a
// character is split across tokens (byte-fallback tokens, emoji), its
// leading bytes are held back until the rest arrives. Bytes that can
// never become valid UTF-8 are replaced by U+FFFD, so every string it
// returns is valid UTF-8. The zero value is ready to use.
type Stream struct {
	pending []byte
}

// Add appends one token's bytes and returns the text now complete (often
// empty while a multi-byte character is still incomplete).
func (s *Stream) Add(piece []byte) string {
	s.pending = append(s.pending, piece...)
	return s.drain(false)
}

// Flush returns whatever is held back, with incomplete characters
// replaced by U+FFFD. Call it when generation ends.
func (s *Stream) Flush() string { return s.drain(true) }

// Pending is the number of bytes held back.
func (s *Stream) Pending() int { return len(s.pending) }

func (s *Stream) drain(final bool) string {
	if len(s.pending) == 0 {
		return ""
	}
	cut := len(s.pending)
	if !final {
		cut = completePrefix(s.pending)
	}
	out := toValidUTF8(s.pending[:cut])
	rest := copy(s.pending, s.pending[cut:])
	s.pending = s.pending[:rest]
	return out
}

// completePrefix returns the length of b without a trailing partial UTF-8
// sequence that later bytes could still complete.
func completePrefix(b []byte) int {
	// A UTF-8 character is at most 4 bytes, so only the last 3 bytes can
	// start an incomplete one.
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		c := b[i]
		if c < utf8.RuneSelf {
			return len(b) // ASCII: nothing pending after it
		}
		if !utf8.RuneStart(c) {
			continue // continuation byte: look further back for its lead
		}
		need := 0
		switch {
		case c&0xE0 == 0xC0:
			need = 2
		case c&0xF0 == 0xE0:
			need = 3
		case c&0xF8 == 0xF0:
			need = 4
		default:
			return len(b) // invalid lead byte: nothing will fix it
		}
		if len(b)-i < need {
			return i
		}
		return len(b)
	}
	return len(b)
}

func toValidUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]rune, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		out = append(out, r) // RuneError for invalid bytes
		b = b[n:]
	}
	return string(out)
}
