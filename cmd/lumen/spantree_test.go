package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// spanLog records ended spans and signals each one, so tests wait for
// spans without sleeping.
type spanLog struct {
	*tracetest.SpanRecorder
	ended chan struct{}
}

func newSpanLog() *spanLog {
	return &spanLog{SpanRecorder: tracetest.NewSpanRecorder(), ended: make(chan struct{}, 1)}
}

func (l *spanLog) OnEnd(s sdktrace.ReadOnlySpan) {
	l.SpanRecorder.OnEnd(s)
	select {
	case l.ended <- struct{}{}:
	default:
	}
}

// waitFor returns the ended spans once cond holds for them.
func (l *spanLog) waitFor(t *testing.T, what string, cond func([]sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		spans := l.Ended()
		if cond(spans) {
			return spans
		}
		select {
		case <-l.ended:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; recorded:\n%s", what, describeSpans(spans))
		}
	}
}

func describeSpans(spans []sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s trace=%s span=%s parent=%s links=%d\n", s.Name(), s.SpanContext().TraceID(),
			s.SpanContext().SpanID(), s.Parent().SpanID(), len(s.Links()))
	}
	return b.String()
}

// caller is a span of a client that calls Lumen: its traceparent.
type caller struct {
	traceID trace.TraceID
	spanID  trace.SpanID
}

