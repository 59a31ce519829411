package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/lumenllm/lumen/internal/engine"
	"github.com/lumenllm/lumen/internal/engine/llama"
	"github.com/lumenllm/lumen/internal/loadgen"
	"github.com/lumenllm/lumen/internal/scheduler"
)

// replayTarget serves loadgen requests from a scheduler in this process:
// the server's batching and detokenization without its transports, so
// bench serve's mix measured against it gives the server's share of its
// own engine like for like.
type replayTarget struct {
	sched *scheduler.Scheduler
	model *llama.Model
}

func (r replayTarget) Name() string { return "engine (in process)" }

func (r replayTarget) CountTokens(_ context.Context, _, text string) (int, error) {
	toks, err := r.model.Tokenize(text, llama.TokenizeOptions{AddSpecial: true})
	return len(toks), err
}

func (r replayTarget) Stream(ctx context.Context, req loadgen.Request, onText func(string) error) (loadgen.Result, error) {
	prompt, err := engine.Tokenizer{Model: r.model}.Tokenize(req.Prompt, true, false)
	if err != nil {
		return loadgen.Result{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a stream left early frees its slot
	events, err := r.sched.Submit(ctx, scheduler.Request{
		Prompt:    prompt,
		MaxTokens: req.MaxTokens,
		Sampling:  scheduler.SamplingParams{Temperature: req.Temperature, Seed: req.Seed, IgnoreEOS: true},
	})
	if err != nil {
		return loadgen.Result{}, &loadgen.RequestError{Kind: "submit", Err: err}
	}
	for ev := range events {
		if ev.Text != "" {
			if err := onText(ev.Text); err != nil {
				return loadgen.Result{}, err
			}
		}
		if ev.Done {
			res := ev.Result
			if ev.Err != nil {
				return loadgen.Result{}, &loadgen.RequestError{Kind: string(res.Finish), Err: ev.Err}
			}
			return loadgen.Result{
				FinishReason: string(res.Finish), PromptTokens: res.PromptTokens, CachedTokens: res.CachedTokens,
				CompletionTokens: res.CompletionTokens,
				QueueMS:          scheduler.Millis(res.Timings.Queue()),
				PrefillMS:        scheduler.Millis(res.Timings.Prefill()),
			}, nil
		}
	}
	return loadgen.Result{}, fmt.Errorf("replay: stream ended without a result")
}

// replayOptions is bench engine's --replay: bench serve's closed-loop mix
// run against the scheduler in process.
type replayOptions struct {
	concurrency  []int
	perWorker    int
	promptTokens int
	maxTokens    int
	parallel     int
	prefillChunk int
	prefixCache  bool
	seed         uint64
}

// runReplay runs the mix at each concurrency over c and prints a table
// of the numbers bench serve prints for a server.
func runReplay(ctx context.Context, w io.Writer, c *llama.Context, o replayOptions) error {
	b := engine.NewAdapter(c)
	defer b.Close()
	sched, err := scheduler.New(b, scheduler.Config{MaxQueue: max(64, 2*o.parallel), PrefillChunk: o.prefillChunk, NoPrefixCache: !o.prefixCache})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sched.Run(runCtx) }()
	defer func() {
		stop()
		<-done
	}()
	target := replayTarget{sched: sched, model: c.Model()}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "replay\tconcurrency\trequests\tprompt tokens\toutput tok/s\tTTFT p50 ms\tTPOT p50 ms\n")
	for i, conc := range o.concurrency {
		cfg := loadgen.Config{
			Concurrency: conc, Requests: conc * o.perWorker,
			PromptTokens: o.promptTokens, MaxTokens: o.maxTokens,
			// Like bench serve --peer: new prompts for every run.
			Seed: o.seed + uint64(i),
		}
		rep, err := loadgen.Run(ctx, cfg, target)
		if err != nil {
			return fmt.Errorf("bench engine --replay: concurrency %d: %w", conc, err)
		}
		if rep.Errors > 0 {
			return fmt.Errorf("bench engine --replay: concurrency %d: %d requests failed", conc, rep.Errors)
		}
		fmt.Fprintf(tw, "\t%d\t%d\t%d\t%.1f\t%.3f\t%.3f\n", conc, rep.OK, rep.PromptTokens, rep.OutputTokensPerS, rep.TTFTMS.P50, rep.TPOTMS.P50)
	}
	return tw.Flush()
}

func parseReplay(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	return parseInts(s)
}
