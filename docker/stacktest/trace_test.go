package stacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// freePort is a TCP port nothing listens on right now, for servers whose
// bound port cannot be read back (the collector's listeners).
func freePort(t testing.TB) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().(*net.TCPAddr).Port
}

// runningCollector is docker/otel-collector.yaml running in this process.
type runningCollector struct {
	otlpAddr        string // OTLP gRPC receiver
	spanMetricsAddr string // prometheus exporter (span metrics)
}

// startCollector runs the stack's collector configuration with the
// factories of the image's release. Only what a test on one machine
// needs is changed: listeners on loopback ports, Jaeger's address, and
// shorter waits (decision_wait, the span metrics flush).
func startCollector(t *testing.T, jaegerAddr string) runningCollector {
	t.Helper()
	rc := runningCollector{
		otlpAddr:        "127.0.0.1:" + strconv.Itoa(freePort(t)),
		spanMetricsAddr: "127.0.0.1:" + strconv.Itoa(freePort(t)),
	}
	col := newCollector(t, dockerPath(t, "otel-collector.yaml"),
		"yaml:receivers::otlp::protocols::grpc::endpoint: "+rc.otlpAddr,
		"yaml:receivers::otlp::protocols::http::endpoint: 127.0.0.1:0",
		"yaml:exporters::otlp/jaeger::endpoint: "+jaegerAddr,
		"yaml:exporters::prometheus::endpoint: "+rc.spanMetricsAddr,
		fmt.Sprintf("yaml:service::telemetry::metrics::readers: [{pull: {exporter: {prometheus: {host: 127.0.0.1, port: %d}}}}]", freePort(t)),
		"yaml:processors::tail_sampling::decision_wait: 3s",
		"yaml:connectors::spanmetrics::metrics_flush_interval: 1s",
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("collector: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("collector did not shut down within 30s")
		}
	})
	return rc
}

// clientSpan is a span of Lumen's caller, sent straight to the collector:
// the root of a trace Lumen's request continues.
type clientSpan struct {
	traceID, spanID []byte
	duration        time.Duration
	failed          bool
}

func newClientSpan(duration time.Duration, failed bool) clientSpan {
	c := clientSpan{traceID: make([]byte, 16), spanID: make([]byte, 8), duration: duration, failed: failed}
	_, _ = rand.Read(c.traceID)
	_, _ = rand.Read(c.spanID)
	return c
}

func (c clientSpan) traceparent() string {
	return "00-" + hex.EncodeToString(c.traceID) + "-" + hex.EncodeToString(c.spanID) + "-01"
}

// send exports the span over OTLP/gRPC, waiting for the receiver to be up.
func (c clientSpan) send(t testing.TB, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	end := time.Now()
	status := &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}
	if c.failed {
		status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "upstream failed"}
	}
	req := &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{
			Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "client"}},
		}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId:           c.traceID,
			SpanId:            c.spanID,
			Name:              "ask lumen",
			Kind:              tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: uint64(end.Add(-c.duration).UnixNano()),
			EndTimeUnixNano:   uint64(end.UnixNano()),
			Status:            status,
		}}}},
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := collectortrace.NewTraceServiceClient(conn).Export(ctx, req, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("export to the collector: %v", err)
	}
}

// lumenRequestSpans are the spans Lumen adds to a caller's trace for
// one completion on the model "tiny".
var lumenRequestSpans = []string{"POST /v1/completions", "text_completion tiny", "queue", "prefill", "decode"}

// The collector keeps whole traces that contain an error or took longer
// than the latency threshold, Lumen's spans included, and sends them to
// Jaeger; its span metrics count Lumen's requests by tenant.
func TestCollectorKeepsErrorAndSlowTraces(t *testing.T) {
	jaeger := startSink(t)
	col := startCollector(t, jaeger.addr)
	lumen := startLumen(t, "http://"+col.otlpAddr)

	// The caller's span goes first: the trace's decision is taken
	// decision_wait after its first span arrives.
	failed := newClientSpan(10*time.Millisecond, true)
	slow := newClientSpan(3*time.Second, false) // threshold_ms is 2000
	for _, c := range []clientSpan{failed, slow} {
		c.send(t, col.otlpAddr)
		lumen.completion(t, "tenant-a", c.traceparent())
	}

	complete := func(traces map[string][]sinkSpan, id string) bool {
		seen := map[string]bool{}
		for _, s := range traces[id] {
			seen[s.service+"/"+s.name] = true
		}
		if !seen["client/ask lumen"] {
			return false
		}
		for _, name := range lumenRequestSpans {
			if !seen["lumen/"+name] {
				return false
			}
		}
		return true
	}
	failedID, slowID := hex.EncodeToString(failed.traceID), hex.EncodeToString(slow.traceID)
	if !jaeger.waitFor(time.Minute, func(tr map[string][]sinkSpan) bool {
		return complete(tr, failedID) && complete(tr, slowID)
	}) {
		got := jaeger.snapshot()
		t.Fatalf("Jaeger did not get both traces whole within 1m (want client span and lumen %v)\nerror trace: %v\nslow trace: %v",
			lumenRequestSpans, got[failedID], got[slowID])
	}

	// Span metrics, computed before sampling, reach the Prometheus exporter.
	want := map[string]string{"service_name": "lumen", "span_name": "text_completion tiny", "tenant_id": "tenant-a"}
	var last error
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		calls, err := spanMetricCalls(col.spanMetricsAddr, want)
		if err == nil && calls >= 2 {
			break
		}
		last = fmt.Errorf("calls %v, err %v", calls, err)
		if time.Now().After(deadline) {
			t.Fatalf("span metrics for %v did not reach 2 calls within 1m: %v", want, last)
		}
		<-tick.C
	}
}

// spanMetricCalls scrapes the collector's span metrics and sums the
// calls of the series carrying all of want's labels.
func spanMetricCalls(addr string, want map[string]string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return 0, err
	}
	f, ok := families["traces_span_metrics_calls_total"]
	if !ok {
		return 0, fmt.Errorf("no traces_span_metrics_calls_total among %d families", len(families))
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		if hasLabels(m, want) {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum, nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}
