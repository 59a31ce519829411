package traceanalyze

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// Options tune an analysis.
type Options struct {
	// TraceID selects the trace whose critical path the text report and
	// the HTML waterfall show; empty means the slowest request trace.
	TraceID string
	// Prices, when set, adds costs to the token totals.
	Prices *Prices
}

// Report is the result of an analysis; Write, WriteJSON and WriteHTML
// render it.
type Report struct {
	Spans    int       `json:"spans"`
	Traces   int       `json:"traces"`
	Requests int       `json:"requests"`
	Batches  int       `json:"batch_spans"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`

	Operations []OpStats `json:"operations"`
	// Selected is the critical path of Options.TraceID or of the slowest
	// request trace.
	Selected *CriticalPath `json:"selected_critical_path,omitempty"`
	// SelectedQueueing says, when the selected trace's request queued,
	// which requests held the slots meanwhile.
	SelectedQueueing *Queueing `json:"selected_queueing,omitempty"`
	// CriticalPaths has one path per request trace (traces whose root is
	// not a batch span), in trace start order.
	CriticalPaths []CriticalPath `json:"critical_paths"`
	Bottlenecks   []Bottleneck   `json:"bottlenecks"`
	Phases        Phases         `json:"phases"`
	Contention    Contention     `json:"batch_contention"`
	// Currency is set when prices were given; then every Usage has a Cost.
	Currency string  `json:"currency,omitempty"`
	Models   []Usage `json:"models"`
	Tenants  []Usage `json:"tenants"`
	// RequestList has one entry per request span, in start order.
	RequestList []Request `json:"request_list"`
	// Probes counts the traces left out of the critical paths and the
	// bottlenecks because their root is a health check or gRPC
	// reflection (lumen serve exports those only with --trace-probes).
	Probes int `json:"probe_traces_left_out"`

	traces   []*Trace
	selected *Trace
	// batchesOf maps a request span (trace id, span id) to the batch
	// spans linked to it.
	batchesOf map[[2]string][]*Span
}

// Bottleneck is one operation's share of all request traces' critical
// paths: the ranking is by time on critical paths, not by self time,
// because only time on a critical path delays a reply.
type Bottleneck struct {
	Name string `json:"name"`
	// Time is the sum of the operation's segments over all paths.
	Time Dur `json:"critical_ms"`
	// Share is Time over the sum of the paths' durations.
	Share float64 `json:"share"`
	// Traces is how many paths the operation appears on.
	Traces int `json:"traces"`
}

// Phases splits request time into prepare, queue, prefill and decode,
// from each request span's child spans of those names.
type Phases struct {
	Requests int       `json:"requests"`
	Prepare  PhaseStat `json:"prepare"`
	Queue    PhaseStat `json:"queue"`
	Prefill  PhaseStat `json:"prefill"`
	Decode   PhaseStat `json:"decode"`
}

// PhaseStat is one phase summed over all requests.
type PhaseStat struct {
	Total Dur `json:"total_ms"`
	// Share is Total over the phases' totals together.
	Share float64 `json:"share"`
	// Mean is Total over all requests (a request without the phase, such
	// as one cancelled in the queue, counts as zero), to the nanosecond.
	Mean Dur `json:"mean_per_request_ms"`
	// Count is the number of requests with the phase.
	Count int `json:"requests_with_phase"`
}

// Contention is how crowded the engine steps were that requests ran in,
// from two sources: the lumen.decode.mean_batch_size and
// lumen.decode.steps attributes of decode spans (always exported with the
// request), and the batch spans whose links name the request (batch spans
// are sampled on their own, so with batch sampling below 100% they cover
// only some steps).
type Contention struct {
	// From decode span attributes, over the requests that have them.
	AttrRequests     int     `json:"attr_requests"`
	MeanBatchAttr    float64 `json:"mean_batch_size_attr"` // mean over requests
	MaxMeanBatchAttr float64 `json:"max_mean_batch_size_attr"`
	MeanDecodeSteps  float64 `json:"mean_decode_steps"`
	MaxDecodeSteps   int64   `json:"max_decode_steps"`

	// From linked batch spans, over the requests with at least one.
	LinkedRequests int `json:"linked_requests"`
	// MeanBatchLinked is the mean over requests of the mean
	// lumen.batch.size of the steps each was in.
	MeanBatchLinked float64 `json:"mean_batch_size_linked"`
	MaxBatchLinked  int64   `json:"max_batch_size_linked"`
	// MeanSteps is the mean number of linked steps per request.
	MeanSteps float64 `json:"mean_steps_linked"`
	MaxSteps  int     `json:"max_steps_linked"`
}

