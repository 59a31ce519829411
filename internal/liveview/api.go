package liveview

import (
	"cmp"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// Where the view lives on the HTTP port.
const (
	// PagePattern is the ServeMux pattern for the page: GET on exactly
	// "/", so that every other path stays with the API's own 404.
	PagePattern = "GET /{$}"
	// Prefix holds the static assets (Prefix+"static/") and the JSON API
	// (Prefix+"api/").
	Prefix = "/live/"
)

//go:embed static
var staticFiles embed.FS

// contentSecurity keeps the page to its own origin: no CDN, no inline
// script, nothing fetched from elsewhere.
const contentSecurity = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Trace statuses in TraceSummary.Status.
const (
	StatusRunning   = "running"
	StatusOK        = "ok"
	StatusError     = "error"
	StatusCancelled = "cancelled"
)

// Span roles in SpanJSON.Role: what the page colours a bar by.
const (
	RoleTransport = "transport"
	RoleRequest   = "request"
	RolePrepare   = "prepare"
	RoleQueue     = "queue"
	RolePrefill   = "prefill"
	RoleDecode    = "decode"
	RoleOther     = "other"
)

var (
	errNoTrace    = errors.New("no such trace (never seen, or evicted)")
	errBadTraceID = errors.New("malformed trace id: want 32 hex digits")
	errNoRoute    = errors.New("no such live view route")
)

func (v *View) routes() http.Handler {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.HandleFunc(PagePattern, v.page)
	handle := func(path string, h http.HandlerFunc) {
		mux.HandleFunc("GET "+path, h)
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: method not allowed", r.Method, r.URL.Path))
		})
	}
	files := http.StripPrefix(Prefix+"static/", http.FileServerFS(static))
	handle(Prefix+"static/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
	handle(Prefix+"api/status", v.status)
	handle(Prefix+"api/traces", v.authed(v.listTraces))
	handle(Prefix+"api/traces/{id}", v.authed(v.getTrace))
	handle(Prefix+"api/series", v.authed(v.getSeries))
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w: %s", errNoRoute, r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurity)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		mux.ServeHTTP(w, r)
	})
}

func (v *View) page(w http.ResponseWriter, r *http.Request) {
	b, err := staticFiles.ReadFile("static/index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// authed checks the bearer key, as the inference routes do.
func (v *View) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := v.cfg.Keys.Check(auth.BearerToken(r.Header.Get("Authorization"))); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lumen"`)
			writeError(w, http.StatusUnauthorized, err)
			return
		}
		h(w, r)
	}
}

// Status is GET /live/api/status, open to all: it tells the page whether
// to ask for a key and whether traces can come at all.
type Status struct {
	Tracing      bool  `json:"tracing"`
	AuthRequired bool  `json:"authRequired"`
	IntervalMs   int64 `json:"intervalMs"`
	MaxTraces    int   `json:"maxTraces"`
	History      int   `json:"history"`
}

func (v *View) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Status{
		Tracing:      v.tracing.Load(),
		AuthRequired: v.cfg.Keys.Enabled(),
		IntervalMs:   v.cfg.Interval.Milliseconds(),
		MaxTraces:    v.cfg.MaxTraces,
		History:      v.cfg.History,
	})
}

// TraceSummary is one row of the trace list.
type TraceSummary struct {
	TraceID string `json:"traceId"`
	// Name is the request span's name ("chat tiny"), or the earliest
	// span's for a trace kept because it failed before any request.
	Name         string   `json:"name"`
	Operation    string   `json:"operation"`
	Model        string   `json:"model"`
	Tenant       string   `json:"tenant"`
	StartUs      int64    `json:"startUs"`
	DurationMs   float64  `json:"durationMs"`
	InputTokens  int64    `json:"inputTokens"`
	OutputTokens int64    `json:"outputTokens"`
	TTFTMs       *float64 `json:"ttftMs"`
	Status       string   `json:"status"`
	FinishReason string   `json:"finishReason"`
	// Requests counts the request spans in the trace (a caller may send
	// several under one trace); the other fields describe the first.
	Requests int `json:"requests"`
	// SpanCount and BatchStepCount count what the trace had, kept or not.
	SpanCount      int `json:"spanCount"`
	BatchStepCount int `json:"batchStepCount"`
}

