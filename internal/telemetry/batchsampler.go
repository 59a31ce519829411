package telemetry

import (
	"fmt"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// DefaultBatchSpanRate is the most batch spans sampled per second when
// Config.BatchSpanRate is zero: enough to see the engine's rhythm, far
// below a GPU's step rate.
const DefaultBatchSpanRate = 100

// batchSampler decides the root spans of the batch tracer provider
// (Telemetry.BatchTracerProvider), which are batch spans, one per engine
// step, on their own terms, so that they cannot flood the exporter and
// whatever samples request spans (the SDK's OTEL_TRACES_SAMPLER,
// Config.Sampler, a strategies file) does not decide them:
//
//   - a batch span is sampled only if at least one request linked to it
//     is sampled: batch spans exist to explain sampled requests;
//   - then, when a strategies file is in use, by its strategy for the
//     "batch" operation (or the one that applies to it);
//   - then by a token bucket of rate spans per second (no bucket when
//     rate is negative).
//
// Setup wraps it in sdktrace.ParentBased: a span with a parent follows
// it.
type batchSampler struct {
	file    *FileSampler // nil without a strategies file
	limiter *rateLimiter // nil: unlimited
}

func newBatchSampler(file *FileSampler, rate float64, now func() time.Time) *batchSampler {
	s := &batchSampler{file: file}
	if rate == 0 {
		rate = DefaultBatchSpanRate
	}
	if rate > 0 {
		s.limiter = newRateLimiter(rate, now)
	}
	return s
}

func (s *batchSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
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
	desc := fmt.Sprintf("BatchSpans{linked to a sampled request, %s}", limit)
	if s.file != nil {
		desc += "+" + s.file.Description()
	}
	return desc
}
