package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// queueOptions configures an exportQueue.
type queueOptions struct {
	maxQueue      int           // spans waiting for export; more are dropped
	maxBatch      int           // spans per export
	batchTimeout  time.Duration // longest wait for a batch to fill
	exportTimeout time.Duration // bound on one export
}

// exportQueue is a span processor that never makes the caller wait:
// OnEnd puts the span in a bounded queue or, when the queue is full,
// drops and counts it. One goroutine (run) owns the exporter and the
// batch being built, and exports each batch under exportTimeout.
//
// Unlike the SDK's batch processor it counts every sampled span it loses
// (queue full, export failed, abandoned at Shutdown) and reports export
// errors to a logger instead of the global OpenTelemetry error handler.
type exportQueue struct {
	exp  sdktrace.SpanExporter
	opts queueOptions
	log  *slog.Logger

	queue   chan sdktrace.ReadOnlySpan
	flushes chan flushRequest
	quit    chan struct{} // closed by Shutdown
	done    chan struct{} // closed when run returns

	// abort is cancelled when a Shutdown's context ends, cutting short the
	// export in progress and those of the final drain.
	abort       context.Context
	cancelAbort context.CancelFunc

	stopped atomic.Bool
	dropped atomic.Int64
	// pending counts spans accepted into the queue whose fate (exported
	// or dropped) is not settled yet.
	pending atomic.Int64

	settleMu  sync.Mutex
	abandoned bool // Shutdown gave up; pending was moved to dropped

	stopOnce sync.Once
	finalErr error // written by run before closing done

	failing bool // run only: the last export failed
}

var _ sdktrace.SpanProcessor = (*exportQueue)(nil)

type flushRequest struct {
	ctx    context.Context
	result chan error // buffered
}

// newExportQueue starts the processor's goroutine; Shutdown stops it.
func newExportQueue(exp sdktrace.SpanExporter, opts queueOptions, log *slog.Logger) *exportQueue {
	abort, cancel := context.WithCancel(context.Background())
	b := &exportQueue{
		exp:         exp,
		opts:        opts,
		log:         log,
		queue:       make(chan sdktrace.ReadOnlySpan, opts.maxQueue),
		flushes:     make(chan flushRequest),
		quit:        make(chan struct{}),
		done:        make(chan struct{}),
		abort:       abort,
		cancelAbort: cancel,
	}
	go b.run()
	return b
}

// Dropped is the number of sampled spans lost so far.
func (b *exportQueue) Dropped() int64 { return b.dropped.Load() }

// OnStart does nothing.
func (*exportQueue) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span for export without ever blocking.
func (b *exportQueue) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() || b.stopped.Load() {
		return
	}
	b.pending.Add(1)
	select {
	case b.queue <- s:
	default:
		b.pending.Add(-1)
		b.dropped.Add(1)
	}
}

// ForceFlush exports every span queued before the call, within ctx.
func (b *exportQueue) ForceFlush(ctx context.Context) error {
	if b.stopped.Load() {
		return nil
	}
	req := flushRequest{ctx: ctx, result: make(chan error, 1)}
	select {
	case b.flushes <- req:
	case <-b.quit:
		return nil // Shutdown flushes
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued and shuts the exporter down, within
// ctx. When ctx ends first, the exports still running are cancelled, the
// spans not yet delivered are counted as dropped, and Shutdown returns
// without waiting further. Only the first call does anything; later calls
// return nil.
func (b *exportQueue) Shutdown(ctx context.Context) error {
	var err error
	b.stopOnce.Do(func() {
		b.stopped.Store(true)
		stopAbort := context.AfterFunc(ctx, b.cancelAbort)
		close(b.quit)
		select {
		case <-b.done:
			stopAbort()
			b.cancelAbort()
			err = b.finalErr
		case <-ctx.Done():
			n := b.abandon()
			err = fmt.Errorf("gave up on %d unexported spans: %w", n, context.Cause(ctx))
		}
	})
	return err
}

// abandon counts every pending span as dropped and makes later
// settlements no-ops, so none is counted twice.
func (b *exportQueue) abandon() int64 {
	b.settleMu.Lock()
	defer b.settleMu.Unlock()
	b.abandoned = true
	n := max(b.pending.Swap(0), 0)
	b.dropped.Add(n)
	return n
}

// settle records the fate of n exported spans.
func (b *exportQueue) settle(n int, failed bool) {
	b.settleMu.Lock()
	defer b.settleMu.Unlock()
	if b.abandoned {
		return
	}
	b.pending.Add(-int64(n))
	if failed {
		b.dropped.Add(int64(n))
	}
}

func (b *exportQueue) run() {
	defer close(b.done)
	batch := make([]sdktrace.ReadOnlySpan, 0, b.opts.maxBatch)
	timer := time.NewTimer(b.opts.batchTimeout)
	defer timer.Stop()
	for {
		select {
		case s := <-b.queue:
			batch = append(batch, s)
			if len(batch) < b.opts.maxBatch {
				continue
			}
			batch, _ = b.export(b.abort, batch)
		case <-timer.C:
			batch, _ = b.export(b.abort, batch)
		case req := <-b.flushes:
			var err error
			batch, err = b.drain(req.ctx, batch, len(b.queue))
			req.result <- err
		case <-b.quit:
			_, err := b.drain(b.abort, batch, -1)
			if shutErr := b.exp.Shutdown(b.abort); shutErr != nil {
				err = errors.Join(err, fmt.Errorf("shut down exporter: %w", shutErr))
			}
			b.finalErr = err
			return
		}
		timer.Reset(b.opts.batchTimeout)
	}
}

// drain moves up to limit queued spans (all of them, until the queue is
// empty, when limit < 0) into batches and exports them all.
func (b *exportQueue) drain(ctx context.Context, batch []sdktrace.ReadOnlySpan, limit int) ([]sdktrace.ReadOnlySpan, error) {
	var (
		firstErr error
		failures int
	)
	exportBatch := func() {
		var err error
		batch, err = b.export(ctx, batch)
		if err != nil {
			failures++
			firstErr = cmp.Or(firstErr, err)
		}
	}
	add := func(s sdktrace.ReadOnlySpan) {
		batch = append(batch, s)
		if len(batch) >= b.opts.maxBatch {
			exportBatch()
		}
	}
	if limit >= 0 {
		// run is the only receiver, so limit = len(queue) spans are there.
		for range limit {
			add(<-b.queue)
		}
	} else {
	loop:
		for {
			select {
			case s := <-b.queue:
				add(s)
			default:
				break loop
			}
		}
	}
	exportBatch()
	if failures > 1 {
		return batch, fmt.Errorf("%d exports failed, the first: %w", failures, firstErr)
	}
	return batch, firstErr
}

// export sends batch under exportTimeout, settles its spans and returns
// the emptied batch.
func (b *exportQueue) export(ctx context.Context, batch []sdktrace.ReadOnlySpan) ([]sdktrace.ReadOnlySpan, error) {
	if len(batch) == 0 {
		return batch, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.exportTimeout)
	err := b.exp.ExportSpans(ctx, batch)
	cancel()
	n := len(batch)
	b.settle(n, err != nil)
	clear(batch) // let the spans be collected
	batch = batch[:0]
	if err != nil {
		if !b.failing {
			b.failing = true
			b.log.Warn("span export failing; spans are dropped until it recovers", "spans", n, "err", err)
		}
		return batch, fmt.Errorf("export %d spans: %w", n, err)
	}
	if b.failing {
		b.failing = false
		b.log.Info("span export recovered", "dropped_total", b.dropped.Load())
	}
	return batch, nil
}
