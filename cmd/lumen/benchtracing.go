package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lumenllm/lumen/internal/benchtracing"
	"github.com/lumenllm/lumen/internal/grpcclient"
	"github.com/lumenllm/lumen/internal/loadgen"
	"github.com/lumenllm/lumen/internal/telemetry"
)

// runBenchTracing runs 'lumen bench tracing'.
func runBenchTracing(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("bench tracing",
		"Measures what tracing costs: aggregate output tokens/s of an in-process server with tracing off\n"+
			"(the SDK disabled) and on (100% sampling, exported to a RUNNING OTLP gRPC receiver such as\n"+
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
	// Both servers read the process environment's OTEL_* variables, and
	// this one would make "on" another "off".
	if v := strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")); strings.EqualFold(v, "true") {
		return errors.New("bench tracing: OTEL_SDK_DISABLED=true would disable tracing in the \"on\" server too; unset it")
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

	off, on := benchtracing.Modes(*endpoint)
	serveArgs := []string{"--model", path, "--threads", strconv.Itoa(*threads), "--ctx-size", strconv.Itoa(*ctxSize),
		"--parallel", strconv.Itoa(slices.Max(concs)), "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}
	fmt.Fprintf(e.stdout, "bench tracing: %s, %d threads, %d slots; %d rounds × concurrency %s × {off, on}; %d requests per worker, %d-token prompts, %d output tokens, greedy, gRPC streaming\n",
		filepath.Base(path), *threads, slices.Max(concs), *rounds, *concList, *perWorker, *promptTokens, *maxTokens)
	fmt.Fprintf(e.stdout, "  off: %s\n  on:  %s\n", off.What, on.What)
	if vars := otelVariables(); len(vars) > 0 {
		fmt.Fprintf(e.stdout, "  note: this environment's %s reach the on server where its mode sets nothing (OTLP headers, compression, resource attributes, span limits)\n", strings.Join(vars, ", "))
	}
	fmt.Fprintln(e.stdout, "  both servers stay up for the whole run; only one is loaded at a time, and each pair of measurements alternates which goes first")
	return benchtracing.Run(ctx, e.stdout, benchtracing.Config{
		Concurrency: concs,
		Rounds:      *rounds,
		Load:        loadgen.Config{PromptTokens: *promptTokens, MaxTokens: *maxTokens, Seed: 1},
		PerWorker:   *perWorker,
		Start: func(ctx context.Context, m benchtracing.Mode) (*benchtracing.Server, error) {
			return startTracingServer(ctx, append(slices.Clone(serveArgs), m.Args...), m.Telemetry)
		},
	}, off, on)
}

// otelVariables are the names of the OTEL_* variables set in the process
// environment, sorted.
func otelVariables() []string {
	var names []string
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") && v != "" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

// startTracingServer starts an in-process lumen serve with args, its
// telemetry config adjusted by tel, and returns once it serves. The
// server sees no LUMEN_* variables: only args configure it.
func startTracingServer(ctx context.Context, args []string, tel func(*telemetry.Config)) (*benchtracing.Server, error) {
	spans, logs := &benchtracing.SpanCounter{}, &lockedBuffer{}
	ready := make(chan [2]string, 1)
	serveCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		e := env{stdout: io.Discard, stderr: logs, getenv: func(string) string { return "" }}
		done <- runServeHooked(serveCtx, args, e, serveHooks{ready: ready, spanProcessors: []sdktrace.SpanProcessor{spans}, telemetry: tel})
	}()
	var httpAddr, grpcAddr string
	select {
	case addrs := <-ready:
		httpAddr, grpcAddr = addrs[0], addrs[1]
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("serve: %w\n%s", err, logs.tail(20))
	}
	var closeTarget func() error
	stop := sync.OnceValue(func() error {
		var errs []error
		if closeTarget != nil {
			errs = append(errs, closeTarget())
		}
		cancel()
		if err := <-done; err != nil {
			errs = append(errs, fmt.Errorf("serve: %w\n%s", err, logs.tail(20)))
		}
		return errors.Join(errs...)
	})
	target, err := loadgen.NewGRPCTarget(grpcclient.Config{Addr: grpcAddr})
	if err != nil {
		return nil, errors.Join(err, stop())
	}
	closeTarget = target.Close
	return &benchtracing.Server{HTTPAddr: httpAddr, Target: target, Spans: spans, Stop: stop}, nil
}

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
