package traceanalyze

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Span is one span, whatever format it was read from.
type Span struct {
	TraceID  string // 32 lowercase hex digits
	SpanID   string // 16 lowercase hex digits
	ParentID string // "" for a root span
	Name     string
	Service  string // service.name of the process that recorded it
	Kind     string // "server", "client", "internal", "producer", "consumer" or ""
	Start    time.Time
	End      time.Time
	// Attrs holds string, int64, float64, bool or []any values.
	Attrs map[string]any
	Links []Link
	Error bool // status ERROR (OTLP) or error=true / otel.status_code=ERROR (Jaeger)
}

// Link points at a span, usually in another trace (a batch span's links
// name the requests in its engine step).
type Link struct {
	TraceID string
	SpanID  string
	Attrs   map[string]any
}

// Duration is End-Start, or zero for a span that ends before it starts.
func (s *Span) Duration() time.Duration {
	return max(s.End.Sub(s.Start), 0)
}

// Str is a string attribute, or "".
func (s *Span) Str(key string) string {
	v, _ := s.Attrs[key].(string)
	return v
}

// Int is an integer attribute; integral floats and decimal strings count
// (Jaeger and OTLP JSON spell int64 values either way).
func (s *Span) Int(key string) (int64, bool) { return attrInt(s.Attrs[key]) }

// Float is a numeric attribute.
func (s *Span) Float(key string) (float64, bool) { return attrFloat(s.Attrs[key]) }

func attrInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
			return int64(x), true
		}
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}

func attrFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}

// NormalizeTraceID returns id as 32 lowercase hex digits: Jaeger drops
// leading zeros of 64-bit ids, so shorter ids are left-padded.
func NormalizeTraceID(id string) (string, error) { return normalizeID(id, 32, "trace") }

// normalizeSpanID returns id as 16 lowercase hex digits.
func normalizeSpanID(id string) (string, error) { return normalizeID(id, 16, "span") }

func normalizeID(id string, digits int, what string) (string, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if id == "" || len(id) > digits {
		return "", fmt.Errorf("%s id %q: want 1 to %d hex digits", what, truncateForError(id), digits)
	}
	id = strings.Repeat("0", digits-len(id)) + id
	if _, err := hex.DecodeString(id); err != nil {
		return "", fmt.Errorf("%s id %q: not hex", what, truncateForError(id))
	}
	if strings.Trim(id, "0") == "" {
		return "", fmt.Errorf("%s id is all zeros", what)
	}
	return id, nil
}

// truncateForError keeps error messages short when input is garbage.
func truncateForError(s string) string {
	if len(s) > 40 {
		return strings.ToValidUTF8(s[:40], "") + "…"
	}
	return s
}

// Trace is the spans of one trace id, sorted by start time.
type Trace struct {
	ID    string
	Spans []*Span
}

// Start is the earliest span start.
func (t *Trace) Start() time.Time {
	var s time.Time
	for i, sp := range t.Spans {
		if i == 0 || sp.Start.Before(s) {
			s = sp.Start
		}
	}
	return s
}

// End is the latest span end.
func (t *Trace) End() time.Time {
	var e time.Time
	for i, sp := range t.Spans {
		if i == 0 || sp.End.After(e) {
			e = sp.End
		}
	}
	return e
}

// Duration is the time from the earliest start to the latest end.
func (t *Trace) Duration() time.Duration { return max(t.End().Sub(t.Start()), 0) }

// dedupe drops repeated (trace id, span id) pairs, keeping the first
// (collectors may deliver a span twice), and reports how many it dropped.
func dedupe(spans []Span) ([]Span, int) {
	seen := make(map[[2]string]bool, len(spans))
	out := spans[:0:0]
	for _, s := range spans {
		k := [2]string{s.TraceID, s.SpanID}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, s)
	}
	return out, len(spans) - len(out)
}

// groupTraces groups spans by trace, traces ordered by start time (then
// id), spans within a trace by start time (then span id).
func groupTraces(spans []Span) []*Trace {
	byID := map[string]*Trace{}
	var traces []*Trace
	for i := range spans {
		s := &spans[i]
		t := byID[s.TraceID]
		if t == nil {
			t = &Trace{ID: s.TraceID}
			byID[s.TraceID] = t
			traces = append(traces, t)
		}
		t.Spans = append(t.Spans, s)
	}
	for _, t := range traces {
		slices.SortStableFunc(t.Spans, func(a, b *Span) int {
			return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.SpanID, b.SpanID))
		})
	}
	slices.SortStableFunc(traces, func(a, b *Trace) int {
		return cmp.Or(a.Start().Compare(b.Start()), cmp.Compare(a.ID, b.ID))
	})
	return traces
}
