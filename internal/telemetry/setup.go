// Package telemetry owns Lumen's OpenTelemetry setup: the tracer
// providers (resource, sampler, span limits, the export queue), the
// meter provider (same resource; OTLP push of the /metrics registry and
// of the transport instrumentation's metrics, opt-in) and the W3C
// propagator. Setup builds them once, in main, from a Config, and
// returns them to be passed to whatever makes spans and metrics. Nothing
// is installed globally: the package never calls otel.SetTracerProvider,
// otel.SetMeterProvider, otel.SetTextMapPropagator or
// otel.SetErrorHandler.
//
// The standard OTEL_* environment variables are read from the process
// environment, and mostly not by this package: the SDK reads the sampler
// (OTEL_TRACES_SAMPLER[_ARG]), the resource (OTEL_RESOURCE_ATTRIBUTES,
// OTEL_SERVICE_NAME), the span limits (OTEL_SPAN_*, OTEL_ATTRIBUTE_*,
// OTEL_EVENT_*, OTEL_LINK_*) and the metrics push interval
// (OTEL_METRIC_EXPORT_*), and the OTLP exporters read
// OTEL_EXPORTER_OTLP_* (endpoint, headers, certificates, insecure,
// timeout, compression). Config fields, which main fills from flags, are
// passed as options and win over the variables. This package reads only
// what the SDK has no rule for: OTEL_SDK_DISABLED, which exporter to
// build (OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER and the OTLP
// protocol variables), the OTEL_BSP_* settings of its own export queue,
// and whether an OTLP endpoint variable names a loopback host (plaintext
// then, as for --otlp-endpoint). It also checks a few values the SDK
// would otherwise replace by a default with no more than a log line
// (see checkEnvSampler and envEndpoint).
//
// Serving never waits on telemetry. Ended spans go into a bounded queue
// that drops when full; one background goroutine exports them in batches,
// each export under a timeout; an unreachable collector costs dropped
// spans, counted by Telemetry.DroppedSpans, and nothing else.
//
// Request spans are sampled by Config.Sampler, by a Jaeger sampling
// strategies file (Config.SamplingConfig, see FileSampler, parent-based,
// reloaded when it changes), or else by the SDK's sampler from
// OTEL_TRACES_SAMPLER (default parentbased_always_on). Batch spans, one
// per engine step, come from a tracer provider of their own,
// Telemetry.BatchTracerProvider, and are sampled on their own terms (see
// batchSampler).
//
// What is recorded is not decided here: package recorder turns the
// scheduler's records into spans and metrics, and semconv names them.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/lumenllm/lumen/internal/telemetry/w3c"
)

// Exporter names accepted by Config.Exporter and OTEL_TRACES_EXPORTER.
const (
	// ExporterOTLP is OTLP over the protocol named by
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL
	// ("grpc" or "http/protobuf"), gRPC when neither is set.
	ExporterOTLP = "otlp"
	// ExporterOTLPGRPC is OTLP over gRPC whatever the protocol variables say.
	ExporterOTLPGRPC = "otlp-grpc"
	// ExporterOTLPHTTP is OTLP over HTTP (protobuf) whatever the protocol
	// variables say.
	ExporterOTLPHTTP = "otlp-http"
	// ExporterConsole writes spans as indented JSON to Config.ConsoleWriter.
	ExporterConsole = "console"
	// ExporterNone exports nothing. Spans are still created and sampled,
	// so trace ids exist and sampling decisions propagate downstream.
	ExporterNone = "none"
	// ExporterDisabled is reported in Telemetry.Exporter when
	// OTEL_SDK_DISABLED=true or Config.Disabled made the tracer providers
	// no-ops.
	ExporterDisabled = "disabled"
)

