package recorder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

func newRecorded(t *testing.T, opts TracerOptions) (*Tracer, *tracetest.SpanRecorder, *Metrics) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	m := NewMetrics(MetricsConfig{})
	return NewTracer(tp, m, opts), rec, m
}

func byName(spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

func attr(s sdktrace.ReadOnlySpan, key string) (any, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.AsInterface(), true
		}
	}
	return nil, false
}

// result is a finished request with fixed, known timings.
func result(id string, finish scheduler.FinishReason) scheduler.Result {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	return scheduler.Result{
		ID: id, Finish: finish, PromptTokens: 12, CompletionTokens: 5, CachedTokens: 4, Slot: 1,
		Timings: scheduler.Timings{
			Enqueued: t0, Admitted: t0.Add(10 * time.Millisecond), FirstToken: t0.Add(30 * time.Millisecond),
			Finished:      t0.Add(70 * time.Millisecond),
			PrefillChunks: []scheduler.Chunk{{Start: t0.Add(10 * time.Millisecond), End: t0.Add(20 * time.Millisecond), Tokens: 4}, {Start: t0.Add(20 * time.Millisecond), End: t0.Add(30 * time.Millisecond), Tokens: 4}},
			DecodeSteps:   4, DecodeBatchSum: 10,
		},
	}
}

func TestRequestSpanTree(t *testing.T) {
	tr, rec, _ := newRecorded(t, TracerOptions{Device: "gpu:1"})
	// An incoming caller span, as propagated by traceparent.
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
	ctx = tr.StartRequest(ctx, RequestInfo{Operation: semconv.OperationChat, Model: "m", MaxTokens: 5, Tenant: "acme", Prompt: "secret prompt", ServerAddress: "10.0.0.7", ServerPort: 8080})
	tr.Finished(ctx, result("r1", scheduler.FinishLength))

	spans := rec.Ended()
	names := []string{}
	for _, s := range spans {
		names = append(names, s.Name())
	}
	slices.Sort(names)
	if want := []string{"chat m", "decode", "prefill", "queue"}; !slices.Equal(names, want) {
		t.Fatalf("spans = %v, want %v", names, want)
	}
	req := byName(spans, "chat m")
	if req.Parent().SpanID() != parent.SpanID() || req.SpanContext().TraceID() != parent.TraceID() {
		t.Errorf("request span parent = %v, want the caller's span", req.Parent())
	}
	for _, n := range []string{"queue", "prefill", "decode"} {
		if s := byName(spans, n); s.Parent().SpanID() != req.SpanContext().SpanID() {
			t.Errorf("%s is not a child of the request span", n)
		}
	}
	q, p, d := byName(spans, "queue"), byName(spans, "prefill"), byName(spans, "decode")
	// Durations add up: the phases tile the request exactly.
	if !q.EndTime().Equal(p.StartTime()) || !p.EndTime().Equal(d.StartTime()) || !d.EndTime().Equal(req.EndTime()) {
		t.Errorf("phases do not tile: queue %v–%v prefill %v–%v decode %v–%v request end %v",
			q.StartTime(), q.EndTime(), p.StartTime(), p.EndTime(), d.StartTime(), d.EndTime(), req.EndTime())
	}
	ttft, _ := attr(req, "lumen.time_to_first_token_ms")
	if got := q.EndTime().Sub(q.StartTime()) + p.EndTime().Sub(p.StartTime()); got != 30*time.Millisecond || ttft != 30.0 {
		t.Errorf("queue+prefill = %v, ttft attr %v; want 30ms", got, ttft)
	}
	for key, want := range map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": int64(12),
		"gen_ai.usage.output_tokens": int64(5), "gen_ai.response.id": "r1", "tenant.id": "acme", "gpu.id": int64(1),
		"lumen.prompt_tokens_cached": int64(4), "server.address": "10.0.0.7", "server.port": int64(8080),
	} {
		if got, ok := attr(req, key); !ok || got != want {
			t.Errorf("request %s = %v, want %v", key, got, want)
		}
	}
	if fr, _ := attr(req, "gen_ai.response.finish_reasons"); !slices.Equal(fr.([]string), []string{"length"}) {
		t.Errorf("finish reasons = %v", fr)
	}
	if _, ok := attr(req, "gen_ai.prompt"); ok {
		t.Error("prompt recorded although content recording is off")
	}
	if len(p.Events()) != 2 {
		t.Errorf("prefill has %d chunk events, want 2", len(p.Events()))
	}
	if mb, _ := attr(d, "lumen.decode.mean_batch_size"); mb != 2.5 {
		t.Errorf("mean batch = %v, want 2.5", mb)
	}
}

