package llama

/*
#include "bridge.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unsafe"
)

// SamplerParams choose a sampling chain. The zero value is greedy.
type SamplerParams struct {
	// Temperature ≤ 0 selects greedy (argmax) decoding.
	Temperature float32
	// TopK keeps the k most likely tokens (0: off).
	TopK int
	// TopP keeps the smallest set with cumulative probability ≥ p (0 or 1: off).
	TopP float32
	// MinP drops tokens below p × the top probability (0: off).
	MinP float32
	// RepeatPenalty divides logits of recent tokens (1 or 0: off).
	RepeatPenalty float32
	// FrequencyPenalty and PresencePenalty subtract per occurrence/once
	// (0: off), OpenAI style.
	FrequencyPenalty, PresencePenalty float32
	// PenaltyLastN is how many recent tokens the penalties consider
	// (default 64; -1: the whole context).
	PenaltyLastN int
	// Seed makes random sampling reproducible.
	Seed uint32
	// LogitBias adds to the logits of tokens before anything else;
	// -Inf bans a token.
	LogitBias map[Token]float32
	// Grammar, when set, constrains every sampled token to the GBNF
	// grammar (its start rule is "root").
	Grammar string
	// Triggers, when set with Grammar, make the grammar lazy: output is
	// free until the text generated so far matches one of these
	// (ECMAScript regexes matched against the whole output); the grammar
	// then applies from the first capture group on.
	Triggers []string
}

// GrammarError is llama.cpp's refusal of a grammar.
type GrammarError struct {
	Reason string
}

func (e *GrammarError) Error() string { return "invalid grammar: " + e.Reason }

// ErrSample: sampling failed (for example, the grammar allows no token).
var ErrSample = errors.New("sampling failed")

// Sampler is a per-sequence llama.cpp sampler chain, and optionally a
// grammar. It holds state (penalty history, RNG, grammar position), so
// each sequence needs its own.
type Sampler struct {
	c       *C.struct_llama_sampler
	grammar *C.struct_llama_sampler // nil: unconstrained
	utf8    *C.struct_lumen_utf8    // the output's UTF-8 state, with a grammar
	// cand is C memory for one candidate per vocabulary token, used when
	// a grammar needs the whole vocabulary (C memory: llama.cpp keeps a
	// pointer to it during apply).
	cand     *C.llama_token_data
	nVocab   int
	ascii    *C.uint8_t // the model's plain-ASCII token table
	rejected C.int32_t
}

// NewSampler builds a sampler chain for p over m's vocabulary.
func NewSampler(m *Model, p SamplerParams) (*Sampler, error) {
	if p.TopK < 0 || p.TopP < 0 || p.TopP > 1 || p.MinP < 0 || p.MinP > 1 || p.Temperature < 0 {
		return nil, fmt.Errorf("llama: sampler params %+v out of range", p)
	}
	for tok := range p.LogitBias {
		if tok < 0 || int(tok) >= m.nVocab {
			return nil, fmt.Errorf("llama: logit bias for token %d: %w", tok, ErrBadToken)
		}
	}
	s := &Sampler{nVocab: m.nVocab, ascii: m.ascii}
	if p.Grammar != "" {
		g, err := newGrammar(m, p.Grammar, p.Triggers)
		if err != nil {
			return nil, err
		}
		s.grammar = g
		s.utf8 = C.lumen_utf8_new()
	}
	s.c = C.llama_sampler_chain_init(C.llama_sampler_chain_default_params())
	add := func(x *C.struct_llama_sampler) { C.llama_sampler_chain_add(s.c, x) }
	if len(p.LogitBias) > 0 {
		bias := (*C.llama_logit_bias)(C.malloc(C.size_t(len(p.LogitBias)) * C.size_t(unsafe.Sizeof(C.llama_logit_bias{}))))
		list := unsafe.Slice(bias, len(p.LogitBias))
		i := 0
		for tok, b := range p.LogitBias {
			if math.IsInf(float64(b), -1) {
				b = float32(math.Inf(-1))
			}
			list[i] = C.llama_logit_bias{token: C.llama_token(tok), bias: C.float(b)}
			i++
		}
		// llama.cpp copies the list.
		add(C.llama_sampler_init_logit_bias(C.int32_t(m.nVocab), C.int32_t(len(list)), bias))
		C.free(unsafe.Pointer(bias))
	}
	penalise := (p.RepeatPenalty != 0 && p.RepeatPenalty != 1) || p.FrequencyPenalty != 0 || p.PresencePenalty != 0
	if penalise {
		lastN := p.PenaltyLastN
		if lastN == 0 {
			lastN = 64
		}
		rep := p.RepeatPenalty
		if rep == 0 {
			rep = 1
		}
		add(C.llama_sampler_init_penalties(C.int32_t(lastN), C.float(rep), C.float(p.FrequencyPenalty), C.float(p.PresencePenalty)))
	}
	if p.Temperature <= 0 {
		add(C.llama_sampler_init_greedy())
	} else {
		if p.TopK > 0 {
			add(C.llama_sampler_init_top_k(C.int32_t(p.TopK)))
		}
		if p.TopP > 0 && p.TopP < 1 {
			add(C.llama_sampler_init_top_p(C.float(p.TopP), 1))
		}
		if p.MinP > 0 {
			add(C.llama_sampler_init_min_p(C.float(p.MinP), 1))
		}
		add(C.llama_sampler_init_temp(C.float(p.Temperature)))
		add(C.llama_sampler_init_dist(C.uint32_t(p.Seed)))
	}
	s.cand = (*C.llama_token_data)(C.malloc(C.size_t(m.nVocab) * C.size_t(unsafe.Sizeof(C.llama_token_data{}))))
	return s, nil
}

// newGrammar parses a grammar, returning llama.cpp's reason when it fails.
func newGrammar(m *Model, gbnf string, triggers []string) (*C.struct_llama_sampler, error) {
	cg := C.CString(gbnf)
	defer C.free(unsafe.Pointer(cg))
	root := C.CString("root")
	defer C.free(unsafe.Pointer(root))
	var pats **C.char
	if len(triggers) > 0 {
		pats = (**C.char)(C.malloc(C.size_t(len(triggers)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
		list := unsafe.Slice(pats, len(triggers))
		for i, t := range triggers {
			list[i] = C.CString(t)
		}
		defer func() {
			for _, p := range list {
				C.free(unsafe.Pointer(p))
			}
			C.free(unsafe.Pointer(pats))
		}()
	}
	var errBuf [512]C.char
	g := C.lumen_grammar_new(m.vocab, cg, root, pats, C.size_t(len(triggers)), &errBuf[0], C.size_t(len(errBuf)))
	if g == nil {
		return nil, &GrammarError{Reason: grammarReason(C.GoString(&errBuf[0]))}
	}
	return g, nil
}

// grammarReason tidies llama.cpp's message for a client: one line,
// without the C function name it starts with.
func grammarReason(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	if i := strings.Index(msg, ": "); i > 0 && !strings.ContainsAny(msg[:i], " '\"") {
		msg = msg[i+2:]
	}
	if msg == "" {
		msg = "llama.cpp rejected the grammar"
	}
	return msg
}

// CheckGrammar reports whether llama.cpp accepts gbnf (with optional lazy
// triggers) for m's vocabulary, as a *GrammarError when it does not.
func CheckGrammar(m *Model, gbnf string, triggers []string) error {
	g, err := newGrammar(m, gbnf, triggers)
	if err != nil {
		return err
	}
	C.llama_sampler_free(g)
	return nil
}

// Sample picks the next token from the logits at batch index i of ctx's
// last Decode, and records it in the sampler's history. With a grammar,
// the token always keeps the output inside the grammar; an error (wrapping
// ErrSample) means no token can.
func (s *Sampler) Sample(ctx *Context, i int) (Token, error) {
	return s.SampleExcluding(ctx, i, nil)
}

// SampleExcluding is Sample with the tokens of ban excluded from this
// pick only (min_tokens holds end-of-generation back this way).
func (s *Sampler) SampleExcluding(ctx *Context, i int, ban []Token) (Token, error) {
	if !ctx.hasLogits(i) {
		return 0, fmt.Errorf("%w: no logits at batch index %d", ErrSample, i)
	}
	var errBuf [256]C.char
	var banPtr *C.llama_token
	if len(ban) > 0 {
		banPtr = (*C.llama_token)(unsafe.Pointer(&ban[0]))
	}
	tok := C.lumen_sample(s.c, s.grammar, s.utf8, s.ascii, ctx.c, C.int32_t(i), s.cand, C.int32_t(s.nVocab),
		banPtr, C.int32_t(len(ban)), &s.rejected, &errBuf[0], C.size_t(len(errBuf)))
	if tok < 0 {
		return 0, fmt.Errorf("%w: %s", ErrSample, C.GoString(&errBuf[0]))
	}
	return Token(tok), nil
}

// Rejected counts the tokens for which the grammar overruled the model's
// first choice (each cost a pass of the grammar over the vocabulary).
func (s *Sampler) Rejected() int { return int(s.rejected) }

// Constrained reports whether the sampler has a grammar.
func (s *Sampler) Constrained() bool { return s.grammar != nil }

// Accept records a token (for example a prompt token) in the penalty
// history without sampling. The grammar does not see it: a grammar
// constrains output only.
func (s *Sampler) Accept(tok Token) { C.llama_sampler_accept(s.c, C.llama_token(tok)) }

// Reset clears the history and restarts the RNG from its seed.
func (s *Sampler) Reset() {
	C.llama_sampler_reset(s.c)
	if s.grammar != nil {
		C.llama_sampler_reset(s.grammar)
		C.lumen_utf8_reset(s.utf8)
	}
	s.rejected = 0
}

// Close frees the sampler.
func (s *Sampler) Close() error {
	if s.c == nil {
		return ErrClosed
	}
	C.llama_sampler_free(s.c)
	s.c = nil
	if s.grammar != nil {
		C.llama_sampler_free(s.grammar)
		s.grammar = nil
		C.lumen_utf8_free(s.utf8)
		s.utf8 = nil
	}
	C.free(unsafe.Pointer(s.cand))
	s.cand = nil
	return nil
}
