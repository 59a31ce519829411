package main

// The trace fixtures under testdata/traces come from Lumen itself:
//
//	go test ./cmd/lumen -run TestTraceFixture -update
//
// runs `lumen serve` in-process with its OTLP/HTTP exporter pointed at a
// receiver here, sends requests over gRPC and HTTP from two tenants (one
// continuing a caller's traceparent), stops the server so it flushes, and
// writes what arrived as OTLP JSON (one export request per line, as the
// Collector's file exporter writes it). The Jaeger fixture is converted
// from the same spans by jaegerFromOTLP below, the way Jaeger's own OTLP
// translation does it; it was not recorded from a real Jaeger.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/grpcclient"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/synth"
	"github.com/lumenllm/lumen/internal/traceanalyze"
)

var updateTraceFixtures = flag.Bool("update", false, "rewrite testdata/traces from a live lumen serve")

const (
	otlpFixture   = "testdata/traces/lumen-otlp.json"
	jaegerFixture = "testdata/traces/lumen-jaeger-converted.json"
	// callerTraceID is the trace the traceparent request continues.
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
)

// otlpReceiver is an OTLP/HTTP traces endpoint that keeps what it gets.
type otlpReceiver struct {
	mu   sync.Mutex
	reqs []*coltracepb.ExportTraceServiceRequest
	errs []error
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	b, err := otlpBody(r)
	if err != nil {
		o.fail(w, err)
		return
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		o.fail(w, err)
		return
	}
	o.mu.Lock()
	o.reqs = append(o.reqs, req)
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (o *otlpReceiver) fail(w http.ResponseWriter, err error) {
	o.mu.Lock()
	o.errs = append(o.errs, err)
	o.mu.Unlock()
	http.Error(w, err.Error(), http.StatusBadRequest)
}

// startTracedServe is startServe with its OTLP/HTTP exporter pointed at
// collector; stop ends the server, which flushes its spans, and waits.
func startTracedServe(t *testing.T, collector string) (httpAddr, grpcAddr string, stop func()) {
	t.Helper()
	cfg, err := synth.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := synth.WriteFile(model, cfg, nil); err != nil {
		t.Fatal(err)
	}
	args := []string{"--model", model, "--threads", "1", "--ctx-size", "2048", "--parallel", "4",
		"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
		"--trace-exporter", "otlp-http", "--otlp-endpoint", collector,
		"--batch-span-rate", "0"} // every engine step's batch span
	// Small export batches, so the fixture has several lines, as a
	// Collector's file exporter writes over time.
	t.Setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16")
	ready := make(chan [2]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServeHooked(ctx, args, env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }},
			serveHooks{ready: ready, engine: func(e scheduler.Engine) scheduler.Engine { return &patientEngine{Engine: e} }})
	}()
	select {
	case addrs := <-ready:
		httpAddr, grpcAddr = addrs[0], addrs[1]
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return httpAddr, grpcAddr, stop
}

// sentRequest is one request of the fixture session and the usage its
// reply reported.
type sentRequest struct {
	name          string
	tenant        string
	input, output int64
	traceID       string // from the reply
}

