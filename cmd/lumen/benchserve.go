package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/lumenllm/lumen/internal/grpcclient"
	"github.com/lumenllm/lumen/internal/loadgen"
)

// runBenchServe runs 'lumen bench serve': load on a running server.
func runBenchServe(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("bench serve",
		"Loads a RUNNING Lumen server (it starts none) with streamed generation requests of a synthetic,\n"+
			"seeded mix, and reports requests, throughput, time to first token (TTFT), time per output token\n"+
			"(TPOT) and end-to-end latency measured client-side, and the server's mean queue and prefill times.\n"+
			"Closed loop with --concurrency (the default, 1) or open loop with --rate (Poisson arrivals).",
		e.stderr)
	protocol := fs.String("protocol", "grpc", "grpc (GenerateStream), http (POST /generate, NDJSON) or openai (POST /v1/completions, SSE: any OpenAI-compatible server)")
	peer := fs.String("peer", "", "an OpenAI-compatible server to compare with (URL or host:port, e.g. llama-server): the same requests go to --addr and to it, --rounds times interleaved, and the ratios are printed (implies --protocol openai)")
	peerKey := fs.String("peer-api-key", "", "API key for --peer")
	ignoreEOS := fs.Bool("ignore-eos", false, "with --protocol openai: ask for ignore_eos, so every request runs to max_tokens on both sides")
	addr := fs.String("addr", "", "server address, host:port (default 127.0.0.1:9090 for grpc, 127.0.0.1:8080 for http)")
	apiKey := fs.String("api-key", "", "API key, sent as a bearer token (in plaintext)")
	var cfg loadgen.Config
	fs.IntVar(&cfg.Concurrency, "concurrency", 1, "requests kept in flight (closed loop); not with --rate")
	fs.Float64Var(&cfg.Rate, "rate", 0, "requests sent per second with Poisson arrivals (open loop); not with --concurrency")
	fs.IntVar(&cfg.Requests, "requests", 100, "requests to send (with --duration alone: no limit)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop sending after this long (requests in flight still finish)")
	fs.IntVar(&cfg.PromptTokens, "prompt-tokens", 128, "mean prompt length in tokens (approximate: the report has the server's count)")
	fs.Float64Var(&cfg.PromptSpread, "prompt-spread", 0, "prompt lengths are uniform in mean × (1 ± this), 0 to 1")
	fs.IntVar(&cfg.PromptPool, "prompt-pool", 0, "draw prompts from a pool of this many, so they repeat (a prefix cache's workload); 0: every prompt is new")
	fs.IntVar(&cfg.PrefixTokens, "prefix-tokens", 0, "start every prompt with the same text of about this many tokens (a shared system prompt)")
	fs.IntVar(&cfg.MaxTokens, "max-tokens", 128, "mean max_tokens of a request")
	fs.Float64Var(&cfg.MaxTokensSpread, "max-tokens-spread", 0, "max_tokens are uniform in mean × (1 ± this), 0 to 1")
	fs.Float64Var(&cfg.CancelFraction, "cancel-fraction", 0, "fraction of requests cancelled mid-stream after a random number of chunks, 0 to 1")
	temperature := fs.Float64("temperature", 0, "sampling temperature, 0 to 2 (0: greedy)")
	// Not --model: LUMEN_MODEL is serve's model path.
	fs.StringVar(&cfg.Model, "model-name", "", "model id to request (default: the served model)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the request mix (prompts, lengths, cancellations, arrivals, sampler seeds)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	constraints := fs.String("constraint", "none", "constrained output: none, json_schema, tool_call, or tool_prompt (tool_call's prompt without its grammar; "+
		"these two: grpc only); "+
		"a comma-separated list runs each in turn, --rounds times interleaved, and prints their output tok/s side by side")
	metricsURL := fs.String("metrics-url", "", "the server's /metrics (e.g. http://127.0.0.1:8080/metrics): also print where its step time went (decode, build, sample, emit, gap between steps); not with --json")
	rounds := fs.Int("rounds", 3, "with several --constraint modes: rounds of each, interleaved")
	rest, err := parseFlags(fs, args, e.getenv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Sprintf("bench serve: unexpected arguments %q", rest)}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["rate"] {
		if set["concurrency"] {
			return usageError{"bench serve: give --concurrency or --rate, not both"}
		}
		cfg.Concurrency = 0
	}
	if set["duration"] && !set["requests"] {
		cfg.Requests = 0
	}
	cfg.Temperature = float32(*temperature)
	modes := strings.Split(*constraints, ",")
	for _, m := range modes {
		cfg.Constraint = loadgen.Constraint(strings.TrimSpace(m))
		if err := cfg.Validate(); err != nil {
			return usageError{"bench serve: " + err.Error()}
		}
	}
	if *rounds < 1 {
		return usageError{"bench serve: --rounds must be at least 1"}
	}

	if *peer != "" {
		if set["protocol"] && *protocol != "openai" {
			return usageError{"bench serve: --peer compares over --protocol openai"}
		}
		*protocol = "openai"
	}
	target, err := newBenchTarget(*protocol, *addr, *apiKey, *ignoreEOS)
	if err != nil {
		return err
	}
	defer target.Close()
	if *peer != "" {
		if len(modes) > 1 || *metricsURL != "" || *asJSON {
			return usageError{"bench serve: --peer takes one --constraint, and neither --metrics-url nor --json"}
		}
		other, err := newBenchTarget("openai", *peer, *peerKey, *ignoreEOS)
		if err != nil {
			return err
		}
		defer other.Close()
		return comparePeers(ctx, e.stdout, cfg, target, other, *rounds)
	}
	if len(modes) > 1 {
		return compareConstraints(ctx, e.stdout, cfg, target, modes, *rounds)
	}
	if *metricsURL != "" && *asJSON {
		return usageError{"bench serve: --metrics-url prints a table; not with --json"}
	}
	var phasesBefore map[string]float64
	if *metricsURL != "" {
		if phasesBefore, err = scrapePhases(http.DefaultClient, *metricsURL); err != nil {
			return err
		}
	}
	rep, runErr := loadgen.Run(ctx, cfg, target)
	if runErr != nil && errors.Is(runErr, loadgen.ErrInvalidConfig) {
		return usageError{"bench serve: " + runErr.Error()}
	}
	if err := writeBenchReport(e.stdout, rep, *asJSON); err != nil {
		return err
	}
	if *metricsURL != "" {
		after, err := scrapePhases(http.DefaultClient, *metricsURL)
		if err != nil {
			return err
		}
		if err := writePhases(e.stdout, phasesBefore, after, rep.WallS); err != nil {
			return err
		}
	}
	if runErr != nil {
		return fmt.Errorf("bench serve: %w", runErr)
	}
	if rep.Errors > 0 && rep.OK+rep.Cancelled == 0 {
		return fmt.Errorf("bench serve: all %d requests failed", rep.Errors)
	}
	return nil
}

// comparePeers sends the same seeded load to a and to b, rounds times
// alternating (a, b, a, b…, so drift on the machine hits both alike), and
// prints each side's output tok/s, TTFT and TPOT medians and a ÷ b. Each
// round draws new requests (seed + round): repeating a round's prompts
// would measure each server's prompt cache, not its serving.
func comparePeers(ctx context.Context, w io.Writer, cfg loadgen.Config, a, b loadgen.Target, rounds int) error {
	type side struct {
		tokens, ok int
		wall       float64
		ttft, tpot []float64
		name       string
	}
	sides := []*side{{name: a.Name()}, {name: b.Name()}}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "round\tserver\trequests\toutput tok/s\tTTFT p50 ms\tTPOT p50 ms\n")
	for round := range rounds {
		c := cfg
		c.Seed = cfg.Seed + uint64(round)
		for i, t := range []loadgen.Target{a, b} {
			rep, err := runRound(ctx, c, t, t.Name(), round)
			if err != nil {
				return err
			}
			s := sides[i]
			s.tokens += rep.CompletionTokens
			s.wall += rep.WallS
			s.ok += rep.OK
			s.ttft = append(s.ttft, rep.TTFTMS.P50)
			s.tpot = append(s.tpot, rep.TPOTMS.P50)
			fmt.Fprintf(tw, "%d\t%s\t%d\t%.1f\t%.1f\t%.1f\n", round+1, t.Name(), rep.OK, rep.OutputTokensPerS, rep.TTFTMS.P50, rep.TPOTMS.P50)
		}
	}
	median := func(v []float64) float64 { return loadgen.Summarize(v).P50 }
	tps := func(s *side) float64 { return float64(s.tokens) / s.wall }
	fmt.Fprintf(tw, "\nall rounds\tserver\trequests\toutput tok/s\tTTFT p50 ms (median of rounds)\tTPOT p50 ms (median of rounds)\n")
	for _, s := range sides {
		fmt.Fprintf(tw, "\t%s\t%d\t%.1f\t%.1f\t%.1f\n", s.name, s.ok, tps(s), median(s.ttft), median(s.tpot))
	}
	x, y := sides[0], sides[1]
	fmt.Fprintf(tw, "\tratio (first ÷ second)\t\t%.3f\t%.3f\t%.3f\n", tps(x)/tps(y), median(x.ttft)/median(y.ttft), median(x.tpot)/median(y.tpot))
	return tw.Flush()
}

