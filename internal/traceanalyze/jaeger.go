package traceanalyze

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Jaeger's JSON, as its query API (/api/traces) returns it and its UI
// saves it. Only the fields the analysis needs are decoded.
type jaegerResponse struct {
	Data   []jaegerTrace `json:"data"`
	Errors []jaegerError `json:"errors"`
}

type jaegerError struct {
	Code    int    `json:"code"`
	Msg     string `json:"msg"`
	TraceID string `json:"traceID"`
}

type jaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []jaegerSpan             `json:"spans"`
	Processes map[string]jaegerProcess `json:"processes"`
}

type jaegerSpan struct {
	TraceID       string         `json:"traceID"`
	SpanID        string         `json:"spanID"`
	OperationName string         `json:"operationName"`
	References    []jaegerRef    `json:"references"`
	StartTime     int64          `json:"startTime"` // µs since 1970
	Duration      int64          `json:"duration"`  // µs
	Tags          []jaegerKV     `json:"tags"`
	ProcessID     string         `json:"processID"`
	Process       *jaegerProcess `json:"process"` // some exports embed it
}

type jaegerRef struct {
	RefType string `json:"refType"` // CHILD_OF or FOLLOWS_FROM
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

type jaegerKV struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type jaegerProcess struct {
	ServiceName string `json:"serviceName"`
}

// Tags that Jaeger's OTLP translation adds to carry OTLP span fields; they
// become Span fields, not attributes.
var jaegerFieldTags = map[string]bool{
	"span.kind": true, "error": true, "otel.status_code": true, "otel.status_description": true,
	"otel.scope.name": true, "otel.scope.version": true, "otel.library.name": true, "otel.library.version": true,
}

// spansFromJaeger converts decoded Jaeger traces. A span's parent is its
// CHILD_OF reference within the same trace; every other reference
// (FOLLOWS_FROM, or one into another trace) becomes a link, which is how
// Jaeger carries OTLP links.
func spansFromJaeger(traces []jaegerTrace) ([]Span, error) {
	var out []Span
	for _, t := range traces {
		for _, js := range t.Spans {
			s, err := spanFromJaeger(js, t.Processes)
			if err != nil {
				return nil, fmt.Errorf("trace %q span %q: %w", truncateForError(t.TraceID), truncateForError(js.SpanID), err)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func spanFromJaeger(js jaegerSpan, procs map[string]jaegerProcess) (Span, error) {
	s := Span{Name: js.OperationName}
	var err error
	if s.TraceID, err = NormalizeTraceID(js.TraceID); err != nil {
		return Span{}, err
	}
	if s.SpanID, err = normalizeSpanID(js.SpanID); err != nil {
		return Span{}, err
	}
	const maxMicros = math.MaxInt64 / 1000
	if js.StartTime <= 0 || js.StartTime > maxMicros || js.Duration < 0 || js.Duration > maxMicros-js.StartTime {
		return Span{}, fmt.Errorf("startTime %d µs / duration %d µs out of range", js.StartTime, js.Duration)
	}
	s.Start = time.UnixMicro(js.StartTime).UTC()
	s.End = s.Start.Add(time.Duration(js.Duration) * time.Microsecond)
	if p, ok := procs[js.ProcessID]; ok {
		s.Service = p.ServiceName
	} else if js.Process != nil {
		s.Service = js.Process.ServiceName
	}
	for _, r := range js.References {
		tid, err := NormalizeTraceID(r.TraceID)
		if err != nil {
			return Span{}, fmt.Errorf("reference: %w", err)
		}
		sid, err := normalizeSpanID(r.SpanID)
		if err != nil {
			return Span{}, fmt.Errorf("reference: %w", err)
		}
		switch {
		case r.RefType == "CHILD_OF" && tid == s.TraceID && s.ParentID == "":
			s.ParentID = sid
		case r.RefType == "CHILD_OF" || r.RefType == "FOLLOWS_FROM":
			s.Links = append(s.Links, Link{TraceID: tid, SpanID: sid})
		default:
			return Span{}, fmt.Errorf("reference type %q: want CHILD_OF or FOLLOWS_FROM", truncateForError(r.RefType))
		}
	}
	for _, kv := range js.Tags {
		v, err := jaegerValue(kv)
		if err != nil {
			return Span{}, fmt.Errorf("tag %q: %w", truncateForError(kv.Key), err)
		}
		switch kv.Key {
		case "span.kind":
			s.Kind, _ = v.(string)
		case "error":
			if b, ok := v.(bool); ok && b {
				s.Error = true
			}
		case "otel.status_code":
			if str, ok := v.(string); ok && strings.EqualFold(str, "ERROR") {
				s.Error = true
			}
		}
		if jaegerFieldTags[kv.Key] {
			continue
		}
		if s.Attrs == nil {
			s.Attrs = map[string]any{}
		}
		s.Attrs[kv.Key] = v
	}
	return s, nil
}

// jaegerValue converts a tag value by its declared type. Numbers arrive
// as json.Number (the decoder uses UseNumber), or as strings from some
// exporters.
func jaegerValue(kv jaegerKV) (any, error) {
	switch kv.Type {
	case "string", "binary", "":
		switch v := kv.Value.(type) {
		case string:
			return v, nil
		case json.Number:
			return v.String(), nil
		case bool:
			return strconv.FormatBool(v), nil
		}
	case "bool":
		switch v := kv.Value.(type) {
		case bool:
			return v, nil
		case string:
			b, err := strconv.ParseBool(v)
			if err == nil {
				return b, nil
			}
		}
	case "int64":
		var s string
		switch v := kv.Value.(type) {
		case json.Number:
			s = v.String()
		case string:
			s = v
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
	case "float64":
		var s string
		switch v := kv.Value.(type) {
		case json.Number:
			s = v.String()
		case string:
			s = v
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, nil
		}
	default:
		return nil, fmt.Errorf("unknown type %q", truncateForError(kv.Type))
	}
	return nil, fmt.Errorf("value %v is not a valid %s", truncateForError(fmt.Sprint(kv.Value)), kv.Type)
}
