package liveview

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/lumenllm/lumen/internal/recorder"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// TestMain fails the package if a test leaves a goroutine behind: the
// sampler must stop on Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// rig is a View fed by a real tracer provider through Lumen's own
// recorder.Tracer, so the spans are exactly the ones serving makes.
type rig struct {
	view   *View
	clock  *fakeClock
	tp     *sdktrace.TracerProvider
	tracer *recorder.Tracer
	raw    trace.Tracer // for spans the Tracer does not make (transport, health)
}

// newRig builds the rig; cfg.Now and cfg.Tick are filled in (the sampler
// never ticks on its own: tests call sample).
func newRig(t *testing.T, cfg Config, opts ...sdktrace.TracerProviderOption) *rig {
	t.Helper()
	clock := newClock()
	cfg.Now = clock.Now
	if cfg.Tick == nil {
		cfg.Tick = make(chan time.Time)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(v.Processor())}, opts...)...)
	t.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	})
	return &rig{
		view: v, clock: clock, tp: tp,
		tracer: recorder.NewTracer(tp, nil, recorder.TracerOptions{Device: "cpu", KVSize: 2048}),
		raw:    tp.Tracer("test"),
	}
}

// timings are a finished request's phases, relative to t0: queued for
// 10ms, prefilled in two chunks until 30ms, decoded until end.
func timings(t0 time.Time, end time.Duration) scheduler.Timings {
	return scheduler.Timings{
		Enqueued: t0, Admitted: t0.Add(10 * time.Millisecond), FirstToken: t0.Add(30 * time.Millisecond),
		Finished: t0.Add(end),
		PrefillChunks: []scheduler.Chunk{
			{Start: t0.Add(10 * time.Millisecond), End: t0.Add(20 * time.Millisecond), Tokens: 4},
			{Start: t0.Add(20 * time.Millisecond), End: t0.Add(30 * time.Millisecond), Tokens: 4},
		},
		DecodeSteps: 4, DecodeBatchSum: 6,
	}
}

// reqSpec describes one request for the rig to run.
type reqSpec struct {
	op, model, tenant string
	finish            scheduler.FinishReason
	out               int           // completion tokens
	ttft              time.Duration // first token after enqueue; 0: none
	prepare           bool          // with a prepare span (and tokenize)
}

// start starts a request under a transport server span, as otelhttp
// makes one, and returns the request's context.
func (r *rig) start(s reqSpec) (ctx context.Context, transport trace.Span) {
	ctx, transport = r.raw.Start(context.Background(), "POST /v1/chat/completions", trace.WithSpanKind(trace.SpanKindServer))
	if s.op == "" {
		s.op = semconv.OperationChat
	}
	if s.model == "" {
		s.model = "tiny"
	}
	info := recorder.RequestInfo{Operation: s.op, Model: s.model, Tenant: s.tenant, MaxTokens: 8}
	if s.prepare {
		now := time.Now()
		info.Received, info.Tokenize = now, recorder.Phase{Start: now, End: now}
	}
	ctx = r.tracer.StartRequest(ctx, info)
	return ctx, transport
}

// finish ends the request (and its phases) and then its transport span.
func (r *rig) finish(ctx context.Context, transport trace.Span, s reqSpec) {
	t0 := time.Now()
	tm := timings(t0, 70*time.Millisecond)
	if s.ttft > 0 {
		tm.FirstToken = t0.Add(s.ttft)
		tm.Admitted = t0.Add(s.ttft / 2)
		tm.PrefillChunks = nil
	}
	if s.out == 0 {
		tm.FirstToken = time.Time{}
	}
	finish := s.finish
	if finish == "" {
		finish = scheduler.FinishLength
	}
	r.tracer.Finished(ctx, scheduler.Result{ID: "r", Finish: finish, PromptTokens: 12, CompletionTokens: s.out, Slot: 0, Timings: tm})
	transport.End()
}

// request runs one whole request.
func (r *rig) request(s reqSpec) trace.SpanContext {
	ctx, tr := r.start(s)
	sc := trace.SpanContextFromContext(ctx)
	r.finish(ctx, tr, s)
	return sc
}

// step records one engine step holding the given requests (a context
// without a span stands for a request that was not sampled).
func (r *rig) step(ctxs ...context.Context) {
	seqs := make([]scheduler.StepSeq, len(ctxs))
	for i, c := range ctxs {
		seqs[i] = scheduler.StepSeq{ID: "s", Ctx: c, Slot: i, PrefillTokens: 4 * (i % 2), Decode: i%2 == 0}
	}
	now := time.Now()
	r.tracer.Step(scheduler.StepInfo{Start: now, End: now.Add(time.Millisecond), PrefillTokens: 4, DecodeTokens: len(ctxs),
		KVUsed: 100, Seqs: seqs})
}

func requestInfo(model string) recorder.RequestInfo {
	return recorder.RequestInfo{Operation: semconv.OperationChat, Model: model, MaxTokens: 4}
}
