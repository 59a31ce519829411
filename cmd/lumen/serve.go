package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/stats"

	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/chat/sandbox"
	"github.com/lumenllm/lumen/internal/engine"
	"github.com/lumenllm/lumen/internal/engine/llama"
	"github.com/lumenllm/lumen/internal/gpumon"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/liveview"
	"github.com/lumenllm/lumen/internal/recorder"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/server/grpcserver"
	"github.com/lumenllm/lumen/internal/server/httpserver"
	"github.com/lumenllm/lumen/internal/telemetry"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// readiness is flipped by serve: true once the model is loaded, false
// when draining starts.
type readiness struct{ atomic.Bool }

func (r *readiness) Ready() bool { return r.Load() }

type serveFlags struct {
	load         loadFlags
	httpAddr     string
	grpcAddr     string
	parallel     int
	maxQueue     int
	batchSize    int
	prefillChunk int
	apiKey       string
	apiKeyFile   string
	drainTimeout time.Duration
	// HTTP connection timeouts.
	headerTimeout, bodyTimeout, idleTimeout time.Duration
	modelName                               string
	logFormat                               string
	otlpEndpoint                            string
	traceExport                             string
	metricsPush                             string
	samplingFile                            string
	traceContent                            bool
	contentMax                              int
	batchRate                               float64
	liveView                                bool
	maxTenants                              int
	templateTimeout                         time.Duration
	templateFallback                        bool
	warmup                                  bool
	traceProbes                             bool
	prefixCache                             bool
	cacheRAM                                int
	embeddings                              bool
	metricsCompat                           string
	pooling                                 string
	embedTokens, embedSeqs                  int
	allowedHosts, corsOrigins               string
	metricsAuth                             bool
	// apiKeyArgv: --api-key was given as an argument, where every local
	// user can read it (/proc/PID/cmdline); serve warns.
	apiKeyArgv bool
	hooks      serveHooks
}

// serveHooks let tests (and `lumen bench`) observe an in-process server.
type serveHooks struct {
	// ready, when set, receives the bound addresses once serving.
	ready chan<- [2]string
	// spanProcessors see every sampled span (a test's span recorder).
	spanProcessors []sdktrace.SpanProcessor
	// engine, when set, wraps the engine the scheduler drives (a test's
	// gate on decode steps).
	engine func(scheduler.Engine) scheduler.Engine
	// telemetry, when set, adjusts the telemetry config just before
	// Setup (`lumen bench tracing`'s modes: disabled, always sampled).
	telemetry func(*telemetry.Config)
	// generate, when set, sees the context of every Generate call the
	// transports make (a test watching for a request's cancel).
	generate func(ctx context.Context)
}

func runServe(ctx context.Context, args []string, e env) error {
	return runServeWith(ctx, args, e, nil)
}

// runServeWith is runServe that reports the bound addresses on ready.
func runServeWith(ctx context.Context, args []string, e env, ready chan<- [2]string) error {
	return runServeHooked(ctx, args, e, serveHooks{ready: ready})
}