// fixtureSession sends the fixture's requests concurrently, so that they
// share engine steps, and returns what each reply reported.
func fixtureSession(t *testing.T, httpAddr, grpcAddr string) []sentRequest {
	t.Helper()
	type result struct {
		r   sentRequest
		err error
	}
	httpCall := func(name, tenant, path, body string, header map[string]string) result {
		req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+path, strings.NewReader(body))
		if err != nil {
			return result{err: err}
		}
		req.Header.Set("Content-Type", "application/json")
		if tenant != "" {
			req.Header.Set("X-Tenant-ID", tenant)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return result{err: err}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return result{err: fmt.Errorf("%s: status %d %s: %v", name, resp.StatusCode, b, err)}
		}
		var out struct {
			Usage struct {
				PromptTokens     int64 `json:"prompt_tokens"`
				CompletionTokens int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return result{err: fmt.Errorf("%s: %w: %s", name, err, b)}
		}
		tp := strings.Split(resp.Header.Get("traceparent"), "-")
		if len(tp) != 4 {
			return result{err: fmt.Errorf("%s: traceparent %q", name, resp.Header.Get("traceparent"))}
		}
		return result{r: sentRequest{name, tenant, out.Usage.PromptTokens, out.Usage.CompletionTokens, tp[1]}}
	}
	client, err := grpcclient.New(grpcclient.Config{Addr: grpcAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	withTenant := func(tenant string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "baggage", "tenant.id="+tenant)
	}
	temp := float32(0)
	calls := []func() result{
		func() result {
			return httpCall("chat", "acme", "/v1/chat/completions",
				`{"messages":[{"role":"user","content":"Hello there"}],"max_tokens":8,"temperature":0}`, nil)
		},
		func() result {
			return httpCall("completion", "globex", "/v1/completions", `{"prompt":"Once upon a time","max_tokens":6,"temperature":0}`, nil)
		},
		func() result {
			return httpCall("generate with traceparent", "acme", "/generate", `{"prompt":"The quick brown fox","max_tokens":5,"temperature":0}`,
				map[string]string{"traceparent": "00-" + callerTraceID + "-" + callerSpanID + "-01"})
		},
		func() result {
			return httpCall("no tenant", "", "/v1/completions", `{"prompt":"Hi","max_tokens":4,"temperature":0}`, nil)
		},
		func() result {
			resp, err := client.Generate(withTenant("globex"), &lumenv1.GenerateRequest{Prompt: "Hello", MaxTokens: 7, Temperature: &temp})
			if err != nil {
				return result{err: fmt.Errorf("grpc generate: %w", err)}
			}
			u := resp.GetUsage()
			return result{r: sentRequest{"grpc generate", "globex", int64(u.GetPromptTokens()), int64(u.GetCompletionTokens()), resp.GetTraceId()}}
		},
		func() result {
			last, err := client.Stream(withTenant("acme"), &lumenv1.GenerateStreamRequest{Prompt: "A long time ago", MaxTokens: 6, Temperature: &temp},
				func(*lumenv1.GenerateStreamResponse) error { return nil })
			if err != nil {
				return result{err: fmt.Errorf("grpc stream: %w", err)}
			}
			u := last.GetUsage()
			return result{r: sentRequest{"grpc stream", "acme", int64(u.GetPromptTokens()), int64(u.GetCompletionTokens()), last.GetTraceId()}}
		},
	}
	results := make([]result, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() { results[i] = call() })
	}
	wg.Wait()
	var sent []sentRequest
	for _, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		sent = append(sent, r.r)
	}
	return sent
}

