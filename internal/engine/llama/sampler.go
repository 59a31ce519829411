package llama

/*
#include "bridge.h"
*/
import "C"

import "fmt"

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
}

// Sampler is a per-sequence llama.cpp sampler chain. It holds state
// (penalty history, RNG), so each sequence needs its own.
type Sampler struct {
	c *C.struct_llama_sampler
}

// NewSampler builds a sampler chain for p.
func NewSampler(p SamplerParams) (*Sampler, error) {
	if p.TopK < 0 || p.TopP < 0 || p.TopP > 1 || p.MinP < 0 || p.MinP > 1 || p.Temperature < 0 {
		return nil, fmt.Errorf("llama: sampler params %+v out of range", p)
	}
	chain := C.llama_sampler_chain_init(C.llama_sampler_chain_default_params())
	add := func(s *C.struct_llama_sampler) { C.llama_sampler_chain_add(chain, s) }
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
		return &Sampler{c: chain}, nil
	}
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
	return &Sampler{c: chain}, nil
}

// Sample picks the next token from the logits at batch index i of ctx's
// last Decode, and records it in the sampler's history.
func (s *Sampler) Sample(ctx *Context, i int) Token {
	return Token(C.llama_sampler_sample(s.c, ctx.c, C.int32_t(i)))
}

// Accept records a token (for example a prompt token) in the penalty
// history without sampling.
func (s *Sampler) Accept(tok Token) { C.llama_sampler_accept(s.c, C.llama_token(tok)) }

// Reset clears the history and restarts the RNG from its seed.
func (s *Sampler) Reset() { C.llama_sampler_reset(s.c) }

// Close frees the sampler.
func (s *Sampler) Close() error {
	if s.c == nil {
		return ErrClosed
	}
	C.llama_sampler_free(s.c)
	s.c = nil
	return nil
}
