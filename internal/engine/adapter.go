package engine

import (
	"errors"
	"fmt"
	"math"

	"github.com/lumenllm/lumen/internal/engine/llama"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/prefixcache"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/scheduler"
)

// Adapter adapts a llama.Context to scheduler.Engine: it owns the pending
// batch and the per-sequence samplers' access to the context. Like the
// context, it belongs to the scheduler's goroutine.
type Adapter struct {
	ctx   *llama.Context
	model *llama.Model
	batch *llama.Batch
}

var _ scheduler.Engine = (*Adapter)(nil)

// NewAdapter wraps c; Close frees the batch (not the context).
func NewAdapter(c *llama.Context) *Adapter {
	return &Adapter{ctx: c, model: c.Model(), batch: llama.NewBatch(c.BatchSize())}
}

// Close frees the batch buffer.
func (b *Adapter) Close() error { return b.batch.Close() }

func (b *Adapter) Slots() int       { return b.ctx.MaxSeqs() }
func (b *Adapter) ContextSize() int { return b.ctx.Size() }
func (b *Adapter) BatchSize() int   { return b.ctx.BatchSize() }
func (b *Adapter) Device() string   { return b.ctx.Device().ID() }
func (b *Adapter) KVUsed() int      { return b.ctx.KVUsed() }

func (b *Adapter) Add(tok int32, pos, slot int, logits bool) (int, error) {
	return b.batch.Add(llama.Token(tok), pos, llama.SeqID(slot), logits)
}

func (b *Adapter) Decode() error {
	defer b.batch.Clear()
	return b.ctx.Decode(b.batch)
}

func (b *Adapter) RemoveSeq(slot, from, to int) error {
	return b.ctx.RemoveSeq(llama.SeqID(slot), from, to)
}

func (b *Adapter) CopySeq(src, dst, from, to int) error {
	return b.ctx.CopySeq(llama.SeqID(src), llama.SeqID(dst), from, to)
}

