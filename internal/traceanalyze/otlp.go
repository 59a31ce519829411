package traceanalyze

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// OTLP/JSON differs from protojson in one way: trace and span ids are hex
// strings, not base64. These are the JSON keys that hold ids (protojson
// accepts both the lowerCamelCase and the proto field names).
var otlpIDKeys = map[string]bool{
	"traceId": true, "spanId": true, "parentSpanId": true,
	"trace_id": true, "span_id": true, "parent_span_id": true,
}

// decodeOTLPObject decodes one OTLP/JSON traces object: an export
// request or the file exporter's line, both {"resourceSpans": [...]},
// decoded as TracesData (same fields; the collector's request type would
// pull gRPC into an offline tool).
func decodeOTLPObject(raw []byte) (*tracepb.TracesData, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep int64 values (nanosecond times) exact
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, errors.New("not a JSON object")
	}
	if err := rewriteIDs(v, hexToBase64); err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	req := &tracepb.TracesData{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, req); err != nil {
		return nil, err
	}
	return req, nil
}

// MarshalOTLPJSON encodes req as OTLP/JSON on one line: protojson with
// lowerCamelCase names and hex trace and span ids, as the Collector's
// file exporter writes it.
func MarshalOTLPJSON(req *tracepb.TracesData) ([]byte, error) {
	b, err := protojson.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("otlp json: %w", err)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("otlp json: %w", err)
	}
	if err := rewriteIDs(v, base64ToHex); err != nil {
		return nil, fmt.Errorf("otlp json: %w", err)
	}
	return json.Marshal(v)
}

func hexToBase64(s string) (string, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("id %q is not hex", truncateForError(s))
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func base64ToHex(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("id %q is not base64", truncateForError(s))
	}
	return hex.EncodeToString(b), nil
}

// rewriteIDs applies conv to every id-valued string in a decoded JSON
// value, in place.
func rewriteIDs(v any, conv func(string) (string, error)) error {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if s, ok := child.(string); ok && otlpIDKeys[k] {
				c, err := conv(s)
				if err != nil {
					return fmt.Errorf("%s: %w", k, err)
				}
				x[k] = c
				continue
			}
			if err := rewriteIDs(child, conv); err != nil {
				return err
			}
		}
	case []any:
		for _, child := range x {
			if err := rewriteIDs(child, conv); err != nil {
				return err
			}
		}
	}
	return nil
}

// SpansFromOTLP converts an export request into spans.
func SpansFromOTLP(req *tracepb.TracesData) ([]Span, error) {
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, ps := range ss.GetSpans() {
				s, err := spanFromOTLP(ps, service)
				if err != nil {
					return nil, fmt.Errorf("span %q: %w", truncateForError(ps.GetName()), err)
				}
				out = append(out, s)
			}
		}
	}
	return out, nil
}

func spanFromOTLP(ps *tracepb.Span, service string) (Span, error) {
	s := Span{Name: ps.GetName(), Service: service, Kind: otlpKind(ps.GetKind()), Attrs: otlpAttrs(ps.GetAttributes())}
	var err error
	if s.TraceID, err = otlpID(ps.GetTraceId(), 16, "trace"); err != nil {
		return Span{}, err
	}
	if s.SpanID, err = otlpID(ps.GetSpanId(), 8, "span"); err != nil {
		return Span{}, err
	}
	if len(ps.GetParentSpanId()) > 0 {
		if s.ParentID, err = otlpID(ps.GetParentSpanId(), 8, "parent span"); err != nil {
			return Span{}, err
		}
	}
	if s.Start, err = unixNano(ps.GetStartTimeUnixNano()); err != nil {
		return Span{}, fmt.Errorf("start time: %w", err)
	}
	if s.End, err = unixNano(ps.GetEndTimeUnixNano()); err != nil {
		return Span{}, fmt.Errorf("end time: %w", err)
	}
	for _, l := range ps.GetLinks() {
		tid, err := otlpID(l.GetTraceId(), 16, "link trace")
		if err != nil {
			return Span{}, err
		}
		sid, err := otlpID(l.GetSpanId(), 8, "link span")
		if err != nil {
			return Span{}, err
		}
		s.Links = append(s.Links, Link{TraceID: tid, SpanID: sid, Attrs: otlpAttrs(l.GetAttributes())})
	}
	s.Error = ps.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR
	return s, nil
}

func otlpID(b []byte, n int, what string) (string, error) {
	if len(b) != n {
		return "", fmt.Errorf("%s id has %d bytes, want %d", what, len(b), n)
	}
	id := hex.EncodeToString(b)
	if strings.Trim(id, "0") == "" {
		return "", fmt.Errorf("%s id is all zeros", what)
	}
	return id, nil
}

func unixNano(ns uint64) (time.Time, error) {
	if ns == 0 || ns > math.MaxInt64 {
		return time.Time{}, fmt.Errorf("%d ns since 1970 is out of range", ns)
	}
	return time.Unix(0, int64(ns)).UTC(), nil
}

func otlpKind(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "internal"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	}
	return ""
}

func otlpAttrs(kvs []*commonpb.KeyValue) map[string]any {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = otlpValue(kv.GetValue(), 0)
	}
	return m
}

// otlpValue converts an attribute value; nesting deeper than a few levels
// (never seen in practice) is cut off rather than recursed into.
func otlpValue(v *commonpb.AnyValue, depth int) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		if depth > 8 {
			return nil
		}
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, otlpValue(e, depth+1))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		if depth > 8 {
			return nil
		}
		out := map[string]any{}
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = otlpValue(kv.GetValue(), depth+1)
		}
		return out
	}
	return nil
}
