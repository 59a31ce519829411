package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/grpcclient"
	"github.com/lumenllm/lumen/internal/recorder"
	"github.com/lumenllm/lumen/internal/scheduler"
)

// A real Jaeger (v2: the OpenTelemetry Collector with Jaeger's storage and
// query extensions) for end-to-end tracing tests, built by `make tools`.

// jaegerBinary is where `make tools` puts Jaeger, relative to this
// package's directory (the tests' working directory).
const jaegerBinary = "../../bin/tools/jaeger"

// jaegerConfig keeps every Jaeger listener on 127.0.0.1, at the ports the
// LUMEN_JAEGER_*_PORT variables name.
const jaegerConfig = "testdata/jaeger.yaml"

// startJaeger starts Jaeger with in-memory storage on free loopback ports,
// waits until its query API answers and its OTLP gRPC receiver accepts
// connections, and stops it in Cleanup. It returns the OTLP gRPC endpoint
// (host:port, for --otlp-endpoint) and the query API's base URL
// (http://host:port; GET /api/traces/{id} and so on).
func startJaeger(t *testing.T) (otlpGRPC, queryURL string) {
	t.Helper()
	bin, err := filepath.Abs(filepath.FromSlash(jaegerBinary))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Jaeger is not built (%v): run `make tools` (make test does it first)", err)
	}
	config, err := filepath.Abs(jaegerConfig)
	if err != nil {
		t.Fatal(err)
	}
	// The ports are free when picked but not held: another process can
	// take one before Jaeger binds it, and then Jaeger exits at once and
	// is started again on new ports.
	var errs []error
	for attempt := range 3 {
		logPath := filepath.Join(t.TempDir(), fmt.Sprintf("jaeger-%d.log", attempt))
		j, err := launchJaeger(bin, config, logPath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.Cleanup(func() {
			if err := j.stop(); err != nil {
				t.Errorf("stopping Jaeger: %v", err)
			}
			if t.Failed() {
				t.Logf("Jaeger log:\n%s", j.log())
			}
		})
		return j.otlpGRPC, j.queryURL
	}
	t.Fatalf("Jaeger did not start: %v", errors.Join(errs...))
	return "", ""
}

// jaegerProcess is a running Jaeger.
type jaegerProcess struct {
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has been waited for
	waitErr  error         // valid once exited is closed
	logPath  string
	otlpGRPC string
	queryURL string
}

func launchJaeger(bin, config, logPath string) (*jaegerProcess, error) {
	ports, err := freeLoopbackPorts(4)
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "--config", config)
	cmd.Env = append(os.Environ(),
		"LUMEN_JAEGER_OTLP_GRPC_PORT="+strconv.Itoa(ports[0]),
		"LUMEN_JAEGER_OTLP_HTTP_PORT="+strconv.Itoa(ports[1]),
		"LUMEN_JAEGER_QUERY_HTTP_PORT="+strconv.Itoa(ports[2]),
		"LUMEN_JAEGER_QUERY_GRPC_PORT="+strconv.Itoa(ports[3]),
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	j := &jaegerProcess{
		cmd:      cmd,
		exited:   make(chan struct{}),
		logPath:  logPath,
		otlpGRPC: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		queryURL: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2])),
	}
	go func() {
		j.waitErr = cmd.Wait()
		close(j.exited)
	}()
	if err := j.waitReady(60 * time.Second); err != nil {
		_ = j.stop()
		return nil, fmt.Errorf("%w; log:\n%s", err, j.log())
	}
	return j, nil
}

