package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	otelsemconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// setenv sets vars for the rest of the test (TestMain has unset every
// other OTEL_* variable).
func setenv(t *testing.T, vars map[string]string) {
	t.Helper()
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

func mustSetup(t *testing.T, cfg Config) *Telemetry {
	t.Helper()
	tel, err := Setup(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return tel
}

func rootSampled(tel *Telemetry, name string) bool {
	_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), name)
	defer span.End()
	return span.SpanContext().IsSampled()
}

// exporterCase is one exporter-resolution expectation: what Setup makes
// of cfg and env (set in the process environment for the case).
type exporterCase struct {
	name         string
	cfg          Config
	env          map[string]string
	wantExporter string
	wantEndpoint string
}

// checkExporters runs Setup for each case and compares what got reads
// off the result (the trace or the metrics exporter and endpoint).
func checkExporters(t *testing.T, tests []exporterCase, got func(*Telemetry) (exporter, endpoint string)) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			exporter, endpoint := got(mustSetup(t, tt.cfg))
			if exporter != tt.wantExporter || endpoint != tt.wantEndpoint {
				t.Errorf("exporter %q at %q, want %q at %q", exporter, endpoint, tt.wantExporter, tt.wantEndpoint)
			}
		})
	}
}

// Which exporter, and the endpoint the startup log shows: the URL made
// of the flag, else the endpoint variable as written (the exporter reads
// it), else the exporter's default. Where the variables lead the
// exporter is TestSetupExporterReadsEnvironment's business.
func TestSetupExporterResolution(t *testing.T) {
	tests := []exporterCase{
		{"nothing set", Config{}, nil, ExporterNone, ""},
		{"sdk disabled", Config{Exporter: "console"}, map[string]string{"OTEL_SDK_DISABLED": "true"}, ExporterDisabled, ""},
		{"sdk disabled, any case", Config{}, map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, ExporterDisabled, ""},
		{"disabled in config", Config{Disabled: true, Exporter: "otlp", Endpoint: "localhost:4317"}, nil, ExporterDisabled, ""},
		{"sdk not disabled", Config{}, map[string]string{"OTEL_SDK_DISABLED": "false"}, ExporterNone, ""},
		{"exporter none despite endpoint", Config{}, map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, ExporterNone, ""},
		{"endpoint implies otlp", Config{}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, ExporterOTLPGRPC, "http://collector:4317"},
		{"traces endpoint implies otlp", Config{}, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, ExporterOTLPGRPC, "http://collector:4317"},
		{"flag endpoint implies otlp", Config{Endpoint: "localhost:9999"}, nil, ExporterOTLPGRPC, "http://localhost:9999"},
		{"env host:port as written", Config{}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, ExporterOTLPGRPC, "collector:4317"},
		{"insecure flag", Config{Endpoint: "collector:4317", Insecure: true}, nil, ExporterOTLPGRPC, "http://collector:4317"},
		{"flag host:port is TLS off loopback", Config{Endpoint: "collector:4317"}, map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "true"}, ExporterOTLPGRPC, "https://collector:4317"},
		{"url without port", Config{}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example"}, ExporterOTLPGRPC, "https://collector.example"},
		{"https url", Config{}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://localhost:4317"}, ExporterOTLPGRPC, "https://localhost:4317"},
		{"default port", Config{Endpoint: "collector"}, nil, ExporterOTLPGRPC, "https://collector:4317"},
		{"ipv6 loopback", Config{Endpoint: "[::1]"}, nil, ExporterOTLPGRPC, "http://[::1]:4317"},
		{"traces endpoint wins", Config{}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4317", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4317"}, ExporterOTLPGRPC, "http://b:4317"},
		{"flag endpoint wins", Config{Endpoint: "c:4317"}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4317", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4317"}, ExporterOTLPGRPC, "https://c:4317"},
		{"flag exporter wins", Config{Exporter: "console", ConsoleWriter: &bytes.Buffer{}}, map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, ExporterConsole, ""},
		{"flag none wins", Config{Exporter: "none"}, map[string]string{"OTEL_TRACES_EXPORTER": "console"}, ExporterNone, ""},
		{"otlp defaults to grpc on localhost", Config{}, map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, ExporterOTLPGRPC, "http://localhost:4317"},
		{"http protocol", Config{}, map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ExporterOTLPHTTP, "http://localhost:4318/v1/traces"},
		{"http base endpoint as written", Config{}, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4318/prefix/"}, ExporterOTLPHTTP, "https://collector.example:4318/prefix/"},
		{"http traces endpoint as written", Config{}, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector.example/custom"}, ExporterOTLPHTTP, "https://collector.example/custom"},
		{"traces protocol wins", Config{}, map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, ExporterOTLPGRPC, "http://localhost:4317"},
		{"flag otlp-grpc beats protocol env", Config{Exporter: "otlp-grpc"}, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ExporterOTLPGRPC, "http://localhost:4317"},
		{"flag otlp-http host:port", Config{Exporter: "otlp-http", Endpoint: "localhost:4318"}, nil, ExporterOTLPHTTP, "http://localhost:4318/v1/traces"},
		{"flag otlp-http url with path", Config{Exporter: "otlp-http", Endpoint: "https://x.example:443/otlp/traces"}, nil, ExporterOTLPHTTP, "https://x.example:443/otlp/traces"},
		{"flag otlp-http url without path", Config{Exporter: "otlp-http", Endpoint: "https://x.example"}, nil, ExporterOTLPHTTP, "https://x.example/v1/traces"},
	}
	checkExporters(t, tests, func(tel *Telemetry) (string, string) { return tel.Exporter, tel.Endpoint })
}

func TestSetupErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.json")
	bad := writeStrategies(t, `{"default_strategy":{"type":"probabilistic","param":2}}`)
	good := writeStrategies(t, `{}`)
	tests := []struct {
		name string
		cfg  Config
		env  map[string]string
		want string
	}{
		{"bad disabled value", Config{}, map[string]string{"OTEL_SDK_DISABLED": "1"}, "OTEL_SDK_DISABLED"},
		{"unknown env exporter", Config{}, map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, `OTEL_TRACES_EXPORTER "zipkin" unsupported`},
		{"several env exporters", Config{}, map[string]string{"OTEL_TRACES_EXPORTER": "otlp,console"}, "only one exporter"},
		{"unknown flag exporter", Config{Exporter: "jaeger"}, nil, `trace exporter "jaeger" unsupported`},
		{"json protocol", Config{}, map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "unsupported OTLP protocol"},
		{"bad scheme", Config{Endpoint: "ftp://collector:4317"}, nil, "scheme must be http or https"},
		{"path without scheme", Config{Endpoint: "collector:4317/v1/traces"}, nil, "want host:port or a URL"},
		{"bad port", Config{Endpoint: "collector:otlp"}, nil, "bad port"},
		{"env endpoint the exporter would ignore", Config{}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "10.0.0.5:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT=\"10.0.0.5:4317\" is not a URL"},
		{"http env endpoint without scheme", Config{}, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318"}, "OTLP/HTTP needs a URL"},
		{"unknown env sampler", Config{}, map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, `OTEL_TRACES_SAMPLER="jaeger_remote" unsupported`},
		{"ratio out of range", Config{}, map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "not a number in [0, 1]"},
		{"ratio not a number", Config{}, map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1%"}, "not a number in [0, 1]"},
		{"file and sampler", Config{SamplingConfig: good, Sampler: sdktrace.AlwaysSample()}, nil, "mutually exclusive"},
		{"missing sampling file", Config{SamplingConfig: missing}, nil, "no such file"},
		{"bad sampling file", Config{SamplingConfig: bad}, nil, "outside [0, 1]"},
		{"bad queue size", Config{}, map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "lots"}, "OTEL_BSP_MAX_QUEUE_SIZE"},
		{"zero schedule delay", Config{}, map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "0"}, "must be positive"},
		{"bad resource attributes", Config{}, map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "model"}, "OTEL_RESOURCE_ATTRIBUTES"},
		{"unknown metrics exporter", Config{MetricsExporter: "statsd"}, nil, `"statsd" unsupported`},
		{"two otlp metrics exporters", Config{}, map[string]string{"OTEL_METRICS_EXPORTER": "otlp,otlp-http"}, "only one OTLP exporter"},
		{"unknown metrics protocol", Config{MetricsExporter: "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/json"}, "unsupported OTLP protocol"},
		{"metrics env endpoint the exporter would ignore", Config{MetricsExporter: "otlp"}, map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "[::1]:4317"}, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			tel, err := Setup(context.Background(), tt.cfg)
			if err == nil {
				tel.Shutdown(context.Background())
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSetupSamplerPrecedence(t *testing.T) {
	never := writeStrategies(t, `{"service_strategies":[{"service":"lumen","type":"probabilistic","param":0}]}`)
	always := writeStrategies(t, `{"service_strategies":[{"service":"lumen","type":"probabilistic","param":1}],"default_strategy":{"type":"probabilistic","param":0}}`)
	tests := []struct {
		name    string
		cfg     Config
		env     map[string]string
		sampled bool
	}{
		{"default samples roots", Config{}, nil, true},
		{"env always_off", Config{}, map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, false},
		{"env parentbased_always_off", Config{}, map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, false},
		{"env ratio 0", Config{}, map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, false},
		{"env ratio 1", Config{}, map[string]string{"OTEL_TRACES_SAMPLER": "TraceIdRatio", "OTEL_TRACES_SAMPLER_ARG": "1"}, true},
		{"config beats env", Config{Sampler: sdktrace.AlwaysSample()}, map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, true},
		{"config beats env, both ways", Config{Sampler: sdktrace.TraceIDRatioBased(0)}, map[string]string{"OTEL_TRACES_SAMPLER": "always_on", "OTEL_TRACES_SAMPLER_ARG": "1"}, false},
		{"file says no", Config{SamplingConfig: never}, nil, false},
		{"file beats env sampler", Config{SamplingConfig: always}, map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, true},
		{"file entry for the env service name", Config{SamplingConfig: always}, map[string]string{"OTEL_SERVICE_NAME": "other"}, false},
		{"file entry for the resource's service name", Config{SamplingConfig: always}, map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "service.name=other"}, false},
		{"file entry for the configured service name", Config{SamplingConfig: always, ServiceName: "lumen"}, map[string]string{"OTEL_SERVICE_NAME": "other"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			tt.cfg.ReloadInterval = -1
			tel := mustSetup(t, tt.cfg)
			if got := rootSampled(tel, "chat llama"); got != tt.sampled {
				t.Errorf("root span sampled = %v, want %v", got, tt.sampled)
			}
		})
	}
}

func TestSetupDisabledIsNoop(t *testing.T) {
	t.Run("by config", func(t *testing.T) { testDisabledIsNoop(t, Config{Disabled: true}) })
	t.Run("by OTEL_SDK_DISABLED", func(t *testing.T) {
		t.Setenv("OTEL_SDK_DISABLED", "true")
		testDisabledIsNoop(t, Config{})
	})
}

func testDisabledIsNoop(t *testing.T, cfg Config) {
	cfg.Exporter, cfg.Endpoint, cfg.MetricsExporter = "otlp", "localhost:1", "otlp"
	tel := mustSetup(t, cfg)
	for name, tp := range map[string]trace.TracerProvider{"TracerProvider": tel.TracerProvider, "BatchTracerProvider": tel.BatchTracerProvider} {
		if _, ok := tp.(noop.TracerProvider); !ok {
			t.Errorf("%s is %T, want noop.TracerProvider", name, tp)
		}
	}
	if tel.Exporter != ExporterDisabled || tel.MetricsExporter != ExporterDisabled {
		t.Errorf("exporters %q and %q, want %q", tel.Exporter, tel.MetricsExporter, ExporterDisabled)
	}
	_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "chat llama")
	if span.IsRecording() {
		t.Error("span is recording")
	}
	span.End()
	if tel.DroppedSpans() != 0 {
		t.Error("dropped spans without an SDK")
	}

	// Incoming trace context still flows through to outgoing requests.
	in := propagation.MapCarrier{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	ctx := tel.Propagator.Extract(context.Background(), in)
	ctx, span = tel.TracerProvider.Tracer("test").Start(ctx, "chat llama")
	defer span.End()
	out := propagation.MapCarrier{}
	tel.Propagator.Inject(ctx, out)
	if !strings.Contains(out["traceparent"], "0af7651916cd43dd8448eb211c80319c") {
		t.Errorf("traceparent not propagated: %v", out)
	}
}

func TestSetupExporterNoneStillTraces(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	tel := mustSetup(t, Config{})
	_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "chat llama")
	defer span.End()
	if !span.SpanContext().IsValid() || !span.SpanContext().IsSampled() {
		t.Errorf("span context %v: want a valid sampled one", span.SpanContext())
	}
}