// Defaults applied by Setup to zero Config fields (and, for the export
// queue, to unset OTEL_BSP_* variables).
const (
	DefaultServiceName             = "lumen"
	DefaultMaxAttributeValueLength = 4096
	DefaultMaxQueueSize            = 2048
	DefaultMaxExportBatchSize      = 512
	DefaultBatchTimeout            = 5 * time.Second
	DefaultExportTimeout           = 10 * time.Second
	DefaultReloadInterval          = 10 * time.Second
)

// Config says how to build the tracing pipeline. Explicit (non-zero)
// fields, which main fills from flags, win over the standard environment
// variables, which win over the defaults. The variables are those of the
// process; tests set them with t.Setenv.
type Config struct {
	// Disabled makes Setup return no-op providers, exactly as
	// OTEL_SDK_DISABLED=true does (Exporter and MetricsExporter report
	// ExporterDisabled). For in-process callers; the variable is read
	// either way.
	Disabled bool

	// ServiceName is the service.name resource attribute and the service
	// looked up in a sampling strategies file. Empty: the SDK's
	// OTEL_SERVICE_NAME, then service.name in OTEL_RESOURCE_ATTRIBUTES,
	// then "lumen".
	ServiceName string
	// ServiceVersion is service.version; empty leaves it to
	// OTEL_RESOURCE_ATTRIBUTES or unset.
	ServiceVersion string

	// Exporter is one of the Exporter* names (--trace-exporter). Empty:
	// OTEL_TRACES_EXPORTER; if that is empty too, "otlp" when an OTLP
	// endpoint is set (Endpoint or OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT),
	// else "none".
	Exporter string
	// Endpoint is the collector (--otlp-endpoint): "host:port" (port 4317
	// or 4318 when left out) or a URL with an http or https scheme. For
	// OTLP/HTTP a URL path other than "/" is the traces path as given;
	// otherwise "/v1/traces" is used. A host:port is plaintext when the
	// host is loopback or Insecure is set, TLS otherwise. It is passed to
	// the exporter as an option, so it wins over every
	// OTEL_EXPORTER_OTLP_*_ENDPOINT and _INSECURE variable. Empty: the
	// exporter reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (a URL used as
	// is), then OTEL_EXPORTER_OTLP_ENDPOINT (a base URL; HTTP appends
	// /v1/traces), then localhost:4317 (gRPC) or localhost:4318 (HTTP);
	// Setup adds plaintext when that endpoint names a loopback host
	// without an https scheme, and otherwise leaves security to the
	// exporter (http:// or OTEL_EXPORTER_OTLP[_TRACES]_INSECURE=true:
	// plaintext; else TLS, with OTEL_EXPORTER_OTLP[_TRACES]_CERTIFICATE).
	Endpoint string
	// Insecure forces plaintext, whatever the endpoint.
	Insecure bool

	// SamplingConfig is the path of a Jaeger-format sampling strategies
	// file (--sampling-config) deciding root request spans (parent-based)
	// and batch spans; it is polled for changes every ReloadInterval. A
	// file that cannot be loaded makes Setup fail. It cannot be combined
	// with Sampler, and it wins over OTEL_TRACES_SAMPLER.
	SamplingConfig string
	// Sampler, when set, samples request spans as given (wrap it in
	// sdktrace.ParentBased to follow a caller's decision); it wins over
	// OTEL_TRACES_SAMPLER. For in-process callers; there is no flag. Nil,
	// without SamplingConfig: the SDK's sampler from OTEL_TRACES_SAMPLER
	// and OTEL_TRACES_SAMPLER_ARG, parentbased_always_on when unset.
	Sampler sdktrace.Sampler
	// BatchSpanRate is the most batch spans (one per engine step) sampled
	// per second; a batch span is also sampled only when a request linked
	// to it is (see batchSampler). Zero: DefaultBatchSpanRate. Negative:
	// no limit.
	BatchSpanRate float64
	// ReloadInterval is how often SamplingConfig is checked for changes
	// (modification time and size). Zero: 10s. Negative: never polled;
	// Telemetry.ReloadSampling still reloads on demand.
	ReloadInterval time.Duration

	// ExtraResource is added to the resource (model name, device). It wins
	// over OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME and detected
	// attributes but not over ServiceName and ServiceVersion.
	ExtraResource []attribute.KeyValue
	// MaxAttributeValueLength truncates string attribute values. Zero:
	// the SDK's OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, then
	// OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, then 4096 when neither is set.
	// Negative: unlimited. The other span limits are the SDK's, from its
	// variables.
	MaxAttributeValueLength int

	// MaxQueueSize bounds the spans waiting for export; a span ended while
	// it is full is dropped and counted. Zero: OTEL_BSP_MAX_QUEUE_SIZE,
	// then 2048.
	MaxQueueSize int
	// MaxExportBatchSize is the most spans one export carries. Zero:
	// OTEL_BSP_MAX_EXPORT_BATCH_SIZE, then 512; capped at MaxQueueSize.
	MaxExportBatchSize int
	// BatchTimeout is the longest a span waits for its batch to fill.
	// Zero: OTEL_BSP_SCHEDULE_DELAY (milliseconds), then 5s.
	BatchTimeout time.Duration
	// ExportTimeout bounds one export, retries included. Zero:
	// OTEL_BSP_EXPORT_TIMEOUT (milliseconds), then 10s. (The exporter's
	// own OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT, 10s by default, can cut
	// it shorter.)
	ExportTimeout time.Duration

	// ConsoleWriter receives the console exporter's output; nil means
	// os.Stdout.
	ConsoleWriter io.Writer
	// SpanProcessors are added after the exporting processor and see every
	// sampled span, batch spans included: the live view's ring buffer, a
	// test's recorder. Setup does not shut them down directly; the tracer
	// provider's Shutdown does.
	SpanProcessors []sdktrace.SpanProcessor

	// MetricsExporter is one of ExporterOTLP, ExporterOTLPGRPC,
	// ExporterOTLPHTTP, MetricsExporterPrometheus or ExporterNone
	// (--metrics-exporter): whether metrics are also pushed over OTLP.
	// They go to Endpoint when it is set (its path, if any, is a prefix
	// for /v1/metrics); otherwise the exporter reads
	// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT
	// (with the same loopback rule as for traces). Empty:
	// OTEL_METRICS_EXPORTER, then none — /metrics is always served, and
	// pushing is opt-in.
	MetricsExporter string
	// MetricsGatherer is what a metrics push carries besides the meter
	// provider's own instruments: the /metrics registry.
	MetricsGatherer prometheus.Gatherer
	// MetricsInterval is the push interval. Zero: the SDK's
	// OTEL_METRIC_EXPORT_INTERVAL (milliseconds), then 60s. The push
	// timeout is the SDK's OTEL_METRIC_EXPORT_TIMEOUT, 30s by default.
	MetricsInterval time.Duration

	// Logger receives background problems: export failures (once when
	// exports start failing, once when they recover) and sampling file
	// reloads. Nil discards them.
	Logger *slog.Logger
}

