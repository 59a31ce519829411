package llama_test

import (
	"testing"

	"github.com/lumenllm/lumen/internal/engine/llama"
	"github.com/lumenllm/lumen/internal/grammar"
	"github.com/lumenllm/lumen/internal/loadgen"
)

// BenchmarkSample times picking one token, free and under the bench
// schema's grammar, on the shared model (a 32,000-token vocabulary, the
// size that sets sampling's cost); decoding is not timed. overruled/op is
// the share of tokens where the grammar overruled the model's pick (each
// a pass over the vocabulary). Run: make bench-sample.
func BenchmarkSample(b *testing.B) {
	m := load(b, sharedModel(b))
	g, err := grammar.FromJSONSchema([]byte(loadgen.BenchSchema))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, grammar string }{{"free", ""}, {"json_schema", g}} {
		b.Run(bc.name, func(b *testing.B) {
			c := newContext(b, m, 1)
			batch := llama.NewBatch(c.BatchSize())
			defer batch.Close()
			prompt := tokenize(b, m, "Once upon a time there was")
			var s *llama.Sampler
			var idx, pos int
			// restart begins a fresh sequence: the grammar allows only so
			// much, and the context only so many tokens.
			restart := func() {
				if s != nil {
					s.Close()
				}
				var err error
				if s, err = llama.NewSampler(m, llama.SamplerParams{Temperature: 1, Seed: 7, Grammar: bc.grammar}); err != nil {
					b.Fatal(err)
				}
				if err := c.RemoveSeq(0, 0, -1); err != nil {
					b.Fatal(err)
				}
				batch.Clear()
				for i, tok := range prompt {
					idx, _ = batch.Add(tok, i, 0, i == len(prompt)-1)
				}
				pos = len(prompt)
			}
			restart()
			overruled := 0
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				if pos >= c.Size()-1 {
					overruled += s.Rejected()
					restart()
				}
				if err := c.Decode(batch); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				tok, err := s.Sample(c, idx)
				b.StopTimer()
				if err != nil || m.IsEOG(tok) {
					overruled += s.Rejected()
					restart()
					b.StartTimer()
					continue
				}
				batch.Clear()
				idx, _ = batch.Add(tok, pos, 0, true)
				pos++
				b.StartTimer()
			}
			b.StopTimer()
			overruled += s.Rejected()
			s.Close()
			b.ReportMetric(float64(overruled)/float64(max(1, b.N)), "overruled/op")
		})
	}
}
