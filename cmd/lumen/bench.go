package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lumenllm/lumen/internal/engine"
	"github.com/lumenllm/lumen/internal/engine/llama"
)

func runBench(ctx context.Context, args []string, e env) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(e.stdout, "usage: lumen bench engine|serve|tracing [flags]   (lumen bench COMMAND --help for its flags)")
		return nil
	}
	if len(args) > 0 && args[0] == "serve" {
		return runBenchServe(ctx, args[1:], e)
	}
	if len(args) > 0 && args[0] == "tracing" {
		return runBenchTracing(ctx, args[1:], e)
	}
	if len(args) == 0 || args[0] != "engine" {
		return usageError{"usage: lumen bench engine|serve|tracing [flags]"}
	}
	return runBenchEngine(ctx, args[1:], e)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a list of positive integers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func runBenchEngine(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("bench engine", "Measures prefill and batched decode throughput of the engine alone: the ceiling for the server.", e.stderr)
	var lf loadFlags
	lf.register(fs)
	var sf synthFlags
	sf.register(fs, "250m")
	seqList := fs.String("sequences", "1,4,8,16", "batch sizes to measure")
	steps := fs.Int("steps", 32, "timed decode steps per batch size")
	promptTokens := fs.Int("prompt-tokens", 512, "prompt length for the prefill measurement")
	replayList := fs.String("replay", "", "instead: replay bench serve's closed-loop mix at these concurrencies (e.g. 1,4,8) through the scheduler in this process, no transport, printing what bench serve prints for a server")
	var ro replayOptions
	fs.IntVar(&ro.perWorker, "replay-requests", 6, "with --replay: requests per concurrent worker (bench serve --requests ÷ --concurrency)")
	fs.IntVar(&ro.promptTokens, "replay-prompt-tokens", 40, "with --replay: mean prompt tokens, as bench serve --prompt-tokens")
	fs.IntVar(&ro.maxTokens, "replay-max-tokens", 64, "with --replay: output tokens per request (end of generation ignored), as bench serve --max-tokens --ignore-eos")
	fs.IntVar(&ro.parallel, "parallel", 0, "with --replay: sequence slots, as serve --parallel (default: the largest --replay concurrency)")
	fs.BoolVar(&ro.prefixCache, "prefix-cache", true, "with --replay: as serve --prefix-cache")
	fs.IntVar(&ro.prefillChunk, "prefill-chunk", 256, "with --replay: most prompt tokens one request adds to a step, as serve --prefill-chunk")
	fs.Uint64Var(&ro.seed, "replay-seed", 1, "with --replay: seed of the mix, as bench serve --seed")
	var co choicesOptions
	fs.IntVar(&co.n, "choices", 0, "instead: compare one request of this many choices (n) with as many separate requests of the same prompt, through the scheduler in this process")
	fs.IntVar(&co.rounds, "choices-rounds", 6, "with --choices: rounds, each with a fresh prompt, the order alternating")
	fs.IntVar(&co.promptTokens, "choices-prompt-tokens", 200, "with --choices: prompt words (about as many tokens)")
	fs.IntVar(&co.maxTokens, "choices-max-tokens", 32, "with --choices: output tokens per choice")
	embedList := fs.String("embed", "", "instead: embeddings/s when the same inputs come this many per request (e.g. 1,32), through the scheduler in this process")
	var eo embedOptions
	fs.IntVar(&eo.inputs, "embed-inputs", 64, "with --embed: inputs per round")
	fs.IntVar(&eo.tokens, "embed-tokens", 32, "with --embed: words per input (about as many tokens)")
	embedPooling := fs.String("pooling", "mean", "with --embed: mean, cls or last")
	if err := parseNoArgs(fs, args, e.getenv); err != nil {
		return err
	}
	replay, err := parseReplay(*replayList)
	if err != nil {
		return usageError{"--replay: " + err.Error()}
	}
	if replay != nil {
		ro.concurrency = replay
		if ro.parallel == 0 {
			ro.parallel = slices.Max(replay)
		}
		if ro.perWorker < 1 || ro.promptTokens < 1 || ro.maxTokens < 1 || ro.parallel < 1 || ro.prefillChunk < 1 {
			return usageError{"bench engine: --replay-requests, --replay-prompt-tokens, --replay-max-tokens, --parallel and --prefill-chunk must be positive"}
		}
	}
	seqs := []int{ro.parallel} // --replay: one context of --parallel slots
	embedBatches, err := parseReplay(*embedList)
	if err != nil {
		return usageError{"--embed: " + err.Error()}
	}
	switch {
	case co.n > 0:
		if co.rounds < 1 || co.promptTokens < 1 || co.maxTokens < 1 {
			return usageError{"bench engine: --choices-rounds, --choices-prompt-tokens and --choices-max-tokens must be positive"}
		}
		seqs = []int{co.n}
	case embedBatches != nil:
		if eo.inputs < 1 || eo.tokens < 1 {
			return usageError{"bench engine: --embed-inputs and --embed-tokens must be positive"}
		}
		if eo.pooling, err = llama.ParsePooling(*embedPooling); err != nil {
			return usageError{"--pooling: " + err.Error()}
		}
		eo.batches, eo.seqs = embedBatches, min(slices.Max(embedBatches), 64)
		seqs = []int{1}
	case replay == nil:
		if seqs, err = parseInts(*seqList); err != nil {
			return usageError{err.Error()}
		}
	}
	if *steps <= 0 || *promptTokens <= 0 {
		return usageError{"bench engine: --steps and --prompt-tokens must be positive"}
	}
	if lf.model == "" {
		cfg, err := sf.config()
		if err != nil {
			return err
		}
		dir, err := modelCacheDir(lf.cacheDir)
		if err != nil {
			return err
		}
		lf.model = synthPath(dir, sf.preset, cfg)
		if err := ensureSynth(lf.model, cfg, e); err != nil {
			return err
		}
	}
	m, err := lf.load(e, stderrWarn(e))
	if err != nil {
		return err
	}
	defer m.Close()
	c, err := lf.newContext(m, slices.Max(seqs), 512)
	if err != nil {
		return err
	}
	defer c.Close()
	md := m.Metadata()
	fmt.Fprintf(e.stdout, "model %s: %.1fM parameters, %.1f MiB, %d threads, device %s\n",
		filepath.Base(md.Path), float64(md.ParamCount)/1e6, float64(md.FileSize)/(1<<20), lf.threads, m.Device().ID())
	switch {
	case replay != nil:
		return runReplay(ctx, e.stdout, c, ro)
	case co.n > 0:
		return runChoices(ctx, e.stdout, c, co)
	case embedBatches != nil:
		eo.threads, eo.threadpool = lf.threads, lf.threadpool
		return runEmbed(ctx, e.stdout, c, eo)
	}
	res, err := engine.Bench(c, engine.BenchOptions{PromptTokens: *promptTokens, Sequences: seqs, Steps: *steps, Warmup: 2})
	if err != nil {
		return err
	}
	res.Print(e.stdout, seqs)
	return nil
}
