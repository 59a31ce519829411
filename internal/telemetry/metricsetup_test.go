package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
)

// Whether metrics are pushed, and the endpoint the startup log shows (as
// for traces); TestMetricsExporterReadsEnvironment follows the variables
// to a receiver.
func TestMetricsExporterResolution(t *testing.T) {
	tests := []exporterCase{
		{"nothing set", Config{}, nil, ExporterNone, ""},
		{"a trace endpoint alone does not push metrics", Config{Endpoint: "localhost:4317"}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, ExporterNone, ""},
		{"prometheus is pull only", Config{}, map[string]string{"OTEL_METRICS_EXPORTER": "prometheus"}, ExporterNone, ""},
		{"none", Config{}, map[string]string{"OTEL_METRICS_EXPORTER": "none"}, ExporterNone, ""},
		{"otlp to the trace collector", Config{Endpoint: "localhost:4317"}, map[string]string{"OTEL_METRICS_EXPORTER": "otlp"}, ExporterOTLPGRPC, "http://localhost:4317"},
		{"prometheus and otlp", Config{}, map[string]string{"OTEL_METRICS_EXPORTER": "prometheus, otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, ExporterOTLPGRPC, "http://c:4317"},
		{"flag wins", Config{MetricsExporter: "none"}, map[string]string{"OTEL_METRICS_EXPORTER": "otlp"}, ExporterNone, ""},
		{"metrics endpoint wins", Config{MetricsExporter: "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4317", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:4317"}, ExporterOTLPGRPC, "http://m:4317"},
		{"trace endpoint variable is not the metrics one", Config{MetricsExporter: "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4317"}, ExporterOTLPGRPC, "http://localhost:4317"},
		{"env host:port as written", Config{MetricsExporter: "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4317"}, ExporterOTLPGRPC, "c:4317"},
		{"http protocol", Config{MetricsExporter: "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ExporterOTLPHTTP, "http://localhost:4318/v1/metrics"},
		{"metrics protocol wins", Config{MetricsExporter: "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"}, ExporterOTLPGRPC, "http://localhost:4317"},
		{"http base endpoint as written", Config{MetricsExporter: "otlp-http"}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c.example/prefix/"}, ExporterOTLPHTTP, "https://c.example/prefix/"},
		{"http metrics endpoint as is", Config{MetricsExporter: "otlp-http"}, map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://c.example/custom"}, ExporterOTLPHTTP, "https://c.example/custom"},
		{"flag endpoint's traces path becomes metrics", Config{MetricsExporter: "otlp-http", Endpoint: "https://c.example/otlp/v1/traces"}, nil, ExporterOTLPHTTP, "https://c.example/otlp/v1/metrics"},
		{"flag endpoint's other path is a prefix", Config{MetricsExporter: "otlp-http", Endpoint: "https://c.example/otlp"}, nil, ExporterOTLPHTTP, "https://c.example/otlp/v1/metrics"},
		{"flag endpoint without path", Config{MetricsExporter: "otlp-http", Endpoint: "localhost:4318"}, nil, ExporterOTLPHTTP, "http://localhost:4318/v1/metrics"},
		{"sdk disabled", Config{MetricsExporter: "otlp"}, map[string]string{"OTEL_SDK_DISABLED": "true"}, ExporterDisabled, ""},
	}
	checkExporters(t, tests, func(tel *Telemetry) (string, string) { return tel.MetricsExporter, tel.MetricsEndpoint })
}

// findMetric returns the metric named name and the resource it came
// with, from any payload.
func findMetric(rms []*metricpb.ResourceMetrics, name string) (*metricpb.Metric, []*commonpb.KeyValue) {
	for _, rm := range rms {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if m.GetName() == name {
					return m, rm.GetResource().GetAttributes()
				}
			}
		}
	}
	return nil, nil
}

func resourceValue(attrs []*commonpb.KeyValue, key string) string {
	for _, kv := range attrs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// A push carries the /metrics registry (through the Prometheus bridge)
// and the meter provider's own instruments, with the service resource.
func TestMetricsPushOverOTLP(t *testing.T) {
	addr, rec := startReceiver(t)
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounter(prometheus.CounterOpts{Name: "lumen_test_requests_total", Help: "test"})
	reg.MustRegister(requests)
	requests.Add(3)
	tel := mustSetup(t, Config{
		MetricsExporter: ExporterOTLPGRPC, Endpoint: addr, MetricsGatherer: reg,
		ServiceVersion: "1.2.3", MetricsInterval: time.Hour, // pushed by ForceFlush only
	})
	counter, err := tel.MeterProvider.Meter("test").Int64Counter("rpc.server.test_calls")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 2)
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}

	rms := rec.resourceMetrics()
	bridged, res := findMetric(rms, "lumen_test_requests_total")
	if bridged == nil {
		t.Fatalf("the registry's counter was not pushed; got %d payloads", len(rms))
	}
	if pts := bridged.GetSum().GetDataPoints(); len(pts) != 1 || pts[0].GetAsDouble() != 3 {
		t.Errorf("lumen_test_requests_total points %v, want one of 3", pts)
	}
	if got := resourceValue(res, "service.name"); got != DefaultServiceName {
		t.Errorf("resource service.name = %q, want %q", got, DefaultServiceName)
	}
	if got := resourceValue(res, "service.version"); got != "1.2.3" {
		t.Errorf("resource service.version = %q, want 1.2.3", got)
	}
	own, _ := findMetric(rms, "rpc.server.test_calls")
	if pts := own.GetSum().GetDataPoints(); len(pts) != 1 || pts[0].GetAsInt() != 2 {
		t.Errorf("rpc.server.test_calls points %v, want one of 2", pts)
	}
}

// With the collector down, metric pushes fail quietly: no error reaches
// the caller, and the logger is told once.
func TestMetricsPushCollectorDown(t *testing.T) {
	for _, exporter := range []string{ExporterOTLPGRPC, ExporterOTLPHTTP} {
		t.Run(exporter, func(t *testing.T) { testMetricsPushCollectorDown(t, exporter) })
	}
}

func testMetricsPushCollectorDown(t *testing.T, exporter string) {
	var logs syncWriter
	tel := mustSetup(t, Config{
		MetricsExporter: exporter, Endpoint: closedPort(t), MetricsInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if _, err := tel.MeterProvider.Meter("test").Int64Counter("c"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := tel.ForceFlush(ctx)
		cancel()
		if err != nil {
			t.Fatalf("ForceFlush with the collector down: %v", err)
		}
	}
	if n := strings.Count(logs.String(), "metrics export failing"); n != 1 {
		t.Errorf("logged %d export failures for 2 failed pushes, want 1:\n%s", n, logs.String())
	}
}

// Without a push the meter provider records nothing.
func TestMeterProviderNoopWithoutPush(t *testing.T) {
	tel := mustSetup(t, Config{Endpoint: "localhost:4317"})
	c, err := tel.MeterProvider.Meter("test").Int64Counter("c")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 1)
	if _, ok := tel.MeterProvider.(interface{ ForceFlush(context.Context) error }); ok {
		t.Errorf("MeterProvider is %T, want a no-op provider when metrics are not pushed", tel.MeterProvider)
	}
}

// syncWriter is a bytes.Buffer safe for the exporter's goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
