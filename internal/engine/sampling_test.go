package engine_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/lumenllm/lumen/internal/engine"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/scheduler"
)

func TestSamplerParamsIgnoreEOSBansEveryEOG(t *testing.T) {
	m := tinyModel(t)
	eog := m.Metadata().EOG
	if len(eog) == 0 {
		t.Fatal("model has no end-of-generation token")
	}
	p := engine.SamplerParams(m, scheduler.SamplingParams{IgnoreEOS: true, LogitBias: map[int32]float32{7: 2}, Grammar: "g", Triggers: []string{"t"}})
	for _, tok := range eog {
		if !math.IsInf(float64(p.LogitBias[tok]), -1) {
			t.Errorf("EOG token %d bias %v, want a ban", tok, p.LogitBias[tok])
		}
	}
	if p.LogitBias[7] != 2 || p.Grammar != "g" || len(p.Triggers) != 1 {
		t.Errorf("params %+v lost the request's bias or grammar", p)
	}
	if q := engine.SamplerParams(m, scheduler.SamplingParams{}); q.LogitBias != nil {
		t.Errorf("no bias asked, got %v", q.LogitBias)
	}
}

// A grammar that ends where the end-of-generation tokens are banned has
// no way on: the request fails with a clear invalid-grammar error, the
// server goes on.
func TestDeadEndGrammarFailsTheRequestOnly(t *testing.T) {
	s, _, tok := served(t, 2)
	prompt, err := tok.Tokenize("Say a:", true, false)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Submit(context.Background(), scheduler.Request{Prompt: prompt, MaxTokens: 8,
		Sampling: scheduler.SamplingParams{Grammar: `root ::= "a"`, IgnoreEOS: true}})
	if err != nil {
		t.Fatal(err)
	}
	var last scheduler.Event
	for ev := range ch {
		last = ev
	}
	var ie *reqerr.InvalidError
	if !last.Done || last.Result.Finish != scheduler.FinishError || !errors.As(last.Err, &ie) || ie.Field != "grammar" {
		t.Fatalf("last event %+v (err %v), want a grammar error", last, last.Err)
	}
	// The slot is usable again.
	if _, res, err := run(t, s, context.Background(), prompt, 4); err != nil || res.CompletionTokens != 4 {
		t.Errorf("after the dead end: %v %+v", err, res)
	}
}
