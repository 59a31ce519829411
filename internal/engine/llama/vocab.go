package llama

/*
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"math"
	"slices"
	"unsafe"
)

// Token is a vocabulary token id.
type Token int32

// TokenizeOptions control Tokenize.
type TokenizeOptions struct {
	// AddSpecial adds BOS/EOS where the model's tokenizer asks for them.
	AddSpecial bool
	// ParseSpecial lets special-token text (such as "<s>") in the input
	// become special tokens instead of plain text.
	ParseSpecial bool
}

// Tokenize converts text into tokens.
func (m *Model) Tokenize(text string, opts TokenizeOptions) ([]Token, error) {
	if len(text) > math.MaxInt32/2 {
		return nil, fmt.Errorf("llama: text of %d bytes: %w", len(text), ErrTokenize)
	}
	// A token covers at least one byte, plus room for BOS/EOS.
	out := make([]Token, len(text)+2)
	var ctext *C.char
	if len(text) > 0 {
		ctext = (*C.char)(unsafe.Pointer(unsafe.StringData(text)))
	}
	n := C.llama_tokenize(m.vocab, ctext, C.int32_t(len(text)),
		(*C.llama_token)(unsafe.Pointer(unsafe.SliceData(out))), C.int32_t(len(out)),
		C.bool(opts.AddSpecial), C.bool(opts.ParseSpecial))
	if n < 0 {
		if n == math.MinInt32 {
			return nil, fmt.Errorf("llama: tokenize overflow: %w", ErrTokenize)
		}
		out = make([]Token, -n)
		n = C.llama_tokenize(m.vocab, ctext, C.int32_t(len(text)),
			(*C.llama_token)(unsafe.Pointer(unsafe.SliceData(out))), C.int32_t(len(out)),
			C.bool(opts.AddSpecial), C.bool(opts.ParseSpecial))
		if n < 0 {
			return nil, fmt.Errorf("llama: tokenize: %w", ErrTokenize)
		}
	}
	return out[:n:n], nil
}

// Piece returns the bytes of one token. A piece may be a fragment of a
// multi-byte UTF-8 character; package detok assembles text. Special
// (control) tokens render as their text only when special is true.
func (m *Model) Piece(tok Token, special bool) ([]byte, error) {
	if int(tok) < 0 || int(tok) >= m.nVocab {
		return nil, fmt.Errorf("llama: token %d of %d: %w", tok, m.nVocab, ErrBadToken)
	}
	var buf [64]byte
	n := C.llama_token_to_piece(m.vocab, C.llama_token(tok), (*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf)), 0, C.bool(special))
	if n >= 0 {
		return append([]byte(nil), buf[:n]...), nil
	}
	big := make([]byte, -n)
	n = C.llama_token_to_piece(m.vocab, C.llama_token(tok), (*C.char)(unsafe.Pointer(&big[0])), C.int32_t(len(big)), 0, C.bool(special))
	if n < 0 {
		return nil, fmt.Errorf("llama: piece of token %d: %w", tok, ErrBadToken)
	}
	return big[:n], nil
}

// Detokenize converts a whole token sequence back to text, as the
// tokenizer's inverse: a leading BOS is dropped and the space the
// tokenizer inserted before the first word is removed. Bytes that do not
// form valid UTF-8 are kept as they are.
func (m *Model) Detokenize(tokens []Token, special bool) (string, error) {
	for _, t := range tokens {
		if int(t) < 0 || int(t) >= m.nVocab {
			return "", fmt.Errorf("llama: token %d of %d: %w", t, m.nVocab, ErrBadToken)
		}
	}
	// llama.cpp only strips the tokenizer's leading space when no BOS
	// precedes it, so drop the BOS here rather than have it removed there.
	if !special && len(tokens) > 0 && tokens[0] == m.meta.BOS && m.meta.AddBOS {
		tokens = tokens[1:]
	}
	if len(tokens) == 0 {
		return "", nil
	}
	buf := make([]byte, 8*len(tokens)+16)
	call := func() C.int32_t {
		return C.llama_detokenize(m.vocab,
			(*C.llama_token)(unsafe.Pointer(unsafe.SliceData(tokens))), C.int32_t(len(tokens)),
			(*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf)),
			C.bool(!special), C.bool(special))
	}
	n := call()
	if n < 0 {
		buf = make([]byte, -n)
		n = call()
		if n < 0 {
			return "", fmt.Errorf("llama: detokenize: %w", ErrBadToken)
		}
	}
	return string(buf[:n]), nil
}

// ControlToken is a token whose text the tokenizer turns into the token
// only when asked to parse special tokens (ParseSpecial): control tokens
// such as "</s>" or "<|im_end|>", and the unknown token.
type ControlToken struct {
	Text string
	ID   Token
}

// ControlTokens lists the model's control tokens that have a text,
// longest text first (the order in which a tokenizer matches them).
func (m *Model) ControlTokens() []ControlToken {
	m.controlOnce.Do(func() {
		for t := range m.nVocab {
			attr := C.llama_vocab_get_attr(m.vocab, C.llama_token(t))
			if attr&(C.LLAMA_TOKEN_ATTR_CONTROL|C.LLAMA_TOKEN_ATTR_UNKNOWN) == 0 {
				continue
			}
			b, err := m.Piece(Token(t), true)
			if err != nil || len(b) == 0 {
				continue
			}
			m.control = append(m.control, ControlToken{Text: string(b), ID: Token(t)})
		}
		slices.SortStableFunc(m.control, func(a, b ControlToken) int { return len(b.Text) - len(a.Text) })
	})
	return m.control
}

// FIM returns the model's fill-in-the-middle tokens (prefix, suffix,
// middle); ok is false when its vocabulary lacks any of them.
func (m *Model) FIM() (pre, suf, mid Token, ok bool) {
	pre, suf, mid = Token(C.llama_vocab_fim_pre(m.vocab)), Token(C.llama_vocab_fim_suf(m.vocab)), Token(C.llama_vocab_fim_mid(m.vocab))
	return pre, suf, mid, pre >= 0 && suf >= 0 && mid >= 0
}
