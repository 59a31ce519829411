package telemetry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// fakeExporter records exported span names. With release set, every
// export waits until release is closed, ignoring its context, like a
// badly behaved exporter. With batches set, each export's names are also
// sent there.
type fakeExporter struct {
	release chan struct{}
	batches chan []string

	mu       sync.Mutex
	err      error
	names    []string
	shutdown bool
}

func (e *fakeExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.release != nil {
		<-e.release
	}
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name()
	}
	e.mu.Lock()
	err := e.err
	if err == nil {
		e.names = append(e.names, names...)
	}
	e.mu.Unlock()
	if e.batches != nil {
		e.batches <- names
	}
	return err
}

func (e *fakeExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdown = true
	return nil
}

func (e *fakeExporter) setErr(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.err = err
}

func (e *fakeExporter) exported() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.names)
}

// newTestProcessor returns a processor over exp and a provider feeding it
// that samples everything.
func newTestProcessor(exp sdktrace.SpanExporter, opts queueOptions, log *slog.Logger) (*exportQueue, *sdktrace.TracerProvider) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bp := newExportQueue(exp, opts, log)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(bp))
	return bp, tp
}

func endSpans(tp *sdktrace.TracerProvider, name string, n int) {
	tr := tp.Tracer("test")
	for range n {
		_, span := tr.Start(context.Background(), name)
		span.End()
	}
}

func TestBatchProcessorNeverBlocksOnAStuckExporter(t *testing.T) {
	exp := &fakeExporter{release: make(chan struct{})}
	const queue, batch, spans = 16, 4, 1000
	bp, tp := newTestProcessor(exp, queueOptions{maxQueue: queue, maxBatch: batch, batchTimeout: time.Hour, exportTimeout: time.Hour}, nil)

	// Were OnEnd to wait for the exporter, this would never return.
	endSpans(tp, "request", spans)
	if got := bp.Dropped(); got < spans-queue-batch {
		t.Errorf("dropped %d spans with the exporter stuck, want at least %d", got, spans-queue-batch)
	}

	close(exp.release)
	if err := bp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := int64(len(exp.exported())) + bp.Dropped(); got != spans {
		t.Errorf("exported + dropped = %d, want %d", got, spans)
	}
}

func TestBatchProcessorCountsFailedExports(t *testing.T) {
	exp := &fakeExporter{}
	exp.setErr(errors.New("collector down"))
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	bp, tp := newTestProcessor(exp, queueOptions{maxQueue: 100, maxBatch: 10, batchTimeout: time.Hour, exportTimeout: time.Second}, log)
	defer bp.Shutdown(context.Background())

	endSpans(tp, "request", 25)
	if err := bp.ForceFlush(context.Background()); err == nil || !strings.Contains(err.Error(), "collector down") {
		t.Fatalf("ForceFlush err = %v, want the export error", err)
	}
	if got := bp.Dropped(); got != 25 {
		t.Errorf("dropped = %d, want 25", got)
	}
	if n := strings.Count(logs.String(), "span export failing"); n != 1 {
		t.Errorf("logged the failure %d times, want once:\n%s", n, logs.String())
	}

	exp.setErr(nil)
	endSpans(tp, "request", 5)
	if err := bp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(exp.exported()); got != 5 {
		t.Errorf("exported %d spans after recovery, want 5", got)
	}
	if got := bp.Dropped(); got != 25 {
		t.Errorf("dropped = %d after recovery, want still 25", got)
	}
	if !strings.Contains(logs.String(), "span export recovered") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

func TestBatchProcessorShutdownGivesUp(t *testing.T) {
	exp := &fakeExporter{release: make(chan struct{})}
	bp, tp := newTestProcessor(exp, queueOptions{maxQueue: 100, maxBatch: 4, batchTimeout: time.Hour, exportTimeout: time.Hour}, nil)
	endSpans(tp, "request", 10)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := bp.Shutdown(ctx)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown err = %v, want context.Canceled", err)
	}
	if got := bp.Dropped(); got != 10 {
		t.Errorf("dropped = %d, want all 10 counted when Shutdown gives up", got)
	}

	close(exp.release) // let the goroutine finish
	<-bp.done
	if got := bp.Dropped(); got != 10 {
		t.Errorf("dropped = %d after the stuck export returned, want still 10", got)
	}
	if err := bp.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
}

func TestBatchProcessorExportsOnTimeout(t *testing.T) {
	exp := &fakeExporter{batches: make(chan []string, 10)}
	bp, tp := newTestProcessor(exp, queueOptions{maxQueue: 100, maxBatch: 100, batchTimeout: time.Millisecond, exportTimeout: time.Second}, nil)
	defer bp.Shutdown(context.Background())

	endSpans(tp, "request", 3)
	var got []string
	for len(got) < 3 {
		got = append(got, <-exp.batches...)
	}
	if len(got) != 3 {
		t.Errorf("exported %v, want 3 spans", got)
	}
}

func TestBatchProcessorExportsFullBatches(t *testing.T) {
	exp := &fakeExporter{batches: make(chan []string, 10)}
	bp, tp := newTestProcessor(exp, queueOptions{maxQueue: 100, maxBatch: 5, batchTimeout: time.Hour, exportTimeout: time.Second}, nil)
	defer bp.Shutdown(context.Background())

	endSpans(tp, "request", 10)
	for i := range 2 {
		if b := <-exp.batches; len(b) != 5 {
			t.Errorf("batch %d has %d spans, want 5", i, len(b))
		}
	}
}

func TestBatchProcessorFlushAndShutdown(t *testing.T) {
	exp := &fakeExporter{}
	bp, tp := newTestProcessor(exp, queueOptions{maxQueue: 100, maxBatch: 100, batchTimeout: time.Hour, exportTimeout: time.Second}, nil)

	endSpans(tp, "a", 3)
	if err := bp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exp.exported(); len(got) != 3 {
		t.Fatalf("after ForceFlush exported %v, want 3 spans", got)
	}

	endSpans(tp, "b", 2)
	if err := bp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exp.exported(); !slices.Equal(got, []string{"a", "a", "a", "b", "b"}) {
		t.Errorf("after Shutdown exported %v", got)
	}
	if !exp.shutdown {
		t.Error("exporter not shut down")
	}

	endSpans(tp, "late", 2)
	if err := bp.ForceFlush(context.Background()); err != nil {
		t.Errorf("ForceFlush after Shutdown = %v", err)
	}
	if got := len(exp.exported()); got != 5 {
		t.Errorf("spans ended after Shutdown were exported")
	}
	if bp.Dropped() != 0 {
		t.Errorf("dropped = %d, want 0", bp.Dropped())
	}
}

// recordOnly records spans without sampling them.
type recordOnly struct{}

func (recordOnly) ShouldSample(sdktrace.SamplingParameters) sdktrace.SamplingResult {
	return sdktrace.SamplingResult{Decision: sdktrace.RecordOnly}
}
func (recordOnly) Description() string { return "recordOnly" }

func TestBatchProcessorSkipsUnsampledSpans(t *testing.T) {
	exp := &fakeExporter{}
	bp := newExportQueue(exp, queueOptions{maxQueue: 1, maxBatch: 1, batchTimeout: time.Hour, exportTimeout: time.Second}, slog.New(slog.DiscardHandler))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(recordOnly{}), sdktrace.WithSpanProcessor(bp))
	endSpans(tp, "unsampled", 10)
	if err := bp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exp.exported(); len(got) != 0 || bp.Dropped() != 0 {
		t.Errorf("exported %v, dropped %d; want nothing for unsampled spans", got, bp.Dropped())
	}
}
