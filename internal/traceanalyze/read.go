package traceanalyze

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Format names an input format.
type Format string

const (
	// FormatAuto tells OTLP from Jaeger JSON by the first object's keys:
	// resourceSpans (or resource_spans) or data.
	FormatAuto Format = "auto"
	// FormatOTLP is the OTLP/JSON encoding of ExportTraceServiceRequest,
	// one object or one object per line (the Collector's file exporter).
	FormatOTLP Format = "otlp"
	// FormatJaeger is Jaeger's query API JSON: {"data":[traces]}.
	FormatJaeger Format = "jaeger"
)

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatAuto, FormatOTLP, FormatJaeger:
		return f, nil
	}
	return "", fmt.Errorf("format %q: want auto, otlp or jaeger", s)
}

// ErrNoSpans is returned for input that holds no spans at all.
var ErrNoSpans = errors.New("no spans")

// ReadFile reads spans from a file of the given format.
func ReadFile(path string, format Format) ([]Span, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	spans, err := Decode(b, format)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return spans, nil
}

// Decode reads spans from a sequence of JSON objects (one, or one per
// line) of the given format. Spans repeated with the same trace and span
// id are kept once. Input without a single span is ErrNoSpans.
func Decode(b []byte, format Format) ([]Span, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var spans []Span
	for n := 1; ; n++ {
		var raw json.RawMessage
		offset := dec.InputOffset()
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		where := fmt.Sprintf("object %d (line %d)", n, lineAt(b, offset))
		if err != nil {
			return nil, fmt.Errorf("%s: malformed JSON: %w", where, err)
		}
		f := format
		if f == FormatAuto || f == "" {
			if f, err = detect(raw); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		more, err := decodeObject(raw, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", where, f, err)
		}
		spans = append(spans, more...)
	}
	spans, _ = dedupe(spans)
	if len(spans) == 0 {
		return nil, ErrNoSpans
	}
	return spans, nil
}

// lineAt is the 1-based line of byte offset off, skipping the whitespace
// before the object that starts there.
func lineAt(b []byte, off int64) int {
	off = min(max(off, 0), int64(len(b)))
	for off < int64(len(b)) && (b[off] == ' ' || b[off] == '\n' || b[off] == '\r' || b[off] == '\t') {
		off++
	}
	return 1 + bytes.Count(b[:off], []byte{'\n'})
}

func detect(raw []byte) (Format, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return "", errors.New("not a JSON object")
	}
	switch {
	case keys["resourceSpans"] != nil || keys["resource_spans"] != nil:
		return FormatOTLP, nil
	case keys["data"] != nil:
		return FormatJaeger, nil
	}
	return "", errors.New("neither OTLP JSON (resourceSpans) nor Jaeger JSON (data); name the format with --format")
}

func decodeObject(raw []byte, f Format) ([]Span, error) {
	switch f {
	case FormatOTLP:
		req, err := decodeOTLPObject(raw)
		if err != nil {
			return nil, err
		}
		return SpansFromOTLP(req)
	case FormatJaeger:
		resp, err := decodeJaegerObject(raw)
		if err != nil {
			return nil, err
		}
		if len(resp.Errors) > 0 {
			return nil, fmt.Errorf("jaeger reported: %s", jaegerErrors(resp.Errors))
		}
		return spansFromJaeger(resp.Data)
	}
	return nil, fmt.Errorf("unknown format %q", f)
}

func decodeJaegerObject(raw []byte) (*jaegerResponse, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var resp jaegerResponse
	if err := dec.Decode(&resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

func jaegerErrors(errs []jaegerError) string {
	var b bytes.Buffer
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d %s", e.Code, truncateForError(e.Msg))
	}
	return b.String()
}
