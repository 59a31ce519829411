package telemetry

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/lumenllm/lumen/internal/recorder"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// cpuTime is the process's user + system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTracingCost measures what tracing adds to serving, per engine
// step and per request, with tracing off (as with OTEL_SDK_DISABLED: a
// no-op provider) and on (everything sampled, batch spans unlimited, exported
// over OTLP/gRPC to an in-process receiver). The work measured is what
// the scheduler goroutine calls between decode steps (Tracer.Step,
// Tracer.Finished, with their metrics) plus the request span's start in
// the transport goroutine. ns/op is what the calling goroutine pays: on
// the scheduler goroutine it delays the next decode step. "on" flushes
// the exporter every 256 operations, off the clock, so the cost of
// encoding, sending and (for the in-process receiver) decoding every
// span is paid rather than dropped, and counted in cpu-µs/op: the CPU
// time of the whole process (exporter and receiver goroutines included)
// per operation. A decode step takes milliseconds (docs/benchmarks.md),
// so µs per step is the overhead's share of a step in thousandths.
func BenchmarkTracingCost(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		var tp, batchTP trace.TracerProvider = noop.NewTracerProvider(), noop.NewTracerProvider()
		var flush func(context.Context) error
		var dropped func() int64
		var rec *otlpReceiver
		if mode == "on" {
			var addr string
			addr, rec = startReceiver(b)
			tel, err := Setup(context.Background(), Config{
				Exporter: ExporterOTLPGRPC, Endpoint: addr, Sampler: sdktrace.AlwaysSample(), BatchSpanRate: -1,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { tel.Shutdown(context.Background()) })
			tp, batchTP, flush, dropped = tel.TracerProvider, tel.BatchTracerProvider, tel.ForceFlush, tel.DroppedSpans
		}
		tr := recorder.NewTracer(tp, recorder.NewMetrics(recorder.MetricsConfig{}), recorder.TracerOptions{Device: "cpu", KVSize: 4096, BatchTracerProvider: batchTP})
		info := recorder.RequestInfo{Operation: semconv.OperationCompletion, Model: "bench", MaxTokens: 64, Tenant: "t1",
			Sampling: scheduler.SamplingParams{Temperature: 0.7, TopP: 0.9, TopK: 40, Seed: 1}}

		run := func(name string, op func(i int)) {
			b.Run(name+"/"+mode, func(b *testing.B) {
				var before int64
				if rec != nil {
					before = rec.spans.Load()
				}
				cpu0 := cpuTime(b)
				b.ResetTimer()
				for i := range b.N {
					op(i)
					if flush != nil && i%256 == 255 {
						// Off the clock: ns/op is what the calling
						// goroutine pays, the export is in cpu-µs/op.
						b.StopTimer()
						if err := flush(context.Background()); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
				}
				b.StopTimer()
				if flush != nil {
					if err := flush(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
				if rec != nil {
					if d := dropped(); d > 0 {
						b.Fatalf("%d spans dropped: the export cost was not all paid", d)
					}
					b.ReportMetric(float64(rec.spans.Load()-before)/float64(b.N), "spans/op")
				}
			})
		}

		// A step of 8 decoding sequences, each linked to its request.
		seqs := make([]scheduler.StepSeq, 8)
		for i := range seqs {
			ctx := tr.StartRequest(context.Background(), info)
			seqs[i] = scheduler.StepSeq{ID: fmt.Sprint("cmpl-", i), Ctx: ctx, Slot: i, Decode: true}
		}
		t0 := time.Now()
		run("step-8-seqs", func(int) {
			tr.Step(scheduler.StepInfo{Start: t0, End: t0.Add(50 * time.Millisecond), DecodeTokens: 8, KVUsed: 640, Device: "cpu", Seqs: seqs})
		})
		// A whole request's tracing: its span started, then ended with
		// prepare (and tokenize), queue, prefill (two chunk events) and
		// decode children, metrics and the access log line (discarded).
		at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
		ms := func(n int) time.Time { return at.Add(time.Duration(n) * time.Millisecond) }
		res := scheduler.Result{ID: "cmpl-bench", Finish: scheduler.FinishLength, PromptTokens: 12, CompletionTokens: 5, Slot: 1,
			Timings: scheduler.Timings{Enqueued: at, Admitted: ms(10), FirstToken: ms(30), Finished: ms(70), DecodeSteps: 4, DecodeBatchSum: 10,
				PrefillChunks: []scheduler.Chunk{{Start: ms(10), End: ms(20), Tokens: 4}, {Start: ms(20), End: ms(30), Tokens: 4}}}}
		// With its prepare phase as the inference layer records it: the
		// prepare span and its tokenize child before the queue.
		prepared := info
		prepared.Received = at.Add(-2 * time.Millisecond)
		prepared.Tokenize = recorder.Phase{Start: at.Add(-time.Millisecond), End: at}
		run("request", func(int) {
			tr.Finished(tr.StartRequest(context.Background(), prepared), res)
		})
	}
}
