package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

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
	protocol := fs.String("protocol", "grpc", "grpc (GenerateStream) or http (POST /generate, NDJSON)")
	addr := fs.String("addr", "", "server address, host:port (default 127.0.0.1:9090 for grpc, 127.0.0.1:8080 for http)")
	apiKey := fs.String("api-key", "", "API key, sent as a bearer token (in plaintext)")
	var cfg loadgen.Config
	fs.IntVar(&cfg.Concurrency, "concurrency", 1, "requests kept in flight (closed loop); not with --rate")
	fs.Float64Var(&cfg.Rate, "rate", 0, "requests sent per second with Poisson arrivals (open loop); not with --concurrency")
	fs.IntVar(&cfg.Requests, "requests", 100, "requests to send (with --duration alone: no limit)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop sending after this long (requests in flight still finish)")
	fs.IntVar(&cfg.PromptTokens, "prompt-tokens", 128, "mean prompt length in tokens (approximate: the report has the server's count)")
	fs.Float64Var(&cfg.PromptSpread, "prompt-spread", 0, "prompt lengths are uniform in mean × (1 ± this), 0 to 1")
	fs.IntVar(&cfg.MaxTokens, "max-tokens", 128, "mean max_tokens of a request")
	fs.Float64Var(&cfg.MaxTokensSpread, "max-tokens-spread", 0, "max_tokens are uniform in mean × (1 ± this), 0 to 1")
	fs.Float64Var(&cfg.CancelFraction, "cancel-fraction", 0, "fraction of requests cancelled mid-stream after a random number of chunks, 0 to 1")
	temperature := fs.Float64("temperature", 0, "sampling temperature, 0 to 2 (0: greedy)")
	// Not --model: LUMEN_MODEL is serve's model path.
	fs.StringVar(&cfg.Model, "model-name", "", "model id to request (default: the served model)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the request mix (prompts, lengths, cancellations, arrivals, sampler seeds)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
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
	if err := cfg.Validate(); err != nil {
		return usageError{"bench serve: " + err.Error()}
	}

	target, err := newBenchTarget(*protocol, *addr, *apiKey)
	if err != nil {
		return err
	}
	defer target.Close()
	rep, runErr := loadgen.Run(ctx, cfg, target)
	if runErr != nil && errors.Is(runErr, loadgen.ErrInvalidConfig) {
		return usageError{"bench serve: " + runErr.Error()}
	}
	if err := writeBenchReport(e.stdout, rep, *asJSON); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("bench serve: %w", runErr)
	}
	if rep.Errors > 0 && rep.OK+rep.Cancelled == 0 {
		return fmt.Errorf("bench serve: all %d requests failed", rep.Errors)
	}
	return nil
}

// benchTarget is a loadgen target with a connection to close.
type benchTarget interface {
	loadgen.Target
	io.Closer
}

func newBenchTarget(protocol, addr, apiKey string) (benchTarget, error) {
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
	default:
		return nil, usageError{fmt.Sprintf("bench serve: --protocol must be grpc or http, not %q", protocol)}
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