func TestSetupExtraSpanProcessorsSeeSampledSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel := mustSetup(t, Config{SpanProcessors: []sdktrace.SpanProcessor{rec}, Sampler: sdktrace.TraceIDRatioBased(0)})
	_, dropped := tel.TracerProvider.Tracer("test").Start(context.Background(), "unsampled")
	dropped.End()
	tel2 := mustSetup(t, Config{SpanProcessors: []sdktrace.SpanProcessor{rec}})
	_, kept := tel2.TracerProvider.Tracer("test").Start(context.Background(), "sampled")
	kept.End()
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	if len(names) != 1 || names[0] != "sampled" {
		t.Errorf("recorder saw %q, want only the sampled span", names)
	}
}

func TestBuildResource(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal("os.Hostname:", err)
	}
	tests := []struct {
		name string
		cfg  Config
		env  map[string]string
		want map[attribute.Key]string
	}{
		{"defaults", Config{}, nil, map[attribute.Key]string{
			otelsemconv.ServiceNameKey: "lumen", otelsemconv.HostNameKey: host, otelsemconv.TelemetrySDKLanguageKey: "go",
		}},
		{"config", Config{ServiceName: "lumen-a", ServiceVersion: "1.2.3", ExtraResource: []attribute.KeyValue{attribute.String("lumen.model", "llama-3-8b"), attribute.String("host.name", "override")}},
			map[string]string{"OTEL_SERVICE_NAME": "env-name", "OTEL_RESOURCE_ATTRIBUTES": "service.version=0.0.1,deployment.environment=prod"},
			map[attribute.Key]string{
				otelsemconv.ServiceNameKey: "lumen-a", otelsemconv.ServiceVersionKey: "1.2.3", "lumen.model": "llama-3-8b",
				otelsemconv.HostNameKey: "override", "deployment.environment": "prod",
			}},
		{"service name from env", Config{}, map[string]string{"OTEL_SERVICE_NAME": "env-name", "OTEL_RESOURCE_ATTRIBUTES": "service.name=attr-name"},
			map[attribute.Key]string{otelsemconv.ServiceNameKey: "env-name"}},
		{"service name from attributes", Config{}, map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "service.name=attr-name, note=a%2Cb%20c"},
			map[attribute.Key]string{otelsemconv.ServiceNameKey: "attr-name", "note": "a,b c"}},
		// The SDK's rule: a value it cannot percent-decode is kept as written.
		{"undecodable value", Config{}, map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "note=%zz"},
			map[attribute.Key]string{otelsemconv.ServiceNameKey: "lumen", "note": "%zz"}},
		{"extra resource beats env", Config{ExtraResource: []attribute.KeyValue{attribute.String("lumen.model", "m")}},
			map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "lumen.model=env"},
			map[attribute.Key]string{otelsemconv.ServiceNameKey: "lumen", "lumen.model": "m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setenv(t, tt.env)
			res, name, err := buildResource(context.Background(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if name != tt.want[otelsemconv.ServiceNameKey] {
				t.Errorf("service name %q, want %q", name, tt.want[otelsemconv.ServiceNameKey])
			}
			for k, want := range tt.want {
				if got, ok := res.Set().Value(k); !ok || got.String() != want {
					t.Errorf("%s = %q, want %q (resource %v)", k, got.String(), want, res)
				}
			}
			if res.SchemaURL() != otelsemconv.SchemaURL {
				t.Errorf("schema %q", res.SchemaURL())
			}
			if _, err := resource.Merge(resource.Default(), res); err != nil {
				t.Errorf("does not merge with the SDK default resource: %v", err)
			}
		})
	}
}