// Usage is token totals (and cost) for one model or tenant.
type Usage struct {
	Name         string   `json:"name"`
	Requests     int      `json:"requests"`
	InputTokens  int64    `json:"input_tokens"`
	OutputTokens int64    `json:"output_tokens"`
	Cost         *float64 `json:"cost,omitempty"`
}

// Request is what the analysis read from one request span.
type Request struct {
	TraceID      string    `json:"trace_id"`
	SpanID       string    `json:"span_id"`
	Name         string    `json:"name"`
	Model        string    `json:"model"`
	Tenant       string    `json:"tenant"`
	Start        time.Time `json:"start"`
	Duration     Dur       `json:"duration_ms"`
	InputTokens  int64     `json:"input_tokens"`
	OutputTokens int64     `json:"output_tokens"`
	// Prepare is validation, chat template and tokenization (the
	// prepare span; zero in traces of Lumen before it had one).
	Prepare Dur  `json:"prepare_ms"`
	Queue   Dur  `json:"queue_ms"`
	Prefill Dur  `json:"prefill_ms"`
	Decode  Dur  `json:"decode_ms"`
	Error   bool `json:"error,omitempty"`
	// ErrorType is error.type: set on failed, refused and cancelled
	// requests (queue_full, draining, cancelled, ...).
	ErrorType string `json:"error_type,omitempty"`
	// CancelReason is lumen.cancel_reason of a cancelled request.
	CancelReason string `json:"cancel_reason,omitempty"`
	// From the decode span's attributes, when present.
	MeanBatchAttr *float64 `json:"mean_batch_size_attr,omitempty"`
	DecodeSteps   *int64   `json:"decode_steps,omitempty"`
	// From linked batch spans.
	LinkedSteps     int      `json:"steps_linked"`
	MeanBatchLinked float64  `json:"mean_batch_size_linked,omitempty"`
	MaxBatchLinked  int64    `json:"max_batch_size_linked,omitempty"`
	Cost            *float64 `json:"cost,omitempty"`
}

// Names used when a request lacks the attribute.
const (
	NoTenant     = "(none)"
	UnknownModel = "(unknown)"
)

// ErrTraceNotInInput is returned when Options.TraceID names a trace the
// spans do not contain.
var ErrTraceNotInInput = errors.New("trace not in the input")

// Analyze computes a report over spans (of any number of traces).
func Analyze(spans []Span, opts Options) (*Report, error) {
	spans, _ = dedupe(spans)
	if len(spans) == 0 {
		return nil, ErrNoSpans
	}
	traces := groupTraces(spans)
	r := &Report{Spans: len(spans), Traces: len(traces), traces: traces, batchesOf: map[[2]string][]*Span{}}
	r.Start, r.End = traces[0].Start(), traces[0].End()
	for _, t := range traces {
		if s := t.Start(); s.Before(r.Start) {
			r.Start = s
		}
		if e := t.End(); e.After(r.End) {
			r.End = e
		}
	}
	r.Operations = operationStats(spans)
	r.criticalPaths(opts.TraceID)
	if opts.TraceID != "" && r.selected == nil {
		return nil, fmt.Errorf("trace %s: %w", opts.TraceID, ErrTraceNotInInput)
	}
	r.requests(opts.Prices)
	if r.Selected != nil {
		r.SelectedQueueing = r.queueing(r.Selected.TraceID)
	}
	return r, nil
}

func isBatch(s *Span) bool { return s.Name == semconv.SpanBatch }

// isProbe reports whether s is the server span of a health check or a
// gRPC reflection call: traffic of the infrastructure, not of users.
func isProbe(s *Span) bool { return semconv.IsProbeSpan(s.Name) }

