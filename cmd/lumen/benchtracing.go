package main

import (
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
			"Jaeger), at each concurrency. Both servers stay up; they are measured in turns, each pair in the\n"+
			"opposite order to the one before (off,on then on,off) to cancel drift, and it prints the on/off ratio.",
		e.stderr)
	endpoint := fs.String("otlp-endpoint", "", "the running OTLP gRPC receiver, host:port (required; make bench-tracing starts bin/tools/jaeger)")
	model := fs.String("model", "", "GGUF model to serve (default: the --preset model, generated once into --cache-dir)")
	cacheDir := fs.String("cache-dir", "", "directory for generated models (default: the user cache dir + /lumen/models)")
	var sf synthFlags
	sf.register(fs, "250m")
	threads := fs.Int("threads", runtime.NumCPU(), "CPU threads for inference")
	ctxSize := fs.Int("ctx-size", 4096, "KV cache size in tokens, shared by the slots")
	concList := fs.String("concurrency", "1,8", "concurrency levels (requests kept in flight); the server gets as many slots as the largest")
	rounds := fs.Int("rounds", 8, "rounds; each measures both modes at every concurrency, in alternating order")
	perWorker := fs.Int("requests-per-worker", 4, "requests per in-flight slot in one measurement (concurrency × this)")
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
		serveArgs: []string{"--model", path, "--threads", strconv.Itoa(*threads), "--ctx-size", strconv.Itoa(*ctxSize),
			"--parallel", strconv.Itoa(slices.Max(concs)), "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"},
		concs:     concs,
		load:      loadgen.Config{PromptTokens: *promptTokens, MaxTokens: *maxTokens, Seed: 1},
		perWorker: *perWorker,
	}
	fmt.Fprintf(e.stdout, "bench tracing: %s, %d threads, %d slots; %d rounds × concurrency %s × {off, on}; %d requests per worker, %d-token prompts, %d output tokens, greedy, gRPC streaming\n",
		filepath.Base(path), *threads, slices.Max(concs), *rounds, *concList, *perWorker, *promptTokens, *maxTokens)
	fmt.Fprintf(e.stdout, "  off: %s\n  on:  %s\n", off.what, on.what)
	fmt.Fprintln(e.stdout, "  both servers stay up for the whole run; only one is loaded at a time, and each pair of measurements alternates which goes first")

	// Both servers are started once (one after the other, so the model
	// loads do not compete) and measured in turns: pairs measured close
	// together see the same machine, which is what the ratio needs.
	servers := map[string]*benchServer{}
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, m := range []tracingMode{off, on} {
		s, err := b.start(ctx, m)
		if err != nil {
			return fmt.Errorf("bench tracing: tracing %s: %w", m.name, err)
		}
		servers[m.name] = s
	}

	results := map[string]*modeTotals{off.name: newModeTotals(), on.name: newModeTotals()}
	spansBefore := servers[on.name].spans.n.Load()
	for r := range *rounds {
		fmt.Fprintf(e.stdout, "round %d", r+1)
		for i, c := range concs {
			// Each concurrency's pairs alternate their order from round
			// to round, and neighbouring concurrencies start opposite.
			order := []tracingMode{off, on}
			if (r+i)%2 == 1 {
				order = []tracingMode{on, off}
			}
			tps := map[string]float64{}
			for _, m := range order {
				rep, err := servers[m.name].load(ctx, b.load, c, b.perWorker)
				if err != nil {
					fmt.Fprintln(e.stdout)
					return fmt.Errorf("bench tracing: round %d, concurrency %d, tracing %s: %w", r+1, c, m.name, err)
				}
				results[m.name].add(c, rep)
				tps[m.name] = rep.OutputTokensPerS
			}
			fmt.Fprintf(e.stdout, "  c=%d %s-first off %.1f on %.1f tok/s", c, order[0].name, tps[off.name], tps[on.name])
		}
		fmt.Fprintln(e.stdout)
	}
	onTotals := results[on.name]
	onTotals.spans = servers[on.name].spans.n.Load() - spansBefore
	dropped, err := scrapeMetric(ctx, servers[on.name].httpAddr, "lumen_spans_dropped_total")
	if err != nil {
		return fmt.Errorf("bench tracing: %w", err)
	}
	onTotals.dropped = int64(dropped)
	return printTracingSummary(e.stdout, concs, results[off.name], onTotals)
}

// tracingBench holds what every measurement shares.
type tracingBench struct {
	serveArgs []string
	concs     []int
	load      loadgen.Config // without concurrency and request count
	perWorker int
}

// benchServer is one mode's in-process server, up for the whole run.
type benchServer struct {
	httpAddr string
	target   loadgen.Target
	spans    *spanCount // sampled spans ended
	logs     *lockedBuffer
	stop     func() error
}

