package telemetry

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// The OTLP exporters read OTEL_EXPORTER_OTLP_* themselves (Setup passes
// them no endpoint of its own unless Config.Endpoint is set): the
// variables lead spans to a receiver, with Lumen's loopback rule on top.
func TestSetupExporterReadsEnvironment(t *testing.T) {
	type check func(t *testing.T, flushErr error)
	delivered := func(rec *otlpReceiver) check {
		return func(t *testing.T, err error) {
			if err != nil || rec.spans.Load() == 0 {
				t.Errorf("flush: %v; the receiver got %d spans, want the span", err, rec.spans.Load())
			}
		}
	}
	postedTo := func(rec *httpReceiver, path string) check {
		return func(t *testing.T, err error) {
			if got := rec.posted(); err != nil || !slices.Equal(got, []string{path}) {
				t.Errorf("flush: %v; posted to %q, want %q", err, got, path)
			}
		}
	}
	tests := []struct {
		name string
		env  func(t *testing.T) (map[string]string, check)
	}{
		{"grpc endpoint and headers", func(t *testing.T) (map[string]string, check) {
			addr, rec := startReceiver(t)
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + addr, "OTEL_EXPORTER_OTLP_HEADERS": "x-lumen-test=yes"},
				func(t *testing.T, err error) {
					delivered(rec)(t, err)
					if got := rec.header("x-lumen-test"); !slices.Equal(got, []string{"yes"}) {
						t.Errorf("x-lumen-test header %q, want yes from OTEL_EXPORTER_OTLP_HEADERS", got)
					}
				}
		}},
		// The exporter alone would use TLS here; Lumen's loopback rule
		// makes it plaintext.
		{"loopback host:port is plaintext", func(t *testing.T) (map[string]string, check) {
			addr, rec := startReceiver(t)
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": strings.Replace(addr, "127.0.0.1", "localhost", 1)}, delivered(rec)
		}},
		{"insecure variable beats https", func(t *testing.T) (map[string]string, check) {
			addr, rec := startReceiver(t)
			return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://" + addr, "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true"}, delivered(rec)
		}},
		// The control: https means TLS, even on loopback, so the
		// plaintext receiver is out of reach.
		{"https is TLS", func(t *testing.T) (map[string]string, check) {
			addr, rec := startReceiver(t)
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://" + addr, "OTEL_BSP_EXPORT_TIMEOUT": "300"},
				func(t *testing.T, err error) {
					if err == nil || rec.spans.Load() != 0 {
						t.Errorf("flush: %v, %d spans delivered over plaintext to an https endpoint", err, rec.spans.Load())
					}
				}
		}},
		{"http base endpoint gets the traces path", func(t *testing.T) (map[string]string, check) {
			base, rec := startHTTPReceiver(t)
			return map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": base + "/prefix"}, postedTo(rec, "/prefix/v1/traces")
		}},
		{"http traces endpoint used as is", func(t *testing.T) (map[string]string, check) {
			base, rec := startHTTPReceiver(t)
			return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": base + "/custom"}, postedTo(rec, "/custom")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars, check := tt.env(t)
			setenv(t, vars)
			tel := mustSetup(t, Config{})
			_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "chat llama")
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			check(t, tel.ForceFlush(ctx))
		})
	}
}

// The metrics exporters read OTEL_EXPORTER_OTLP_METRICS_* and the SDK's
// reader OTEL_METRIC_EXPORT_INTERVAL.
func TestMetricsExporterReadsEnvironment(t *testing.T) {
	push := func(t *testing.T, tel *Telemetry) {
		t.Helper()
		c, err := tel.MeterProvider.Meter("test").Int64Counter("c")
		if err != nil {
			t.Fatal(err)
		}
		c.Add(context.Background(), 1)
	}
	t.Run("grpc metrics endpoint, insecure over https", func(t *testing.T) {
		addr, rec := startReceiver(t)
		t.Setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "https://"+addr)
		t.Setenv("OTEL_EXPORTER_OTLP_METRICS_INSECURE", "true")
		tel := mustSetup(t, Config{MetricsExporter: "otlp", MetricsInterval: time.Hour})
		push(t, tel)
		if err := tel.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if m, _ := findMetric(rec.resourceMetrics(), "c"); m == nil {
			t.Error("the receiver got no metric c")
		}
	})
	t.Run("http base endpoint gets the metrics path", func(t *testing.T) {
		base, rec := startHTTPReceiver(t)
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base+"/prefix")
		tel := mustSetup(t, Config{MetricsExporter: "otlp", MetricsInterval: time.Hour})
		push(t, tel)
		if err := tel.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := rec.posted(); !slices.Contains(got, "/prefix/v1/metrics") {
			t.Errorf("posted to %q, want /prefix/v1/metrics", got)
		}
	})
	t.Run("push interval", func(t *testing.T) {
		addr, rec := startReceiver(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
		t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")
		tel := mustSetup(t, Config{MetricsExporter: "otlp"})
		push(t, tel)
		select {
		case <-rec.pushed: // without ForceFlush: the interval did it
		case <-time.After(10 * time.Second):
			t.Error("no push within 10s with OTEL_METRIC_EXPORT_INTERVAL=50")
		}
	})
}

// The SDK reads the span limit variables; Lumen adds only its default
// attribute value length, 4096, when no length variable is set, and
// Config.MaxAttributeValueLength wins. Batch spans have the same limits.
func TestSpanLimitsFromEnvironment(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name      string
		cfg       Config
		env       map[string]string
		wantLen   int // of the attribute value
		wantAttrs int
	}{
		{"lumen's default", Config{}, nil, DefaultMaxAttributeValueLength, 2},
		{"span variable", Config{}, map[string]string{"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "5"}, 5, 2},
		{"general variable", Config{}, map[string]string{"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "6"}, 6, 2},
		{"span variable wins", Config{}, map[string]string{"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "5", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "6"}, 5, 2},
		{"SDK's unlimited", Config{}, map[string]string{"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "-1"}, len(long), 2},
		{"config wins", Config{MaxAttributeValueLength: 8}, map[string]string{"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "5"}, 8, 2},
		{"config unlimited", Config{MaxAttributeValueLength: -1}, nil, len(long), 2},
		{"attribute count", Config{}, map[string]string{"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "1"}, DefaultMaxAttributeValueLength, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			rec := tracetest.NewSpanRecorder()
			tt.cfg.SpanProcessors = []sdktrace.SpanProcessor{rec}
			tt.cfg.BatchSpanRate = -1
			tel := mustSetup(t, tt.cfg)
			attrs := trace.WithAttributes(attribute.String("long", long), attribute.Int("n", 1))
			ctx, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "chat llama", attrs)
			span.End()
			_, batch := tel.BatchTracerProvider.Tracer("test").Start(context.Background(), semconv.SpanBatch, attrs,
				trace.WithNewRoot(), trace.WithLinks(trace.LinkFromContext(ctx)))
			batch.End()
			ended := rec.Ended()
			if len(ended) != 2 {
				t.Fatalf("%d spans ended, want the request and the batch span", len(ended))
			}
			for _, s := range ended {
				got := s.Attributes()
				if len(got) != tt.wantAttrs || got[0].Key != "long" || len(got[0].Value.AsString()) != tt.wantLen {
					t.Errorf("%s: %d attributes, the first %s of length %d; want %d, long of length %d",
						s.Name(), len(got), got[0].Key, len(got[0].Value.AsString()), tt.wantAttrs, tt.wantLen)
				}
			}
		})
	}
}