func TestContentRecordedWhenEnabled(t *testing.T) {
	tr, rec, _ := newRecorded(t, TracerOptions{RecordContent: true, ContentMax: 6})
	ctx := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationCompletion, Model: "m", Prompt: "héllo world"})
	tr.Finished(ctx, result("r", scheduler.FinishStop))
	req := byName(rec.Ended(), "text_completion m")
	if got, _ := attr(req, "gen_ai.prompt"); got != "héllo…" {
		t.Errorf("prompt attr = %q, want truncated %q", got, "héllo…")
	}
	if got := tr.ContentLimit(); got != 6 {
		t.Errorf("ContentLimit() = %d, want 6", got)
	}

	// The output as the scheduler kept it (ContentLimit bytes): marked
	// when more was produced.
	for _, tt := range []struct {
		text      string
		truncated bool
		want      string
	}{{"short", false, "short"}, {"wörld!", true, "wörld…"}, {"", false, ""}} {
		ctx := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationCompletion, Model: "out", Prompt: "p"})
		res := result("r", scheduler.FinishLength)
		res.Text, res.TextTruncated = tt.text, tt.truncated
		tr.Finished(ctx, res)
		ended := rec.Ended()
		got, ok := attr(byName(ended[len(ended)-4:], "text_completion out"), "gen_ai.completion")
		if tt.want == "" && ok || tt.want != "" && got != tt.want {
			t.Errorf("output %q (truncated %v): completion attr %q (present %v), want %q", tt.text, tt.truncated, got, ok, tt.want)
		}
	}
}

func TestContentLimitZeroWhenNotRecording(t *testing.T) {
	tr, rec, _ := newRecorded(t, TracerOptions{ContentMax: 100})
	if got := tr.ContentLimit(); got != 0 {
		t.Errorf("ContentLimit() = %d without RecordContent, want 0", got)
	}
	ctx := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationCompletion, Model: "m", Prompt: "secret"})
	res := result("r", scheduler.FinishLength)
	res.Text = "also secret"
	tr.Finished(ctx, res)
	for _, s := range rec.Ended() {
		for _, k := range []string{"gen_ai.prompt", "gen_ai.completion"} {
			if v, ok := attr(s, k); ok {
				t.Errorf("span %s has %s = %v with content recording off", s.Name(), k, v)
			}
		}
	}
}

func TestCancelledRequestSpansEndWithReason(t *testing.T) {
	tr, rec, _ := newRecorded(t, TracerOptions{})
	for _, tt := range []struct {
		err  error
		want string
	}{{context.Canceled, "client cancelled"}, {reqerr.ErrShutdown, "server shutdown"}} {
		rec.Reset()
		ctx := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationChat, Model: "m"})
		r := result("c", scheduler.FinishCancelled)
		r.Err = tt.err
		tr.Finished(ctx, r)
		req := byName(rec.Ended(), "chat m")
		if got, _ := attr(req, "lumen.cancel_reason"); got != tt.want {
			t.Errorf("%v: cancel reason %v, want %q", tt.err, got, tt.want)
		}
		if d := byName(rec.Ended(), "decode"); d == nil || len(d.Events()) == 0 || d.Events()[0].Name != "cancelled" {
			t.Errorf("%v: decode span lacks the cancelled event", tt.err)
		}
	}
}

func TestBatchSpanIsRootLinkedToRequests(t *testing.T) {
	tr, rec, _ := newRecorded(t, TracerOptions{Device: "cpu", KVSize: 1024})
	a := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationChat, Model: "m"})
	b := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationChat, Model: "m"})
	now := time.Now()
	tr.Step(scheduler.StepInfo{Start: now, End: now.Add(time.Millisecond), PrefillTokens: 7, DecodeTokens: 1, KVUsed: 30,
		Seqs: []scheduler.StepSeq{{ID: "a", Ctx: a, Slot: 0, Decode: true}, {ID: "b", Ctx: b, Slot: 1, PrefillTokens: 7}}})
	batch := byName(rec.Ended(), semconv.SpanBatch)
	if batch == nil || batch.Parent().IsValid() {
		t.Fatalf("batch span missing or not a root: %v", batch)
	}
	var linked []trace.SpanID
	for _, l := range batch.Links() {
		linked = append(linked, l.SpanContext.SpanID())
	}
	want := []trace.SpanID{trace.SpanContextFromContext(a).SpanID(), trace.SpanContextFromContext(b).SpanID()}
	if !slices.Equal(linked, want) {
		t.Errorf("links = %v, want %v", linked, want)
	}
	for key, want := range map[string]any{"lumen.batch.size": int64(2), "lumen.batch.prefill_tokens": int64(7), "lumen.batch.decode_tokens": int64(1), "gpu.id": "cpu", "lumen.kv_cache.used_cells": int64(30)} {
		if got, _ := attr(batch, key); got != want {
			t.Errorf("batch %s = %v, want %v", key, got, want)
		}
	}
}