// Telemetry is what Setup built. Pass its fields to whoever needs them and
// call Shutdown once when the server stops.
type Telemetry struct {
	// TracerProvider is the SDK tracer provider of everything but batch
	// spans, or a no-op provider when disabled (OTEL_SDK_DISABLED=true or
	// Config.Disabled).
	TracerProvider trace.TracerProvider
	// BatchTracerProvider starts batch spans (root spans named
	// semconv.SpanBatch, one per engine step): it shares TracerProvider's
	// resource, span limits and span processors, and samples with the
	// batch sampler (linked to a sampled request, the strategies file's
	// "batch" operation, Config.BatchSpanRate). A no-op provider when
	// disabled.
	BatchTracerProvider trace.TracerProvider
	// MeterProvider has the same resource as the tracer provider; it is
	// a no-op unless metrics are pushed (MetricsExporter).
	MeterProvider metric.MeterProvider
	// Propagator injects and extracts W3C traceparent/tracestate and
	// baggage.
	Propagator propagation.TextMapPropagator
	// Shutdown flushes queued spans and stops the exporter and the
	// sampling file poller, within ctx. Spans it could not deliver before
	// ctx ended are counted as dropped. Errors are joined. Only the first
	// call does anything.
	Shutdown func(ctx context.Context) error
	// ForceFlush exports every span ended so far, within ctx.
	ForceFlush func(ctx context.Context) error
	// DroppedSpans is the number of sampled spans that will never reach
	// the exporter's destination: dropped because the queue was full,
	// because their export failed, or because Shutdown ran out of time.
	DroppedSpans func() int64
	// ReloadSampling re-reads the sampling strategies file now (for
	// example on SIGHUP). A bad file leaves the previous strategies in
	// force and is returned as an error. Without a file it does nothing.
	ReloadSampling func() error

	// Exporter is the exporter in use: one of ExporterOTLPGRPC,
	// ExporterOTLPHTTP, ExporterConsole, ExporterNone or ExporterDisabled.
	Exporter string
	// Endpoint, for the startup log, is where the OTLP exporter sends:
	// the URL made of Config.Endpoint; else the endpoint variable the
	// exporter reads, as written; else the exporter's default. Empty for
	// the other exporters.
	Endpoint string
	// MetricsExporter is ExporterOTLPGRPC, ExporterOTLPHTTP, ExporterNone
	// (pull only) or ExporterDisabled; MetricsEndpoint is where an OTLP
	// push goes, as Endpoint is for traces.
	MetricsExporter, MetricsEndpoint string
}