// start starts m's server, waits until it serves, and warms it up: every
// slot used once, so neither mode pays first-use costs in a measurement.
func (b *tracingBench) start(ctx context.Context, m tracingMode) (*benchServer, error) {
	s := &benchServer{spans: &spanCount{}, logs: &lockedBuffer{}}
	ready := make(chan [2]string, 1)
	serveCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		e := env{stdout: io.Discard, stderr: s.logs, getenv: func(k string) string { return m.env[k] }}
		done <- runServeHooked(serveCtx, append(slices.Clone(b.serveArgs), m.args...), e,
			serveHooks{ready: ready, spanProcessors: []sdktrace.SpanProcessor{s.spans}})
	}()
	var grpcAddr string
	select {
	case addrs := <-ready:
		s.httpAddr, grpcAddr = addrs[0], addrs[1]
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("serve: %w\n%s", err, s.logs.tail(20))
	}
	var closeTarget func() error
	s.stop = sync.OnceValue(func() error {
		var errs []error
		if closeTarget != nil {
			errs = append(errs, closeTarget())
		}
		cancel()
		if err := <-done; err != nil {
			errs = append(errs, fmt.Errorf("serve: %w\n%s", err, s.logs.tail(20)))
		}
		return errors.Join(errs...)
	})
	target, err := loadgen.NewGRPCTarget(grpcclient.Config{Addr: grpcAddr})
	if err != nil {
		return nil, errors.Join(err, s.stop())
	}
	s.target, closeTarget = target, target.Close
	maxC := slices.Max(b.concs)
	warm := b.load
	warm.MaxTokens = min(warm.MaxTokens, 8)
	if _, err := s.load(ctx, warm, maxC, 1); err != nil {
		return nil, errors.Join(fmt.Errorf("warm-up: %w", err), s.stop())
	}
	return s, nil
}

// load runs c × perWorker requests with c in flight.
func (s *benchServer) load(ctx context.Context, cfg loadgen.Config, c, perWorker int) (loadgen.Report, error) {
	cfg.Concurrency, cfg.Requests = c, c*perWorker
	return runLoad(ctx, cfg, s.target)
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
	tokens  map[int]int       // completion tokens by concurrency
	wallS   map[int]float64   // measurement windows by concurrency
	rounds  map[int][]float64 // tokens/s of each round by concurrency
	reqs    int
	spans   int64 // sampled spans ended during the measurements (not the warm-up)
	dropped int64 // lumen_spans_dropped_total at the end
}

func newModeTotals() *modeTotals {
	return &modeTotals{tokens: map[int]int{}, wallS: map[int]float64{}, rounds: map[int][]float64{}}
}

func (t *modeTotals) add(c int, rep loadgen.Report) {
	t.tokens[c] += rep.CompletionTokens
	t.wallS[c] += rep.WallS
	t.rounds[c] = append(t.rounds[c], rep.OutputTokensPerS)
	t.reqs += rep.Requests
}

// tps is the aggregate output tokens/s at concurrency c over all rounds.
func (t *modeTotals) tps(c int) float64 {
	if t.wallS[c] <= 0 {
		return 0
	}
	return float64(t.tokens[c]) / t.wallS[c]
}

// pairRatios are on ÷ off of each round's pair at concurrency c, sorted.
func pairRatios(c int, off, on *modeTotals) []float64 {
	var rs []float64
	for i := range min(len(on.rounds[c]), len(off.rounds[c])) {
		if off.rounds[c][i] > 0 {
			rs = append(rs, on.rounds[c][i]/off.rounds[c][i])
		}
	}
	slices.Sort(rs)
	return rs
}

// sortedMedian is the median of sorted xs (0 for none).
func sortedMedian(xs []float64) float64 {
	switch n := len(xs); {
	case n == 0:
		return 0
	case n%2 == 1:
		return xs[n/2]
	default:
		return (xs[n/2-1] + xs[n/2]) / 2
	}
}

func printTracingSummary(w io.Writer, concs []int, off, on *modeTotals) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\toff tok/s\ton tok/s\ton/off\tmedian pair\tpair range\t")
	for _, c := range concs {
		rs := pairRatios(c, off, on)
		ratio := 0.0
		if off.tps(c) > 0 {
			ratio = on.tps(c) / off.tps(c)
		}
		spread := "-"
		if len(rs) > 0 {
			spread = fmt.Sprintf("%.3f–%.3f", rs[0], rs[len(rs)-1])
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.3f\t%.3f\t%s\t\n", c, off.tps(c), on.tps(c), ratio, sortedMedian(rs), spread)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "tracing on: %d spans sampled (%.1f per request, batch spans included), %d dropped by the exporter\n",
		on.spans, float64(on.spans)/float64(max(on.reqs, 1)), on.dropped)
	fmt.Fprintln(w, "on/off is aggregate output tokens/s with tracing on ÷ off over all rounds (goal ≥ 0.99);")
	fmt.Fprintln(w, "median pair and pair range are of the per-round ratios: a range wider than the distance from 1 is machine noise, not tracing")
	if on.dropped > 0 {
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
	families, err := scrapeFamilies(ctx, http.DefaultClient, "http://"+httpAddr+"/metrics")
	if err != nil {
		return 0, err
	}
	if f, ok := families[name]; ok {
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 0 {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue(), nil
			}
		}
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
