package traceanalyze

import (
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// at is t0 plus ms milliseconds.
func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

func msDur(ms float64) Dur { return Dur(ms * float64(time.Millisecond)) }

// span builds a test span; attrs are key, value pairs.
func span(trace, id, parent, name string, start, end float64, attrs ...any) Span {
	s := Span{TraceID: trace, SpanID: id, ParentID: parent, Name: name, Start: at(start), End: at(end), Service: "lumen"}
	for i := 0; i+1 < len(attrs); i += 2 {
		if s.Attrs == nil {
			s.Attrs = map[string]any{}
		}
		s.Attrs[attrs[i].(string)] = attrs[i+1]
	}
	return s
}

// batch builds a batch span of the given size linked to request spans
// given as trace/span id pairs.
func batch(trace string, start, end float64, size int64, links ...[2]string) Span {
	s := span(trace, "b-"+trace, "", "batch", start, end, "lumen.batch.size", size)
	for _, l := range links {
		s.Links = append(s.Links, Link{TraceID: l[0], SpanID: l[1]})
	}
	return s
}