// Batch spans are started by the batch tracer provider when there is
// one; request spans and their children never are.
func TestBatchSpansUseTheBatchTracerProvider(t *testing.T) {
	rec, batchRec := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	batchTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(batchRec))
	t.Cleanup(func() { tp.Shutdown(context.Background()); batchTP.Shutdown(context.Background()) })
	tr := NewTracer(tp, nil, TracerOptions{BatchTracerProvider: batchTP})
	ctx := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationChat, Model: "m"})
	now := time.Now()
	tr.Step(scheduler.StepInfo{Start: now, End: now.Add(time.Millisecond), DecodeTokens: 1,
		Seqs: []scheduler.StepSeq{{ID: "a", Ctx: ctx, Decode: true}}})
	tr.Finished(ctx, result("a", scheduler.FinishStop))
	names := func(r *tracetest.SpanRecorder) []string {
		var ns []string
		for _, s := range r.Ended() {
			ns = append(ns, s.Name())
		}
		return ns
	}
	if got := names(batchRec); !slices.Equal(got, []string{semconv.SpanBatch}) {
		t.Errorf("batch tracer provider ended %q, want only the batch span", got)
	}
	if got := names(rec); slices.Contains(got, semconv.SpanBatch) || !slices.Contains(got, "chat m") {
		t.Errorf("request tracer provider ended %q, want the request's spans and no batch span", got)
	}
}

func TestErrorSpanStatus(t *testing.T) {
	tr, rec, _ := newRecorded(t, TracerOptions{})
	ctx := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationChat, Model: "m"})
	r := result("e", scheduler.FinishError)
	r.Err = errors.New("decode failed")
	tr.Finished(ctx, r)
	req := byName(rec.Ended(), "chat m")
	if req.Status().Code.String() != "Error" || len(req.Events()) == 0 || req.Events()[0].Name != "exception" {
		t.Errorf("status %v events %v, want Error with an exception event", req.Status(), req.Events())
	}
}

// Latency histograms carry exemplars whose trace ids are real traces.
func TestMetricsExemplars(t *testing.T) {
	tr, rec, m := newRecorded(t, TracerOptions{})
	ctx := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationChat, Model: "m", Tenant: "acme"})
	tr.Finished(ctx, result("x", scheduler.FinishStop))
	traceID := byName(rec.Ended(), "chat m").SpanContext().TraceID().String()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		switch f.GetName() {
		case "gen_ai_server_request_duration_seconds", "gen_ai_server_time_to_first_token_seconds", "gen_ai_server_time_per_output_token_seconds":
			h := f.GetMetric()[0].GetHistogram()
			want := map[string][]float64{
				"gen_ai_server_request_duration_seconds":      durationBuckets,
				"gen_ai_server_time_to_first_token_seconds":   ttftBuckets,
				"gen_ai_server_time_per_output_token_seconds": tpotBuckets,
			}[f.GetName()]
			var bounds []float64
			for _, b := range h.GetBucket() {
				bounds = append(bounds, b.GetUpperBound())
				if ex := b.GetExemplar(); ex != nil {
					if id := exemplarTraceID(ex); id != traceID {
						t.Errorf("%s exemplar trace %s, want %s", f.GetName(), id, traceID)
					}
					found[f.GetName()] = true
				}
			}
			if !slices.Equal(bounds, want) {
				t.Errorf("%s buckets %v, want %v", f.GetName(), bounds, want)
			}
		case "gen_ai_server_tokens_total":
			if len(f.GetMetric()) != 2 {
				t.Errorf("token counters = %d series, want input and output", len(f.GetMetric()))
			}
		}
	}
	if len(found) != 3 {
		t.Errorf("exemplars found on %v, want all three latency histograms", found)
	}
}

func exemplarTraceID(ex *dto.Exemplar) string {
	for _, l := range ex.GetLabel() {
		if l.GetName() == "trace_id" {
			return l.GetValue()
		}
	}
	return ""
}