// TraceList is GET /live/api/traces.
type TraceList struct {
	Tracing bool           `json:"tracing"`
	Traces  []TraceSummary `json:"traces"`
}

func (v *View) listTraces(w http.ResponseWriter, r *http.Request) {
	limit := v.cfg.MaxTraces
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit %q: want a positive integer", s))
			return
		}
		limit = n
	}
	now := v.now()
	views := v.store.recent(limit)
	out := TraceList{Tracing: v.tracing.Load(), Traces: make([]TraceSummary, 0, len(views))}
	for _, tv := range views {
		out.Traces = append(out.Traces, summarize(tv, now))
	}
	writeJSON(w, http.StatusOK, out)
}

// TraceDetail is GET /live/api/traces/{id}: the summary, every span kept
// (ordered by start; requests still running appear with Running set and
// an end of now), and the batch steps linked to the trace's requests.
type TraceDetail struct {
	TraceSummary
	Spans          []SpanJSON  `json:"spans"`
	BatchSteps     []BatchStep `json:"batchSteps"`
	DroppedSpans   int         `json:"droppedSpans"`
	DroppedBatches int         `json:"droppedBatchSteps"`
}

// SpanJSON is one span of a trace.
type SpanJSON struct {
	SpanID        string         `json:"spanId"`
	ParentSpanID  string         `json:"parentSpanId"`
	Name          string         `json:"name"`
	Kind          string         `json:"kind"`
	Role          string         `json:"role"`
	StartUs       int64          `json:"startUs"`
	EndUs         int64          `json:"endUs"`
	DurationMs    float64        `json:"durationMs"`
	Running       bool           `json:"running"`
	Status        string         `json:"status"`
	StatusMessage string         `json:"statusMessage"`
	Attributes    map[string]any `json:"attributes"`
	Events        []EventJSON    `json:"events"`
}

// EventJSON is a span event (a prefill "chunk", "cancelled", an error).
type EventJSON struct {
	Name       string         `json:"name"`
	TimeUs     int64          `json:"timeUs"`
	Attributes map[string]any `json:"attributes"`
}

// BatchStep is one engine step a request of the trace took part in: the
// batch span's figures and, from its link, that request's part in it.
type BatchStep struct {
	SpanID           string  `json:"spanId"`
	TraceID          string  `json:"traceId"`
	StartUs          int64   `json:"startUs"`
	EndUs            int64   `json:"endUs"`
	DurationMs       float64 `json:"durationMs"`
	Size             int64   `json:"size"`
	PrefillTokens    int64   `json:"prefillTokens"`
	DecodeTokens     int64   `json:"decodeTokens"`
	KVUsedCells      int64   `json:"kvUsedCells"`
	KVSizeCells      int64   `json:"kvSizeCells"`
	Error            bool    `json:"error"`
	RequestSpanID    string  `json:"requestSpanId"`
	Slot             int64   `json:"slot"`
	SeqPrefillTokens int64   `json:"seqPrefillTokens"`
	SeqDecode        bool    `json:"seqDecode"`
}

func (v *View) getTrace(w http.ResponseWriter, r *http.Request) {
	id, err := trace.TraceIDFromHex(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%w: %q", errBadTraceID, r.PathValue("id")))
		return
	}
	tv, ok := v.store.lookup(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w: %s", errNoTrace, id))
		return
	}
	writeJSON(w, http.StatusOK, detail(tv, v.now()))
}

// SeriesResponse is GET /live/api/series[?since=unix-ms]: the samples
// taken after since (all kept ones without it), oldest first.
type SeriesResponse struct {
	IntervalMs int64    `json:"intervalMs"`
	Samples    []Sample `json:"samples"`
}

func (v *View) getSeries(w http.ResponseWriter, r *http.Request) {
	since := int64(-1 << 63)
	if s := r.URL.Query().Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("since %q: want Unix milliseconds", s))
			return
		}
		since = n
	}
	writeJSON(w, http.StatusOK, SeriesResponse{IntervalMs: v.cfg.Interval.Milliseconds(), Samples: v.series.after(since)})
}

