package benchtracing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lumenllm/lumen/internal/loadgen"
	"github.com/lumenllm/lumen/internal/telemetry"
)

// fakeTarget streams MaxTokens one-character pieces, perToken apart, and
// fails every request when fail is set.
type fakeTarget struct {
	perToken time.Duration
	fail     bool
	requests atomic.Int64
}

func (f *fakeTarget) Name() string { return "fake" }

func (f *fakeTarget) Stream(ctx context.Context, req loadgen.Request, onText func(string) error) (loadgen.Result, error) {
	f.requests.Add(1)
	if f.fail {
		return loadgen.Result{}, &loadgen.RequestError{Kind: "error", Err: errors.New("boom")}
	}
	for range req.MaxTokens {
		time.Sleep(f.perToken)
		if err := onText("x"); err != nil {
			return loadgen.Result{}, err
		}
	}
	return loadgen.Result{FinishReason: "length", PromptTokens: 4, CompletionTokens: req.MaxTokens}, nil
}

// fakeServers starts, per mode, a fake target and a /metrics page saying
// how many spans were dropped, and records which servers were stopped.
type fakeServers struct {
	t       *testing.T
	targets map[string]*fakeTarget
	stopped map[string]bool
}

func (f *fakeServers) start(_ context.Context, m Mode) (*Server, error) {
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "# TYPE lumen_spans_dropped_total counter")
		fmt.Fprintln(w, "lumen_spans_dropped_total 3")
	}))
	f.t.Cleanup(metrics.Close)
	return &Server{
		HTTPAddr: strings.TrimPrefix(metrics.URL, "http://"),
		Target:   f.targets[m.Name],
		Spans:    &SpanCounter{},
		Stop:     func() error { f.stopped[m.Name] = true; return nil },
	}, nil
}

func run(t *testing.T, off, on *fakeTarget) (string, *fakeServers, error) {
	t.Helper()
	offMode, onMode := Modes("127.0.0.1:4317")
	f := &fakeServers{t: t, targets: map[string]*fakeTarget{"off": off, "on": on}, stopped: map[string]bool{}}
	var out bytes.Buffer
	err := Run(t.Context(), &out, Config{
		Concurrency: []int{1, 2},
		Rounds:      2,
		Load:        loadgen.Config{PromptTokens: 4, MaxTokens: 4, Seed: 1},
		PerWorker:   2,
		Start:       f.start,
	}, offMode, onMode)
	return out.String(), f, err
}

// Run measures both modes at every concurrency in every round, in
// alternating order, warms each server up first, prints the ratio table
// and the exporter's drops, and stops both servers.
func TestRun(t *testing.T) {
	// "on" is four times slower per token, so its ratio is well below 1.
	off, on := &fakeTarget{perToken: time.Millisecond}, &fakeTarget{perToken: 4 * time.Millisecond}
	out, f, err := run(t, off, on)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// Warm-up: max concurrency × 1; then rounds × Σ(c × perWorker).
	const want = 2 + 2*(1*2+2*2)
	for name, tg := range map[string]*fakeTarget{"off": off, "on": on} {
		if n := tg.requests.Load(); n != want {
			t.Errorf("%s: %d requests, want %d", name, n, want)
		}
		if !f.stopped[name] {
			t.Errorf("%s server not stopped", name)
		}
	}
	for _, order := range []string{"round 1  c=1 off-first", "c=2 on-first", "round 2  c=1 on-first"} {
		if !strings.Contains(out, order) {
			t.Errorf("output lacks %q (alternating order):\n%s", order, out)
		}
	}
	row := regexp.MustCompile(`(?m)^\s*(\d)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\S+\s*$`)
	rows := row.FindAllStringSubmatch(out, -1)
	if len(rows) != 2 {
		t.Fatalf("summary has %d rows, want one per concurrency:\n%s", len(rows), out)
	}
	for _, r := range rows {
		offTPS, _ := strconv.ParseFloat(r[2], 64)
		onTPS, _ := strconv.ParseFloat(r[3], 64)
		ratio, _ := strconv.ParseFloat(r[4], 64)
		if offTPS <= 0 || onTPS <= 0 || ratio <= 0 || ratio >= 1 {
			t.Errorf("concurrency %s: off %v on %v tok/s ratio %v; want positive rates and a ratio below 1 for the slower mode", r[1], offTPS, onTPS, ratio)
		}
		if got := onTPS / offTPS; got < ratio-0.01 || got > ratio+0.01 {
			t.Errorf("concurrency %s: ratio %v is not on ÷ off (%v)", r[1], ratio, got)
		}
	}
	if !strings.Contains(out, "0 spans sampled") || !strings.Contains(out, "3 dropped by the exporter") || !strings.Contains(out, "warning: spans were dropped") {
		t.Errorf("summary does not report the spans and the drops read from /metrics:\n%s", out)
	}
}

// A failed request makes the run fail (its throughput would mean
// nothing), and both servers are still stopped.
func TestRunFailsOnAFailedRequest(t *testing.T) {
	out, f, err := run(t, &fakeTarget{}, &fakeTarget{fail: true})
	if err == nil || !strings.Contains(err.Error(), "failed") {
		t.Fatalf("err = %v, want a failed-request error\n%s", err, out)
	}
	if !f.stopped["off"] || !f.stopped["on"] {
		t.Errorf("stopped %v, want both", f.stopped)
	}
}

// The modes set the server's telemetry in Go: off is disabled, as with
// OTEL_SDK_DISABLED=true; on exports traces over OTLP gRPC and no
// metrics, samples every root span and pins the export queue to its
// defaults, so the caller's OTEL_* variables cannot change that.
func TestModesTelemetry(t *testing.T) {
	off, on := Modes("127.0.0.1:4317")
	var offCfg, onCfg telemetry.Config
	off.Telemetry(&offCfg)
	on.Telemetry(&onCfg)
	if !offCfg.Disabled || offCfg.Sampler != nil {
		t.Errorf("off: Disabled %v, Sampler %v; want disabled and no sampler", offCfg.Disabled, offCfg.Sampler)
	}
	if onCfg.Exporter != telemetry.ExporterOTLPGRPC || onCfg.MetricsExporter != telemetry.ExporterNone {
		t.Errorf("on: exporters %q and %q, want otlp-grpc and none", onCfg.Exporter, onCfg.MetricsExporter)
	}
	if onCfg.Disabled || onCfg.Sampler == nil || onCfg.Sampler.Description() != sdktrace.AlwaysSample().Description() {
		t.Errorf("on: Disabled %v, Sampler %v; want an always-on sampler", onCfg.Disabled, onCfg.Sampler)
	}
	if onCfg.MaxQueueSize != telemetry.DefaultMaxQueueSize || onCfg.MaxExportBatchSize != telemetry.DefaultMaxExportBatchSize ||
		onCfg.BatchTimeout != telemetry.DefaultBatchTimeout || onCfg.ExportTimeout != telemetry.DefaultExportTimeout {
		t.Errorf("on: queue %d, batch %d, timeouts %v and %v; want the defaults", onCfg.MaxQueueSize, onCfg.MaxExportBatchSize, onCfg.BatchTimeout, onCfg.ExportTimeout)
	}
	if !strings.Contains(on.What, "127.0.0.1:4317") || !slices.Contains(on.Args, "127.0.0.1:4317") {
		t.Errorf("on: What %q, Args %q; want both naming the endpoint", on.What, on.Args)
	}
}
