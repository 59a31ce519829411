package engine_test

import (
	"context"
	"testing"

	"github.com/lumenllm/lumen/internal/engine"
	"github.com/lumenllm/lumen/internal/engine/llama"
	"github.com/lumenllm/lumen/internal/scheduler"
)

// Warm-up leaves no trace: the cache is empty after it, and a request
// decodes to the same tokens on a warmed context as on a cold one.
func TestWarmupLeavesTheContextAsItWas(t *testing.T) {
	m := tinyModel(t)
	tok := engine.Tokenizer{Model: m}
	prompt, err := tok.Tokenize("once upon a time there was", true, false)
	if err != nil {
		t.Fatal(err)
	}
	generate := func(warm bool) string {
		c, err := llama.NewContext(m, llama.ContextParams{Size: 512, BatchSize: 128, MaxSeqs: 2, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if warm {
			d, err := engine.Warmup(c)
			if err != nil || d <= 0 {
				t.Fatalf("Warmup = %v, %v", d, err)
			}
			if used := c.KVUsed(); used != 0 {
				t.Fatalf("%d KV cells in use after warm-up, want 0", used)
			}
		}
		b := engine.NewAdapter(c)
		defer b.Close()
		s, err := scheduler.New(b, scheduler.Config{PrefillChunk: 16, MaxQueue: 4})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		text, _, err := run(t, s, context.Background(), prompt, 16)
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	if cold, warm := generate(false), generate(true); cold != warm {
		t.Errorf("after warm-up %q, cold %q", warm, cold)
	}
}