// waitReady polls until the query API answers and the OTLP gRPC port
// accepts connections, the process exits, or timeout passes.
func (j *jaegerProcess) waitReady(timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	ready := func() bool {
		resp, err := client.Get(j.queryURL + "/api/services")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		c, err := net.DialTimeout("tcp", j.otlpGRPC, 2*time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	for !ready() {
		select {
		case <-j.exited:
			return fmt.Errorf("jaeger exited during startup: %v", j.waitErr)
		case <-deadline.C:
			return fmt.Errorf("jaeger not ready after %v (query %s, OTLP %s)", timeout, j.queryURL, j.otlpGRPC)
		case <-tick.C:
		}
	}
	return nil
}

// stop asks Jaeger to shut down (SIGTERM), killing it if it has not
// exited within 20s.
func (j *jaegerProcess) stop() error {
	select {
	case <-j.exited:
		return nil
	default:
	}
	if err := j.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal jaeger: %w", err)
	}
	select {
	case <-j.exited:
		return nil
	case <-time.After(20 * time.Second):
		_ = j.cmd.Process.Kill()
		<-j.exited
		return errors.New("jaeger ignored SIGTERM for 20s and was killed")
	}
}

func (j *jaegerProcess) log() string {
	b, err := os.ReadFile(j.logPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// freeLoopbackPorts returns n distinct TCP ports free on 127.0.0.1 now.
func freeLoopbackPorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		// Held until all are picked, so the n ports differ.
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Jaeger's query API JSON (the shape its UI reads), as much as the tests
// need.
type (
	jaegerTrace struct {
		TraceID   string                   `json:"traceID"`
		Spans     []jaegerSpan             `json:"spans"`
		Processes map[string]jaegerProcInf `json:"processes"`
	}
	jaegerSpan struct {
		TraceID       string      `json:"traceID"`
		SpanID        string      `json:"spanID"`
		OperationName string      `json:"operationName"`
		References    []jaegerRef `json:"references"`
		StartTime     int64       `json:"startTime"` // µs since the epoch
		Duration      int64       `json:"duration"`  // µs
		Tags          []jaegerKV  `json:"tags"`
		ProcessID     string      `json:"processID"`
	}
	jaegerRef struct {
		RefType string `json:"refType"` // CHILD_OF or FOLLOWS_FROM
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}
	jaegerKV struct {
		Key   string `json:"key"`
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
	jaegerProcInf struct {
		ServiceName string `json:"serviceName"`
	}
	jaegerResponse struct {
		Data   []jaegerTrace `json:"data"`
		Errors []struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		} `json:"errors"`
	}
)

// tag returns the value of the span's tag key, and whether it has one.
func (s jaegerSpan) tag(key string) (any, bool) {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// parent is the span id of the span's CHILD_OF reference, or "".
func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// spanNames lists a trace's operation names, sorted (for messages).
func (tr jaegerTrace) spanNames() []string {
	var names []string
	for _, s := range tr.Spans {
		names = append(names, s.OperationName)
	}
	slices.Sort(names)
	return names
}

// errTraceNotFound is returned by getJaegerTrace while Jaeger has no
// span of the trace.
var errTraceNotFound = errors.New("trace not found")

// getJaegerTrace fetches one trace from Jaeger's query API.
func getJaegerTrace(ctx context.Context, queryURL, traceID string) (jaegerTrace, error) {
	traces, err := jaegerQuery(ctx, queryURL+"/api/traces/"+url.PathEscape(traceID))
	if err != nil {
		return jaegerTrace{}, err
	}
	if len(traces) != 1 {
		return jaegerTrace{}, fmt.Errorf("GET trace %s: %d traces in the answer", traceID, len(traces))
	}
	return traces[0], nil
}

// findJaegerTraces searches Jaeger's query API (service, operation,
// limit, lookback, tags...).
func findJaegerTraces(ctx context.Context, queryURL string, params url.Values) ([]jaegerTrace, error) {
	return jaegerQuery(ctx, queryURL+"/api/traces?"+params.Encode())
}

func jaegerQuery(ctx context.Context, u string) ([]jaegerTrace, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("GET %s: %w", u, errTraceNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	var r jaegerResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("GET %s: decoding: %w", u, err)
	}
	if len(r.Errors) > 0 {
		return nil, fmt.Errorf("GET %s: %d: %s", u, r.Errors[0].Code, r.Errors[0].Msg)
	}
	return r.Data, nil
}

// pollUntil calls check every 100ms until it returns nil, failing the
// test with check's last error once timeout has passed. Exports arrive
// asynchronously, so this bounded poll is how tests wait for them.
func pollUntil(t *testing.T, timeout time.Duration, check func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %v: %v", timeout, err)
		case <-tick.C:
		}
	}
}

// waitForJaegerTrace polls until the trace is in Jaeger and complete says
// it has every span expected (nil when it does), and returns it.
func waitForJaegerTrace(t *testing.T, queryURL, traceID string, complete func(jaegerTrace) error) jaegerTrace {
	t.Helper()
	var tr jaegerTrace
	pollUntil(t, 30*time.Second, func(ctx context.Context) error {
		var err error
		tr, err = getJaegerTrace(ctx, queryURL, traceID)
		if err != nil {
			return err
		}
		if err := complete(tr); err != nil {
			return fmt.Errorf("trace %s incomplete (spans %q): %w", traceID, tr.spanNames(), err)
		}
		return nil
	})
	return tr
}

// hasSpans is a completeness check: the trace has spans with these
// operation names (at least as many of each as listed).
func hasSpans(names ...string) func(jaegerTrace) error {
	return func(tr jaegerTrace) error {
		have := tr.spanNames()
		for _, n := range names {
			i := slices.Index(have, n)
			if i < 0 {
				return fmt.Errorf("no %q span yet", n)
			}
			have = slices.Delete(have, i, i+1)
		}
		return nil
	}
}

// jaegerInt reads a numeric tag value (JSON numbers decode as float64).
func jaegerInt(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), n == float64(int64(n))
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	}
	return 0, false
}

