package telemetry

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

func link(sampled bool) trace.Link {
	flags := trace.TraceFlags(0)
	if sampled {
		flags = trace.FlagsSampled
	}
	return trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceIDs(1)[0], SpanID: trace.SpanID{1}, TraceFlags: flags,
	})}
}

func batchParams(links ...trace.Link) sdktrace.SamplingParameters {
	return sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: traceIDs(2)[1], Name: semconv.SpanBatch, Links: links}
}

func TestBatchSamplerFollowsLinkedRequests(t *testing.T) {
	s := newBatchSampler(nil, -1, time.Now)
	tests := []struct {
		name  string
		links []trace.Link
		want  sdktrace.SamplingDecision
	}{
		{"no requests", nil, sdktrace.Drop},
		{"only unsampled requests", []trace.Link{link(false), link(false)}, sdktrace.Drop},
		{"one sampled request", []trace.Link{link(false), link(true)}, sdktrace.RecordAndSample},
	}
	for _, tt := range tests {
		if got := s.ShouldSample(batchParams(tt.links...)).Decision; got != tt.want {
			t.Errorf("%s: decision %v, want %v", tt.name, got, tt.want)
		}
	}
}

// Batch spans come from a tracer provider of their own: the request
// sampler does not decide them, and they do not decide requests.
func TestSetupBatchTracerProvider(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel := mustSetup(t, Config{Sampler: sdktrace.NeverSample(), BatchSpanRate: -1, SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if rootSampled(tel, "chat m") {
		t.Error("request span sampled under a never sampler")
	}
	batch := func(l trace.Link) bool {
		_, span := tel.BatchTracerProvider.Tracer("test").Start(context.Background(), semconv.SpanBatch,
			trace.WithNewRoot(), trace.WithLinks(l))
		defer span.End()
		return span.SpanContext().IsSampled()
	}
	if !batch(link(true)) {
		t.Error("batch span of a sampled request not sampled under a never request sampler")
	}
	if batch(link(false)) {
		t.Error("batch span of an unsampled request sampled")
	}
	// Its sampled spans reach the processors it shares with the main
	// provider.
	if n := len(rec.Ended()); n != 1 || rec.Ended()[0].Name() != semconv.SpanBatch {
		t.Errorf("processors saw %d spans, want the sampled batch span", n)
	}
	// An OTEL_TRACES_SAMPLER that drops requests leaves nothing for
	// batch spans to follow: the request spans stay unsampled.
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	tel = mustSetup(t, Config{})
	if rootSampled(tel, "chat m") {
		t.Error("request span sampled under OTEL_TRACES_SAMPLER=always_off")
	}
}

func TestBatchSamplerRateLimit(t *testing.T) {
	clock := newFakeClock()
	s := newBatchSampler(nil, 2, clock.Now)
	sampled := func(n int) int {
		k := 0
		for range n {
			if s.ShouldSample(batchParams(link(true))).Decision == sdktrace.RecordAndSample {
				k++
			}
		}
		return k
	}
	if got := sampled(10); got != 2 {
		t.Errorf("burst: %d sampled, want the bucket's 2", got)
	}
	clock.Advance(time.Second)
	if got := sampled(10); got != 2 {
		t.Errorf("after 1s: %d sampled, want 2", got)
	}
	// Unsampled batches do not spend tokens.
	clock.Advance(time.Second)
	for range 5 {
		s.ShouldSample(batchParams(link(false)))
	}
	if got := sampled(10); got != 2 {
		t.Errorf("after unsampled batches: %d sampled, want 2", got)
	}
	if d := newBatchSampler(nil, 0, clock.Now).limiter.rate; d != DefaultBatchSpanRate {
		t.Errorf("zero rate: limiter %v/s, want the default %v", d, DefaultBatchSpanRate)
	}
}

func TestBatchSamplerFileStrategy(t *testing.T) {
	path := writeStrategies(t, `{"service_strategies":[{"service":"lumen","type":"probabilistic","param":1,
		"operation_strategies":[{"operation":"batch","type":"probabilistic","param":0.25}]}]}`)
	fs, err := NewFileSampler(FileSamplerConfig{Path: path, ServiceName: "lumen"})
	if err != nil {
		t.Fatal(err)
	}
	s := newBatchSampler(fs, -1, time.Now)
	ids := traceIDs(4000)
	n := 0
	for _, id := range ids {
		p := batchParams(link(true))
		p.TraceID = id
		if s.ShouldSample(p).Decision == sdktrace.RecordAndSample {
			n++
		}
	}
	if r := float64(n) / float64(len(ids)); r < 0.22 || r > 0.28 {
		t.Errorf("batch spans sampled at %.3f, want the file's 0.25", r)
	}
	p := batchParams(link(false))
	if s.ShouldSample(p).Decision != sdktrace.Drop {
		t.Error("batch span of unsampled requests sampled by the file strategy")
	}
}