func newCaller(t *testing.T) caller {
	var c caller
	if _, err := rand.Read(c.traceID[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(c.spanID[:]); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c caller) traceparent() string { return fmt.Sprintf("00-%s-%s-01", c.traceID, c.spanID) }

// post POSTs a JSON body to url as the caller (its traceparent, and the
// headers kv as name, value pairs); the response body is closed at the
// test's end.
func (c caller) post(t *testing.T, url, body string, kv ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", c.traceparent())
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// wantTree is the span story one request must leave.
type wantTree struct {
	caller        caller
	transport     string // otelgrpc / otelhttp span name
	operation     string // "{gen_ai.operation.name} {model}"
	inputTokens   int
	outputTokens  int
	tenant        string
	finish        string // finish reason the reply gave
	responseTrace string // trace id the reply named
	server        string // host:port the request was sent to (server.address, server.port)
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// linkedBatches are the batch spans with a link to span sc, each with
// that link's attributes.
func linkedBatches(spans []sdktrace.ReadOnlySpan, sc trace.SpanContext) (prefill, decode []map[attribute.Key]attribute.Value) {
	for _, s := range spans {
		if s.Name() != semconv.SpanBatch {
			continue
		}
		for _, l := range s.Links() {
			if l.SpanContext.SpanID() != sc.SpanID() || l.SpanContext.TraceID() != sc.TraceID() {
				continue
			}
			m := map[attribute.Key]attribute.Value{}
			for _, kv := range l.Attributes {
				m[kv.Key] = kv.Value
			}
			if m["lumen.decode"].AsBool() {
				decode = append(decode, m)
			} else {
				prefill = append(prefill, m)
			}
		}
	}
	return prefill, decode
}

// spansByName indexes by name the spans of one trace (the last of a name).
func spansByName(spans []sdktrace.ReadOnlySpan, id trace.TraceID) map[string]sdktrace.ReadOnlySpan {
	out := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.SpanContext().TraceID() == id {
			out[s.Name()] = s
		}
	}
	return out
}

// waitForTree waits until the request's spans have all ended, the
// transport span included, and every engine step it took part in has
// its batch span.
func waitForTree(t *testing.T, log *spanLog, w wantTree) []sdktrace.ReadOnlySpan {
	t.Helper()
	return log.waitFor(t, "the span tree of "+w.transport, func(spans []sdktrace.ReadOnlySpan) bool {
		named := spansByName(spans, w.caller.traceID)
		transport, decode := named[w.transport], named[semconv.SpanDecode]
		if transport == nil || decode == nil {
			return false
		}
		_, links := linkedBatches(spans, decode.Parent())
		return len(links) == int(attrs(decode)[semconv.AttrSteps].AsInt64())
	})
}

// checkTree asserts the exact span tree of one request and returns its
// request span.
func checkTree(t *testing.T, spans []sdktrace.ReadOnlySpan, w wantTree) sdktrace.ReadOnlySpan {
	t.Helper()
	if w.responseTrace != w.caller.traceID.String() {
		t.Errorf("reply names trace %q, want the caller's %s", w.responseTrace, w.caller.traceID)
	}
	var inTrace []sdktrace.ReadOnlySpan
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.SpanContext().TraceID() == w.caller.traceID {
			inTrace = append(inTrace, s)
			children[s.Parent().SpanID()] = append(children[s.Parent().SpanID()], s)
		}
	}
	for _, list := range children {
		slices.SortFunc(list, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	}
	// caller → transport span (server kind) → request span → prepare
	// (→ template, tokenize), queue, prefill, decode.
	top := children[w.caller.spanID]
	if len(top) != 1 || top[0].Name() != w.transport || top[0].SpanKind() != trace.SpanKindServer {
		t.Fatalf("children of the caller's span: want one server span %q; trace:\n%s", w.transport, describeSpans(inTrace))
	}
	transport := top[0]
	below := children[transport.SpanContext().SpanID()]
	if len(below) != 1 || below[0].Name() != w.operation || below[0].SpanKind() != trace.SpanKindInternal {
		t.Fatalf("children of %q: want one internal span %q; trace:\n%s", w.transport, w.operation, describeSpans(inTrace))
	}
	req := below[0]
	phases := children[req.SpanContext().SpanID()]
	var names []string
	for _, s := range phases {
		names = append(names, s.Name())
	}
	if !slices.Equal(names, []string{semconv.SpanPrepare, semconv.SpanQueue, semconv.SpanPrefill, semconv.SpanDecode}) {
		t.Fatalf("children of the request span: %q, want prepare, queue, prefill, decode", names)
	}
	prepare, queue, prefill, decode := phases[0], phases[1], phases[2], phases[3]
	// prepare: the chat template (chat requests only), then tokenization.
	wantPrep := []string{semconv.SpanTokenize}
	if strings.HasPrefix(w.operation, semconv.OperationChat+" ") {
		wantPrep = []string{semconv.SpanTemplate, semconv.SpanTokenize}
	}
	prep := children[prepare.SpanContext().SpanID()]
	names = names[:0]
	for _, s := range prep {
		names = append(names, s.Name())
	}
	if !slices.Equal(names, wantPrep) {
		t.Errorf("children of prepare: %q, want %q", names, wantPrep)
	}
	if want := 6 + len(wantPrep); len(inTrace) != want {
		t.Errorf("trace has %d spans, want %d:\n%s", len(inTrace), want, describeSpans(inTrace))
	}

	// Durations add up: every span inside its parent, phases tiling the
	// request span, queue + prefill = time to first token.
	within := func(child, parent sdktrace.ReadOnlySpan) {
		if child.StartTime().Before(parent.StartTime()) || child.EndTime().After(parent.EndTime()) {
			t.Errorf("%s [%v, %v] is not inside %s [%v, %v]", child.Name(), child.StartTime(), child.EndTime(),
				parent.Name(), parent.StartTime(), parent.EndTime())
		}
	}
	within(req, transport)
	for _, p := range phases {
		within(p, req)
	}
	for i, p := range prep {
		within(p, prepare)
		if i > 0 && p.StartTime().Before(prep[i-1].EndTime()) {
			t.Errorf("%s starts before %s ends", p.Name(), prep[i-1].Name())
		}
	}
	if !req.StartTime().Equal(prepare.StartTime()) || !prepare.EndTime().Equal(queue.StartTime()) ||
		!queue.EndTime().Equal(prefill.StartTime()) || !prefill.EndTime().Equal(decode.StartTime()) || !decode.EndTime().Equal(req.EndTime()) {
		t.Errorf("phases do not tile the request [%v, %v]: prepare %v–%v, queue %v–%v, prefill %v–%v, decode %v–%v",
			req.StartTime(), req.EndTime(), prepare.StartTime(), prepare.EndTime(), queue.StartTime(), queue.EndTime(),
			prefill.StartTime(), prefill.EndTime(), decode.StartTime(), decode.EndTime())
	}
	ra := attrs(req)
	ttft := time.Duration(ra[semconv.AttrTTFTMs].AsFloat64() * float64(time.Millisecond))
	if got := prefill.EndTime().Sub(queue.StartTime()); (got - ttft).Abs() > time.Millisecond {
		t.Errorf("queue + prefill = %v, time to first token attribute = %v", got, ttft)
	}

	// Attributes agree with the reply.
	wantAttrs := map[attribute.Key]attribute.Value{
		semconv.AttrProvider:     attribute.StringValue(semconv.ProviderName),
		semconv.AttrInputTokens:  attribute.IntValue(w.inputTokens),
		semconv.AttrOutputTokens: attribute.IntValue(w.outputTokens),
		semconv.AttrGPUID:        attribute.StringValue("cpu"),
	}
	if w.tenant != "" {
		wantAttrs[semconv.AttrTenant] = attribute.StringValue(w.tenant)
	}
	host, port, err := net.SplitHostPort(w.server)
	if err != nil {
		t.Fatalf("wantTree.server %q: %v", w.server, err)
	}
	portN, _ := strconv.Atoi(port)
	wantAttrs[semconv.AttrServerAddress] = attribute.StringValue(host)
	wantAttrs[semconv.AttrServerPort] = attribute.IntValue(portN)
	for k, v := range wantAttrs {
		if ra[k] != v {
			t.Errorf("request span %s = %v, want %v", k, ra[k].String(), v.String())
		}
	}
	if op, model, _ := strings.Cut(w.operation, " "); ra[semconv.AttrOperation].AsString() != op || ra[semconv.AttrRequestModel].AsString() != model {
		t.Errorf("request span operation/model = %q/%q, want %q", ra[semconv.AttrOperation].String(), ra[semconv.AttrRequestModel].String(), w.operation)
	}
	if ra[semconv.AttrResponseID].AsString() == "" {
		t.Error("request span has no gen_ai.response.id")
	}
	// Phase spans count their tokens under lumen.* names; gen_ai.usage.*
	// is the request span's alone, so no backend sums a token twice.
	if got := attrs(prefill)[semconv.AttrPrefillTokens]; got != attribute.IntValue(w.inputTokens) {
		t.Errorf("prefill span tokens = %v, want %d", got.String(), w.inputTokens)
	}
	if _, ok := attrs(prefill)[semconv.AttrInputTokens]; ok {
		t.Error("prefill span repeats gen_ai.usage.input_tokens")
	}
	if _, ok := attrs(decode)[semconv.AttrOutputTokens]; ok {
		t.Error("decode span repeats gen_ai.usage.output_tokens")
	}
	if got := attrs(decode)[semconv.AttrDecodeTokens]; got != attribute.IntValue(w.outputTokens) {
		t.Errorf("decode span tokens = %v, want %d", got.String(), w.outputTokens)
	}
	for _, s := range inTrace {
		for _, k := range []attribute.Key{semconv.AttrPrompt, semconv.AttrCompletion} {
			if _, ok := attrs(s)[k]; ok {
				t.Errorf("span %s records %s without --trace-content", s.Name(), k)
			}
		}
	}
	if got := ra[semconv.AttrFinishReasons].AsStringSlice(); len(got) != 1 || got[0] != w.finish {
		t.Errorf("finish reasons = %q, want [%s] as in the reply", got, w.finish)
	}

	// Batch spans: roots of their own traces, linked to this request once
	// per engine step it was in.
	for _, s := range spans {
		if s.Name() == semconv.SpanBatch && (s.Parent().IsValid() || s.SpanContext().TraceID() == w.caller.traceID) {
			t.Fatalf("batch span is not a root of its own trace: parent %v", s.Parent())
		}
		if s.Name() == semconv.SpanBatch && !s.SpanContext().TraceFlags().IsRandom() {
			t.Errorf("batch trace %s: flags %s, want the random flag on a trace Lumen starts", s.SpanContext().TraceID(), s.SpanContext().TraceFlags())
		}
	}
	pre, dec := linkedBatches(spans, req.SpanContext())
	pa, da := attrs(prefill), attrs(decode)
	if len(pre) != int(pa[semconv.AttrChunks].AsInt64()) || len(dec) != int(da[semconv.AttrSteps].AsInt64()) {
		t.Errorf("batch spans linked: %d prefill, %d decode; the request had %d chunks and %d decode steps",
			len(pre), len(dec), pa[semconv.AttrChunks].AsInt64(), da[semconv.AttrSteps].AsInt64())
	}
	prefilled := 0
	for _, l := range pre {
		prefilled += int(l[semconv.AttrBatchPrefill].AsInt64())
	}
	if want := w.inputTokens - int(ra[semconv.AttrCachedTokens].AsInt64()); prefilled != want {
		t.Errorf("batch links carry %d prefill tokens, want %d (prompt minus cached)", prefilled, want)
	}
	return req
}

// finishName is a gRPC finish reason as the span attribute spells it.
func finishName(f lumenv1.FinishReason) string {
	return strings.ToLower(strings.TrimPrefix(f.String(), "FINISH_REASON_"))
}

// gatedEngine holds the decode step after the next one until released,
// when a test arms it: the tiny model otherwise finishes a request before
// a client's cancel can reach the server.
type gatedEngine struct {
	scheduler.Engine
	mu      sync.Mutex
	armed   int           // steps to let through before holding; 0: never hold
	release chan struct{} // closed to let the held step run
	held    chan struct{} // closed when the held step starts waiting
}

// arm makes the after'th coming Decode wait for the returned release;
// held is closed once it waits (the steps before it have run).
func (g *gatedEngine) arm(after int) (release func(), held <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.release, g.held = after, make(chan struct{}), make(chan struct{})
	ch := g.release
	return sync.OnceFunc(func() { close(ch) }), g.held
}

func (g *gatedEngine) Decode() error {
	g.mu.Lock()
	var wait, held chan struct{}
	if g.armed > 0 {
		if g.armed--; g.armed == 0 {
			wait, held = g.release, g.held
		}
	}
	g.mu.Unlock()
	if wait != nil {
		close(held)
		<-wait
	}
	return g.Engine.Decode()
}

func TestSpanTreeThroughTransports(t *testing.T) {
	log := newSpanLog()
	gate := &gatedEngine{}
	// watch, when set, sees each Generate's context.
	var watch atomic.Pointer[func(context.Context)]
	// Every step's batch span, so that links can be counted.
	httpAddr, grpcAddr := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log},
		engine: func(e scheduler.Engine) scheduler.Engine { gate.Engine = e; return gate },
		generate: func(ctx context.Context) {
			if f := watch.Load(); f != nil {
				(*f)(ctx)
			}
		}}, nil, "--batch-span-rate", "0")
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := lumenv1.NewLumenServiceClient(conn)
	withCaller := func(c caller, kv ...string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), append([]string{"traceparent", c.traceparent()}, kv...)...)
	}
	const maxTokens = 12

	t.Run("gRPC unary", func(t *testing.T) {
		c := newCaller(t)
		resp, err := client.Generate(withCaller(c), &lumenv1.GenerateRequest{Prompt: "Once upon a time", MaxTokens: maxTokens})
		if err != nil {
			t.Fatal(err)
		}
		w := wantTree{caller: c, transport: "lumen.v1.LumenService/Generate", operation: "text_completion tiny",
			inputTokens: int(resp.GetUsage().GetPromptTokens()), outputTokens: int(resp.GetUsage().GetCompletionTokens()),
			finish: finishName(resp.GetFinishReason()), responseTrace: resp.GetTraceId(), server: grpcAddr}
		checkTree(t, waitForTree(t, log, w), w)
	})

	t.Run("gRPC streaming, tenant from baggage", func(t *testing.T) {
		c := newCaller(t)
		stream, err := client.GenerateStream(withCaller(c, "baggage", "tenant.id=acme"),
			&lumenv1.GenerateStreamRequest{Prompt: "The quick brown fox", MaxTokens: maxTokens})
		if err != nil {
			t.Fatal(err)
		}
		var last *lumenv1.GenerateStreamResponse
		for {
			msg, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			last = msg
		}
		w := wantTree{caller: c, transport: "lumen.v1.LumenService/GenerateStream", operation: "text_completion tiny",
			inputTokens: int(last.GetUsage().GetPromptTokens()), outputTokens: int(last.GetUsage().GetCompletionTokens()),
			tenant: "acme", finish: finishName(last.GetFinishReason()), responseTrace: last.GetTraceId(), server: grpcAddr}
		checkTree(t, waitForTree(t, log, w), w)
	})

	t.Run("HTTP SSE chat, tenant from header", func(t *testing.T) {
		c := newCaller(t)
		resp := c.post(t, "http://"+httpAddr+"/v1/chat/completions",
			fmt.Sprintf(`{"messages":[{"role":"user","content":"Hello there"}],"max_tokens":%d,"stream":true,"stream_options":{"include_usage":true}}`, maxTokens),
			semconv.HeaderTenant, "globex")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var usage struct{ PromptTokens, CompletionTokens int }
		finish := ""
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			var chunk struct {
				Choices []struct {
					FinishReason *string `json:"finish_reason"`
				} `json:"choices"`
				Usage *struct {
					PromptTokens     int `json:"prompt_tokens"`
					CompletionTokens int `json:"completion_tokens"`
				} `json:"usage"`
			}
			if err := json.Unmarshal([]byte(data), &chunk); err != nil {
				t.Fatalf("SSE data %q: %v", data, err)
			}
			for _, ch := range chunk.Choices {
				if ch.FinishReason != nil {
					finish = *ch.FinishReason
				}
			}
			if chunk.Usage != nil {
				usage.PromptTokens, usage.CompletionTokens = chunk.Usage.PromptTokens, chunk.Usage.CompletionTokens
			}
		}
		respTrace := ""
		if parts := strings.Split(resp.Header.Get("traceparent"), "-"); len(parts) == 4 {
			respTrace = parts[1]
		}
		w := wantTree{caller: c, transport: "POST /v1/chat/completions", operation: "chat tiny",
			inputTokens: usage.PromptTokens, outputTokens: usage.CompletionTokens, tenant: "globex", finish: finish, responseTrace: respTrace, server: httpAddr}
		checkTree(t, waitForTree(t, log, w), w)
	})

	// A client that leaves mid-stream, over gRPC and over SSE: the
	// request span records why, and ends before the transport span —
	// the handler waits for the request's end before it returns.
	for _, tc := range []struct {
		name, transport, operation string
		// start begins a stream of up to 120 greedy tokens (no
		// end-of-generation token comes that soon on this prompt) and
		// returns the function that leaves.
		start func(t *testing.T, c caller) (leave func())
	}{
		{"gRPC stream", "lumen.v1.LumenService/GenerateStream", "text_completion tiny", func(t *testing.T, c caller) func() {
			greedy := float32(0)
			ctx, cancel := context.WithCancel(withCaller(c))
			t.Cleanup(cancel)
			if _, err := client.GenerateStream(ctx, &lumenv1.GenerateStreamRequest{Prompt: "A long story", MaxTokens: 120, Temperature: &greedy}); err != nil {
				t.Fatal(err)
			}
			return cancel
		}},
		{"SSE chat", "POST /v1/chat/completions", "chat tiny", func(t *testing.T, c caller) func() {
			resp := c.post(t, "http://"+httpAddr+"/v1/chat/completions",
				`{"messages":[{"role":"user","content":"A long story"}],"max_tokens":120,"temperature":0,"stream":true}`)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			return func() { resp.Body.Close() }
		}},
	} {
		t.Run("a cancelled "+tc.name+"'s spans end with the reason, within the transport's", func(t *testing.T) {
			c := newCaller(t)
			// The prompt's step runs (a first token is out), the next step
			// waits until the server has seen the caller leave: the
			// request cannot end otherwise.
			release, held := gate.arm(2)
			defer release()
			left := make(chan struct{})
			see := func(ctx context.Context) {
				go func() { <-ctx.Done(); close(left) }()
			}
			watch.Store(&see)
			defer watch.Store(nil)
			leave := tc.start(t, c)
			select {
			case <-held:
			case <-time.After(10 * time.Second):
				t.Fatal("the request's second step never came")
			}
			leave()
			select {
			case <-left:
			case <-time.After(10 * time.Second):
				t.Fatal("the server never saw the caller leave")
			}
			release()
			spans := log.waitFor(t, "the cancelled call's transport span", func(spans []sdktrace.ReadOnlySpan) bool {
				return slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool {
					return s.SpanContext().TraceID() == c.traceID && s.Name() == tc.transport
				})
			})
			named := spansByName(spans, c.traceID)
			transport, req, decode := named[tc.transport], named[tc.operation], named[semconv.SpanDecode]
			if req == nil || decode == nil {
				t.Fatalf("when the transport span ended, the cancelled request had no request/decode span:\n%s", describeSpans(spans))
			}
			if req.EndTime().After(transport.EndTime()) {
				t.Errorf("request span ends %v after its transport span", req.EndTime().Sub(transport.EndTime()))
			}
			ra := attrs(req)
			if got := ra[semconv.AttrCancelReason].AsString(); got != "client cancelled" {
				t.Errorf("%s = %q, want client cancelled", semconv.AttrCancelReason, got)
			}
			if got := ra[semconv.AttrErrorType].AsString(); got != "cancelled" {
				t.Errorf("%s = %q, want cancelled", semconv.AttrErrorType, got)
			}
			if got := ra[semconv.AttrFinishReasons].AsStringSlice(); len(got) != 1 || got[0] != "cancelled" {
				t.Errorf("finish reasons = %q, want [cancelled]", got)
			}
			if out := ra[semconv.AttrOutputTokens].AsInt64(); out < 1 || out >= 120 {
				t.Errorf("cancelled request produced %d tokens, want between 1 and 119", out)
			}
			if !slices.ContainsFunc(decode.Events(), func(e sdktrace.Event) bool { return e.Name == "cancelled" }) {
				t.Error("decode span has no cancelled event")
			}
			if decode.EndTime() != req.EndTime() {
				t.Errorf("decode ends %v, request %v", decode.EndTime(), req.EndTime())
			}
		})
	}
}