// runServeHooked is runServe with test hooks.
func runServeHooked(ctx context.Context, args []string, e env, hooks serveHooks) error {
	f := serveFlags{hooks: hooks}
	fs := newFlagSet("serve", "Serves a GGUF model over gRPC and HTTP (OpenAI-compatible) with continuous batching.", e.stderr)
	f.load.register(fs)
	fs.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&f.grpcAddr, "grpc-addr", "127.0.0.1:9090", "gRPC listen address")
	fs.IntVar(&f.parallel, "parallel", 4, "sequence slots decoded together (each gets ctx-size/parallel tokens)")
	fs.IntVar(&f.maxQueue, "max-queue", 64, "requests that may wait for a slot; more are refused (HTTP 429 / RESOURCE_EXHAUSTED)")
	fs.IntVar(&f.batchSize, "batch-size", 512, "most tokens per engine step")
	fs.IntVar(&f.prefillChunk, "prefill-chunk", 256, "most prompt tokens one request adds to a step")
	fs.StringVar(&f.apiKey, "api-key", "", "API key required on inference routes (empty: none); prefer LUMEN_API_KEY or --api-key-file, since arguments are visible to every local user")
	fs.StringVar(&f.apiKeyFile, "api-key-file", "", "file of API keys, one per line")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long in-flight requests may take to finish")
	fs.DurationVar(&f.headerTimeout, "http-header-timeout", 10*time.Second, "time a client has to send its request headers")
	fs.DurationVar(&f.bodyTimeout, "http-body-timeout", httpserver.DefaultBodyTimeout, "time a client has to send its request body (408 after; responses and streams are not limited)")
	fs.DurationVar(&f.idleTimeout, "http-idle-timeout", 2*time.Minute, "how long an idle keep-alive connection is kept open")
	fs.StringVar(&f.modelName, "model-name", "", "model id clients use (default: the file name without .gguf)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.otlpEndpoint, "otlp-endpoint", "", "OTLP collector host:port for traces (e.g. localhost:4317 for Jaeger); default from OTEL_EXPORTER_OTLP_ENDPOINT")
	fs.StringVar(&f.traceExport, "trace-exporter", "", "trace exporter: otlp (gRPC), otlp-http, console or none (default: otlp when an endpoint is set, else none; OTEL_TRACES_EXPORTER)")
	fs.StringVar(&f.metricsPush, "metrics-exporter", "", "also push metrics over OTLP to the collector: otlp, otlp-grpc, otlp-http, or none (default: OTEL_METRICS_EXPORTER, else none; GET /metrics is always served)")
	fs.StringVar(&f.samplingFile, "sampling-config", "", "Jaeger-format sampling strategies file (reloaded when it changes), e.g. configs/sampling-strategies.json")
	fs.BoolVar(&f.traceContent, "trace-content", false, "record prompt and completion text on request spans (gen_ai.prompt, gen_ai.completion), truncated; off by default")
	fs.IntVar(&f.contentMax, "trace-content-max", recorder.DefaultContentMax, "with --trace-content, the most bytes of prompt and of completion text recorded")
	fs.DurationVar(&f.templateTimeout, "chat-template-timeout", sandbox.DefaultTimeout, "longest a chat template may take to render one request (its worker is killed after)")
	fs.BoolVar(&f.templateFallback, "chat-template-fallback", false, "when the model's chat template fails its check at load, use ChatML instead of refusing the model")
	fs.BoolVar(&f.prefixCache, "prefix-cache", true, "keep a finished request's cells in its slot for a later prompt with the same prefix (shared with other slots, saved to host memory by --cache-ram)")
	fs.StringVar(&f.metricsCompat, "metrics-compat", "", "also export another server's metric names on /metrics: vllm (vllm:num_requests_waiting, vllm:num_requests_running, vllm:kv_cache_usage_perc), for inference gateways and dashboards built for vLLM")
	fs.BoolVar(&f.embeddings, "embeddings", false, "also serve /v1/embeddings, from a second context (always on for models whose GGUF declares a pooling type)")
	fs.StringVar(&f.pooling, "pooling", "", "embeddings pooling: mean, cls or last (default: the model's own, else mean)")
	fs.IntVar(&f.embedTokens, "embed-batch", 2048, "embeddings: most tokens per input, and per pass of the embeddings context")
	fs.IntVar(&f.embedSeqs, "embed-seqs", 16, "embeddings: most inputs computed in one pass")
	fs.IntVar(&f.cacheRAM, "cache-ram", 1024, "MiB of host memory for the prefix cache: a slot's cells are saved there when the slot is given to another prompt, and restored for a prompt that starts the same way; 0: none")
	fs.BoolVar(&f.warmup, "warmup", true, "run one prompt step and one decode step before reporting ready, so the first request is not slow")
	fs.IntVar(&f.maxTenants, "max-tenants", recorder.DefaultMaxTenants, "distinct tenant (X-Tenant-ID) label values on metrics; later tenants are counted as \"(other)\"")
	fs.StringVar(&f.allowedHosts, "allowed-hosts", "", "comma-separated Host names the HTTP API answers besides IP addresses and localhost (name, .domain for a domain and its subdomains, * for any); checked when no API key is set, or always when given")
	fs.StringVar(&f.corsOrigins, "cors-origins", "", "comma-separated web origins (https://app.example.com, or *) whose pages may call the HTTP API; empty: no CORS")
	fs.BoolVar(&f.metricsAuth, "metrics-auth", false, "require the API key on GET /metrics too (default: open, as Prometheus and gateways scrape without one)")
	fs.BoolVar(&f.traceProbes, "trace-probes", false, "also trace (and count in http/rpc metrics) health checks, readiness probes and gRPC reflection, which are otherwise left out so they do not crowd out requests")
	fs.BoolVar(&f.liveView, "live-view", true, "serve the live view (recent traces, live charts) at GET / on the HTTP port")
	fs.Float64Var(&f.batchRate, "batch-span-rate", telemetry.DefaultBatchSpanRate, "most batch (engine step) spans sampled per second, only for steps of sampled requests; 0: no limit")
	if err := parseNoArgs(fs, args, e.getenv); err != nil {
		return err
	}
	f.apiKeyArgv = onCommandLine(args, "api-key")
	return serve(ctx, f, e)
}

