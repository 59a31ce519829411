package llama_test

import (
	"math"
	"slices"
	"testing"

	"github.com/lumenllm/lumen/internal/engine/llama"
)

// TestEmbed: vectors are unit length and finite, the same text gives the
// same vector alone or batched with others, and different texts differ.
func TestEmbed(t *testing.T) {
	m := load(t, sharedModel(t))
	for _, pool := range []llama.Pooling{llama.PoolingMean, llama.PoolingLast, llama.PoolingCLS} {
		c, err := llama.NewContext(m, llama.ContextParams{Size: 1024, BatchSize: 256, MaxSeqs: 4, Threads: 2, Embeddings: pool})
		if err != nil {
			t.Fatal(err)
		}
		texts := []string{"The quick brown fox", "jumps over the lazy dog", "and runs away", "into the woods", "never to return"}
		var inputs [][]llama.Token
		for _, s := range texts {
			inputs = append(inputs, tokenize(t, m, s))
		}
		all, err := c.Embed(inputs) // two passes: four sequences, then one
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(texts) {
			t.Fatalf("%s: %d vectors for %d inputs", pool, len(all), len(texts))
		}
		for i, v := range all {
			var norm float64
			for _, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatalf("%s: vector %d has %v", pool, i, x)
				}
				norm += float64(x) * float64(x)
			}
			if len(v) != m.EmbeddingSize() || math.Abs(norm-1) > 1e-4 {
				t.Errorf("%s: vector %d: %d values, norm² %v; want %d, 1", pool, i, len(v), norm, m.EmbeddingSize())
			}
			alone, err := c.Embed([][]llama.Token{inputs[i]})
			if err != nil {
				t.Fatal(err)
			}
			var maxDiff float64
			for k := range v {
				maxDiff = math.Max(maxDiff, math.Abs(float64(v[k]-alone[0][k])))
			}
			if maxDiff > 1e-5 {
				t.Errorf("%s: input %d batched differs from alone by %v", pool, i, maxDiff)
			}
		}
		if pool != llama.PoolingCLS && slices.Equal(all[0], all[1]) {
			t.Errorf("%s: different texts gave the same vector", pool)
		}
		if _, err := c.Embed([][]llama.Token{make([]llama.Token, 257)}); err == nil {
			t.Errorf("%s: an input longer than the batch was embedded", pool)
		}
		c.Close()
	}
	gen := newContext(t, m, 1)
	if _, err := gen.Embed([][]llama.Token{{1, 2}}); err == nil {
		t.Error("a generation context embedded")
	}
}
