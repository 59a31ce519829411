package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/lumenllm/lumen/internal/engine"
	"github.com/lumenllm/lumen/internal/engine/llama"
	"github.com/lumenllm/lumen/internal/scheduler"
)

// bench engine --choices and --embed: the OpenAI features whose cost is
// the scheduler's doing, measured side by side in one run through the
// scheduler in this process (no transport).

// prefillCounter is a scheduler observer that counts computed tokens.
type prefillCounter struct{ prefill, decode atomic.Int64 }

func (p *prefillCounter) Step(s scheduler.StepInfo) {
	p.prefill.Add(int64(s.PrefillTokens))
	p.decode.Add(int64(s.DecodeTokens))
}
func (p *prefillCounter) Finished(context.Context, scheduler.Result) {}

// benchText is a prompt of about n tokens of common words, different for
// every seed (so no round finds another's prefix cached).
func benchText(seed uint64, n int) string {
	words := strings.Fields("the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when")
	r := rand.New(rand.NewPCG(seed, 0x6c756d656e))
	var b strings.Builder
	fmt.Fprintf(&b, "Request %d:", seed)
	for range n {
		b.WriteString(" ")
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.String()
}

// startScheduler runs a scheduler over eng until the returned stop.
func startScheduler(ctx context.Context, eng scheduler.Engine, cfg scheduler.Config) (*scheduler.Scheduler, func(), error) {
	sched, err := scheduler.New(eng, cfg)
	if err != nil {
		return nil, nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sched.Run(runCtx) }()
	return sched, func() { cancel(); <-done }, nil
}

// submitAll submits reqs together and waits for every one; it returns the
// tokens they generated.
func submitAll(ctx context.Context, sched *scheduler.Scheduler, reqs []scheduler.Request) (int, error) {
	chans := make([]<-chan scheduler.Event, len(reqs))
	for i, r := range reqs {
		ch, err := sched.Submit(ctx, r)
		if err != nil {
			return 0, err
		}
		chans[i] = ch
	}
	total := 0
	for _, ch := range chans {
		for ev := range ch {
			if ev.Done {
				if ev.Err != nil {
					return 0, ev.Err
				}
				total += ev.Result.CompletionTokens
			}
		}
	}
	return total, nil
}

type choicesOptions struct {
	n, rounds, promptTokens, maxTokens int
}

// runChoices compares one request of n choices with n separate requests
// of the same prompt, submitted together, round by round (fresh prompts,
// the order alternating): output tokens/s and prompt tokens computed. The
// choices compute their prompt once (plus one token each for the others);
// separate requests compute it up to n times, fewer when one is admitted
// after another has computed it (the prefix cache shares it then), which
// depends on how they arrive.
func runChoices(ctx context.Context, w io.Writer, c *llama.Context, o choicesOptions) error {
	b := engine.NewAdapter(c)
	defer b.Close()
	counter := &prefillCounter{}
	sched, stop, err := startScheduler(ctx, b, scheduler.Config{MaxQueue: 4 * o.n, Observer: counter})
	if err != nil {
		return err
	}
	defer stop()
	type total struct {
		tokens, prefill, prompt int64
		wall                    time.Duration
	}
	var modes [2]total // 0: n choices, 1: n separate requests
	for r := range o.rounds {
		for k := range 2 {
			mode := (r + k) % 2
			prompt, err := engine.Tokenizer{Model: c.Model()}.Tokenize(benchText(uint64(2*r+mode+1), o.promptTokens), true, false)
			if err != nil {
				return err
			}
			reqs := make([]scheduler.Request, o.n)
			for i := range reqs {
				reqs[i] = scheduler.Request{Prompt: prompt, MaxTokens: o.maxTokens, SharePrefill: mode == 0,
					Sampling: scheduler.SamplingParams{Temperature: 1, Seed: uint32(100*r + i + 1), IgnoreEOS: true}}
			}
			before := counter.prefill.Load()
			start := time.Now()
			n, err := submitAll(ctx, sched, reqs)
			if err != nil {
				return fmt.Errorf("bench engine --choices: %w", err)
			}
			modes[mode].wall += time.Since(start)
			modes[mode].tokens += int64(n)
			modes[mode].prefill += counter.prefill.Load() - before
			modes[mode].prompt += int64(len(prompt))
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "choices\trounds\tprompt tokens\toutput tok/s\tprompt tokens computed per round\n")
	names := [2]string{fmt.Sprintf("n=%d, one request", o.n), fmt.Sprintf("%d separate requests", o.n)}
	tps := func(t total) float64 { return float64(t.tokens) / t.wall.Seconds() }
	perRound := func(v int64) float64 { return float64(v) / float64(o.rounds) }
	for i, t := range modes {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\n", names[i], o.rounds, perRound(t.prompt), tps(t), perRound(t.prefill))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "ratio (n choices ÷ separate): output tok/s %.3f, prompt tokens computed %.3f\n",
		tps(modes[0])/tps(modes[1]), float64(modes[0].prefill)/float64(modes[1].prefill))
	return nil
}

type embedOptions struct {
	batches              []int
	inputs, tokens, seqs int
	pooling              llama.Pooling
	threads              int
	threadpool           bool
}

// runEmbed measures embeddings/s when the same inputs arrive batch at a
// time, for each batch size, one request at a time, rounds interleaved.
func runEmbed(ctx context.Context, w io.Writer, gen *llama.Context, o embedOptions) error {
	m := gen.Model()
	ec, err := llama.NewContext(m, llama.ContextParams{Size: 2048, BatchSize: 2048, MaxSeqs: o.seqs, Threads: o.threads,
		NoThreadpool: !o.threadpool, Poll: -1, Embeddings: o.pooling})
	if err != nil {
		return err
	}
	defer ec.Close()
	b := engine.NewAdapter(gen)
	defer b.Close()
	sched, stop, err := startScheduler(ctx, b, scheduler.Config{Embedder: engine.Embedder{Ctx: ec}})
	if err != nil {
		return err
	}
	defer stop()
	inputs := make([][]int32, o.inputs)
	for i := range inputs {
		if inputs[i], err = (engine.Tokenizer{Model: m}).Tokenize(benchText(uint64(i+1), o.tokens), true, false); err != nil {
			return err
		}
	}
	walls := make([]time.Duration, len(o.batches))
	const rounds = 3
	for range rounds {
		for k, bs := range o.batches {
			start := time.Now()
			for from := 0; from < len(inputs); from += bs {
				if _, err := submitAll(ctx, sched, []scheduler.Request{{Embed: inputs[from:min(from+bs, len(inputs))]}}); err != nil {
					return fmt.Errorf("bench engine --embed: %w", err)
				}
			}
			walls[k] += time.Since(start)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "embed batch\tinputs\ttokens per input\tembeddings/s\n")
	rates := make([]float64, len(o.batches))
	for k, bs := range o.batches {
		rates[k] = float64(rounds*len(inputs)) / walls[k].Seconds()
		fmt.Fprintf(tw, "%d\t%d\t~%d\t%.1f\n", bs, len(inputs), o.tokens, rates[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for k := 1; k < len(rates); k++ {
		fmt.Fprintf(w, "ratio (batch %d ÷ batch %d): embeddings/s %.3f\n", o.batches[k], o.batches[0], rates[k]/rates[0])
	}
	return nil
}
