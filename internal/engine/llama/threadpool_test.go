package llama_test

import (
	"os"
	"slices"
	"testing"

	"github.com/lumenllm/lumen/internal/engine/llama"
)

func osThreads(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// A context owns a persistent pool of Threads-1 worker threads (the
// caller is the last), which computes as ggml's own threads do and is
// stopped with the context.
func TestThreadpoolIsOwnedByTheContext(t *testing.T) {
	m := load(t, synthModel(t))
	// No more threads than CPUs: ggml's barriers spin, and oversubscribed
	// they crawl.
	const threads = 2
	before := osThreads(t)
	c, err := llama.NewContext(m, llama.ContextParams{Size: 512, MaxSeqs: 1, Threads: threads, Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Threadpool() {
		t.Fatal("no threadpool attached")
	}
	open := osThreads(t)
	if open-before < threads-1 {
		t.Errorf("%d OS threads with the pool, %d before: want %d more", open, before, threads-1)
	}
	prompt := tokenize(t, m, "Once upon a time")
	pooled := generate(t, c, [][]llama.Token{prompt}, greedy(1), 8)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if after := osThreads(t); after > open-(threads-1) {
		t.Errorf("%d OS threads after Close, %d with the pool: its %d workers should be gone", after, open, threads-1)
	}

	plain, err := llama.NewContext(m, llama.ContextParams{Size: 512, MaxSeqs: 1, Threads: threads, NoThreadpool: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if plain.Threadpool() {
		t.Fatal("NoThreadpool context has a pool")
	}
	if got := generate(t, plain, [][]llama.Token{prompt}, greedy(1), 8); !slices.Equal(got[0], pooled[0]) {
		t.Errorf("greedy tokens with a pool %v, without %v", pooled[0], got[0])
	}
}
