package liveview

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/scheduler"
)

func spanNames(d TraceDetail) []string {
	var names []string
	for _, s := range d.Spans {
		names = append(names, s.Role+":"+s.Name)
	}
	slices.Sort(names)
	return names
}

func mustLookup(t *testing.T, v *View, id trace.TraceID) TraceDetail {
	t.Helper()
	tv, ok := v.store.lookup(id)
	if !ok {
		t.Fatalf("trace %s not kept", id)
	}
	return detail(tv, v.now())
}

func traceIDs(v *View) []trace.TraceID {
	var ids []trace.TraceID
	for _, tv := range v.store.recent(1 << 20) {
		ids = append(ids, tv.id)
	}
	return ids
}

func TestStoreKeepsWhatTheViewShows(t *testing.T) {
	tests := []struct {
		name string
		// run makes spans and returns the trace to look for.
		run       func(r *rig) trace.TraceID
		kept      bool
		wantSpans []string
		status    string
	}{
		{
			name: "finished request: transport, request and its phases",
			run:  func(r *rig) trace.TraceID { return r.request(reqSpec{out: 5}).TraceID() },
			kept: true,
			wantSpans: []string{"decode:decode", "prefill:prefill", "queue:queue", "request:chat tiny",
				"transport:POST /v1/chat/completions"},
			status: StatusOK,
		},
		{
			name: "running request is kept from its start",
			run: func(r *rig) trace.TraceID {
				ctx, _ := r.start(reqSpec{})
				return trace.SpanContextFromContext(ctx).TraceID()
			},
			kept:      true,
			wantSpans: []string{"request:chat tiny"}, // a stand-in up to now
			status:    StatusRunning,
		},
		{
			name: "cancelled request",
			run: func(r *rig) trace.TraceID {
				return r.request(reqSpec{out: 2, finish: scheduler.FinishCancelled}).TraceID()
			},
			kept:   true,
			status: StatusCancelled,
		},
		{
			name: "engine failure",
			run:  func(r *rig) trace.TraceID { return r.request(reqSpec{out: 0, finish: scheduler.FinishError}).TraceID() },
			kept: true, status: StatusError,
		},
		{
			name: "health check without a request is not kept",
			run: func(r *rig) trace.TraceID {
				_, s := r.raw.Start(context.Background(), "GET /healthz", trace.WithSpanKind(trace.SpanKindServer))
				s.End()
				return s.SpanContext().TraceID()
			},
		},
		{
			name: "a failed trace without a request is kept",
			run: func(r *rig) trace.TraceID {
				_, s := r.raw.Start(context.Background(), "POST /v1/completions", trace.WithSpanKind(trace.SpanKindServer))
				s.SetStatus(codes.Error, "boom")
				s.End()
				return s.SpanContext().TraceID()
			},
			kept:      true,
			wantSpans: []string{"transport:POST /v1/completions"},
			status:    StatusError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, Config{})
			id := tt.run(r)
			tv, ok := r.view.store.lookup(id)
			if ok != tt.kept {
				t.Fatalf("kept = %v, want %v", ok, tt.kept)
			}
			if !ok {
				if n := len(traceIDs(r.view)); n != 0 {
					t.Errorf("%d traces kept, want none", n)
				}
				return
			}
			d := detail(tv, r.view.now())
			if tt.wantSpans != nil && !slices.Equal(spanNames(d), tt.wantSpans) {
				t.Errorf("spans = %q, want %q", spanNames(d), tt.wantSpans)
			}
			if d.Status != tt.status {
				t.Errorf("status = %q, want %q", d.Status, tt.status)
			}
		})
	}
}

func TestStoreIgnoresUnsampledSpans(t *testing.T) {
	r := newRig(t, Config{}, sdktrace.WithSampler(sdktrace.NeverSample()))
	r.request(reqSpec{out: 3})
	if n := len(traceIDs(r.view)); n != 0 {
		t.Errorf("%d traces kept from unsampled spans", n)
	}
}

func TestStoreSummary(t *testing.T) {
	r := newRig(t, Config{})
	sc := r.request(reqSpec{op: "text_completion", model: "m1", tenant: "acme", out: 5})
	list := r.view.store.recent(10)
	if len(list) != 1 {
		t.Fatalf("%d traces, want 1", len(list))
	}
	got := summarize(list[0], r.view.now())
	ttft := 30.0
	want := TraceSummary{
		TraceID: sc.TraceID().String(), Name: "text_completion m1", Operation: "text_completion", Model: "m1", Tenant: "acme",
		StartUs: got.StartUs, DurationMs: got.DurationMs, InputTokens: 12, OutputTokens: 5, TTFTMs: &ttft,
		Status: StatusOK, FinishReason: "length", Requests: 1, SpanCount: 5, BatchStepCount: 0,
	}
	if got.TTFTMs == nil || *got.TTFTMs != ttft {
		t.Errorf("ttft = %v, want %v", got.TTFTMs, ttft)
	}
	got.TTFTMs = want.TTFTMs
	if got != want {
		t.Errorf("summary\n got %+v\nwant %+v", got, want)
	}
	if got.StartUs == 0 || got.DurationMs <= 0 {
		t.Errorf("start %d, duration %v: want both set", got.StartUs, got.DurationMs)
	}
}

