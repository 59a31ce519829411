package liveview

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// Store is the span processor behind the live view. It keeps the most
// recent traces that hold an inference request (or that failed), up to
// MaxTraces of them in admission order, each with at most
// MaxSpansPerTrace spans and MaxBatchesPerTrace linked batch steps; the
// oldest trace is evicted to admit a new one, and spans or steps beyond
// a trace's bounds are counted, not kept.
//
// A trace is admitted when its request span starts (so running requests
// show up) or when one of its spans ends with an error status; spans of
// other traces (health checks) are ignored. A batch span is not stored as
// a trace: it is indexed under each admitted request trace it links to.
//
// OnStart and OnEnd hold one mutex for O(1) work (O(links) for a batch
// span, at most the number of sequence slots), and OnEnd keeps the SDK's
// read-only span snapshot itself rather than a copy: conversion to JSON
// happens when the page asks. Only sampled spans are considered.
type Store struct {
	maxTraces, maxSpans, maxBatches int
	now                             func() time.Time

	mu     sync.Mutex
	traces map[trace.TraceID]*traceRec
	ring   []*traceRec // admission order; when full, ring[next] is the oldest
	next   int
	acc    counters
}

// traceRec is one trace as the store holds it. Its fields change only
// under Store.mu; spans and batches are only ever appended to.
type traceRec struct {
	id trace.TraceID

	// reqs are the trace's request spans as they started (a caller may
	// send several requests under one trace); reqs[0] names the trace.
	reqs []reqStart
	// ended is reqs[0]'s span once it has ended.
	ended sdktrace.ReadOnlySpan

	spans          []sdktrace.ReadOnlySpan
	droppedSpans   int
	batches        []batchRef
	droppedBatches int
	errored        bool // some span of the trace ended with an error status
}

// reqStart is what a request span says as it starts.
type reqStart struct {
	spanID    trace.SpanID
	name      string
	operation string
	model     string
	tenant    string
	start     time.Time
	done      bool // the span has ended
}

// batchRef is one engine step a request took part in: the batch span and
// the index of its link to that request.
type batchRef struct {
	span sdktrace.ReadOnlySpan
	link int
}

// counters accumulate what ended between two samples of the series, and
// the recent TTFTs the median is taken over.
type counters struct {
	tally
	ttft ttftRing
}

// tally is what ended between two samples.
type tally struct {
	requests     int   // request spans ended
	outputTokens int64 // their gen_ai.usage.output_tokens
	batches      int   // batch spans ended
	batchSeqs    int64 // their lumen.batch.size, summed
}

var _ sdktrace.SpanProcessor = (*Store)(nil)

func newStore(now func() time.Time, maxTraces, maxSpans, maxBatches, maxTTFT int) *Store {
	return &Store{
		now:        now,
		maxTraces:  maxTraces,
		maxSpans:   maxSpans,
		maxBatches: maxBatches,
		traces:     make(map[trace.TraceID]*traceRec, maxTraces),
		ring:       make([]*traceRec, 0, maxTraces),
		acc:        counters{ttft: newTTFTRing(maxTTFT)},
	}
}

// OnStart admits the trace of a request span.
func (st *Store) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	sc := s.SpanContext()
	if !sc.IsSampled() || s.Name() == semconv.SpanBatch {
		return
	}
	info, ok := requestStart(s)
	if !ok {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	rec := st.admit(sc.TraceID())
	if len(rec.reqs) < st.maxSpans {
		rec.reqs = append(rec.reqs, info)
	}
}

// requestStart recognises a request span by its gen_ai.operation.name.
func requestStart(s sdktrace.ReadWriteSpan) (reqStart, bool) {
	info := reqStart{spanID: s.SpanContext().SpanID(), name: s.Name(), start: s.StartTime()}
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case semconv.AttrOperation:
			info.operation = kv.Value.AsString()
		case semconv.AttrRequestModel:
			info.model = kv.Value.AsString()
		case semconv.AttrTenant:
			info.tenant = kv.Value.AsString()
		}
	}
	return info, info.operation != ""
}