// The step's phases are on its batch span, in milliseconds, and summed
// per phase in lumen_step_phase_seconds_total.
func TestBatchSpanCarriesStepPhases(t *testing.T) {
	tr, rec, m := newRecorded(t, TracerOptions{Device: "cpu", KVSize: 1024})
	now := time.Now()
	tr.Step(scheduler.StepInfo{Start: now, DecodeStart: now.Add(time.Millisecond), End: now.Add(11 * time.Millisecond),
		Sample: 2 * time.Millisecond, Emit: 500 * time.Microsecond, Gap: 250 * time.Microsecond, DecodeTokens: 1})
	batch := byName(rec.Ended(), semconv.SpanBatch)
	want := map[string]float64{"lumen.step.build_ms": 1, "lumen.step.decode_ms": 10, "lumen.step.sample_ms": 2, "lumen.step.emit_ms": 0.5, "lumen.step.gap_ms": 0.25}
	for key, w := range want {
		if got, _ := attr(batch, key); got != w {
			t.Errorf("batch %s = %v, want %v", key, got, w)
		}
	}
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "lumen_step_phase_seconds_total" {
			continue
		}
		for _, mm := range f.GetMetric() {
			got[mm.GetLabel()[0].GetValue()] = mm.GetCounter().GetValue()
		}
	}
	wantS := map[string]float64{"build": 0.001, "decode": 0.010, "sample": 0.002, "emit": 0.0005, "gap": 0.00025}
	for k, w := range wantS {
		if d := got[k] - w; d > 1e-9 || d < -1e-9 {
			t.Errorf("phase %s: %v s, want %v", k, got[k], w)
		}
	}
}

// TestErrorType: failed, refused and cancelled requests carry error.type
// as a low-cardinality kind (the exception event's type too, not the Go
// type of a wrapper), and a shutdown is an error where a client's cancel
// is not.
func TestErrorType(t *testing.T) {
	tr, rec, _ := newRecorded(t, TracerOptions{Device: "cpu"})
	start := func() context.Context {
		return tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationChat, Model: "m"})
	}
	tr.Abort(start(), fmt.Errorf("3 waiting: %w", reqerr.ErrQueueFull))
	for _, tt := range []struct {
		finish scheduler.FinishReason
		err    error
	}{
		{scheduler.FinishCancelled, context.Canceled},
		{scheduler.FinishCancelled, fmt.Errorf("drain: %w", reqerr.ErrShutdown)},
		{scheduler.FinishError, fmt.Errorf("%w: decode", reqerr.ErrEngine)},
	} {
		res := result("r", tt.finish)
		res.Err = tt.err
		tr.Finished(start(), res)
	}
	want := []struct {
		kind   string
		status codes.Code
	}{{"queue_full", codes.Error}, {"cancelled", codes.Unset}, {"shutdown", codes.Error}, {"engine_error", codes.Error}}
	var got []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if strings.HasPrefix(s.Name(), semconv.OperationChat+" ") {
			got = append(got, s)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d request spans, want %d", len(got), len(want))
	}
	for i, s := range got {
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.String()
		}
		if attrs["error.type"] != want[i].kind || s.Status().Code != want[i].status {
			t.Errorf("span %d: error.type %q status %v, want %q %v", i, attrs["error.type"], s.Status().Code, want[i].kind, want[i].status)
		}
		for _, e := range s.Events() {
			for _, a := range e.Attributes {
				if a.Key == "exception.type" && a.Value.AsString() != want[i].kind {
					t.Errorf("span %d: exception.type %q, want %q", i, a.Value.AsString(), want[i].kind)
				}
			}
		}
		if i > 0 && attrs["gen_ai.response.model"] != "m" {
			t.Errorf("span %d: gen_ai.response.model %q", i, attrs["gen_ai.response.model"])
		}
	}
}

// TestUsageOnlyOnTheRequestSpan: gen_ai.usage.* is on the request span
// alone (a backend summing it over a trace counts each token once); the
// phase spans carry lumen.* counts.
func TestUsageOnlyOnTheRequestSpan(t *testing.T) {
	tr, rec, _ := newRecorded(t, TracerOptions{Device: "cpu"})
	ctx := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationChat, Model: "m"})
	tr.Finished(ctx, result("r", scheduler.FinishStop))
	found := map[string]bool{}
	for _, s := range rec.Ended() {
		for _, a := range s.Attributes() {
			if strings.HasPrefix(string(a.Key), "gen_ai.usage.") && !strings.HasPrefix(s.Name(), semconv.OperationChat+" ") {
				t.Errorf("%s span carries %s", s.Name(), a.Key)
			}
			found[s.Name()+" "+string(a.Key)] = true
		}
	}
	for _, want := range []string{"prefill lumen.prefill.tokens", "prefill lumen.prefill.cached_tokens", "decode lumen.decode.tokens", "chat m gen_ai.usage.input_tokens"} {
		if !found[want] {
			t.Errorf("no %s", want)
		}
	}
}