// runRound runs one round of a comparison; a request that failed fails
// the comparison, naming the side (what) and the round.
func runRound(ctx context.Context, cfg loadgen.Config, t loadgen.Target, what string, round int) (loadgen.Report, error) {
	rep, err := loadgen.Run(ctx, cfg, t)
	if err != nil {
		return rep, fmt.Errorf("bench serve: %s round %d: %w", what, round+1, err)
	}
	if rep.Errors > 0 {
		for kind, ex := range rep.ErrorExamples {
			return rep, fmt.Errorf("bench serve: %s round %d: %d requests failed (%s: %s)", what, round+1, rep.Errors, kind, ex)
		}
	}
	return rep, nil
}

// compareConstraints runs the same load once per constraint mode, rounds
// times interleaved (so drift on a noisy machine hits every mode alike),
// and prints each mode's output tokens per second and its ratio to the
// first mode's. Every run draws new requests of the same mix.
func compareConstraints(ctx context.Context, w io.Writer, cfg loadgen.Config, target loadgen.Target, modes []string, rounds int) error {
	type total struct {
		tokens, ok int
		wall       float64
	}
	totals := make([]total, len(modes))
	for round := range rounds {
		for i, m := range modes {
			c := cfg
			c.Constraint = loadgen.Constraint(strings.TrimSpace(m))
			// New prompts for every run, so no mode finds another's
			// prompts in the prefix cache.
			c.Seed = cfg.Seed + uint64(round*len(modes)+i)
			rep, err := runRound(ctx, c, target, m, round)
			if err != nil {
				return err
			}
			t := &totals[i]
			t.tokens += rep.CompletionTokens
			t.wall += rep.WallS
			t.ok += rep.OK
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "constraint\trequests\toutput tokens\toutput tok/s\tratio to %s\n", strings.TrimSpace(modes[0]))
	base := float64(totals[0].tokens) / totals[0].wall
	for i, m := range modes {
		t := totals[i]
		tps := float64(t.tokens) / t.wall
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.3f\n", strings.TrimSpace(m), t.ok, t.tokens, tps, tps/base)
	}
	return tw.Flush()
}

// benchTarget is a loadgen target with a connection to close.
type benchTarget interface {
	loadgen.Target
	io.Closer
}

func newBenchTarget(protocol, addr, apiKey string, ignoreEOS bool) (benchTarget, error) {
	switch protocol {
	case "grpc":
		if addr == "" {
			addr = "127.0.0.1:9090"
		}
		return loadgen.NewGRPCTarget(grpcclient.Config{Addr: addr, APIKey: apiKey})
	case "http":
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		return loadgen.NewHTTPTarget(loadgen.HTTPConfig{Addr: addr, APIKey: apiKey})
	case "openai":
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		return loadgen.NewOpenAITarget(loadgen.HTTPConfig{Addr: addr, APIKey: apiKey}, ignoreEOS)
	default:
		return nil, usageError{fmt.Sprintf("bench serve: --protocol must be grpc, http or openai, not %q", protocol)}
	}
}

func writeBenchReport(w io.Writer, rep loadgen.Report, asJSON bool) error {
	if !asJSON {
		return rep.Print(w)
	}
	if err := json.NewEncoder(w).Encode(rep); err != nil {
		return fmt.Errorf("bench serve: writing report: %w", err)
	}
	return nil
}