// OnEnd files an ended span under its trace, or a batch span under the
// request traces it links to.
func (st *Store) OnEnd(s sdktrace.ReadOnlySpan) {
	sc := s.SpanContext()
	if !sc.IsSampled() {
		return
	}
	if s.Name() == semconv.SpanBatch && !s.Parent().IsValid() {
		st.onBatch(s)
		return
	}
	failed := s.Status().Code == codes.Error
	// Request spans count for the series whether or not their trace is
	// still kept (a long one may have been evicted while it ran).
	isReq := hasOperation(s)
	var now time.Time
	if isReq {
		now = st.now()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if isReq {
		st.acc.request(s, now)
	}
	rec := st.traces[sc.TraceID()]
	if rec == nil {
		if !failed {
			return
		}
		rec = st.admit(sc.TraceID())
	}
	rec.errored = rec.errored || failed
	if len(rec.spans) < st.maxSpans {
		rec.spans = append(rec.spans, s)
	} else {
		rec.droppedSpans++
	}
	for i := range rec.reqs {
		if rec.reqs[i].spanID == sc.SpanID() {
			rec.reqs[i].done = true
			if i == 0 {
				rec.ended = s
			}
			break
		}
	}
}

func hasOperation(s sdktrace.ReadOnlySpan) bool {
	for _, kv := range s.Attributes() {
		if kv.Key == semconv.AttrOperation {
			return true
		}
	}
	return false
}

func (st *Store) onBatch(s sdktrace.ReadOnlySpan) {
	size := intAttr(s.Attributes(), semconv.AttrBatchSize)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.acc.batches++
	st.acc.batchSeqs += size
	for i, l := range s.Links() {
		if !l.SpanContext.IsSampled() {
			continue
		}
		rec := st.traces[l.SpanContext.TraceID()]
		if rec == nil {
			continue
		}
		if len(rec.batches) < st.maxBatches {
			rec.batches = append(rec.batches, batchRef{span: s, link: i})
		} else {
			rec.droppedBatches++
		}
	}
}

// admit returns the trace's record, creating it and evicting the oldest
// when the ring is full. Callers hold st.mu.
func (st *Store) admit(id trace.TraceID) *traceRec {
	if rec := st.traces[id]; rec != nil {
		return rec
	}
	rec := &traceRec{id: id}
	if len(st.ring) < st.maxTraces {
		st.ring = append(st.ring, rec)
	} else {
		delete(st.traces, st.ring[st.next].id)
		st.ring[st.next] = rec
		st.next = (st.next + 1) % st.maxTraces
	}
	st.traces[id] = rec
	return rec
}

// Shutdown does nothing: the view's Close owns the store's lifetime.
func (st *Store) Shutdown(context.Context) error { return nil }

// ForceFlush does nothing: nothing is buffered for export.
func (st *Store) ForceFlush(context.Context) error { return nil }

// request counts a request span that ended at now (the view's clock,
// which the TTFT window is measured on).
func (c *counters) request(s sdktrace.ReadOnlySpan, now time.Time) {
	c.requests++
	var (
		out     int64
		ttft    float64
		hasTTFT bool
	)
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case semconv.AttrOutputTokens:
			out = kv.Value.AsInt64()
		case semconv.AttrTTFTMs:
			ttft, hasTTFT = kv.Value.AsFloat64(), true
		}
	}
	c.outputTokens += out
	// A request that produced no token has no time to first token.
	if hasTTFT && out > 0 {
		c.ttft.add(now, ttft)
	}
}

// traceView is a consistent copy of one trace's record, taken under the
// lock and read without it.
type traceView struct {
	id             trace.TraceID
	reqs           []reqStart
	ended          sdktrace.ReadOnlySpan
	spans          []sdktrace.ReadOnlySpan
	droppedSpans   int
	batches        []batchRef
	droppedBatches int
	errored        bool
}

// recent returns up to limit traces, newest first; with full, each view
// carries its spans and batch steps too.
func (st *Store) recent(limit int) []traceView {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := min(limit, len(st.ring))
	out := make([]traceView, 0, n)
	for i := 0; i < n; i++ {
		// Newest is just before next (or the last appended).
		j := (st.next - 1 - i + 2*len(st.ring)) % len(st.ring)
		out = append(out, st.ring[j].view(false))
	}
	return out
}

// lookup returns one trace with its spans and batch steps.
func (st *Store) lookup(id trace.TraceID) (traceView, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	rec := st.traces[id]
	if rec == nil {
		return traceView{}, false
	}
	return rec.view(true), true
}

// view copies the record; callers hold the store's lock. A summary view
// (full false) shares the spans and batches arrays instead of copying
// them: it reads only their lengths and the request span, and elements
// below a length taken under the lock are never rewritten.
func (r *traceRec) view(full bool) traceView {
	v := traceView{
		id: r.id, reqs: slices.Clone(r.reqs), ended: r.ended,
		droppedSpans: r.droppedSpans, droppedBatches: r.droppedBatches, errored: r.errored,
	}
	if full {
		v.spans = slices.Clone(r.spans)
		v.batches = slices.Clone(r.batches)
	} else {
		// Summaries need only the counts; share the backing arrays
		// read-only (elements below len are never rewritten).
		v.spans = r.spans[:len(r.spans):len(r.spans)]
		v.batches = r.batches[:len(r.batches):len(r.batches)]
	}
	return v
}

// drain returns and resets the counters, with the TTFTs observed after
// since (the median's window).
func (st *Store) drain(since time.Time) (t tally, ttfts []float64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	t, st.acc.tally = st.acc.tally, tally{}
	return t, st.acc.ttft.since(since)
}

// ttftRing keeps the most recent TTFT observations, overwriting the
// oldest.
type ttftRing struct {
	at   []time.Time
	ms   []float64
	next int
	n    int
}

func newTTFTRing(size int) ttftRing {
	return ttftRing{at: make([]time.Time, size), ms: make([]float64, size)}
}

func (r *ttftRing) add(at time.Time, ms float64) {
	r.at[r.next], r.ms[r.next] = at, ms
	r.next = (r.next + 1) % len(r.at)
	r.n = min(r.n+1, len(r.at))
}

// since returns the observations made after t.
func (r *ttftRing) since(t time.Time) []float64 {
	var out []float64
	for i := 0; i < r.n; i++ {
		j := (r.next - 1 - i + len(r.at)) % len(r.at)
		if r.at[j].After(t) {
			out = append(out, r.ms[j])
		}
	}
	return out
}

func intAttr(attrs []attribute.KeyValue, key attribute.Key) int64 {
	for _, kv := range attrs {
		if kv.Key == key {
			return kv.Value.AsInt64()
		}
	}
	return 0
}
