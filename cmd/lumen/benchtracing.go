package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lumenllm/lumen/internal/grpcclient"
	"github.com/lumenllm/lumen/internal/loadgen"
)

// tracingMode is one side of the tracing-overhead comparison: how the
// in-process server is configured. The server sees only this environment,
// so the caller's OTEL_* and LUMEN_* variables cannot blur the comparison.
type tracingMode struct {
	name string
	// what says what the mode means, for the report.
	what string
	env  map[string]string
	args []string
}

func tracingModes(endpoint string) (off, on tracingMode) {
	off = tracingMode{
		name: "off",
		what: "OTEL_SDK_DISABLED=true: a no-op tracer provider, so no span is created, sampled or exported",
		env:  map[string]string{"OTEL_SDK_DISABLED": "true"},
	}
	on = tracingMode{
		name: "on",
		what: "every span sampled (OTEL_TRACES_SAMPLER=always_on, --batch-span-rate 0: every engine step's batch span too) and exported over OTLP gRPC to " + endpoint + " with the default batching",
		env:  map[string]string{"OTEL_TRACES_SAMPLER": "always_on"},
		args: []string{"--otlp-endpoint", endpoint, "--batch-span-rate", "0"},
	}
	return off, on
}

// runBenchTracing runs 'lumen bench tracing'.
func runBenchTracing(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("bench tracing",
		"Measures what tracing costs: aggregate output tokens/s of an in-process server with tracing off\n"+
			"(OTEL_SDK_DISABLED=true) and on (100% sampling, exported to a RUNNING OTLP gRPC receiver such as\n"+
			"Jaeger), at each concurrency, in rounds that alternate the order of the two modes (off,on then\n"+
			"on,off) to cancel drift, and prints the on/off ratio. Each mode of each round gets a fresh server.",
		e.stderr)
	endpoint := fs.String("otlp-endpoint", "", "the running OTLP gRPC receiver, host:port (required; make bench-tracing starts bin/tools/jaeger)")
	model := fs.String("model", "", "GGUF model to serve (default: the --preset model, generated once into --cache-dir)")
	cacheDir := fs.String("cache-dir", "", "directory for generated models (default: the user cache dir + /lumen/models)")
	var sf synthFlags
	sf.register(fs, "250m")
	threads := fs.Int("threads", runtime.NumCPU(), "CPU threads for inference")
	ctxSize := fs.Int("ctx-size", 4096, "KV cache size in tokens, shared by the slots")
	concList := fs.String("concurrency", "1,8", "concurrency levels (requests kept in flight); the server gets as many slots as the largest")
	rounds := fs.Int("rounds", 3, "rounds; each measures both modes at every concurrency")
	perWorker := fs.Int("requests-per-worker", 6, "requests per in-flight slot in one measurement (concurrency × this)")
	promptTokens := fs.Int("prompt-tokens", 16, "prompt length in tokens (approximate)")
	maxTokens := fs.Int("max-tokens", 64, "max_tokens of every request (greedy sampling)")
	receiverWait := fs.Duration("receiver-wait", 30*time.Second, "how long to wait for the OTLP receiver to accept connections (it may be starting)")
	rest, err := parseFlags(fs, args, e.getenv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Sprintf("bench tracing: unexpected arguments %q", rest)}
	}
	if *endpoint == "" {
		return usageError{"bench tracing: --otlp-endpoint is required (a running OTLP gRPC receiver, e.g. bin/tools/jaeger on 127.0.0.1:4317)"}
	}
	concs, err := parseInts(*concList)
	if err != nil {
		return usageError{"bench tracing: --concurrency: " + err.Error()}
	}
	if *rounds < 1 || *perWorker < 1 || *promptTokens < 1 || *maxTokens < 1 || *threads < 1 || *ctxSize < 1 {
		return usageError{"bench tracing: --rounds, --requests-per-worker, --prompt-tokens, --max-tokens, --threads and --ctx-size must be positive"}
	}
	// A receiver that is not there would make "on" measure dropped spans.
	if err := waitListening(ctx, *endpoint, *receiverWait); err != nil {
		return fmt.Errorf("bench tracing: no OTLP receiver at %s (start one first, e.g. make bench-tracing): %w", *endpoint, err)
	}

	path := *model
	if path == "" {
		cfg, err := sf.config()
		if err != nil {
			return err
		}
		dir, err := modelCacheDir(*cacheDir)
		if err != nil {
			return err
		}
		path = synthPath(dir, sf.preset, cfg)
		if err := ensureSynth(path, cfg, e); err != nil {
			return err
		}
	}

	off, on := tracingModes(*endpoint)
	b := &tracingBench{
		e: e,
		serveArgs: []string{"--model", path, "--threads", strconv.Itoa(*threads), "--ctx-size", strconv.Itoa(*ctxSize),
			"--parallel", strconv.Itoa(slices.Max(concs)), "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"},
		concs:     concs,
		load:      loadgen.Config{PromptTokens: *promptTokens, MaxTokens: *maxTokens, Seed: 1},
		perWorker: *perWorker,
	}
	fmt.Fprintf(e.stdout, "bench tracing: %s, %d threads, %d slots; %d rounds × {off, on} × concurrency %s; %d requests per worker, %d-token prompts, %d output tokens, greedy, gRPC streaming\n",
		filepath.Base(path), *threads, slices.Max(concs), *rounds, *concList, *perWorker, *promptTokens, *maxTokens)
	fmt.Fprintf(e.stdout, "  off: %s\n  on:  %s\n", off.what, on.what)

	results := map[string]*modeTotals{off.name: newModeTotals(), on.name: newModeTotals()}
	for r := range *rounds {
		order := []tracingMode{off, on}
		if r%2 == 1 {
			order = []tracingMode{on, off}
		}
		for _, m := range order {
			res, err := b.measure(ctx, m)
			if err != nil {
				return fmt.Errorf("bench tracing: round %d, tracing %s: %w", r+1, m.name, err)
			}
			results[m.name].add(res)
			fmt.Fprintf(e.stdout, "round %d %-4s", r+1, m.name+":")
			for _, c := range concs {
				fmt.Fprintf(e.stdout, "  c=%d %.1f tok/s", c, res.reports[c].OutputTokensPerS)
			}
			if m.name == on.name {
				fmt.Fprintf(e.stdout, "  (%d spans, %d dropped)", res.spans, res.dropped)
			}
			fmt.Fprintln(e.stdout)
		}
	}
	return printTracingSummary(e.stdout, concs, results[off.name], results[on.name])
}

