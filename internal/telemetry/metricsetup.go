package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	promBridge "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// MetricsExporterPrometheus, as Config.MetricsExporter or in
// OTEL_METRICS_EXPORTER, means pull only: GET /metrics, which is always
// served, and no push. The other accepted names are ExporterOTLP,
// ExporterOTLPGRPC, ExporterOTLPHTTP and ExporterNone.
const MetricsExporterPrometheus = "prometheus"

// Defaults of the OTLP metrics push (the OpenTelemetry specification's).
const (
	DefaultMetricsInterval = 60 * time.Second
	DefaultMetricsTimeout  = 30 * time.Second
)

// resolveMetricsExporter decides whether metrics are pushed over OTLP,
// and where. Pushing is opt-in (unlike the specification's default of
// otlp): Prometheus scrapes /metrics, and Jaeger, the usual trace
// receiver, does not accept metrics.
func resolveMetricsExporter(cfg Config, getenv func(string) string) (exportTarget, error) {
	value, source := cfg.MetricsExporter, "metrics exporter"
	if strings.TrimSpace(value) == "" {
		value, source = getenv("OTEL_METRICS_EXPORTER"), "OTEL_METRICS_EXPORTER"
	}
	// A list: "prometheus,otlp" pushes too; "prometheus" or "none" alone
	// does not.
	kind := ExporterNone
	for _, name := range strings.Split(value, ",") {
		switch name = strings.ToLower(strings.TrimSpace(name)); name {
		case "", ExporterNone, MetricsExporterPrometheus:
		case ExporterOTLP, ExporterOTLPGRPC, ExporterOTLPHTTP:
			if kind != ExporterNone {
				return exportTarget{}, fmt.Errorf("telemetry: %s %q: only one OTLP exporter is supported", source, value)
			}
			kind = name
		default:
			return exportTarget{}, fmt.Errorf("telemetry: %s %q unsupported (want otlp, otlp-grpc, otlp-http, prometheus or none)", source, name)
		}
	}
	if kind == ExporterOTLP {
		var err error
		if kind, err = otlpProtocol(getenv, signalMetrics); err != nil {
			return exportTarget{}, err
		}
	}
	if kind == ExporterNone {
		return exportTarget{kind: ExporterNone}, nil
	}
	u, err := resolveEndpoint(cfg, getenv, kind == ExporterOTLPHTTP, signalMetrics)
	if err != nil {
		return exportTarget{}, err
	}
	return exportTarget{kind: kind, url: u}, nil
}

// metricsTiming is the push interval and export timeout: Config, then
// OTEL_METRIC_EXPORT_INTERVAL / OTEL_METRIC_EXPORT_TIMEOUT
// (milliseconds), then the defaults.
func metricsTiming(cfg Config, getenv func(string) string) (interval, timeout time.Duration, err error) {
	pick := func(set time.Duration, key string, def time.Duration) (time.Duration, error) {
		if set > 0 {
			return set, nil
		}
		n, ok, err := envInt(getenv, key)
		switch {
		case err != nil:
			return 0, err
		case !ok:
			return def, nil
		case n <= 0:
			return 0, fmt.Errorf("telemetry: %s=%d: want a positive number of milliseconds", key, n)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	if interval, err = pick(cfg.MetricsInterval, "OTEL_METRIC_EXPORT_INTERVAL", DefaultMetricsInterval); err != nil {
		return 0, 0, err
	}
	if timeout, err = pick(0, "OTEL_METRIC_EXPORT_TIMEOUT", DefaultMetricsTimeout); err != nil {
		return 0, 0, err
	}
	return interval, timeout, nil
}

// meterSetup is the meter provider and how to stop and flush it.
type meterSetup struct {
	provider metric.MeterProvider
	target   exportTarget
	shutdown func(context.Context) error
	flush    func(context.Context) error
}

// newMeterProvider builds the meter provider: with an OTLP target, an
// SDK provider with res whose periodic reader pushes both what is
// recorded through it (otelgrpc's and otelhttp's RPC and HTTP metrics)
// and, through the Prometheus bridge, everything on cfg.MetricsGatherer
// (the /metrics registry). Without one, a no-op provider: nothing is
// recorded that nobody reads.
func newMeterProvider(ctx context.Context, cfg Config, getenv func(string) string, res *resource.Resource, logger *slog.Logger) (meterSetup, error) {
	none := func(context.Context) error { return nil }
	target, err := resolveMetricsExporter(cfg, getenv)
	if err != nil {
		return meterSetup{}, err
	}
	if target.kind == ExporterNone {
		return meterSetup{provider: metricnoop.NewMeterProvider(), target: target, shutdown: none, flush: none}, nil
	}
	interval, timeout, err := metricsTiming(cfg, getenv)
	if err != nil {
		return meterSetup{}, err
	}
	// No retries: a push that fails is replaced by the next one, which
	// carries the same cumulative values, so retrying would only hold up
	// Shutdown (its final push) for the whole timeout while the collector
	// is down.
	var exp sdkmetric.Exporter
	switch target.kind {
	case ExporterOTLPGRPC:
		exp, err = otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpointURL(target.url), otlpmetricgrpc.WithTimeout(timeout),
			otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}))
	case ExporterOTLPHTTP:
		exp, err = otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(target.url), otlpmetrichttp.WithTimeout(timeout),
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	}
	if err != nil {
		return meterSetup{}, fmt.Errorf("telemetry: create %s metrics exporter: %w", target.kind, err)
	}
	readerOpts := []sdkmetric.PeriodicReaderOption{sdkmetric.WithInterval(interval), sdkmetric.WithTimeout(timeout)}
	if cfg.MetricsGatherer != nil {
		readerOpts = append(readerOpts, sdkmetric.WithProducer(promBridge.NewMetricProducer(promBridge.WithGatherer(cfg.MetricsGatherer))))
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(&loggedExporter{Exporter: exp, log: logger}, readerOpts...)),
	)
	return meterSetup{provider: mp, target: target, shutdown: mp.Shutdown, flush: mp.ForceFlush}, nil
}

// loggedExporter reports failed metric exports to Lumen's logger, once
// when they start failing and once when they recover, instead of to the
// global OpenTelemetry error handler on every push. The metrics of a
// failed push are not lost for good: the next push carries the
// cumulative values, so only resolution is.
type loggedExporter struct {
	sdkmetric.Exporter
	log     *slog.Logger
	failing atomic.Bool
}

func (e *loggedExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if err := e.Exporter.Export(ctx, rm); err != nil {
		if !e.failing.Swap(true) {
			e.log.Warn("metrics export failing; retrying at each interval", "err", err)
		}
		return nil
	}
	if e.failing.Swap(false) {
		e.log.Info("metrics export recovered")
	}
	return nil
}
