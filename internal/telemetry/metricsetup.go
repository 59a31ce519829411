package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

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

// resolveMetricsExporter decides whether metrics are pushed over OTLP,
// and where. Pushing is opt-in (unlike the specification's default of
// otlp): Prometheus scrapes /metrics, and Jaeger, the usual trace
// receiver, does not accept metrics.
func resolveMetricsExporter(cfg Config) (exportTarget, error) {
	value, source := cfg.MetricsExporter, "metrics exporter"
	if strings.TrimSpace(value) == "" {
		value, source = os.Getenv("OTEL_METRICS_EXPORTER"), "OTEL_METRICS_EXPORTER"
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
		if kind, err = otlpProtocol(signalMetrics); err != nil {
			return exportTarget{}, err
		}
	}
	if kind == ExporterNone {
		return exportTarget{kind: ExporterNone}, nil
	}
	return otlpTarget(cfg, kind, signalMetrics)
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
func newMeterProvider(ctx context.Context, cfg Config, res *resource.Resource, logger *slog.Logger) (meterSetup, error) {
	none := func(context.Context) error { return nil }
	target, err := resolveMetricsExporter(cfg)
	if err != nil {
		return meterSetup{}, err
	}
	if target.kind == ExporterNone {
		return meterSetup{provider: metricnoop.NewMeterProvider(), target: target, shutdown: none, flush: none}, nil
	}
	// No retries: a push that fails is replaced by the next one, which
	// carries the same cumulative values, so retrying would only hold up
	// Shutdown (its final push) for the whole timeout while the collector
	// is down. Everything else not set here (headers, certificates,
	// timeout, compression, the endpoint without --otlp-endpoint) the
	// exporter reads from OTEL_EXPORTER_OTLP[_METRICS]_*.
	var exp sdkmetric.Exporter
	switch target.kind {
	case ExporterOTLPGRPC:
		exp, err = otlpmetricgrpc.New(ctx, options(target, otlpmetricgrpc.WithEndpointURL, otlpmetricgrpc.WithInsecure,
			otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}))...)
	case ExporterOTLPHTTP:
		exp, err = otlpmetrichttp.New(ctx, options(target, otlpmetrichttp.WithEndpointURL, otlpmetrichttp.WithInsecure,
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))...)
	}
	if err != nil {
		return meterSetup{}, fmt.Errorf("telemetry: create %s metrics exporter: %w", target.kind, err)
	}
	// The reader's interval and timeout are the SDK's, from
	// OTEL_METRIC_EXPORT_INTERVAL and OTEL_METRIC_EXPORT_TIMEOUT (60s and
	// 30s by default), unless cfg sets the interval.
	var readerOpts []sdkmetric.PeriodicReaderOption
	if cfg.MetricsInterval > 0 {
		readerOpts = append(readerOpts, sdkmetric.WithInterval(cfg.MetricsInterval))
	}
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