// tracingBench runs one mode's measurement on a fresh in-process server.
type tracingBench struct {
	e         env
	serveArgs []string
	concs     []int
	load      loadgen.Config // without concurrency and request count
	perWorker int
}

// modeResult is one mode's measurement in one round.
type modeResult struct {
	reports map[int]loadgen.Report // by concurrency
	spans   int64                  // sampled spans ended during the measurement (not the warm-up)
	dropped int64                  // lumen_spans_dropped_total after the load
}

func (b *tracingBench) measure(ctx context.Context, m tracingMode) (modeResult, error) {
	res := modeResult{reports: map[int]loadgen.Report{}}
	spans := &spanCount{}
	logs := &lockedBuffer{}
	ready := make(chan [2]string, 1)
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		e := env{stdout: io.Discard, stderr: logs, getenv: func(k string) string { return m.env[k] }}
		done <- runServeHooked(serveCtx, append(slices.Clone(b.serveArgs), m.args...), e,
			serveHooks{ready: ready, spanProcessors: []sdktrace.SpanProcessor{spans}})
	}()
	var httpAddr, grpcAddr string
	select {
	case addrs := <-ready:
		httpAddr, grpcAddr = addrs[0], addrs[1]
	case err := <-done:
		return res, fmt.Errorf("serve: %w\n%s", err, logs.tail(20))
	}

	runErr := func() error {
		target, err := loadgen.NewGRPCTarget(grpcclient.Config{Addr: grpcAddr})
		if err != nil {
			return err
		}
		defer target.Close()
		maxC := slices.Max(b.concs)
		// Warm-up, not measured: every slot used once.
		warm := b.load
		warm.Concurrency, warm.Requests, warm.MaxTokens = maxC, maxC, min(warm.MaxTokens, 8)
		if _, err := runLoad(ctx, warm, target); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		spansBefore := spans.n.Load()
		for _, c := range b.concs {
			cfg := b.load
			cfg.Concurrency, cfg.Requests = c, c*b.perWorker
			rep, err := runLoad(ctx, cfg, target)
			if err != nil {
				return fmt.Errorf("concurrency %d: %w", c, err)
			}
			res.reports[c] = rep
		}
		res.spans = spans.n.Load() - spansBefore
		dropped, err := scrapeMetric(ctx, httpAddr, "lumen_spans_dropped_total")
		if err != nil {
			return err
		}
		res.dropped = int64(dropped)
		return nil
	}()
	stop()
	serveErr := <-done
	if serveErr != nil {
		serveErr = fmt.Errorf("serve: %w\n%s", serveErr, logs.tail(20))
	}
	return res, errors.Join(runErr, serveErr)
}