func TestSetupConsoleExporter(t *testing.T) {
	// The SDK's resource variable reaches exported spans.
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=console-test")
	var out bytes.Buffer
	tel := mustSetup(t, Config{
		Exporter:                "console",
		ConsoleWriter:           &out,
		MaxAttributeValueLength: 8,
		ServiceVersion:          "0.1.0",
		ExtraResource:           []attribute.KeyValue{attribute.String("lumen.model", "llama-3-8b")},
	})
	_, span := tel.TracerProvider.Tracer("lumen/test").Start(context.Background(), "chat llama",
		trace.WithAttributes(attribute.String("prompt", "abcdefghijklmnopqrstuvwxyz")))
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{`"Name": "chat llama"`, `"lumen"`, `"llama-3-8b"`, `"0.1.0"`, `"abcdefgh"`, `"console-test"`} {
		if !strings.Contains(got, want) {
			t.Errorf("console output lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "abcdefghi") {
		t.Errorf("attribute value not truncated to 8:\n%s", got)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestSetupUnreachableCollector(t *testing.T) {
	for _, exporter := range []string{ExporterOTLPGRPC, ExporterOTLPHTTP} {
		t.Run(exporter, func(t *testing.T) {
			tel, err := Setup(context.Background(), Config{
				Exporter:           exporter,
				Endpoint:           closedPort(t),
				MaxQueueSize:       64,
				MaxExportBatchSize: 16,
			})
			if err != nil {
				t.Fatalf("Setup with an unreachable collector: %v", err)
			}
			const spans = 1000
			tr := tel.TracerProvider.Tracer("test")
			start := time.Now()
			for range spans {
				_, span := tr.Start(context.Background(), "chat llama")
				span.End()
			}
			// Generous: the point is not waiting on the exports, which
			// take seconds (retries until the export timeout).
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("ending %d spans took %v", spans, d)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if err := tel.Shutdown(ctx); err == nil {
				t.Error("Shutdown reported no error with the collector down")
			}
			if got := tel.DroppedSpans(); got != spans {
				t.Errorf("DroppedSpans = %d, want all %d", got, spans)
			}
		})
	}
}

func TestSetupReloadSampling(t *testing.T) {
	path := writeStrategies(t, `{"default_strategy":{"type":"probabilistic","param":0}}`)
	tel := mustSetup(t, Config{SamplingConfig: path, ReloadInterval: -1})
	if rootSampled(tel, "chat llama") {
		t.Fatal("sampled with probability 0")
	}
	rewrite(t, path, `{"default_strategy":{"type":"probabilistic","param":1}}`)
	if err := tel.ReloadSampling(); err != nil {
		t.Fatal(err)
	}
	if !rootSampled(tel, "chat llama") {
		t.Fatal("not sampled after reloading probability 1")
	}
	rewrite(t, path, `not json`)
	if err := tel.ReloadSampling(); err == nil {
		t.Fatal("bad file reloaded without error")
	}
	if !rootSampled(tel, "chat llama") {
		t.Fatal("bad file replaced the previous strategies")
	}
}

func TestSetupPollsSamplingFile(t *testing.T) {
	path := writeStrategies(t, `{"default_strategy":{"type":"probabilistic","param":0}}`)
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		tel := mustSetup(t, Config{
			SamplingConfig: path,
			ReloadInterval: time.Minute,
			Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
		})
		if rootSampled(tel, "chat llama") {
			t.Fatal("sampled with probability 0")
		}
		rewrite(t, path, `{"default_strategy":{"type":"probabilistic","param":1}}`)
		<-time.After(time.Minute) // the bubble's fake clock: the poller ticks
		synctest.Wait()           // and has finished reloading
		if !rootSampled(tel, "chat llama") {
			t.Fatalf("not sampled after the poll; log:\n%s", logs.String())
		}

		rewrite(t, path, `{"default_strategy":{}}`)
		<-time.After(time.Minute)
		synctest.Wait()
		if !rootSampled(tel, "chat llama") {
			t.Fatal("bad file replaced the previous strategies")
		}
		if !strings.Contains(logs.String(), "reload failed") {
			t.Errorf("failed reload not logged:\n%s", logs.String())
		}
	})
}

// countingProcessor counts the calls a tracer provider makes of it.
type countingProcessor struct {
	mu                     sync.Mutex
	ended, flushes, closes int
}

func (p *countingProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p *countingProcessor) OnEnd(sdktrace.ReadOnlySpan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ended++
}

func (p *countingProcessor) ForceFlush(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flushes++
	return nil
}

func (p *countingProcessor) Shutdown(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closes++
	return nil
}

// The two tracer providers share the span processors, which are flushed
// and shut down once, by the main one; after Shutdown neither provider
// ends spans into them.
func TestSetupSharedSpanProcessors(t *testing.T) {
	p := &countingProcessor{}
	tel, err := Setup(context.Background(), Config{SpanProcessors: []sdktrace.SpanProcessor{p}, BatchSpanRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "chat llama")
	span.End()
	_, batch := tel.BatchTracerProvider.Tracer("test").Start(context.Background(), semconv.SpanBatch,
		trace.WithNewRoot(), trace.WithLinks(trace.LinkFromContext(ctx)))
	batch.End()
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, late := tel.BatchTracerProvider.Tracer("test").Start(context.Background(), semconv.SpanBatch,
		trace.WithNewRoot(), trace.WithLinks(trace.LinkFromContext(ctx)))
	late.End()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended != 2 || p.flushes != 1 || p.closes != 1 {
		t.Errorf("processor saw %d spans, %d flushes, %d shutdowns; want 2, 1, 1", p.ended, p.flushes, p.closes)
	}
}