// Setup builds the tracing pipeline described by cfg and the environment.
// It neither blocks on nor fails because of an unreachable collector:
// connections are made lazily by the exporters. It fails on invalid
// settings and on a sampling strategies file that cannot be loaded.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("telemetry: setup: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// New roots get the W3C Level 2 random flag, which the SDK leaves out.
	propagator := w3c.RandomRoots(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	// The Go SDK has no OTEL_SDK_DISABLED.
	disabled, err := envBool("OTEL_SDK_DISABLED")
	if err != nil {
		return nil, err
	}
	if disabled || cfg.Disabled {
		return &Telemetry{
			TracerProvider:      noop.NewTracerProvider(),
			BatchTracerProvider: noop.NewTracerProvider(),
			MeterProvider:       metricnoop.NewMeterProvider(),
			Propagator:          propagator,
			Shutdown:            func(context.Context) error { return nil },
			ForceFlush:          func(context.Context) error { return nil },
			DroppedSpans:        func() int64 { return 0 },
			ReloadSampling:      func() error { return nil },
			Exporter:            ExporterDisabled,
			MetricsExporter:     ExporterDisabled,
		}, nil
	}

	res, serviceName, err := buildResource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	sampler, fileSampler, err := buildSampler(cfg, serviceName)
	if err != nil {
		return nil, err
	}
	limits := buildSpanLimits(cfg)
	bopts, err := resolveQueueOptions(cfg)
	if err != nil {
		return nil, err
	}
	target, err := resolveExporter(cfg)
	if err != nil {
		return nil, err
	}
	exporter, err := newSpanExporter(ctx, target, cfg.ConsoleWriter)
	if err != nil {
		return nil, err
	}
	meters, err := newMeterProvider(ctx, cfg, res, logger)
	if err != nil {
		return nil, err
	}

	var processors []sdktrace.SpanProcessor
	var bp *exportQueue
	if exporter != nil {
		bp = newExportQueue(exporter, bopts, logger)
		processors = append(processors, bp)
	}
	processors = append(processors, cfg.SpanProcessors...)

	common := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithRawSpanLimits(limits)}
	opts := slices.Clone(common)
	if sampler != nil {
		// Without it, the SDK's own OTEL_TRACES_SAMPLER.
		opts = append(opts, sdktrace.WithSampler(sampler))
	}
	batchOpts := append(slices.Clone(common),
		sdktrace.WithSampler(sdktrace.ParentBased(newBatchSampler(fileSampler, cfg.BatchSpanRate, time.Now))))
	for _, p := range processors {
		opts = append(opts, sdktrace.WithSpanProcessor(p))
		batchOpts = append(batchOpts, sdktrace.WithSpanProcessor(sharedProcessor{p}))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	batchTP := sdktrace.NewTracerProvider(batchOpts...)

	stopWatch := func(context.Context) error { return nil }
	reload := func() error { return nil }
	if fileSampler != nil {
		reload = fileSampler.Reload
		interval := cfg.ReloadInterval
		if interval == 0 {
			interval = DefaultReloadInterval
		}
		if interval > 0 {
			stopWatch = startWatch(fileSampler, interval, logger)
		}
	}

	var (
		shutdownOnce sync.Once
		shutdownErr  error
	)
	shutdown := func(ctx context.Context) error {
		shutdownOnce.Do(func() {
			watchErr := stopWatch(ctx)
			// The batch provider first: it stops starting spans, and its
			// processors are the main provider's to shut down. The main
			// provider skips its processors when ctx is already done, so
			// the export queue is shut down directly as well; a second
			// Shutdown of it is a no-op returning nil.
			err := errors.Join(batchTP.Shutdown(ctx), tp.Shutdown(ctx))
			if bp != nil {
				if bpErr := bp.Shutdown(ctx); bpErr != nil {
					err = bpErr
				}
			}
			if mErr := meters.shutdown(ctx); mErr != nil {
				err = errors.Join(err, mErr)
			}
			if err != nil {
				err = fmt.Errorf("telemetry: shutdown: %w", err)
			}
			shutdownErr = errors.Join(watchErr, err)
		})
		return shutdownErr
	}
	dropped := func() int64 { return 0 }
	if bp != nil {
		dropped = bp.Dropped
	}

	return &Telemetry{
		TracerProvider:      tp,
		BatchTracerProvider: batchTP,
		MeterProvider:       meters.provider,
		Propagator:          propagator,
		Shutdown:            shutdown,
		ForceFlush: func(ctx context.Context) error {
			// The batch provider's processors are the main one's (its
			// own ForceFlush passes them by), so flushing the main
			// provider flushes both.
			if err := errors.Join(tp.ForceFlush(ctx), meters.flush(ctx)); err != nil {
				return fmt.Errorf("telemetry: flush: %w", err)
			}
			return nil
		},
		DroppedSpans:    dropped,
		ReloadSampling:  reload,
		Exporter:        target.kind,
		Endpoint:        target.endpoint,
		MetricsExporter: meters.target.kind,
		MetricsEndpoint: meters.target.endpoint,
	}, nil
}

// sharedProcessor is a span processor of the main tracer provider as the
// batch tracer provider sees it: spans reach it from both, but only the
// main provider flushes and shuts it down.
type sharedProcessor struct{ sdktrace.SpanProcessor }

func (sharedProcessor) ForceFlush(context.Context) error { return nil }
func (sharedProcessor) Shutdown(context.Context) error   { return nil }

// startWatch polls the sampling file every interval on its own goroutine
// and returns the function that stops it.
func startWatch(fs *FileSampler, interval time.Duration, logger *slog.Logger) func(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ticker := time.NewTicker(interval)
	go func() {
		defer close(done)
		defer ticker.Stop()
		fs.Watch(ctx, ticker.C, func(err error) {
			if err != nil {
				logger.Warn("sampling strategies reload failed; keeping the previous strategies", "path", fs.Path(), "err", err)
				return
			}
			logger.Info("sampling strategies reloaded", "path", fs.Path())
		})
	}()
	return func(stopCtx context.Context) error {
		cancel()
		select {
		case <-done:
			return nil
		case <-stopCtx.Done():
			return fmt.Errorf("telemetry: stop sampling file poller: %w", stopCtx.Err())
		}
	}
}