// summarize makes a trace's list row.
func summarize(tv traceView, now time.Time) TraceSummary {
	s := TraceSummary{
		TraceID:        tv.id.String(),
		Requests:       len(tv.reqs),
		SpanCount:      len(tv.spans) + tv.droppedSpans,
		BatchStepCount: len(tv.batches) + tv.droppedBatches,
		Status:         StatusOK,
	}
	switch {
	case len(tv.reqs) > 0 && tv.ended == nil:
		r := tv.reqs[0]
		s.Name, s.Operation, s.Model, s.Tenant = r.name, r.operation, r.model, r.tenant
		s.StartUs, s.DurationMs = r.start.UnixMicro(), millis(now.Sub(r.start))
		s.Status = StatusRunning
		return s
	case len(tv.reqs) > 0:
		r := tv.reqs[0]
		s.Name, s.Operation, s.Model, s.Tenant = r.name, r.operation, r.model, r.tenant
		e := tv.ended
		s.StartUs, s.DurationMs = e.StartTime().UnixMicro(), millis(e.EndTime().Sub(e.StartTime()))
		for _, kv := range e.Attributes() {
			switch kv.Key {
			case semconv.AttrInputTokens:
				s.InputTokens = kv.Value.AsInt64()
			case semconv.AttrOutputTokens:
				s.OutputTokens = kv.Value.AsInt64()
			case semconv.AttrTTFTMs:
				t := kv.Value.AsFloat64()
				s.TTFTMs = &t
			case semconv.AttrFinishReasons:
				if f := kv.Value.AsStringSlice(); len(f) > 0 {
					s.FinishReason = f[0]
				}
			}
		}
		if s.OutputTokens == 0 {
			s.TTFTMs = nil // no token, no time to it
		}
		if s.FinishReason == StatusCancelled {
			s.Status = StatusCancelled
		}
	case len(tv.spans) > 0:
		// Kept because a span failed: name it after its earliest span.
		first := slices.MinFunc(tv.spans, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
		s.Name, s.Operation = first.Name(), first.Name()
		s.StartUs, s.DurationMs = first.StartTime().UnixMicro(), millis(first.EndTime().Sub(first.StartTime()))
	}
	if tv.errored {
		s.Status = StatusError
	}
	return s
}

// detail makes a trace's waterfall data.
func detail(tv traceView, now time.Time) TraceDetail {
	d := TraceDetail{
		TraceSummary:   summarize(tv, now),
		Spans:          make([]SpanJSON, 0, len(tv.spans)+len(tv.reqs)),
		BatchSteps:     make([]BatchStep, 0, len(tv.batches)),
		DroppedSpans:   tv.droppedSpans,
		DroppedBatches: tv.droppedBatches,
	}
	isReq := make(map[trace.SpanID]bool, len(tv.reqs))
	for _, r := range tv.reqs {
		isReq[r.spanID] = true
	}
	for _, s := range tv.spans {
		d.Spans = append(d.Spans, spanJSON(s, role(s, isReq)))
	}
	// Requests still running have no span yet; show them as far as now.
	for _, r := range tv.reqs {
		if !r.done {
			d.Spans = append(d.Spans, SpanJSON{
				SpanID: r.spanID.String(), Name: r.name, Kind: trace.SpanKindInternal.String(), Role: RoleRequest,
				StartUs: r.start.UnixMicro(), EndUs: now.UnixMicro(), DurationMs: millis(now.Sub(r.start)),
				Running: true, Status: "unset", Attributes: map[string]any{}, Events: []EventJSON{},
			})
		}
	}
	slices.SortStableFunc(d.Spans, func(a, b SpanJSON) int { return cmp.Compare(a.StartUs, b.StartUs) })
	for _, b := range tv.batches {
		d.BatchSteps = append(d.BatchSteps, batchStep(b))
	}
	slices.SortStableFunc(d.BatchSteps, func(a, b BatchStep) int { return cmp.Compare(a.StartUs, b.StartUs) })
	return d
}

// role says what a span is to the waterfall: the request span, one of
// its phases, the transport's server span, or something else.
func role(s sdktrace.ReadOnlySpan, isReq map[trace.SpanID]bool) string {
	switch {
	case isReq[s.SpanContext().SpanID()]:
		return RoleRequest
	case isReq[s.Parent().SpanID()] && s.Name() == semconv.SpanPrepare:
		return RolePrepare
	case isReq[s.Parent().SpanID()] && s.Name() == semconv.SpanQueue:
		return RoleQueue
	case isReq[s.Parent().SpanID()] && s.Name() == semconv.SpanPrefill:
		return RolePrefill
	case isReq[s.Parent().SpanID()] && s.Name() == semconv.SpanDecode:
		return RoleDecode
	case s.SpanKind() == trace.SpanKindServer:
		return RoleTransport
	}
	return RoleOther
}

func spanJSON(s sdktrace.ReadOnlySpan, role string) SpanJSON {
	j := SpanJSON{
		SpanID:        s.SpanContext().SpanID().String(),
		Name:          s.Name(),
		Kind:          s.SpanKind().String(),
		Role:          role,
		StartUs:       s.StartTime().UnixMicro(),
		EndUs:         s.EndTime().UnixMicro(),
		DurationMs:    millis(s.EndTime().Sub(s.StartTime())),
		Status:        statusName(s.Status().Code),
		StatusMessage: s.Status().Description,
		Attributes:    attrMap(s.Attributes()),
		Events:        make([]EventJSON, 0, len(s.Events())),
	}
	if p := s.Parent(); p.IsValid() {
		j.ParentSpanID = p.SpanID().String()
	}
	for _, e := range s.Events() {
		j.Events = append(j.Events, EventJSON{Name: e.Name, TimeUs: e.Time.UnixMicro(), Attributes: attrMap(e.Attributes)})
	}
	return j
}

func batchStep(b batchRef) BatchStep {
	s := b.span
	j := BatchStep{
		SpanID:     s.SpanContext().SpanID().String(),
		TraceID:    s.SpanContext().TraceID().String(),
		StartUs:    s.StartTime().UnixMicro(),
		EndUs:      s.EndTime().UnixMicro(),
		DurationMs: millis(s.EndTime().Sub(s.StartTime())),
		Error:      s.Status().Code == codes.Error,
	}
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case semconv.AttrBatchSize:
			j.Size = kv.Value.AsInt64()
		case semconv.AttrBatchPrefill:
			j.PrefillTokens = kv.Value.AsInt64()
		case semconv.AttrBatchDecode:
			j.DecodeTokens = kv.Value.AsInt64()
		case semconv.AttrKVUsed:
			j.KVUsedCells = kv.Value.AsInt64()
		case semconv.AttrKVSize:
			j.KVSizeCells = kv.Value.AsInt64()
		}
	}
	l := s.Links()[b.link]
	j.RequestSpanID = l.SpanContext.SpanID().String()
	for _, kv := range l.Attributes {
		switch kv.Key {
		case semconv.AttrSlot:
			j.Slot = kv.Value.AsInt64()
		case semconv.AttrBatchPrefill:
			j.SeqPrefillTokens = kv.Value.AsInt64()
		case linkDecode:
			j.SeqDecode = kv.Value.AsBool()
		}
	}
	return j
}

// linkDecode is the link attribute recorder.Tracer.Step sets on a
// sequence that decoded a token in the step.
const linkDecode = attribute.Key("lumen.decode")

// attrMap makes attributes JSON-ready. JSON has no NaN or infinities,
// so such floats become strings rather than failing the whole reply.
func attrMap(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		switch kv.Value.Type() {
		case attribute.FLOAT64:
			m[string(kv.Key)] = jsonFloat(kv.Value.AsFloat64())
		case attribute.FLOAT64SLICE:
			fs := kv.Value.AsFloat64Slice()
			out := make([]any, len(fs))
			for i, f := range fs {
				out[i] = jsonFloat(f)
			}
			m[string(kv.Key)] = out
		default:
			m[string(kv.Key)] = kv.Value.AsInterface()
		}
	}
	return m
}

func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

func statusName(c codes.Code) string {
	switch c {
	case codes.Ok:
		return "ok"
	case codes.Error:
		return "error"
	}
	return "unset"
}

func millis(d time.Duration) float64 { return scheduler.Millis(d) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: errorDetail{Message: "encode response: " + err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // a failed write means the client left
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, errorBody{Error: errorDetail{Message: err.Error()}})
}