func TestStoreEvictsOldestTraceFirst(t *testing.T) {
	r := newRig(t, Config{MaxTraces: 3})
	var ids []trace.TraceID
	for range 5 {
		ids = append(ids, r.request(reqSpec{out: 1}).TraceID())
	}
	// Newest first: the last three requests, the first two evicted.
	if got, want := traceIDs(r.view), []trace.TraceID{ids[4], ids[3], ids[2]}; !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	for _, id := range ids[:2] {
		if _, ok := r.view.store.lookup(id); ok {
			t.Errorf("evicted trace %s still found", id)
		}
	}
	if n := len(r.view.store.traces); n != 3 {
		t.Errorf("index holds %d traces, want 3", n)
	}
}

func TestStoreBoundsEachTrace(t *testing.T) {
	r := newRig(t, Config{MaxSpansPerTrace: 2, MaxBatchesPerTrace: 3})
	ctx, transport := r.start(reqSpec{})
	for range 5 {
		r.step(ctx)
	}
	sc := trace.SpanContextFromContext(ctx)
	r.finish(ctx, transport, reqSpec{out: 4})
	d := mustLookup(t, r.view, sc.TraceID())
	// queue and prefill end first; decode, the request and the transport
	// span are counted only.
	if got, want := spanNames(d), []string{"prefill:prefill", "queue:queue"}; !slices.Equal(got, want) {
		t.Errorf("spans = %q, want %q", got, want)
	}
	if d.DroppedSpans != 3 || d.SpanCount != 5 {
		t.Errorf("dropped %d of %d spans, want 3 of 5", d.DroppedSpans, d.SpanCount)
	}
	if len(d.BatchSteps) != 3 || d.DroppedBatches != 2 || d.BatchStepCount != 5 {
		t.Errorf("kept %d batch steps, dropped %d (summary %d); want 3, 2, 5", len(d.BatchSteps), d.DroppedBatches, d.BatchStepCount)
	}
	// The request span was not kept as a span, but it still names the trace.
	if d.Status != StatusOK || d.OutputTokens != 4 {
		t.Errorf("summary %+v: want ok with 4 output tokens", d.TraceSummary)
	}
}

func TestBatchStepsIndexedByLink(t *testing.T) {
	r := newRig(t, Config{})
	ctxA, trA := r.start(reqSpec{})
	ctxB, trB := r.start(reqSpec{})
	scA, scB := trace.SpanContextFromContext(ctxA), trace.SpanContextFromContext(ctxB)
	// A sequence of an unsampled request: the step links nothing for it.
	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{9}, SpanID: trace.SpanID{9},
	}))
	r.step(ctxA, ctxB)           // both
	r.step(ctxB)                 // B alone
	r.step(ctxA, unsampled)      // A and one unsampled
	r.step(context.Background()) // nobody we know
	r.finish(ctxA, trA, reqSpec{out: 3})
	r.finish(ctxB, trB, reqSpec{out: 3})

	a, b := mustLookup(t, r.view, scA.TraceID()), mustLookup(t, r.view, scB.TraceID())
	if len(a.BatchSteps) != 2 || len(b.BatchSteps) != 2 {
		t.Fatalf("A has %d steps, B %d; want 2 each", len(a.BatchSteps), len(b.BatchSteps))
	}
	// The shared step is the same batch span in both, each seeing its own
	// link: A was sequence 0 (decoding), B sequence 1 (prefilling 4).
	if a.BatchSteps[0].SpanID != b.BatchSteps[0].SpanID {
		t.Errorf("first steps differ: %s vs %s", a.BatchSteps[0].SpanID, b.BatchSteps[0].SpanID)
	}
	wantA := BatchStep{Size: 2, RequestSpanID: scA.SpanID().String(), Slot: 0, SeqDecode: true, KVUsedCells: 100, KVSizeCells: 2048, PrefillTokens: 4, DecodeTokens: 2}
	wantB := BatchStep{Size: 2, RequestSpanID: scB.SpanID().String(), Slot: 1, SeqPrefillTokens: 4, KVUsedCells: 100, KVSizeCells: 2048, PrefillTokens: 4, DecodeTokens: 2}
	for _, c := range []struct {
		got, want BatchStep
	}{{a.BatchSteps[0], wantA}, {b.BatchSteps[0], wantB}} {
		got := c.got
		if got.SpanID == "" || got.TraceID == "" || got.TraceID == scA.TraceID().String() || got.EndUs < got.StartUs {
			t.Errorf("step ids/times %+v: want its own trace and ordered times", got)
		}
		got.SpanID, got.TraceID, got.StartUs, got.EndUs, got.DurationMs = "", "", 0, 0, 0
		if got != c.want {
			t.Errorf("step\n got %+v\nwant %+v", got, c.want)
		}
	}
	if a.BatchSteps[1].Size != 2 || b.BatchSteps[1].Size != 1 {
		t.Errorf("second steps: A size %d, B size %d; want 2 and 1", a.BatchSteps[1].Size, b.BatchSteps[1].Size)
	}
	if n := len(traceIDs(r.view)); n != 2 {
		t.Errorf("%d traces kept, want 2: batch traces are not traces of their own", n)
	}
}