func (f *serveFlags) logger(e env) (*slog.Logger, error) {
	switch f.logFormat {
	case "text":
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(e.stderr, nil))), nil
	case "json":
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(e.stderr, nil))), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format %q: want text or json", f.logFormat)}
}

// batchSpanRate maps --batch-span-rate (0: no limit) to
// telemetry.Config.BatchSpanRate (negative: no limit).
func batchSpanRate(flag float64) float64 {
	if flag == 0 {
		return -1
	}
	return flag
}

func (f *serveFlags) keys() (auth.Keys, error) {
	keys := []string{f.apiKey}
	if f.apiKeyFile != "" {
		more, err := auth.LoadKeyFile(f.apiKeyFile)
		if err != nil {
			return auth.Keys{}, err
		}
		keys = append(keys, more...)
	}
	return auth.NewKeys(keys...), nil
}

// serve builds the pieces, runs them, and on ctx's end shuts them down in
// reverse order: readiness off, stop accepting, drain, close the engine.
func serve(ctx context.Context, f serveFlags, e env) error {
	log, err := f.logger(e)
	if err != nil {
		return err
	}
	if f.parallel < 1 || f.maxQueue < 1 || f.batchSize < f.parallel || f.prefillChunk < 1 {
		return usageError{"serve: --parallel, --max-queue, --prefill-chunk must be ≥ 1 and --batch-size ≥ --parallel"}
	}
	if f.metricsCompat != "" && f.metricsCompat != recorder.CompatVLLM {
		return usageError{fmt.Sprintf("serve: --metrics-compat %q: want vllm (or nothing)", f.metricsCompat)}
	}
	if f.embedTokens < 1 || f.embedSeqs < 1 {
		return usageError{"serve: --embed-batch and --embed-seqs must be ≥ 1"}
	}
	if f.pooling != "" {
		if _, err := llama.ParsePooling(f.pooling); err != nil {
			return usageError{fmt.Sprintf("serve: --pooling: %v", err)}
		}
	}
	if f.cacheRAM < 0 {
		return usageError{"serve: --cache-ram must be ≥ 0 (MiB; 0: no host-memory prefix cache)"}
	}
	if f.batchRate < 0 {
		return usageError{"serve: --batch-span-rate must be ≥ 0 (0: no limit)"}
	}
	if f.contentMax < 1 {
		return usageError{"serve: --trace-content-max must be ≥ 1 (bytes)"}
	}
	keys, err := f.keys()
	if err != nil {
		return err
	}
	if f.apiKeyArgv && f.apiKey != "" {
		log.Warn("--api-key given as an argument is visible to every local user (ps, /proc/PID/cmdline); prefer LUMEN_API_KEY or --api-key-file")
	}
	// The live view is built first: its span processor goes into the
	// tracer provider. Its API takes the same keys as the inference routes.
	processors := f.hooks.spanProcessors
	var live *liveview.View
	if f.liveView {
		live, err = liveview.New(liveview.Config{Keys: keys})
		if err != nil {
			return fmt.Errorf("live view: %w", err)
		}
		defer live.Close()
		processors = append(slices.Clip(processors), live.Processor())
	}
	// The model's name and device are known before it loads, so the
	// telemetry resource can carry them (and a GPU that is not there
	// fails the start before any port is taken).
	name, err := modelName(f.modelName, f.load.model, f.load.cacheDir)
	if err != nil {
		return err
	}
	pl, err := f.load.place(e, func(msg string) { log.Warn(msg) })
	if err != nil {
		return err
	}
	// The /metrics registry exists first: an OTLP metrics push carries it.
	metrics := recorder.NewMetrics(recorder.MetricsConfig{MaxTenants: f.maxTenants, Compat: f.metricsCompat, ModelName: name})
	// The OTEL_* variables are read from the process environment by the
	// SDK, the exporters and telemetry itself; flags win over them.
	telCfg := telemetry.Config{
		ServiceVersion:  version,
		Exporter:        f.traceExport,
		Endpoint:        f.otlpEndpoint,
		SamplingConfig:  f.samplingFile,
		ConsoleWriter:   e.stderr,
		SpanProcessors:  processors,
		BatchSpanRate:   batchSpanRate(f.batchRate),
		MetricsExporter: f.metricsPush,
		MetricsGatherer: metrics.Registry(),
		ExtraResource:   []attribute.KeyValue{semconv.AttrModel.String(name), semconv.AttrDevice.String(pl.device.ID())},
		Logger:          log,
	}
	if f.hooks.telemetry != nil {
		f.hooks.telemetry(&telCfg)
	}
	tel, err := telemetry.Setup(ctx, telCfg)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	log.Info("telemetry", "traces", tel.Exporter, "traces_endpoint", tel.Endpoint,
		"metrics_push", tel.MetricsExporter, "metrics_endpoint", tel.MetricsEndpoint)
	// Telemetry is flushed last, after the engine has closed.
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(flushCtx); err != nil {
			log.Warn("telemetry flush", "err", err)
		}
	}()
	if live != nil {
		live.SetTracing(tel.Exporter != telemetry.ExporterDisabled)
	}
	// SIGHUP re-reads the sampling strategies file at once (it is also
	// polled for changes).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				if err := tel.ReloadSampling(); err != nil {
					log.Warn("sampling strategies not reloaded", "err", err)
				} else {
					log.Info("sampling strategies reloaded", "file", f.samplingFile)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	metrics.SetDropped(tel.DroppedSpans)
	// GPU telemetry; without NVML (no NVIDIA driver) it reports nothing.
	gpus, err := gpumon.New(gpumon.Config{Logger: log})
	if err != nil {
		log.Warn("GPU metrics off", "err", err)
	} else {
		defer gpus.Close()
		metrics.Registry().MustRegister(gpus)
	}

	// Listen first so the ports are taken (and reported) before the
	// model loads; health says NOT_SERVING until it has.
	httpLis, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	defer httpLis.Close()
	grpcLis, err := net.Listen("tcp", f.grpcAddr)
	if err != nil {
		return fmt.Errorf("grpc listen: %w", err)
	}
	defer grpcLis.Close()

	ready := &readiness{}
	api := apiSwitch{onGenerate: f.hooks.generate}
	grpcSrv := grpcserver.New(grpcserver.Config{API: &api, Ready: ready, Keys: keys, Logger: log,
		StatsHandler: otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tel.TracerProvider), otelgrpc.WithMeterProvider(tel.MeterProvider),
			otelgrpc.WithPropagators(tel.Propagator),
			otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool { return f.traceProbes || !semconv.IsProbeRPC(info.FullMethodName) })),
	})
	mux := http.NewServeMux()
	var apiSrv *httpserver.Server
	apiSrv = httpserver.New(httpserver.Config{API: &api, Ready: ready, Keys: keys, Logger: log, BodyTimeout: f.bodyTimeout,
		ListenAddr: f.httpAddr, AllowedHosts: list(f.allowedHosts), CORSOrigins: list(f.corsOrigins),
		Middleware: func(h http.Handler) http.Handler {
			return otelhttp.NewHandler(h, "http",
				otelhttp.WithTracerProvider(tel.TracerProvider), otelhttp.WithMeterProvider(tel.MeterProvider),
				otelhttp.WithPropagators(tel.Propagator),
				otelhttp.WithFilter(func(r *http.Request) bool { return f.traceProbes || !semconv.IsProbePath(r.URL.Path) }),
				// The Host header is the client's to choose: the bound
				// address names the server on spans and metrics instead.
				otelhttp.WithServerName(httpLis.Addr().String()),
				otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return apiSrv.SpanName(r) }))
		},
	})
	// The same Host check guards every page of the listener; the metrics
	// take the key only when asked (scrapers rarely carry one).
	if f.metricsAuth {
		mux.Handle("GET /metrics", apiSrv.GuardWithKey(metrics.Handler()))
	} else {
		mux.Handle("GET /metrics", apiSrv.Guard(metrics.Handler()))
	}
	if live != nil {
		// Exactly "/" and the view's prefix: every other path stays with
		// the API's own 404.
		mux.Handle(liveview.PagePattern, apiSrv.Guard(live.Handler()))
		mux.Handle(liveview.Prefix, apiSrv.Guard(live.Handler()))
	}
	mux.Handle("/", apiSrv.Handler())
	// No ReadTimeout or WriteTimeout: the body deadline is set per request
	// (and lifted once read), and SSE streams may run for minutes.
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: f.headerTimeout, IdleTimeout: f.idleTimeout}
	serveErr := make(chan error, 2)
	go func() { serveErr <- grpcSrv.Serve(grpcLis) }()
	go func() {
		if err := httpSrv.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()
	log.Info("listening", "http", httpLis.Addr().String(), "grpc", grpcLis.Addr().String())

	m, err := f.load.loadPlaced(e, pl)
	if err != nil {
		grpcSrv.Stop()
		httpSrv.Close()
		return err
	}
	defer m.Close()
	c, err := f.load.newContext(m, f.parallel, f.batchSize)
	if err != nil {
		grpcSrv.Stop()
		httpSrv.Close()
		return err
	}
	defer c.Close()
	// Before readiness: the first request should not pay for the
	// context's first steps.
	if f.warmup {
		d, err := engine.Warmup(c)
		if err != nil {
			return err
		}
		log.Info("warmed up", "took", d.Round(time.Millisecond).String())
	}
	batcher := engine.NewAdapter(c)
	defer batcher.Close()
	embedder, err := f.embedContext(m, log)
	if err != nil {
		return err
	}
	var embed scheduler.Embedder
	dims := 0
	if embedder != nil {
		defer embedder.Close()
		embed, dims = engine.Embedder{Ctx: embedder}, m.EmbeddingSize()
	}
	tracer := recorder.NewTracer(tel.TracerProvider, metrics, recorder.TracerOptions{
		Device: c.Device().ID(), RecordContent: f.traceContent, ContentMax: f.contentMax, KVSize: c.Size(), Logger: log,
		BatchTracerProvider: tel.BatchTracerProvider,
	})
	var eng scheduler.Engine = batcher
	if f.hooks.engine != nil {
		eng = f.hooks.engine(eng)
	}
	sched, err := scheduler.New(eng, scheduler.Config{
		MaxQueue: f.maxQueue, PrefillChunk: f.prefillChunk, Observer: tracer,
		NoPrefixCache: !f.prefixCache, HostCacheBytes: int64(f.cacheRAM) << 20, Embedder: embed,
	})
	if err != nil {
		return err
	}
	metrics.SetStats(sched.Stats)
	if live != nil {
		live.SetStats(sched.Stats)
	}
	tmpl, err := chatTemplate(ctx, m, f, sched.SlotContext(), log)
	if err != nil {
		return err
	}
	// Closed after the API stops: the deferred calls run in reverse.
	defer tmpl.Close()
	toolFormat := inference.ToolFormat{Format: toolcall.Detect(tmpl.Source()), RendersTools: toolcall.RendersTools(tmpl.Source())}
	log.Info("tool calls", "format", toolFormat.Format, "template_renders_tools", toolFormat.RendersTools)
	api.set(inference.New(inference.Config{
		Model:      inference.Model{ID: name, ContextSize: sched.SlotContext(), Created: time.Now(), OwnedBy: "lumen", Dimensions: dims},
		Tokenizer:  engine.Tokenizer{Model: m},
		Chat:       tmpl,
		Scheduler:  sched,
		Tracer:     tracer,
		Grammars:   engine.GrammarChecker{Model: m},
		ToolFormat: toolFormat,
		VocabSize:  m.VocabSize(),
	}))

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- sched.Run(runCtx) }()
	ready.Store(true)
	grpcSrv.SetServing(true)
	log.Info("serving", "model", name, "device", c.Device().ID(), "device_detail", deviceLabel(c.Device()), "slots", f.parallel, "ctx_per_request", sched.SlotContext())
	printTryLines(e, httpLis.Addr().String(), grpcLis.Addr().String(), !keys.Enabled(), live != nil)
	if f.hooks.ready != nil {
		f.hooks.ready <- [2]string{httpLis.Addr().String(), grpcLis.Addr().String()}
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		log.Error("server failed", "err", err)
	case err := <-runDone:
		return fmt.Errorf("scheduler stopped: %w", err)
	}

	// Graceful stop: refuse new work, let in-flight requests finish
	// within the drain timeout, cancel the rest, then close everything.
	log.Info("draining", "timeout", f.drainTimeout)
	ready.Store(false)
	grpcSrv.SetServing(false)
	drainCtx, cancel := context.WithTimeout(context.Background(), f.drainTimeout)
	defer cancel()
	if err := sched.Drain(drainCtx); err != nil {
		log.Warn("drain timed out: remaining requests cancelled", "err", err)
	}
	// Streams have received their last event; let the transports flush.
	shutCtx, cancelShut := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShut()
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		httpSrv.Close()
	}
	// Shutdown, not GracefulStop: health Watch streams never end by
	// themselves.
	if err := grpcSrv.Shutdown(shutCtx); err != nil {
		log.Warn("grpc shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}

// list splits a comma-separated flag value, dropping empty items.
func list(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// onCommandLine reports whether flag name is among args (not only from
// the environment).
func onCommandLine(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// chatTemplate is the model's own template, run in worker processes
// (package sandbox: the template is code from the model file, and a
// hostile one must not take the server down), and checked once on a
// two-message conversation. A template that fails the check refuses the
// model, or with --chat-template-fallback is replaced by ChatML. A model
// without a template gets ChatML, with a warning.
func chatTemplate(ctx context.Context, m *llama.Model, f serveFlags, slotCtx int, log *slog.Logger) (*sandbox.Renderer, error) {
	md := m.Metadata()
	opts := chat.Options{}
	if b, err := m.Piece(md.BOS, true); err == nil {
		opts.BOSToken = string(b)
	}
	if b, err := m.Piece(md.EOS, true); err == nil {
		opts.EOSToken = string(b)
	}
	// This binary is the worker (in tests, the test binary: see TestMain).
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("chat template worker: %w", err)
	}
	cfg := sandbox.Config{
		Command: []string{exe, renderWorkerCommand},
		Timeout: f.templateTimeout,
		// A prompt longer than a slot cannot run anyway; 16 bytes a token
		// is generous for any tokenizer.
		MaxOutputBytes: slotCtx * 16,
	}
	checked := func(source string) (*sandbox.Renderer, error) {
		r, err := sandbox.New(source, opts, cfg)
		if err != nil {
			return nil, err
		}
		if err := r.Check(ctx); err != nil {
			r.Close()
			return nil, err
		}
		return r, nil
	}
	if md.ChatTemplate == "" {
		log.Warn("the model has no chat template; chat requests use the ChatML fallback, which suits models trained on ChatML only")
		return checked("")
	}
	r, err := checked(md.ChatTemplate)
	if err == nil {
		return r, nil
	}
	if !f.templateFallback {
		return nil, fmt.Errorf("the model's chat template fails: %w (serve it with --chat-template-fallback to use ChatML instead)", err)
	}
	log.Warn("the model's chat template fails; chat requests use the ChatML fallback (--chat-template-fallback)", "err", err)
	return checked("")
}

// embedContext makes the embeddings context when embeddings are served
// (--embeddings, or a model that declares its pooling); nil otherwise.
func (f serveFlags) embedContext(m *llama.Model, log *slog.Logger) (*llama.Context, error) {
	declared := m.Metadata().Pooling
	if !f.embeddings && declared == "" {
		return nil, nil
	}
	pool := llama.Pooling(f.pooling)
	if pool == "" {
		pool = cmp.Or(declared, llama.PoolingMean)
	}
	tokens := min(f.embedTokens, m.Metadata().ContextTrain)
	// No spinning workers: the embeddings context is idle most of the time
	// and shares the CPUs with the generation context.
	c, err := llama.NewContext(m, llama.ContextParams{Size: tokens, BatchSize: tokens, MaxSeqs: f.embedSeqs,
		Threads: f.load.threads, NoThreadpool: !f.load.threadpool, Poll: -1, Embeddings: pool})
	if err != nil {
		return nil, fmt.Errorf("embeddings context: %w", err)
	}
	log.Info("embeddings", "pooling", string(pool), "max_input_tokens", c.BatchSize(), "inputs_per_pass", c.MaxSeqs(), "dimensions", m.EmbeddingSize())
	return c, nil
}

func modelID(path string) string {
	base := filepath.Base(path)
	if ext := filepath.Ext(base); ext == ".gguf" {
		base = base[:len(base)-len(ext)]
	}
	return base
}

// apiSwitch lets the transports start before the model has loaded: until
// set, every call fails as if draining (503 / UNAVAILABLE).
type apiSwitch struct {
	p          atomic.Pointer[inference.Service]
	onGenerate func(context.Context) // a test hook; nil in production
}

func (a *apiSwitch) set(s *inference.Service) { a.p.Store(s) }

func (a *apiSwitch) Generate(ctx context.Context, req inference.GenerateRequest) (*inference.Stream, error) {
	s := a.p.Load()
	if s == nil {
		return nil, errNotLoaded
	}
	if a.onGenerate != nil {
		a.onGenerate(ctx)
	}
	return s.Generate(ctx, req)
}

func (a *apiSwitch) Tokenize(model, text string) ([]int32, error) {
	s := a.p.Load()
	if s == nil {
		return nil, errNotLoaded
	}
	return s.Tokenize(model, text)
}

func (a *apiSwitch) Detokenize(model string, tokens []int32) (string, error) {
	s := a.p.Load()
	if s == nil {
		return "", errNotLoaded
	}
	return s.Detokenize(model, tokens)
}

func (a *apiSwitch) RenderChat(ctx context.Context, model string, messages []chat.Message, tools []toolcall.Tool) (string, []int32, error) {
	s := a.p.Load()
	if s == nil {
		return "", nil, errNotLoaded
	}
	return s.RenderChat(ctx, model, messages, tools)
}

func (a *apiSwitch) Embed(ctx context.Context, req inference.EmbedRequest) (*inference.Embeddings, error) {
	s := a.p.Load()
	if s == nil {
		return nil, errNotLoaded
	}
	return s.Embed(ctx, req)
}

func (a *apiSwitch) Models() []inference.Model {
	if s := a.p.Load(); s != nil {
		return s.Models()
	}
	return nil
}

var errNotLoaded = inference.ErrLoading

// printTryLines shows a newcomer how to call the server just started,
// with commands that work as printed from where lumen was run.
func printTryLines(e env, httpAddr, grpcAddr string, open, liveView bool) {
	auth, grpcAuth := "", ""
	if !open {
		auth = ` -H 'Authorization: Bearer $LUMEN_API_KEY'`
		grpcAuth = ` -H "authorization: Bearer $LUMEN_API_KEY"`
	}
	self := "lumen"
	if strings.ContainsRune(e.self, '/') {
		self = e.self // bin/lumen under make run
	}
	grpcurl, grpcurlNote := "grpcurl", "  # grpcurl: make tools builds bin/tools/grpcurl\n"
	if _, err := os.Stat(filepath.Join("bin", "tools", "grpcurl")); err == nil {
		grpcurl, grpcurlNote = "bin/tools/grpcurl", ""
	}
	fmt.Fprintf(e.stderr, `
Lumen is serving. Try:
  curl -N http://%[1]s/v1/chat/completions%[3]s -H 'Content-Type: application/json' \
    -d '{"messages":[{"role":"user","content":"Hello"}],"max_tokens":32,"stream":true}'
  curl http://%[1]s/generate%[3]s -H 'Content-Type: application/json' -d '{"prompt":"Once upon a time","max_tokens":32}'
%[6]s  %[5]s -plaintext%[7]s -d '{"prompt":"Once upon a time","max_tokens":32}' %[2]s lumen.v1.LumenService/GenerateStream
  %[4]s client generate --addr %[2]s --prompt "Once upon a time" --max-tokens 32

`, httpAddr, grpcAddr, auth, self, grpcurl, grpcurlNote, grpcAuth)
	if liveView {
		key := ""
		if !open {
			key = " (add ?key=$LUMEN_API_KEY once)"
		}
		fmt.Fprintf(e.stderr, "Open http://%s/ for the live view%s\n\n", httpAddr, key)
	}
}