// With --trace-content the request span carries the prompt as the model
// saw it and the completion as the caller got it, each truncated to
// --trace-content-max bytes.
func TestTraceContentThroughTransports(t *testing.T) {
	log := newSpanLog()
	const max = 40
	httpAddr, grpcAddr := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log}}, nil,
		"--trace-content", "--trace-content-max", fmt.Sprint(max))
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := lumenv1.NewLumenServiceClient(conn)
	requestSpan := func(c caller, name string) attribute.Set {
		spans := log.waitFor(t, "the request span "+name, func(spans []sdktrace.ReadOnlySpan) bool {
			return slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool {
				return s.SpanContext().TraceID() == c.traceID && s.Name() == name
			})
		})
		for _, s := range spans {
			if s.SpanContext().TraceID() == c.traceID && s.Name() == name {
				return attribute.NewSet(s.Attributes()...)
			}
		}
		return attribute.Set{}
	}
	// want is text as recorded: whole if it fits, else its first max
	// bytes (whole characters) and "…".
	want := func(text string) string {
		if len(text) <= max {
			return text
		}
		return strings.ToValidUTF8(text[:max], "") + "…"
	}
	greedy := float32(0)

	t.Run("gRPC completion", func(t *testing.T) {
		c := newCaller(t)
		ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", c.traceparent())
		const prompt = "Once upon a time"
		resp, err := client.Generate(ctx, &lumenv1.GenerateRequest{Prompt: prompt, MaxTokens: 24, Temperature: &greedy})
		if err != nil {
			t.Fatal(err)
		}
		set := requestSpan(c, "text_completion tiny")
		if got, _ := set.Value(semconv.AttrPrompt); got.AsString() != prompt {
			t.Errorf("gen_ai.prompt = %q, want %q", got.AsString(), prompt)
		}
		// 24 tokens of this model's vocabulary are longer than max, so the
		// truncation is what is checked here.
		if len(resp.GetText()) <= max {
			t.Fatalf("completion %q fits in %d bytes: truncation not exercised", resp.GetText(), max)
		}
		if got, _ := set.Value(semconv.AttrCompletion); got.AsString() != want(resp.GetText()) {
			t.Errorf("gen_ai.completion = %q, want %q (reply %q)", got.AsString(), want(resp.GetText()), resp.GetText())
		}
	})

	t.Run("HTTP chat", func(t *testing.T) {
		c := newCaller(t)
		resp := c.post(t, "http://"+httpAddr+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":24,"temperature":0}`)
		var body struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Choices) != 1 {
			t.Fatalf("reply: %v, %+v", err, body)
		}
		set := requestSpan(c, "chat tiny")
		// The rendered chat template (ChatML for this model) holds the
		// message.
		if got, _ := set.Value(semconv.AttrPrompt); !strings.Contains(got.AsString(), "user\nHi") {
			t.Errorf("gen_ai.prompt = %q, want the rendered chat holding the message", got.AsString())
		}
		text := body.Choices[0].Message.Content
		if text == "" {
			t.Fatal("empty completion: nothing to check")
		}
		if got, _ := set.Value(semconv.AttrCompletion); got.AsString() != want(text) {
			t.Errorf("gen_ai.completion = %q, want %q (reply %q)", got.AsString(), want(text), text)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestJSONLogLinesCarryTraceIDs(t *testing.T) {
	log := newSpanLog()
	var stderr syncBuffer
	httpAddr, _ := startServeEnv(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log}},
		env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}, "--log-format", "json")
	c := newCaller(t)
	c.post(t, "http://"+httpAddr+"/generate", `{"prompt":"Hello","max_tokens":4}`).Body.Close()
	spans := log.waitFor(t, "the request span", func(spans []sdktrace.ReadOnlySpan) bool {
		return slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool {
			return s.SpanContext().TraceID() == c.traceID && s.Name() == "text_completion tiny"
		})
	})
	var reqSpan sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID() == c.traceID && s.Name() == "text_completion tiny" {
			reqSpan = s
		}
	}
	// The line is written right after the span ends, on the same goroutine
	// as the final event the reply waited for.
	var found map[string]any
	for line := range strings.SplitSeq(stderr.String(), "\n") {
		m := map[string]any{}
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request finished" {
			found = m
		}
	}
	if found == nil {
		t.Fatalf("no request finished line in:\n%s", stderr.String())
	}
	if found[telemetry.LogTraceID] != c.traceID.String() || found[telemetry.LogSpanID] != reqSpan.SpanContext().SpanID().String() {
		t.Errorf("request line %v: want trace_id %s span_id %s", found, c.traceID, reqSpan.SpanContext().SpanID())
	}
}