// TestRequestAttributesAsSent: the request's own values — temperature as
// written (0.7, not its float32 round trip), top_k only when given (a
// double, as the conventions define it), gen_ai.request.seed only when
// the request chose one (the seed used is lumen.sampling.seed).
func TestRequestAttributesAsSent(t *testing.T) {
	tr, rec, _ := newRecorded(t, TracerOptions{Device: "cpu"})
	for _, info := range []RequestInfo{
		{Operation: semconv.OperationChat, Model: "given", Sampling: scheduler.SamplingParams{Temperature: 0.7, TopK: 40, Seed: 7}, SeedGiven: true},
		{Operation: semconv.OperationChat, Model: "defaults", Sampling: scheduler.SamplingParams{Temperature: 1, Seed: 12345}},
	} {
		tr.Finished(tr.StartRequest(context.Background(), info), result("r", scheduler.FinishStop))
	}
	got := map[string]map[string]attribute.Value{}
	for _, s := range rec.Ended() {
		if !strings.HasPrefix(s.Name(), semconv.OperationChat+" ") {
			continue
		}
		m := map[string]attribute.Value{}
		for _, a := range s.Attributes() {
			m[string(a.Key)] = a.Value
		}
		got[strings.TrimPrefix(s.Name(), semconv.OperationChat+" ")] = m
	}
	g, d := got["given"], got["defaults"]
	if g["gen_ai.request.temperature"].AsFloat64() != 0.7 || g["gen_ai.request.top_k"].Type() != attribute.FLOAT64 ||
		g["gen_ai.request.top_k"].AsFloat64() != 40 || g["gen_ai.request.seed"].AsInt64() != 7 || g["lumen.sampling.seed"].AsInt64() != 7 {
		t.Errorf("given: %v", g)
	}
	if _, ok := d["gen_ai.request.top_k"]; ok {
		t.Errorf("top_k recorded though not given: %v", d)
	}
	if _, ok := d["gen_ai.request.seed"]; ok || d["lumen.sampling.seed"].AsInt64() != 12345 {
		t.Errorf("seed: %v", d)
	}
}

// TestPhaseSpansLinkTheirSteps: links point both ways — a request's
// prefill and decode spans link the batch steps that carried them (the
// first MaxStepLinks, the rest counted), so a request's trace leads to
// its steps.
func TestPhaseSpansLinkTheirSteps(t *testing.T) {
	tr, rec, _ := newRecorded(t, TracerOptions{Device: "cpu"})
	ctx := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationChat, Model: "m"})
	t0 := time.Now()
	step := func(prefill int) {
		tr.Step(scheduler.StepInfo{Start: t0, End: t0.Add(time.Millisecond), Device: "cpu",
			Seqs: []scheduler.StepSeq{{ID: "r", Ctx: ctx, Slot: 1, PrefillTokens: prefill, Decode: prefill == 0}}})
	}
	step(4)
	step(4)
	for range MaxStepLinks + 2 {
		step(0)
	}
	tr.Finished(ctx, result("r", scheduler.FinishStop))
	var batches []trace.SpanID
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.Name() == semconv.SpanBatch {
			batches = append(batches, s.SpanContext().SpanID())
		}
		byName[s.Name()] = s
	}
	linked := func(name string) ([]trace.SpanID, string) {
		var ids []trace.SpanID
		for _, l := range byName[name].Links() {
			ids = append(ids, l.SpanContext.SpanID())
		}
		unlinked := ""
		for _, a := range byName[name].Attributes() {
			if a.Key == semconv.AttrStepsUnlinked {
				unlinked = a.Value.String()
			}
		}
		return ids, unlinked
	}
	if len(batches) != 2+MaxStepLinks+2 {
		t.Fatalf("%d batch spans", len(batches))
	}
	if ids, more := linked(semconv.SpanPrefill); !slices.Equal(ids, batches[:2]) || more != "0" {
		t.Errorf("prefill links %v (unlinked %s), want the two prefill steps %v", ids, more, batches[:2])
	}
	if ids, more := linked(semconv.SpanDecode); !slices.Equal(ids, batches[2:2+MaxStepLinks]) || more != "2" {
		t.Errorf("decode links %v (unlinked %s), want the first %d decode steps and 2 counted", ids, more, MaxStepLinks)
	}
	if len(tr.steps) != 0 {
		t.Errorf("%d requests' step links kept after they finished", len(tr.steps))
	}
}
