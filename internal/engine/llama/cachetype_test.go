package llama_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/engine/llama"
	"github.com/lumenllm/lumen/internal/synth"
)

// A quantized KV cache holds the same tokens in less memory (q8_0 about
// half of f16, q4_0 about a quarter) and still decodes; an unknown type
// and a quantized V cache without flash attention are refused.
func TestQuantizedKVCache(t *testing.T) {
	// The tiny model's heads (16) are smaller than a quantization block
	// (32): refused, where ggml would abort the process.
	tiny := load(t, synthModel(t))
	if _, err := llama.NewContext(tiny, llama.ContextParams{Size: 512, CacheTypeK: llama.CacheQ8_0}); err == nil || !strings.Contains(err.Error(), "multiples of 32") {
		t.Errorf("q8_0 cache on 16-wide heads: %v, want a refusal", err)
	}
	cfg, err := synth.Preset("small")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "small.gguf")
	if err := synth.WriteFile(path, cfg, nil); err != nil {
		t.Fatal(err)
	}
	m := load(t, path)
	prompt := tokenize(t, m, "the quick brown fox jumps over the lazy dog again and again")
	size := map[llama.CacheType]int{}
	for _, typ := range []llama.CacheType{llama.CacheF16, llama.CacheQ8_0, llama.CacheQ4_0} {
		c, err := llama.NewContext(m, llama.ContextParams{Size: 512, MaxSeqs: 1, Threads: testThreads, CacheTypeK: typ, CacheTypeV: typ})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		out := generate(t, c, [][]llama.Token{prompt}, greedy(1), 8)
		if len(out[0]) != 8 {
			t.Errorf("%s: %d tokens, want 8", typ, len(out[0]))
		}
		if size[typ], err = c.SeqStateSize(0); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	t.Logf("state bytes of %d tokens: %v", len(prompt)+8, size)
	if r := float64(size[llama.CacheQ8_0]) / float64(size[llama.CacheF16]); r > 0.6 || r < 0.45 {
		t.Errorf("q8_0 state is %.2f of f16's, want about 0.53", r)
	}
	if r := float64(size[llama.CacheQ4_0]) / float64(size[llama.CacheF16]); r > 0.35 || r < 0.2 {
		t.Errorf("q4_0 state is %.2f of f16's, want about 0.28", r)
	}
	if _, err := llama.ParseCacheType("q5_k"); err == nil {
		t.Error("ParseCacheType(q5_k) accepted")
	}
	if _, err := llama.NewContext(m, llama.ContextParams{Size: 512, CacheTypeV: llama.CacheQ8_0, NoFlashAttention: true}); err == nil {
		t.Error("quantized V without flash attention accepted")
	}
}