func (r *Report) criticalPaths(want string) {
	var slowest *Trace
	for _, t := range r.traces {
		p := criticalPath(t)
		if t.ID == want {
			r.selected, r.Selected = t, p
		}
		if p == nil || isBatch(root(t)) {
			continue
		}
		if isProbe(root(t)) {
			r.Probes++
			continue
		}
		r.CriticalPaths = append(r.CriticalPaths, *p)
		if want == "" && (slowest == nil || t.Duration() > slowest.Duration()) {
			slowest, r.selected, r.Selected = t, t, p
		}
	}
	if want == "" && slowest == nil && len(r.traces) > 0 {
		// Only batch traces: show the slowest of those.
		for _, t := range r.traces {
			if p := criticalPath(t); p != nil && (r.selected == nil || t.Duration() > r.selected.Duration()) {
				r.selected, r.Selected = t, p
			}
		}
	}

	type acc struct {
		time   time.Duration
		traces int
	}
	byName := map[string]*acc{}
	var total time.Duration
	for _, p := range r.CriticalPaths {
		total += p.Duration.Std()
		onPath := map[string]bool{}
		for _, s := range p.Segments {
			a := byName[s.Name]
			if a == nil {
				a = &acc{}
				byName[s.Name] = a
			}
			a.time += s.Duration.Std()
			if !onPath[s.Name] {
				onPath[s.Name] = true
				a.traces++
			}
		}
	}
	for name, a := range byName {
		b := Bottleneck{Name: name, Time: Dur(a.time), Traces: a.traces}
		if total > 0 {
			b.Share = float64(a.time) / float64(total)
		}
		r.Bottlenecks = append(r.Bottlenecks, b)
	}
	slices.SortFunc(r.Bottlenecks, func(a, b Bottleneck) int {
		return cmp.Or(cmp.Compare(b.Time, a.Time), cmp.Compare(a.Name, b.Name))
	})
}

// Failed reports whether q did not end as asked: it failed, was refused
// or was cancelled (error status or an error.type).
func (q Request) Failed() bool { return q.Error || q.ErrorType != "" }

// isRequest tells request spans by their gen_ai.operation.name.
func isRequest(s *Span) bool { return s.Str(string(semconv.AttrOperation)) != "" }