func TestStoreSeveralRequestsInOneTrace(t *testing.T) {
	r := newRig(t, Config{})
	parent, root := r.raw.Start(context.Background(), "agent turn")
	for _, model := range []string{"first", "second"} {
		ctx := r.tracer.StartRequest(parent, requestInfo(model))
		r.tracer.Finished(ctx, scheduler.Result{ID: model, Finish: scheduler.FinishStop, PromptTokens: 3, CompletionTokens: 2,
			Timings: timings(time.Now(), 50*time.Millisecond)})
	}
	root.End()
	d := mustLookup(t, r.view, root.SpanContext().TraceID())
	if d.Requests != 2 || d.Model != "first" {
		t.Errorf("requests %d, model %q: want 2 and the first one's", d.Requests, d.Model)
	}
	var reqs int
	for _, s := range d.Spans {
		if s.Role == RoleRequest {
			reqs++
		}
	}
	if reqs != 2 {
		t.Errorf("%d request spans in the waterfall, want 2", reqs)
	}
	if tally, _ := r.view.store.drain(time.Time{}); tally.requests != 2 {
		t.Errorf("counted %d finished requests, want 2", tally.requests)
	}
}

// TestStoreConcurrentOnEnd runs requests and steps from many goroutines
// (under -race in make test) and checks the bounds held throughout.
func TestStoreConcurrentOnEnd(t *testing.T) {
	const workers, each = 8, 40
	r := newRig(t, Config{MaxTraces: 16, MaxSpansPerTrace: 4, MaxBatchesPerTrace: 2})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// Readers run alongside, as the page polls while serving.
	readersDone := make(chan struct{})
	go func() {
		defer close(readersDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, tv := range r.view.store.recent(100) {
				if tv, ok := r.view.store.lookup(tv.id); ok {
					_ = detail(tv, time.Now())
				}
			}
			r.view.sample(r.clock.Advance(time.Second))
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ctx, tr := r.start(reqSpec{tenant: fmt.Sprint(w)})
				r.step(ctx)
				r.step(ctx)
				r.step(ctx)
				r.finish(ctx, tr, reqSpec{out: i%5 + 1})
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readersDone

	kept := r.view.store.recent(1 << 20)
	if len(kept) != 16 {
		t.Errorf("%d traces kept, want the bound 16", len(kept))
	}
	for _, tv := range kept {
		d := mustLookup(t, r.view, tv.id)
		if len(d.Spans) > 4 || len(d.BatchSteps) > 2 || d.SpanCount != 5 || d.BatchStepCount != 3 {
			t.Errorf("trace %s: %d spans (%d seen), %d steps (%d seen): bounds broken", tv.id, len(d.Spans), d.SpanCount, len(d.BatchSteps), d.BatchStepCount)
		}
	}
	if n := len(r.view.store.traces); n != 16 {
		t.Errorf("index holds %d traces, want 16", n)
	}
	// Every finished request was counted exactly once by the samples.
	r.view.sample(r.clock.Advance(time.Second))
	var total float64
	for _, s := range r.view.series.after(-1 << 62) {
		total += s.RequestsPerSec // one-second samples: rate = count
	}
	if total != workers*each {
		t.Errorf("samples counted %v finished requests, want %d", total, workers*each)
	}
}

func TestNewRejectsNegativeBounds(t *testing.T) {
	for _, cfg := range []Config{{MaxTraces: -1}, {MaxSpansPerTrace: -1}, {MaxBatchesPerTrace: -2}, {History: -1}, {Interval: -time.Second}, {TTFTWindow: -1}} {
		if v, err := New(cfg); !errors.Is(err, errNegative) {
			if v != nil {
				v.Close()
			}
			t.Errorf("New(%+v): err = %v, want errNegative", cfg, err)
		}
	}
}