// tagString renders a tag value for comparisons and messages.
func tagString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if i, ok := jaegerInt(v); ok {
		return strconv.FormatInt(i, 10)
	}
	return strings.TrimSpace(fmt.Sprint(v))
}

// rpcResult is what a test call's reply says about its request.
type rpcResult struct {
	id      string
	finish  lumenv1.FinishReason
	usage   *lumenv1.Usage
	traceID string
}

// TestTracingEndToEndJaeger: a caller's trace context goes in over gRPC,
// and the spans Jaeger stores form the documented tree under the caller's
// span, with batch spans in traces of their own linked to the request.
func TestTracingEndToEndJaeger(t *testing.T) {
	otlp, queryURL := startJaeger(t)
	const service = "lumen-e2e"
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // export within 100ms of a span's end
	t.Setenv("OTEL_SERVICE_NAME", service)
	gate := &gatedEngine{}
	// One slot and one queue place, so that a third request is refused.
	httpAddr, grpcAddr := startServeHooked(t, serveHooks{engine: func(e scheduler.Engine) scheduler.Engine { gate.Engine = e; return gate }}, nil,
		"--otlp-endpoint", otlp, "--batch-span-rate", "0", // every step's batch span
		"--parallel", "1", "--max-queue", "1")
	client, err := grpcclient.New(grpcclient.Config{Addr: grpcAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	const maxTokens = 6
	tests := []struct {
		name       string
		traceID    string   // the caller's trace, continued by the server
		callerSpan string   // the caller's span, the server span's parent
		rpcSpan    string   // otelgrpc's server span
		request    string   // the request span
		operation  string   // gen_ai.operation.name
		prepare    []string // the prepare span's children
		call       func(ctx context.Context) (rpcResult, error)
	}{
		{
			name:       "unary completion",
			traceID:    "4bf92f3577b34da6a3ce929d0e0e4736",
			callerSpan: "00f067aa0ba902b7",
			rpcSpan:    "lumen.v1.LumenService/Generate",
			request:    "text_completion tiny",
			operation:  "text_completion",
			prepare:    []string{"tokenize"},
			call: func(ctx context.Context) (rpcResult, error) {
				resp, err := client.Generate(ctx, &lumenv1.GenerateRequest{
					Prompt: "Once upon a time", MaxTokens: maxTokens, Temperature: proto.Float32(0)})
				if err != nil {
					return rpcResult{}, err
				}
				return rpcResult{resp.GetId(), resp.GetFinishReason(), resp.GetUsage(), resp.GetTraceId()}, nil
			},
		},
		{
			name:       "streamed chat",
			traceID:    "0af7651916cd43dd8448eb211c80319c",
			callerSpan: "b7ad6b7169203331",
			rpcSpan:    "lumen.v1.LumenService/GenerateStream",
			request:    "chat tiny",
			operation:  "chat",
			prepare:    []string{"template", "tokenize"},
			call: func(ctx context.Context) (rpcResult, error) {
				last, err := client.Stream(ctx, &lumenv1.GenerateStreamRequest{
					Messages:  []*lumenv1.ChatMessage{{Role: "user", Content: "Hello"}},
					MaxTokens: maxTokens, Temperature: proto.Float32(0),
				}, func(*lumenv1.GenerateStreamResponse) error { return nil })
				if err != nil {
					return rpcResult{}, err
				}
				return rpcResult{last.GetId(), last.GetFinishReason(), last.GetUsage(), last.GetTraceId()}, nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(context.Background(),
				"traceparent", "00-"+tt.traceID+"-"+tt.callerSpan+"-01")
			res, err := tt.call(ctx)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if res.traceID != tt.traceID {
				t.Fatalf("reply trace_id %q, want the caller's trace %s", res.traceID, tt.traceID)
			}
			if res.finish != lumenv1.FinishReason_FINISH_REASON_LENGTH || res.usage.GetCompletionTokens() != maxTokens || res.usage.GetPromptTokens() == 0 {
				t.Fatalf("reply: finish %v, usage %v; want %d completion tokens", res.finish, res.usage, maxTokens)
			}

			want := append([]string{tt.rpcSpan, tt.request, "prepare", "queue", "prefill", "decode"}, tt.prepare...)
			tr := waitForJaegerTrace(t, queryURL, tt.traceID, hasSpans(want...))
			slices.Sort(want)
			if got := tr.spanNames(); !slices.Equal(got, want) {
				t.Errorf("trace spans %q, want exactly %q", got, want)
			}
			byName := map[string]jaegerSpan{}
			for _, s := range tr.Spans {
				byName[s.OperationName] = s
				if p := tr.Processes[s.ProcessID]; p.ServiceName != service {
					t.Errorf("span %q: service %q, want %q", s.OperationName, p.ServiceName, service)
				}
			}
			rpc, req := byName[tt.rpcSpan], byName[tt.request]

			// The tree: caller → gRPC server span → request → phases.
			if p := rpc.parent(); p != tt.callerSpan {
				t.Errorf("%s: parent %q, want the caller's span %s", tt.rpcSpan, p, tt.callerSpan)
			}
			for key, want := range map[string]string{"span.kind": "server", "rpc.method": tt.rpcSpan, "rpc.response.status_code": "OK"} {
				if v, _ := rpc.tag(key); v != want {
					t.Errorf("%s: %s = %v, want %s", tt.rpcSpan, key, v, want)
				}
			}
			if p := req.parent(); p != rpc.SpanID {
				t.Errorf("%s: parent %q, want the gRPC server span %s", tt.request, p, rpc.SpanID)
			}
			var children []string
			for _, s := range tr.Spans {
				if s.parent() == req.SpanID {
					children = append(children, s.OperationName)
					if !within(s, req) {
						t.Errorf("%s [%d +%dµs] is not within its parent [%d +%dµs]", s.OperationName, s.StartTime, s.Duration, req.StartTime, req.Duration)
					}
				}
			}
			slices.Sort(children)
			if want := []string{"decode", "prefill", "prepare", "queue"}; !slices.Equal(children, want) {
				t.Errorf("children of %s: %q, want %q", tt.request, children, want)
			}
			if !within(req, rpc) {
				t.Errorf("request span [%d +%dµs] is not within the gRPC span [%d +%dµs]", req.StartTime, req.Duration, rpc.StartTime, rpc.Duration)
			}

			// GenAI attributes; token counts as the reply reported them.
			u := res.usage
			wantTags := []struct {
				span jaegerSpan
				key  string
				want string
			}{
				{req, "gen_ai.operation.name", tt.operation},
				{req, "gen_ai.provider.name", "lumen"},
				{req, "gen_ai.request.model", "tiny"},
				{req, "gen_ai.request.max_tokens", strconv.Itoa(maxTokens)},
				{req, "gen_ai.response.id", res.id},
				{req, "gen_ai.usage.input_tokens", strconv.Itoa(int(u.GetPromptTokens()))},
				{req, "gen_ai.usage.output_tokens", strconv.Itoa(int(u.GetCompletionTokens()))},
				{req, "lumen.prompt_tokens_cached", strconv.Itoa(int(u.GetCachedTokens()))},
				// Phase spans count under lumen.* names: gen_ai.usage.* is
				// the request span's alone, so summing it counts once.
				{byName["prefill"], "lumen.prefill.tokens", strconv.Itoa(int(u.GetPromptTokens()))},
				{byName["decode"], "lumen.decode.tokens", strconv.Itoa(int(u.GetCompletionTokens()))},
			}
			for _, w := range wantTags {
				v, ok := w.span.tag(w.key)
				if !ok || tagString(v) != w.want {
					t.Errorf("%s: %s = %v (present %v), want %s", w.span.OperationName, w.key, v, ok, w.want)
				}
			}
			for _, name := range []string{"prefill", "decode"} {
				for _, key := range []string{"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"} {
					if v, ok := byName[name].tag(key); ok {
						t.Errorf("%s span repeats %s = %v", name, key, v)
					}
				}
			}
			if v, _ := req.tag("gen_ai.response.finish_reasons"); !strings.Contains(tagString(v), "length") {
				t.Errorf("gen_ai.response.finish_reasons = %v, want length", v)
			}

			// Batch spans: roots of their own traces, FOLLOWS_FROM the
			// request, one per engine step that carried it (each prefill
			// chunk, then each decode step).
			chunks, _ := byName["prefill"].tag("lumen.prefill.chunks")
			steps, _ := byName["decode"].tag("lumen.decode.steps")
			nChunks, ok1 := jaegerInt(chunks)
			nSteps, ok2 := jaegerInt(steps)
			if !ok1 || !ok2 || nChunks < 1 || nSteps != int64(u.GetCompletionTokens())-1 {
				t.Fatalf("lumen.prefill.chunks = %v, lumen.decode.steps = %v; want ≥ 1 and %d", chunks, steps, u.GetCompletionTokens()-1)
			}
			pollUntil(t, 30*time.Second, func(ctx context.Context) error {
				traces, err := findJaegerTraces(ctx, queryURL, url.Values{
					"service": {service}, "operation": {"batch"}, "limit": {"10000"}, "lookback": {"1h"}})
				if err != nil {
					return err
				}
				linked := 0
				for _, bt := range traces {
					for _, s := range bt.Spans {
						if s.OperationName != "batch" || !followsFrom(s, tt.traceID, req.SpanID) {
							continue
						}
						linked++
						// And back: the request's prefill or decode span
						// follows from each of its steps (up to MaxStepLinks).
						if !followsFrom(byName["prefill"], s.TraceID, s.SpanID) && !followsFrom(byName["decode"], s.TraceID, s.SpanID) &&
							len(byName["decode"].References) < 1+recorder.MaxStepLinks {
							t.Errorf("batch span %s is not linked from the request's prefill or decode span", s.SpanID)
						}
						if s.TraceID == tt.traceID || s.parent() != "" {
							t.Errorf("batch span %s: trace %s, parent %q; want a root span of its own trace", s.SpanID, s.TraceID, s.parent())
						}
						if n, ok := s.tag("lumen.batch.size"); !ok || tagString(n) == "0" {
							t.Errorf("batch span %s: lumen.batch.size = %v", s.SpanID, n)
						}
					}
				}
				if want := int(nChunks + nSteps); linked != want {
					return fmt.Errorf("%d of %d batch traces follow from request span %s, want %d (%d prefill chunks + %d decode steps)",
						linked, len(traces), req.SpanID, want, nChunks, nSteps)
				}
				return nil
			})
		})
	}

	// A refused request shows as an error in Jaeger: its request span
	// (under the caller's span, with its prepare child) has status Error
	// and error.type queue_full, and the gRPC span names the same kind.
	t.Run("refused: queue full", func(t *testing.T) {
		release, held := gate.arm(1)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer release() // before waiting for the held requests
		hold := func() {
			wg.Go(func() {
				if _, err := client.Generate(context.Background(), &lumenv1.GenerateRequest{Prompt: "Hold", MaxTokens: 2}); err != nil {
					t.Errorf("held request: %v", err)
				}
			})
		}
		hold() // takes the slot; its first step is held
		<-held
		hold() // takes the queue place
		waitSubmitted(t, httpAddr, 2)
		const traceID, callerSpan = "7e1b2a9d4c3f5e6a8b0c1d2e3f4a5b6c", "1a2b3c4d5e6f7a8b"
		ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+traceID+"-"+callerSpan+"-01")
		_, err := client.Generate(ctx, &lumenv1.GenerateRequest{Prompt: "Refuse me", MaxTokens: 2})
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("third request: %v, want RESOURCE_EXHAUSTED", err)
		}
		release()
		const rpcName, reqName = "lumen.v1.LumenService/Generate", "text_completion tiny"
		tr := waitForJaegerTrace(t, queryURL, traceID, hasSpans(rpcName, reqName, "prepare", "tokenize"))
		byName := map[string]jaegerSpan{}
		for _, s := range tr.Spans {
			byName[s.OperationName] = s
		}
		rpc, req := byName[rpcName], byName[reqName]
		if rpc.parent() != callerSpan || req.parent() != rpc.SpanID || byName["prepare"].parent() != req.SpanID {
			t.Errorf("tree: %s under %q, %s under %q, prepare under %q; want caller → rpc → request → prepare",
				rpcName, rpc.parent(), reqName, req.parent(), byName["prepare"].parent())
		}
		for _, w := range []struct {
			span      jaegerSpan
			key, want string
		}{
			{req, "otel.status_code", "ERROR"},
			{req, "error.type", "queue_full"},
			{rpc, "rpc.response.status_code", "RESOURCE_EXHAUSTED"},
			{rpc, "error.type", "queue_full"},
		} {
			if v, ok := w.span.tag(w.key); !ok || tagString(v) != w.want {
				t.Errorf("%s: %s = %v (present %v), want %s", w.span.OperationName, w.key, v, ok, w.want)
			}
		}
		if v, ok := req.tag("error"); !ok || v != true {
			t.Errorf("%s: error tag = %v (present %v), want true", reqName, v, ok)
		}
	})
}

// within says whether s lies inside parent's time span (Jaeger keeps
// microseconds; a rounding step of slack).
func within(s, parent jaegerSpan) bool {
	const slack = 2 // µs
	return s.StartTime+slack >= parent.StartTime && s.StartTime+s.Duration <= parent.StartTime+parent.Duration+slack
}

// followsFrom says whether s has a FOLLOWS_FROM reference to the span.
func followsFrom(s jaegerSpan, traceID, spanID string) bool {
	for _, r := range s.References {
		if r.RefType == "FOLLOWS_FROM" && r.TraceID == traceID && r.SpanID == spanID {
			return true
		}
	}
	return false
}