func (r *Report) requests(prices *Prices) {
	children := map[[2]string][]*Span{}
	var reqs []*Span
	for _, t := range r.traces {
		for _, s := range t.Spans {
			if s.ParentID != "" {
				k := [2]string{s.TraceID, s.ParentID}
				children[k] = append(children[k], s)
			}
			if isRequest(s) {
				reqs = append(reqs, s)
			}
			if isBatch(s) {
				r.Batches++
				for _, l := range s.Links {
					k := [2]string{l.TraceID, l.SpanID}
					r.batchesOf[k] = append(r.batchesOf[k], s)
				}
			}
		}
	}
	slices.SortStableFunc(reqs, func(a, b *Span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.TraceID, b.TraceID), cmp.Compare(a.SpanID, b.SpanID))
	})
	r.Requests = len(reqs)
	if prices != nil {
		r.Currency = prices.Currency
	}
	models, tenants := usageTable{}, usageTable{}
	var sumMeanAttr, sumSteps, sumMeanLinked float64
	var sumLinkedSteps int
	for _, s := range reqs {
		q := Request{
			TraceID: s.TraceID, SpanID: s.SpanID, Name: s.Name,
			Model:  cmp.Or(s.Str(string(semconv.AttrRequestModel)), UnknownModel),
			Tenant: cmp.Or(s.Str(string(semconv.AttrTenant)), NoTenant),
			Start:  s.Start, Duration: Dur(s.Duration()), Error: s.Error,
		}
		q.ErrorType = s.Str(string(semconv.AttrErrorType))
		q.CancelReason = s.Str(string(semconv.AttrCancelReason))
		q.InputTokens, _ = s.Int(string(semconv.AttrInputTokens))
		q.OutputTokens, _ = s.Int(string(semconv.AttrOutputTokens))
		for _, c := range children[[2]string{s.TraceID, s.SpanID}] {
			switch c.Name {
			case semconv.SpanPrepare:
				q.Prepare += Dur(c.Duration())
			case semconv.SpanQueue:
				q.Queue += Dur(c.Duration())
			case semconv.SpanPrefill:
				q.Prefill += Dur(c.Duration())
			case semconv.SpanDecode:
				q.Decode += Dur(c.Duration())
				if v, ok := c.Float(string(semconv.AttrMeanBatch)); ok {
					q.MeanBatchAttr = &v
				}
				if v, ok := c.Int(string(semconv.AttrSteps)); ok {
					q.DecodeSteps = &v
				}
			}
		}
		r.Phases.add(q)
		if q.MeanBatchAttr != nil {
			c := &r.Contention
			c.AttrRequests++
			sumMeanAttr += *q.MeanBatchAttr
			c.MaxMeanBatchAttr = max(c.MaxMeanBatchAttr, *q.MeanBatchAttr)
			if q.DecodeSteps != nil {
				sumSteps += float64(*q.DecodeSteps)
				c.MaxDecodeSteps = max(c.MaxDecodeSteps, *q.DecodeSteps)
			}
		}
		if batches := r.batchesOf[[2]string{s.TraceID, s.SpanID}]; len(batches) > 0 {
			var sum int64
			for _, b := range batches {
				n, _ := b.Int(string(semconv.AttrBatchSize))
				sum += n
				q.MaxBatchLinked = max(q.MaxBatchLinked, n)
			}
			q.LinkedSteps = len(batches)
			q.MeanBatchLinked = float64(sum) / float64(len(batches))
			c := &r.Contention
			c.LinkedRequests++
			sumMeanLinked += q.MeanBatchLinked
			sumLinkedSteps += q.LinkedSteps
			c.MaxBatchLinked = max(c.MaxBatchLinked, q.MaxBatchLinked)
			c.MaxSteps = max(c.MaxSteps, q.LinkedSteps)
		}
		if prices != nil {
			cost := prices.For(q.Model).Cost(q.InputTokens, q.OutputTokens)
			q.Cost = &cost
		}
		models.add(q.Model, q)
		tenants.add(q.Tenant, q)
		r.RequestList = append(r.RequestList, q)
	}
	r.Phases.finish()
	if c := &r.Contention; c.AttrRequests > 0 {
		c.MeanBatchAttr = sumMeanAttr / float64(c.AttrRequests)
		c.MeanDecodeSteps = sumSteps / float64(c.AttrRequests)
	}
	if c := &r.Contention; c.LinkedRequests > 0 {
		c.MeanBatchLinked = sumMeanLinked / float64(c.LinkedRequests)
		c.MeanSteps = float64(sumLinkedSteps) / float64(c.LinkedRequests)
	}
	r.Models, r.Tenants = models.sorted(), tenants.sorted()
}

func (p *Phases) add(q Request) {
	p.Requests++
	for _, ph := range []struct {
		stat *PhaseStat
		d    Dur
		has  bool
	}{{&p.Prepare, q.Prepare, q.Prepare > 0}, {&p.Queue, q.Queue, q.Queue > 0}, {&p.Prefill, q.Prefill, q.Prefill > 0}, {&p.Decode, q.Decode, q.Decode > 0}} {
		ph.stat.Total += ph.d
		if ph.has {
			ph.stat.Count++
		}
	}
}

func (p *Phases) finish() {
	all := p.Prepare.Total + p.Queue.Total + p.Prefill.Total + p.Decode.Total
	for _, s := range []*PhaseStat{&p.Prepare, &p.Queue, &p.Prefill, &p.Decode} {
		if all > 0 {
			s.Share = float64(s.Total) / float64(all)
		}
		if p.Requests > 0 {
			s.Mean = s.Total / Dur(p.Requests)
		}
	}
}

// usageTable accumulates Usage rows by name.
type usageTable map[string]*Usage

func (u usageTable) add(name string, q Request) {
	row := u[name]
	if row == nil {
		row = &Usage{Name: name}
		u[name] = row
	}
	row.Requests++
	row.InputTokens += q.InputTokens
	row.OutputTokens += q.OutputTokens
	if q.Cost != nil {
		c := *q.Cost
		if row.Cost != nil {
			c += *row.Cost
		}
		row.Cost = &c
	}
}

// sorted is the rows by name.
func (u usageTable) sorted() []Usage {
	out := make([]Usage, 0, len(u))
	for _, row := range u {
		out = append(out, *row)
	}
	slices.SortFunc(out, func(a, b Usage) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
