package telemetry

import (
	"fmt"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// DefaultBatchSpanRate is the most batch spans sampled per second when
// Config.BatchSpanRate is zero: enough to see the engine's rhythm, far
// below a GPU's step rate.
const DefaultBatchSpanRate = 100

// batchSampler decides batch spans (roots named semconv.SpanBatch) on their own
// terms, so that one span per engine step cannot flood the exporter:
//
//   - a batch span is sampled only if at least one request linked to it
//     is sampled: batch spans exist to explain sampled requests;
//   - then, when a strategies file is in use, by its strategy for the
//     "batch" operation (or the one that applies to it);
//   - then by a token bucket of rate spans per second (no bucket when
//     rate is negative).
//
// Every other span is decided by next.
type batchSampler struct {
	next    sdktrace.Sampler
	file    *FileSampler // nil without a strategies file
	limiter *rateLimiter // nil: unlimited
}

func newBatchSampler(next sdktrace.Sampler, file *FileSampler, rate float64, now func() time.Time) *batchSampler {
	s := &batchSampler{next: next, file: file}
	if rate == 0 {
		rate = DefaultBatchSpanRate
	}
	if rate > 0 {
		s.limiter = newRateLimiter(rate, now)
	}
	return s
}

func (s *batchSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.Name != semconv.SpanBatch || trace.SpanContextFromContext(p.ParentContext).IsValid() {
		return s.next.ShouldSample(p)
	}
	drop := sdktrace.SamplingResult{Decision: sdktrace.Drop}
	linked := false
	for _, l := range p.Links {
		if l.SpanContext.IsSampled() {
			linked = true
			break
		}
	}
	if !linked {
		return drop
	}
	if s.file != nil && s.file.ShouldSample(p).Decision != sdktrace.RecordAndSample {
		return drop
	}
	if s.limiter != nil && !s.limiter.sample(p) {
		return drop
	}
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
}

func (s *batchSampler) Description() string {
	limit := "unlimited"
	if s.limiter != nil {
		limit = fmt.Sprintf("%g/s", s.limiter.rate)
	}
	return fmt.Sprintf("BatchSpans{linked to a sampled request, %s}+%s", limit, s.next.Description())
}