// runLoad runs cfg and insists that every request succeeded: a failed
// request would make the throughput meaningless.
func runLoad(ctx context.Context, cfg loadgen.Config, target loadgen.Target) (loadgen.Report, error) {
	rep, err := loadgen.Run(ctx, cfg, target)
	if err != nil {
		return rep, err
	}
	if rep.OK != rep.Requests {
		return rep, fmt.Errorf("%d of %d requests failed or were interrupted: %v", rep.Requests-rep.OK, rep.Requests, rep.ErrorExamples)
	}
	return rep, nil
}

// modeTotals accumulates one mode over the rounds.
type modeTotals struct {
	tokens map[int]int       // completion tokens by concurrency
	wallS  map[int]float64   // measurement windows by concurrency
	rounds map[int][]float64 // tokens/s of each round by concurrency
	spans  int64
	dropd  int64
	reqs   int
}

func newModeTotals() *modeTotals {
	return &modeTotals{tokens: map[int]int{}, wallS: map[int]float64{}, rounds: map[int][]float64{}}
}

func (t *modeTotals) add(r modeResult) {
	for c, rep := range r.reports {
		t.tokens[c] += rep.CompletionTokens
		t.wallS[c] += rep.WallS
		t.rounds[c] = append(t.rounds[c], rep.OutputTokensPerS)
		t.reqs += rep.Requests
	}
	t.spans += r.spans
	t.dropd += r.dropped
}

// tps is the aggregate output tokens/s at concurrency c over all rounds.
func (t *modeTotals) tps(c int) float64 {
	if t.wallS[c] <= 0 {
		return 0
	}
	return float64(t.tokens[c]) / t.wallS[c]
}

func printTracingSummary(w io.Writer, concs []int, off, on *modeTotals) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\toff tok/s\ton tok/s\ton/off\tper-round on/off\t")
	for _, c := range concs {
		var perRound []string
		for i := range min(len(on.rounds[c]), len(off.rounds[c])) {
			if off.rounds[c][i] > 0 {
				perRound = append(perRound, fmt.Sprintf("%.3f", on.rounds[c][i]/off.rounds[c][i]))
			}
		}
		ratio := 0.0
		if off.tps(c) > 0 {
			ratio = on.tps(c) / off.tps(c)
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.3f\t%s\t\n", c, off.tps(c), on.tps(c), ratio, strings.Join(perRound, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "tracing on: %d spans sampled (%.1f per request, batch spans included), %d dropped by the exporter\n",
		on.spans, float64(on.spans)/float64(max(on.reqs, 1)), on.dropd)
	fmt.Fprintln(w, "on/off is aggregate output tokens/s with tracing on ÷ off over all rounds (goal ≥ 0.99)")
	if on.dropd > 0 {
		fmt.Fprintln(w, "warning: spans were dropped, so part of the export cost was not paid: check the receiver")
	}
	return nil
}

// spanCount counts the sampled spans that end.
type spanCount struct{ n atomic.Int64 }

func (c *spanCount) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c *spanCount) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.SpanContext().IsSampled() {
		c.n.Add(1)
	}
}
func (c *spanCount) Shutdown(context.Context) error   { return nil }
func (c *spanCount) ForceFlush(context.Context) error { return nil }

// lockedBuffer collects an in-process server's log for error messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// tail is the last n lines written.
func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimRight(b.buf.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// scrapeMetric reads one unlabelled sample (a counter or gauge) from a
// server's GET /metrics.
func scrapeMetric(ctx context.Context, httpAddr, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.Fields(v)[0], 64)
			if err != nil {
				return 0, fmt.Errorf("GET /metrics: %s: %w", name, err)
			}
			return f, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	return 0, fmt.Errorf("GET /metrics: no sample of %s", name)
}

// waitListening dials addr every 100ms until it accepts a TCP connection
// or wait has passed (one try when wait is 0).
func waitListening(ctx context.Context, addr string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var d net.Dialer
	for {
		dialCtx, cancelDial := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := d.DialContext(dialCtx, "tcp", addr)
		cancelDial()
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}
