package scheduler

import (
	"context"
	"errors"
	"testing"

	"github.com/lumenllm/lumen/internal/reqerr"
)

// fakeEmbedder's vector of an input is {len, first token}.
type fakeEmbedder struct{ calls int }

func (f *fakeEmbedder) Embed(inputs [][]int32) ([][]float32, error) {
	f.calls++
	out := make([][]float32, len(inputs))
	for i, in := range inputs {
		out[i] = []float32{float32(len(in)), float32(in[0])}
	}
	return out, nil
}
func (f *fakeEmbedder) MaxInputTokens() int { return 8 }

// TestEmbedRequests: embeddings go through the same queue and loop as
// generation, take no slot (they are served while every slot is busy),
// and come back in order with their token count.
func TestEmbedRequests(t *testing.T) {
	emb := &fakeEmbedder{}
	eng := newFakeEngine(1, 256, 64)
	eng.gate = make(chan struct{})
	s := start(t, eng, Config{Embedder: emb})
	// The only slot is taken and held at its first step.
	gen, err := s.Submit(context.Background(), Request{ID: "g", Prompt: tokens("busy"), MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	eng.gate <- struct{}{}
	ch, err := s.Submit(context.Background(), Request{ID: "e", Embed: [][]int32{{5, 6, 7}, {9}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Event, 1)
	go func() {
		for ev := range ch {
			if ev.Done {
				done <- ev
			}
		}
	}()
	var ev Event
	for ev.Result == nil {
		select {
		case ev = <-done:
		case eng.gate <- struct{}{}: // let generation steps go until the embeddings are back
		}
	}
	res := ev.Result
	if ev.Err != nil || len(res.Embeddings) != 2 || res.Embeddings[0][0] != 3 || res.Embeddings[1][1] != 9 || res.PromptTokens != 4 || res.Slot != -1 {
		t.Errorf("embeddings %+v, err %v", res, ev.Err)
	}
	close(eng.gate)
	if _, _, err := collect(t, gen); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Request{{Embed: [][]int32{}}, {Embed: [][]int32{{}}}, {Embed: [][]int32{make([]int32, 9)}}} {
		var ie *reqerr.InvalidError
		if _, err := s.Submit(context.Background(), r); !errors.As(err, &ie) {
			t.Errorf("Submit(%v) = %v, want an reqerr.InvalidError", r.Embed, err)
		}
	}
	plain := start(t, newFakeEngine(1, 256, 64), Config{})
	var ie *reqerr.InvalidError
	if _, err := plain.Submit(context.Background(), Request{Embed: [][]int32{{1}}}); !errors.As(err, &ie) {
		t.Errorf("embeddings without an Embedder: %v, want an reqerr.InvalidError", err)
	}
}
