package llama_test

import (
	"math"
	"sort"
	"testing"

	"github.com/lumenllm/lumen/internal/engine/llama"
)

// TestLogprobsAreTheLogSoftmax: Logprobs is the log-softmax of the raw
// logits over the whole vocabulary — its probabilities sum to one, each
// token's value matches one computed here from Logits, and the top list is
// the most likely tokens in order.
func TestLogprobsAreTheLogSoftmax(t *testing.T) {
	m := load(t, sharedModel(t))
	c := newContext(t, m, 1)
	prompt := tokenize(t, m, "Log probabilities of the next token")
	b := llama.NewBatch(c.BatchSize())
	defer b.Close()
	for i, tok := range prompt {
		if _, err := b.Add(tok, i, 0, i >= len(prompt)-2); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Decode(b); err != nil {
		t.Fatal(err)
	}
	for _, idx := range []int{len(prompt) - 2, len(prompt) - 1} {
		logits := c.Logits(idx)
		mx := math.Inf(-1)
		for _, l := range logits {
			mx = math.Max(mx, float64(l))
		}
		var sum float64
		for _, l := range logits {
			sum += math.Exp(float64(l) - mx)
		}
		norm := mx + math.Log(sum)
		order := make([]int, len(logits))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return logits[order[a]] > logits[order[b]] })

		var total float64
		for tok := range logits {
			total += math.Exp(float64(logits[tok]) - norm)
		}
		if math.Abs(total-1) > 1e-6 {
			t.Errorf("probabilities sum to %v", total)
		}
		for _, tok := range []llama.Token{0, 1, 2, prompt[1], llama.Token(len(logits) - 1), llama.Token(order[0])} {
			lp, top, err := c.Logprobs(idx, tok, llama.MaxTopLogprobs)
			if err != nil {
				t.Fatal(err)
			}
			want := float64(logits[tok]) - norm
			if math.Abs(float64(lp)-want) > 1e-4 || lp > 0 {
				t.Errorf("token %d: logprob %v, want %v", tok, lp, want)
			}
			if len(top) != llama.MaxTopLogprobs {
				t.Fatalf("%d top entries, want %d", len(top), llama.MaxTopLogprobs)
			}
			for k, e := range top {
				if logits[e.Token] != logits[order[k]] || math.Abs(float64(e.Logprob)-(float64(logits[e.Token])-norm)) > 1e-4 {
					t.Errorf("top %d = %+v, want token %d (logit %v)", k, e, order[k], logits[order[k]])
				}
			}
		}
	}
	// llama.cpp aborts the process when asked for logits it did not
	// compute; these must be errors instead.
	if _, _, err := c.Logprobs(0, 1, 3); err == nil {
		t.Error("Logprobs at a batch index without logits succeeded")
	}
	if c.Logits(0) != nil {
		t.Error("Logits at a batch index without logits returned some")
	}
	s, err := llama.NewSampler(m, llama.SamplerParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Sample(c, 0); err == nil {
		t.Error("Sample at a batch index without logits succeeded")
	}
	if _, _, err := c.Logprobs(len(prompt)-1, llama.Token(m.VocabSize()), 3); err == nil {
		t.Error("Logprobs of a token outside the vocabulary succeeded")
	}
	if _, _, err := c.Logprobs(len(prompt)-1, 1, llama.MaxTopLogprobs+1); err == nil {
		t.Error("Logprobs with too many top entries succeeded")
	}
}