func (b *Adapter) SaveSeq(slot int) (prefixcache.State, error) {
	st, err := b.ctx.SaveSeq(llama.SeqID(slot))
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (b *Adapter) LoadSeq(slot int, state prefixcache.State) error {
	st, ok := state.(*llama.SeqState)
	if !ok {
		return fmt.Errorf("engine: load slot %d: a %T is not this engine's state", slot, state)
	}
	return b.ctx.LoadSeq(llama.SeqID(slot), st)
}

func (b *Adapter) Logprobs(idx int, tok int32, top int) (float32, []scheduler.TokenLogprob, error) {
	lp, alts, err := b.ctx.Logprobs(idx, llama.Token(tok), top)
	if err != nil {
		return 0, nil, err
	}
	out := make([]scheduler.TokenLogprob, len(alts))
	for i, a := range alts {
		out[i] = scheduler.TokenLogprob{ID: int32(a.Token), Logprob: a.Logprob}
	}
	return lp, out, nil
}

func (b *Adapter) IsEOG(tok int32) bool { return b.model.IsEOG(llama.Token(tok)) }

func (b *Adapter) Piece(tok int32, special bool) ([]byte, error) {
	return b.model.Piece(llama.Token(tok), special)
}

func (b *Adapter) NewSampler(p scheduler.SamplingParams) (scheduler.Sampler, error) {
	s, err := llama.NewSampler(b.model, SamplerParams(b.model, p))
	var ge *llama.GrammarError
	switch {
	case errors.As(err, &ge):
		return nil, &reqerr.InvalidError{Field: "grammar", Reason: ge.Reason}
	case err != nil:
		return nil, fmt.Errorf("engine: %w", err)
	}
	smp := &sampler{s: s, ctx: b.ctx, minTokens: p.MinTokens}
	if p.MinTokens > 0 {
		smp.eog = b.model.Metadata().EOG
	}
	return smp, nil
}

// SamplerParams converts scheduler sampling options for m: IgnoreEOS
// becomes a ban on each of m's end-of-generation tokens.
func SamplerParams(m *llama.Model, p scheduler.SamplingParams) llama.SamplerParams {
	sp := llama.SamplerParams{
		Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP, MinP: p.MinP,
		RepeatPenalty: p.RepeatPenalty, FrequencyPenalty: p.FrequencyPenalty, PresencePenalty: p.PresencePenalty,
		Seed: p.Seed, Grammar: p.Grammar, Triggers: p.Triggers,
	}
	if len(p.LogitBias) > 0 || p.IgnoreEOS {
		sp.LogitBias = make(map[llama.Token]float32, len(p.LogitBias))
		for tok, b := range p.LogitBias {
			sp.LogitBias[llama.Token(tok)] = b
		}
		if p.IgnoreEOS {
			for _, tok := range m.Metadata().EOG {
				sp.LogitBias[tok] = float32(math.Inf(-1))
			}
		}
	}
	return sp
}

type sampler struct {
	s   *llama.Sampler
	ctx *llama.Context
	// minTokens is how many picks hold back the end-of-generation tokens
	// (eog); sampled counts the picks so far.
	minTokens, sampled int
	eog                []llama.Token
}

func (s *sampler) Sample(idx int) (int32, error) {
	var ban []llama.Token
	if s.sampled < s.minTokens {
		ban = s.eog
	}
	s.sampled++
	tok, err := s.s.SampleExcluding(s.ctx, idx, ban)
	return int32(tok), err
}
func (s *sampler) Rejected() int { return s.s.Rejected() }
func (s *sampler) Close() error  { return s.s.Close() }

// GrammarChecker adapts a llama.Model to inference.GrammarChecker: it asks
// llama.cpp's own parser whether it takes a grammar.
type GrammarChecker struct{ Model *llama.Model }

// CheckGrammar returns an error with llama.cpp's reason when the grammar
// does not parse.
func (g GrammarChecker) CheckGrammar(gbnf string, triggers []string) error {
	var ge *llama.GrammarError
	if err := llama.CheckGrammar(g.Model, gbnf, triggers); errors.As(err, &ge) {
		return errors.New(ge.Reason)
	} else if err != nil {
		return err
	}
	return nil
}

// Tokenizer adapts a llama.Model to inference.Tokenizer.
type Tokenizer struct{ Model *llama.Model }

// ControlTokens lists the model's control tokens, longest text first.
func (t Tokenizer) ControlTokens() []inference.ControlToken {
	ct := t.Model.ControlTokens()
	out := make([]inference.ControlToken, len(ct))
	for i, c := range ct {
		out[i] = inference.ControlToken{Text: c.Text, ID: int32(c.ID)}
	}
	return out
}

// Tokenize converts text to token ids.
func (t Tokenizer) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	toks, err := t.Model.Tokenize(text, llama.TokenizeOptions{AddSpecial: addSpecial, ParseSpecial: parseSpecial})
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(toks))
	for i, tk := range toks {
		out[i] = int32(tk)
	}
	return out, nil
}

// FIM returns the model's fill-in-the-middle tokens.
func (t Tokenizer) FIM() (pre, suf, mid int32, ok bool) {
	p, s, m, ok := t.Model.FIM()
	return int32(p), int32(s), int32(m), ok
}

// Detokenize converts a prompt's token ids back to text.
func (t Tokenizer) Detokenize(tokens []int32) (string, error) {
	toks := make([]llama.Token, len(tokens))
	for i, tk := range tokens {
		toks[i] = llama.Token(tk)
	}
	return t.Model.Detokenize(toks, false)
}

// Embedder adapts an embeddings llama.Context to scheduler.Embedder.
type Embedder struct{ Ctx *llama.Context }

var _ scheduler.Embedder = Embedder{}

// Embed returns one unit vector per input.
func (e Embedder) Embed(inputs [][]int32) ([][]float32, error) {
	in := make([][]llama.Token, len(inputs))
	for i, toks := range inputs {
		in[i] = make([]llama.Token, len(toks))
		for k, t := range toks {
			in[i][k] = llama.Token(t)
		}
	}
	return e.Ctx.Embed(in)
}

// MaxInputTokens is the context's batch: each input is computed whole.
func (e Embedder) MaxInputTokens() int { return e.Ctx.BatchSize() }