// TestTraceFixture records a live session's spans and checks that the
// analysis of them agrees with what the replies reported; with -update it
// also rewrites the committed fixtures.
func TestTraceFixture(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	httpAddr, grpcAddr, stop := startTracedServe(t, collector.URL)
	sent := fixtureSession(t, httpAddr, grpcAddr)
	stop() // flushes telemetry
	recv.mu.Lock()
	reqs, errs := recv.reqs, recv.errs
	recv.mu.Unlock()
	if len(errs) > 0 || len(reqs) == 0 {
		t.Fatalf("receiver got %d export requests, errors %v", len(reqs), errs)
	}

	var lines [][]byte
	for _, r := range reqs {
		b, err := traceanalyze.MarshalOTLPJSON(&tracepb.TracesData{ResourceSpans: r.ResourceSpans})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, b)
	}
	otlpJSON := append(bytes.Join(lines, []byte("\n")), '\n')
	spans, err := traceanalyze.Decode(otlpJSON, traceanalyze.FormatOTLP)
	if err != nil {
		t.Fatal(err)
	}
	report, err := traceanalyze.Analyze(spans, traceanalyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstReplies(t, report, sent)

	jaeger, err := jaegerFromOTLP(reqs)
	if err != nil {
		t.Fatal(err)
	}
	if *updateTraceFixtures {
		if err := os.WriteFile(otlpFixture, otlpJSON, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(jaegerFixture, jaeger, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes) and %s (%d bytes)", otlpFixture, len(otlpJSON), jaegerFixture, len(jaeger))
	}
}

// checkAgainstReplies compares an analysis with the usage the replies
// reported and with the shape of Lumen's spans.
func checkAgainstReplies(t *testing.T, r *traceanalyze.Report, sent []sentRequest) {
	t.Helper()
	if r.Requests != len(sent) {
		t.Fatalf("analysis found %d requests, sent %d", r.Requests, len(sent))
	}
	want := map[string][2]int64{}
	var all [2]int64
	for _, s := range sent {
		tenant := cmp0(s.tenant, traceanalyze.NoTenant)
		w := want[tenant]
		want[tenant] = [2]int64{w[0] + s.input, w[1] + s.output}
		all[0] += s.input
		all[1] += s.output
	}
	got := map[string][2]int64{}
	for _, u := range r.Tenants {
		got[u.Name] = [2]int64{u.InputTokens, u.OutputTokens}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tokens by tenant (input, output) = %v, replies say %v", got, want)
	}
	if len(r.Models) != 1 || r.Models[0].Name != "tiny" || r.Models[0].InputTokens != all[0] || r.Models[0].OutputTokens != all[1] {
		t.Errorf("models = %+v, want tiny with %v", r.Models, all)
	}
	traceIDs := map[string]bool{}
	for _, q := range r.RequestList {
		traceIDs[q.TraceID] = true
		if q.Queue <= 0 || q.Prefill <= 0 || q.Decode <= 0 {
			t.Errorf("request %s in trace %s lacks a phase: %+v", q.Name, q.TraceID, q)
		}
	}
	for _, s := range sent {
		if !traceIDs[s.traceID] {
			t.Errorf("%s: reply names trace %s, which has no request span", s.name, s.traceID)
		}
	}
	if !traceIDs[callerTraceID] {
		t.Errorf("the caller's trace %s was not continued", callerTraceID)
	}
	if c := r.Contention; c.LinkedRequests != len(sent) || c.AttrRequests != len(sent) || c.MaxBatchLinked < 2 {
		t.Errorf("contention = %+v: want every request linked from batch spans, some steps shared", c)
	}
	if len(r.CriticalPaths) != len(sent) {
		t.Errorf("%d critical paths, want one per request trace (%d)", len(r.CriticalPaths), len(sent))
	}
	for _, p := range r.CriticalPaths {
		if n := len(p.Chain); n < 5 || !slices.Equal(p.Chain[n-3:], []string{"queue", "prefill", "decode"}) {
			t.Errorf("critical path of %s = %q, want transport → request → queue → prefill → decode", p.TraceID, p.Chain)
		}
	}
}

func cmp0(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// jaegerFromOTLP converts export requests to Jaeger's query API JSON the
// way Jaeger translates OTLP: the parent becomes a CHILD_OF reference,
// links FOLLOWS_FROM references after it, kind (but internal) and status
// become tags, times are cut to microseconds, arrays become JSON strings.
func jaegerFromOTLP(reqs []*coltracepb.ExportTraceServiceRequest) ([]byte, error) {
	type kv struct {
		Key   string `json:"key"`
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
	type ref struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}
	type span struct {
		TraceID       string `json:"traceID"`
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []ref  `json:"references"`
		StartTime     uint64 `json:"startTime"`
		Duration      uint64 `json:"duration"`
		Tags          []kv   `json:"tags"`
		ProcessID     string `json:"processID"`
	}
	type process struct {
		ServiceName string `json:"serviceName"`
		Tags        []kv   `json:"tags"`
	}
	type trace struct {
		TraceID   string             `json:"traceID"`
		Spans     []span             `json:"spans"`
		Processes map[string]process `json:"processes"`
	}
	tag := func(k string, v *commonpb.AnyValue) kv {
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_BoolValue:
			return kv{k, "bool", x.BoolValue}
		case *commonpb.AnyValue_IntValue:
			return kv{k, "int64", x.IntValue}
		case *commonpb.AnyValue_DoubleValue:
			return kv{k, "float64", x.DoubleValue}
		case *commonpb.AnyValue_ArrayValue:
			var vals []any
			for _, e := range x.ArrayValue.GetValues() {
				vals = append(vals, e.GetStringValue())
			}
			b, _ := json.Marshal(vals)
			return kv{k, "string", string(b)}
		}
		return kv{k, "string", v.GetStringValue()}
	}
	kinds := map[tracepb.Span_SpanKind]string{
		tracepb.Span_SPAN_KIND_SERVER: "server", tracepb.Span_SPAN_KIND_CLIENT: "client",
		tracepb.Span_SPAN_KIND_PRODUCER: "producer", tracepb.Span_SPAN_KIND_CONSUMER: "consumer",
	} // INTERNAL gets no span.kind tag

	byID := map[string]*trace{}
	var order []string
	for _, req := range reqs {
		for _, rs := range req.GetResourceSpans() {
			var p process
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					p.ServiceName = a.GetValue().GetStringValue()
				} else {
					p.Tags = append(p.Tags, tag(a.GetKey(), a.GetValue()))
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					tid := hex.EncodeToString(s.GetTraceId())
					tr := byID[tid]
					if tr == nil {
						tr = &trace{TraceID: tid, Processes: map[string]process{}}
						byID[tid] = tr
						order = append(order, tid)
					}
					pid := ""
					for id, have := range tr.Processes {
						if have.ServiceName == p.ServiceName {
							pid = id
						}
					}
					if pid == "" {
						pid = fmt.Sprintf("p%d", len(tr.Processes)+1)
						tr.Processes[pid] = p
					}
					js := span{
						TraceID: tid, SpanID: hex.EncodeToString(s.GetSpanId()), OperationName: s.GetName(),
						StartTime: s.GetStartTimeUnixNano() / 1000,
						Duration:  (s.GetEndTimeUnixNano() - s.GetStartTimeUnixNano()) / 1000,
						ProcessID: pid, References: []ref{},
					}
					if len(s.GetParentSpanId()) > 0 {
						js.References = append(js.References, ref{"CHILD_OF", tid, hex.EncodeToString(s.GetParentSpanId())})
					}
					for _, l := range s.GetLinks() {
						js.References = append(js.References, ref{"FOLLOWS_FROM", hex.EncodeToString(l.GetTraceId()), hex.EncodeToString(l.GetSpanId())})
					}
					js.Tags = append(js.Tags, kv{"otel.scope.name", "string", ss.GetScope().GetName()})
					if k, ok := kinds[s.GetKind()]; ok {
						js.Tags = append(js.Tags, kv{"span.kind", "string", k})
					}
					if s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
						js.Tags = append(js.Tags, kv{"otel.status_code", "string", "ERROR"}, kv{"error", "bool", true})
					}
					for _, a := range s.GetAttributes() {
						js.Tags = append(js.Tags, tag(a.GetKey(), a.GetValue()))
					}
					tr.Spans = append(tr.Spans, js)
				}
			}
		}
	}
	out := struct {
		Data   []*trace `json:"data"`
		Total  int      `json:"total"`
		Limit  int      `json:"limit"`
		Offset int      `json:"offset"`
		Errors []any    `json:"errors"`
	}{}
	for _, id := range order {
		out.Data = append(out.Data, byID[id])
	}
	return json.Marshal(out)
}

// patientEngine holds steps that decode one sequence alone back a little
// (at most a second in all), so that the fixture's concurrent requests
// share steps even on a loaded machine: the tiny model would otherwise
// finish one before the next arrives.
type patientEngine struct {
	scheduler.Engine
	pending map[int]bool // slots in the batch being built
	waited  int
}

func (p *patientEngine) Add(tok int32, pos, slot int, logits bool) (int, error) {
	if p.pending == nil {
		p.pending = map[int]bool{}
	}
	p.pending[slot] = true
	return p.Engine.Add(tok, pos, slot, logits)
}

func (p *patientEngine) Decode() error {
	if len(p.pending) < 2 && p.waited < 100 {
		p.waited++
		time.Sleep(10 * time.Millisecond)
	}
	clear(p.pending)
	return p.Engine.Decode()
}
