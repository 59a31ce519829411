// Package engine runs models on top of the llama boundary package: it owns
// the decode loops that turn prompts into tokens (single-request offline
// generation and the engine benchmark), and the adapters that give the
// scheduler its Engine, Embedder and the inference layer its Tokenizer.
// So it implements the scheduler's interfaces (and imports their
// package); the scheduler never imports it. It holds no request queue and
// no telemetry.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lumenllm/lumen/internal/detok"
	"github.com/lumenllm/lumen/internal/engine/llama"
)

// Sentinel errors for request validation.
var (
	// ErrEmptyPrompt: the prompt tokenized to nothing.
	ErrEmptyPrompt = errors.New("prompt is empty")
	// ErrPromptTooLong: prompt plus requested output do not fit the context.
	ErrPromptTooLong = errors.New("prompt does not fit the context")
)

// FinishReason says why generation stopped.
type FinishReason string

// Finish reasons, named as in the OpenAI API.
const (
	FinishStop   FinishReason = "stop"   // end-of-generation token
	FinishLength FinishReason = "length" // max tokens or context full
)

// OfflineOptions configure RunOffline.
type OfflineOptions struct {
	// MaxTokens caps the generated tokens (0: until the context is full).
	MaxTokens int
	Sampler   llama.SamplerParams
}

// Result summarises a generation.
type Result struct {
	PromptTokens, CompletionTokens int
	Finish                         FinishReason
	Prefill, Decode                time.Duration
}

// RunOffline runs one prompt for lumen generate (no scheduler, no
// server) in sequence 0 of c, which it clears first, calling emit with
// each complete piece of text as it is produced. It stops at an
// end-of-generation token, MaxTokens, a full context, or when ctx is done
// (returning ctx's error).
func RunOffline(ctx context.Context, c *llama.Context, prompt string, opts OfflineOptions, emit func(string) error) (Result, error) {
	m := c.Model()
	toks, err := m.Tokenize(prompt, llama.TokenizeOptions{AddSpecial: true})
	if err != nil {
		return Result{}, err
	}
	res := Result{PromptTokens: len(toks)}
	if prompt == "" || len(toks) == 0 {
		return res, ErrEmptyPrompt
	}
	if len(toks) >= c.Size() {
		return res, fmt.Errorf("%d prompt tokens, context %d: %w", len(toks), c.Size(), ErrPromptTooLong)
	}
	maxNew := c.Size() - len(toks)
	if opts.MaxTokens > 0 {
		maxNew = min(maxNew, opts.MaxTokens)
	}
	s, err := llama.NewSampler(m, opts.Sampler)
	if err != nil {
		return res, err
	}
	defer s.Close()
	b := llama.NewBatch(c.BatchSize())
	defer b.Close()
	if err := c.RemoveSeq(0, 0, -1); err != nil {
		return res, err
	}

	start := time.Now()
	last, err := prefill(ctx, c, b, toks)
	if err != nil {
		return res, err
	}
	res.Prefill = time.Since(start)

	start = time.Now()
	var d detok.Stream
	pos := len(toks)
	res.Finish = FinishLength
	for res.CompletionTokens < maxNew {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		tok, err := s.Sample(c, last)
		if err != nil {
			return res, err
		}
		if m.IsEOG(tok) {
			res.Finish = FinishStop
			break
		}
		res.CompletionTokens++
		piece, err := m.Piece(tok, false)
		if err != nil {
			return res, err
		}
		text := d.Add(piece)
		if text != "" {
			if err := emit(text); err != nil {
				return res, err
			}
		}
		if res.CompletionTokens == maxNew {
			break
		}
		b.Clear()
		if last, err = b.Add(tok, pos, 0, true); err != nil {
			return res, err
		}
		pos++
		if err := c.Decode(b); err != nil {
			return res, err
		}
	}
	if text := d.Flush(); text != "" {
		if err := emit(text); err != nil {
			return res, err
		}
	}
	res.Decode = time.Since(start)
	return res, nil
}

// prefill decodes toks into sequence 0 of c in batch-sized chunks, with
// logits only for the last token, whose batch index it returns. ctx is
// checked between chunks.
func prefill(ctx context.Context, c *llama.Context, b *llama.Batch, toks []llama.Token) (int, error) {
	last := 0
	for off := 0; off < len(toks); off += c.BatchSize() {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b.Clear()
		for i := off; i < min(off+c.BatchSize(), len(toks)); i++ {
			var err error
			if last, err = b.Add(toks[i], i, 0, i == len(toks)-1); err != nil {
				return 0, err
			}
		}
		if err := c.Decode(b); err != nil {
			return 0, err
		}
	}
	return last, nil
}
