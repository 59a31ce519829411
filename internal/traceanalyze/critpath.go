package traceanalyze

import (
	"cmp"
	"slices"
	"time"
)

// CriticalPath is the chain of spans that determines when a trace ends.
//
// Algorithm (Jaeger UI's last-finishing-child walk, but with clipping):
// start at the root
// span, with a cursor at its end. Repeatedly take, among the span's
// children not yet taken that start before the cursor, the one that ends
// last (its end clipped to the cursor); the time between that child's
// end and the cursor belongs to the span itself, the child's own path is
// computed the same way within [its start, its clipped end], and the
// cursor moves to the child's start. When no child starts before the
// cursor, the time from the span's start to the cursor is the span's
// own. Children are clipped to their parent's interval, so asynchronous
// children that outlive their parent do not extend the path. The result
// is a list of segments that tile the root's interval exactly: each
// instant of the trace is attributed to the one span that was holding
// up the end at that instant.
//
// Where it differs from Jaeger's UI: Jaeger takes only a child that ends
// strictly before the cursor, so a child that ends exactly when its next
// sibling starts (a request's queue span, which ends the instant prefill
// begins) or that overlaps it is skipped and its time charged to the
// parent; here such a child is taken, its end clipped to the cursor, and
// the queue time is the queue span's. The two paths therefore agree on
// traces of disjoint children with gaps between them and differ on
// Lumen's own, where phases touch.
//
// The root is the span whose parent is not in the trace (a continued
// trace's remote parent is never exported here); with several such spans,
// the one that ends last (then starts first) is taken.
type CriticalPath struct {
	TraceID  string    `json:"trace_id"`
	Root     string    `json:"root"`
	Duration Dur       `json:"duration_ms"` // the root span's duration
	Segments []Segment `json:"segments"`    // chronological
	// Chain is the names of the spans on the path, each once, in the
	// order in which the path first enters them.
	Chain []string `json:"chain"`
}

// Segment is a stretch of the critical path spent in one span's own time.
type Segment struct {
	SpanID   string `json:"span_id"`
	Name     string `json:"name"`
	Offset   Dur    `json:"offset_ms"` // from the root's start
	Duration Dur    `json:"duration_ms"`
}

// root picks a trace's root span as CriticalPath describes.
func root(t *Trace) *Span {
	ids := make(map[string]bool, len(t.Spans))
	for _, s := range t.Spans {
		ids[s.SpanID] = true
	}
	var best *Span
	for _, s := range t.Spans {
		if s.ParentID != "" && ids[s.ParentID] {
			continue
		}
		if best == nil || s.End.After(best.End) || s.End.Equal(best.End) && s.Start.Before(best.Start) {
			best = s
		}
	}
	return best
}

// criticalPath computes a trace's critical path; nil for a trace with no
// root (every span's parent in the trace: a cycle in malformed input).
func criticalPath(t *Trace) *CriticalPath {
	r := root(t)
	if r == nil {
		return nil
	}
	children := map[string][]*Span{}
	for _, s := range t.Spans {
		if s.ParentID != "" && s != r {
			children[s.ParentID] = append(children[s.ParentID], s)
		}
	}
	for _, kids := range children {
		// Latest end first; among equal ends the later start (the more
		// specific span), then span id, so the result is deterministic.
		slices.SortFunc(kids, func(a, b *Span) int {
			return cmp.Or(b.End.Compare(a.End), b.Start.Compare(a.Start), cmp.Compare(a.SpanID, b.SpanID))
		})
	}
	end := later(r.End, r.Start) // a span ending before its start is a point
	w := pathWalker{children: children, visited: map[*Span]bool{}}
	w.walk(r, r.Start, end)
	slices.Reverse(w.segs)
	p := &CriticalPath{TraceID: t.ID, Root: r.Name, Duration: Dur(end.Sub(r.Start))}
	seen := map[string]bool{}
	for _, s := range w.segs {
		if n := len(p.Segments); n > 0 && p.Segments[n-1].SpanID == s.span.SpanID {
			p.Segments[n-1].Duration += Dur(s.end.Sub(s.start))
			continue
		}
		p.Segments = append(p.Segments, Segment{
			SpanID: s.span.SpanID, Name: s.span.Name,
			Offset: Dur(s.start.Sub(r.Start)), Duration: Dur(s.end.Sub(s.start)),
		})
		if !seen[s.span.SpanID] {
			seen[s.span.SpanID] = true
			p.Chain = append(p.Chain, s.span.Name)
		}
	}
	return p
}

type rawSegment struct {
	span       *Span
	start, end time.Time
}

type pathWalker struct {
	children map[string][]*Span
	visited  map[*Span]bool // guards against malformed parent cycles
	segs     []rawSegment   // latest first
}

// walk attributes [lo, hi] (s's interval clipped to its parent's) to s and
// its descendants, appending segments from the latest backwards.
func (w *pathWalker) walk(s *Span, lo, hi time.Time) {
	w.visited[s] = true
	cursor := hi
	for _, c := range w.children[s.SpanID] {
		if w.visited[c] {
			continue
		}
		cStart := later(c.Start, lo)
		// Sorted by end, latest first: a child that starts at or after
		// the cursor can never qualify again, as the cursor only falls.
		if !cStart.Before(cursor) {
			continue
		}
		cEnd := earlier(c.End, cursor)
		if cEnd.Before(cStart) {
			cEnd = cStart
		}
		if cEnd.Before(cursor) {
			w.segs = append(w.segs, rawSegment{s, cEnd, cursor})
		}
		w.walk(c, cStart, cEnd)
		cursor = cStart
	}
	if lo.Before(cursor) {
		w.segs = append(w.segs, rawSegment{s, lo, cursor})
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
