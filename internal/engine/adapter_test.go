package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lumenllm/lumen/internal/engine"
	"github.com/lumenllm/lumen/internal/engine/llama"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/synth"
)

func TestMain(m *testing.M) {
	if err := llama.Init(llama.BackendOptions{LogLevel: llama.LogError}); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// tinyModel generates and loads the tiny model.
func tinyModel(t *testing.T) *llama.Model {
	t.Helper()
	cfg, err := synth.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := synth.WriteFile(path, cfg, nil); err != nil {
		t.Fatal(err)
	}
	m, err := llama.Load(path, llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// served runs the real engine under the scheduler on a generated model.
func served(t *testing.T, slots int) (*scheduler.Scheduler, *llama.Context, engine.Tokenizer) {
	t.Helper()
	m := tinyModel(t)
	c, err := llama.NewContext(m, llama.ContextParams{Size: 256 * slots, BatchSize: 128, MaxSeqs: slots, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b := engine.NewAdapter(c)
	t.Cleanup(func() { b.Close() })
	s, err := scheduler.New(b, scheduler.Config{PrefillChunk: 16, MaxQueue: 128})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, c, engine.Tokenizer{Model: m}
}

func run(t *testing.T, s *scheduler.Scheduler, ctx context.Context, prompt []int32, n int) (string, *scheduler.Result, error) {
	t.Helper()
	ch, err := s.Submit(ctx, scheduler.Request{Prompt: prompt, MaxTokens: n})
	if err != nil {
		return "", nil, err
	}
	var sb strings.Builder
	for ev := range ch {
		sb.WriteString(ev.Text)
		if ev.Done {
			return sb.String(), ev.Result, ev.Err
		}
	}
	return "", nil, errors.New("stream ended without Done")
}

// Continuous batching changes nothing: 8 concurrent greedy requests give
// the texts each gives alone.
func TestConcurrentGreedyMatchesAlone(t *testing.T) {
	s, _, tok := served(t, 4)
	prompts := make([][]int32, 8)
	alone := make([]string, 8)
	for i := range prompts {
		p, err := tok.Tokenize(fmt.Sprintf("request number %d says %s", i, strings.Repeat("hello ", i)), true, false)
		if err != nil {
			t.Fatal(err)
		}
		prompts[i] = p
		if alone[i], _, err = run(t, s, context.Background(), p, 24); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	together := make([]string, 8)
	errs := make([]error, 8)
	for i := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			together[i], _, errs[i] = run(t, s, context.Background(), prompts[i], 24)
		}()
	}
	wg.Wait()
	for i := range prompts {
		if errs[i] != nil || together[i] != alone[i] {
			t.Errorf("request %d: concurrent %q (%v), alone %q", i, together[i], errs[i], alone[i])
		}
	}
}

// After 50 requests cancelled mid-prefill and mid-decode, no KV cell is
// left in use and a new request is served.
func TestCancellationsFreeKV(t *testing.T) {
	s, _, tok := served(t, 2)
	long, err := tok.Tokenize(strings.Repeat("a long prompt that needs several prefill chunks ", 3), true, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := s.Submit(ctx, scheduler.Request{Prompt: long, MaxTokens: 200})
		if err != nil {
			t.Fatal(err)
		}
		// Cancel after the first event for odd i (mid-decode), at once
		// for even i (mid-prefill or still queued).
		if i%2 == 1 {
			<-ch
		}
		cancel()
		var last scheduler.Event
		for ev := range ch {
			last = ev
		}
		if last.Err != nil && !errors.Is(last.Err, context.Canceled) {
			t.Fatalf("request %d: %v", i, last.Err)
		}
	}
	// The scheduler frees cells, and records llama.cpp's count of them,
	// before sending the final event.
	if st := s.Stats(); st.KVUsed != 0 || st.Active != 0 {
		t.Fatalf("after cancellations: %+v, want no cells and no active sequences", st)
	}
	p, _ := tok.Tokenize("fresh request", true, false)
	text, res, err := run(t, s, context.Background(), p, 8)
	if err != nil || res.CompletionTokens != 8 || text == "" {
		t.Errorf("after cancellations: %q %+v %v", text, res, err)
	}
}
