package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/lumenllm/lumen/internal/reqerr"
)

// drainLogprobs reads a stream to its end, keeping its token infos.
func drainLogprobs(t *testing.T, ch <-chan Event) (text string, gen, prompt []TokenInfo, res Result) {
	t.Helper()
	var sb bytes.Buffer
	for ev := range ch {
		sb.WriteString(ev.Text)
		gen = append(gen, ev.Tokens...)
		prompt = append(prompt, ev.PromptTokens...)
		if ev.Done {
			if ev.Err != nil {
				t.Fatalf("request failed: %v", ev.Err)
			}
			return sb.String(), gen, prompt, *ev.Result
		}
	}
	t.Fatal("stream closed without a Done event")
	return
}

// TestLogprobsCoverEveryToken: each generated token comes with its
// logprob and the asked-for alternatives, the sampled (greedy) token
// first among them, and the tokens' bytes spell the output.
func TestLogprobsCoverEveryToken(t *testing.T) {
	s := start(t, newFakeEngine(2, 256, 64), Config{})
	ch, err := s.Submit(context.Background(), Request{ID: "a", Prompt: tokens("hello"), MaxTokens: 9, Logprobs: true, TopLogprobs: 3})
	if err != nil {
		t.Fatal(err)
	}
	text, gen, prompt, res := drainLogprobs(t, ch)
	if len(gen) != res.CompletionTokens || len(gen) != 9 {
		t.Fatalf("%d token infos for %d tokens, want 9", len(gen), res.CompletionTokens)
	}
	if len(prompt) != 0 {
		t.Errorf("%d prompt token infos without PromptLogprobs", len(prompt))
	}
	var spelled []byte
	for i, ti := range gen {
		spelled = append(spelled, ti.Bytes...)
		if len(ti.Top) != 3 || ti.Top[0].ID != ti.ID || ti.Top[0].Logprob != ti.Logprob {
			t.Errorf("token %d: %+v, want 3 alternatives led by the token itself", i, ti)
		}
		if ti.Logprob > 0 || math.IsNaN(float64(ti.Logprob)) || ti.NoLogprob {
			t.Errorf("token %d: logprob %v", i, ti.Logprob)
		}
		for k, alt := range ti.Top {
			if len(alt.Bytes) != 1 || k > 0 && alt.Logprob > ti.Top[k-1].Logprob {
				t.Errorf("token %d alternative %d: %+v (not in order or without bytes)", i, k, alt)
			}
		}
	}
	if string(spelled) != text || text != expectText(tokens("hello"), 9) {
		t.Errorf("tokens spell %q, text %q, want %q", spelled, text, expectText(tokens("hello"), 9))
	}
}

// TestPromptLogprobs: every prompt token after the first gets its
// logprob, across prefill chunks, and the prompt is computed whole even
// when a slot holds it.
func TestPromptLogprobs(t *testing.T) {
	eng := newFakeEngine(1, 256, 64)
	s := start(t, eng, Config{PrefillChunk: 4})
	prompt := tokens("the quick brown fox")
	if _, _, err := generate(t, s, context.Background(), Request{ID: "warm", Prompt: prompt, MaxTokens: 2}); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Submit(context.Background(), Request{ID: "p", Prompt: prompt, MaxTokens: 2, Logprobs: true, PromptLogprobs: true, TopLogprobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, gen, got, res := drainLogprobs(t, ch)
	if res.CachedTokens != 0 {
		t.Errorf("%d cached tokens; prompt logprobs need the whole prompt computed", res.CachedTokens)
	}
	if len(got) != len(prompt) || len(gen) != 2 {
		t.Fatalf("%d prompt infos for %d tokens, %d generated", len(got), len(prompt), len(gen))
	}
	for i, ti := range got {
		if ti.ID != prompt[i] || !bytes.Equal(ti.Bytes, []byte{byte(prompt[i])}) {
			t.Errorf("prompt info %d is token %d %q, want %d", i, ti.ID, ti.Bytes, prompt[i])
		}
		if ti.NoLogprob != (i == 0) {
			t.Errorf("prompt info %d: NoLogprob %v", i, ti.NoLogprob)
		}
		// The fake model gives log(0.9) to what it predicts after the
		// prefix, so each logprob says whether prompt[i] was that.
		if i > 0 {
			want := float32(math.Log(0.1 / 256))
			if fakeNext(prompt[:i]) == prompt[i] {
				want = float32(math.Log(0.9))
			}
			if ti.Logprob != want || len(ti.Top) != 1 || ti.Top[0].ID != fakeNext(prompt[:i]) {
				t.Errorf("prompt info %d: %+v, want logprob %v with top %d", i, ti, want, fakeNext(prompt[:i]))
			}
		}
	}
}

func TestLogprobLimits(t *testing.T) {
	s := start(t, newFakeEngine(1, 256, 64), Config{})
	for _, r := range []Request{
		{Prompt: tokens("x"), MaxTokens: 2, Logprobs: true, TopLogprobs: MaxTopLogprobs + 1},
		{Prompt: tokens("x"), MaxTokens: 2, TopLogprobs: -1},
		{Prompt: tokens("x"), MaxTokens: 2, Sampling: SamplingParams{MinTokens: 3}},
	} {
		var ie *reqerr.InvalidError
		if _, err := s.Submit(context.Background(), r); !errors.As(err, &ie) {
			t.Errorf("Submit(%+v) = %v, want an reqerr.InvalidError", r, err)
		}
	}
}

// TestSharePrefill: the choices of one request (same prompt, submitted
// together with SharePrefill) compute the prompt once: the others wait for
// its prefill and share its cells, and each still generates what it would
// alone.
func TestSharePrefill(t *testing.T) {
	eng := newFakeEngine(4, 1024, 64)
	s := start(t, eng, Config{PrefillChunk: 8})
	prompt := tokens("a prompt of forty bytes, shared by all n")
	var chans []<-chan Event
	for i := range 3 {
		ch, err := s.Submit(context.Background(), Request{ID: fmt.Sprint(i), Prompt: prompt, MaxTokens: 5, SharePrefill: true})
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	sources := map[CacheSource]int{}
	for _, ch := range chans {
		text, res, err := collect(t, ch)
		if err != nil || text != expectText(prompt, 5) {
			t.Errorf("choice %s: %q, %v; want %q", res.ID, text, err, expectText(prompt, 5))
		}
		sources[res.CacheSource]++
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	prefill := 0
	for _, step := range eng.steps {
		for _, tk := range step {
			if tk.pos < len(prompt) {
				prefill++
			}
		}
	}
	// The others reuse the first's cells: shared while it runs, or from
	// its slot when it finished first (a slow machine).
	if want := len(prompt) + 2; prefill != want || sources[CacheShared]+sources[CacheSlot] != 2 {
		t.Errorf("%d prompt tokens computed, sources %v; want %d (the prompt once, then one each) and 2 reusing it", prefill, sources, want)
	}
}

func TestMillis(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want float64
	}{{1234567, 1.235}, {1234499, 1.234}, {0, 0}, {2 * time.Second, 2000}} {
		if got := Millis(tt.d); got != tt.want {
			t.Errorf("Millis(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}
