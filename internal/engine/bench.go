package engine

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/lumenllm/lumen/internal/engine/llama"
)

// BenchOptions configure Bench.
type BenchOptions struct {
	// PromptTokens is the prompt length used to measure prefill.
	PromptTokens int
	// Sequences lists the batch sizes measured for decode.
	Sequences []int
	// Steps is the number of decode steps measured per batch size.
	Steps int
	// Warmup steps run before timing each batch size.
	Warmup int
}

// BenchResult holds the throughput figures of one Bench run.
type BenchResult struct {
	PrefillTokensPerSec float64
	// Decode maps batch size to aggregate decode tokens/s.
	Decode map[int]float64
}

// Bench measures prefill throughput and aggregate greedy decode throughput
// for each batch size on c (which must hold max(Sequences) sequences).
// Sampling is included in decode, as in serving.
func Bench(c *llama.Context, o BenchOptions) (BenchResult, error) {
	res := BenchResult{Decode: map[int]float64{}}
	const promptLen = 16
	if o.PromptTokens > c.Size() {
		return res, fmt.Errorf("a prefill of %d tokens does not fit the context of %d: %w", o.PromptTokens, c.Size(), ErrPromptTooLong)
	}
	for _, n := range o.Sequences {
		if need := n * (promptLen + o.Warmup + o.Steps); need > c.Size() {
			return res, fmt.Errorf("%d sequences of %d prompt and %d decode tokens need %d cells, the context holds %d (a larger context, fewer steps or sequences): %w",
				n, promptLen, o.Warmup+o.Steps, need, c.Size(), ErrPromptTooLong)
		}
	}
	vocab := c.Model().VocabSize()
	// Deterministic pseudo-random prompt tokens, skipping the first ids
	// (specials and bytes).
	tok := func(i int) llama.Token { return llama.Token(259 + (i*7919)%(vocab-259)) }
	b := llama.NewBatch(c.BatchSize())
	defer b.Close()

	c.ClearKV()
	prompt := make([]llama.Token, o.PromptTokens)
	for i := range prompt {
		prompt[i] = tok(i)
	}
	start := time.Now()
	if _, err := prefill(context.Background(), c, b, prompt); err != nil {
		return res, fmt.Errorf("prefill: %w", err)
	}
	res.PrefillTokensPerSec = float64(o.PromptTokens) / time.Since(start).Seconds()

	for _, n := range o.Sequences {
		if n > c.MaxSeqs() {
			return res, fmt.Errorf("batch of %d sequences, context holds %d: %w", n, c.MaxSeqs(), llama.ErrSeq)
		}
		c.ClearKV()
		samplers := make([]*llama.Sampler, n)
		for i := range samplers {
			s, err := llama.NewSampler(c.Model(), llama.SamplerParams{})
			if err != nil {
				return res, err
			}
			defer s.Close()
			samplers[i] = s
		}
		idx := make([]int, n)
		b.Clear()
		for s := range n {
			for j := range promptLen {
				k, err := b.Add(tok(s*promptLen+j), j, llama.SeqID(s), j == promptLen-1)
				if err != nil {
					return res, err
				}
				idx[s] = k
			}
		}
		if err := c.Decode(b); err != nil {
			return res, fmt.Errorf("decode prompt for %d: %w", n, err)
		}
		var timed time.Time
		for step := range o.Warmup + o.Steps {
			if step == o.Warmup {
				timed = time.Now()
			}
			b.Clear()
			for s := range n {
				t, err := samplers[s].Sample(c, idx[s])
				if err != nil {
					return res, err
				}
				k, err := b.Add(t, promptLen+step, llama.SeqID(s), true)
				if err != nil {
					return res, err
				}
				idx[s] = k
			}
			if err := c.Decode(b); err != nil {
				return res, fmt.Errorf("decode %d sequences step %d: %w", n, step, err)
			}
		}
		res.Decode[n] = float64(n*o.Steps) / time.Since(timed).Seconds()
	}
	c.ClearKV()
	return res, nil
}

// Print writes the results as a table, with each batch size's throughput
// as a ratio of the single-sequence figure measured in the same run.
func (r BenchResult) Print(w io.Writer, sequences []int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "prefill\t%.1f tok/s\t\n", r.PrefillTokensPerSec)
	fmt.Fprintln(tw, "sequences\tdecode tok/s\tper sequence\tvs 1 sequence\t")
	base := r.Decode[1]
	for _, n := range sequences {
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2fx", r.Decode[n]/base)
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%s\t\n", n, r.Decode[n], r.Decode[n]/float64(n), ratio)
	}
	tw.Flush()
}
