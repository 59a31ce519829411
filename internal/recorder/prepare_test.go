package recorder

import (
	"context"
	"fmt"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// The request span starts at Received, and its prepare child runs from
// there to the submission (the queue's start), with template and
// tokenize children at their times: the phases tile the request span.
func TestPrepareSpanTilesTheRequest(t *testing.T) {
	tr, rec, _ := newRecorded(t, TracerOptions{})
	res := result("r1", scheduler.FinishLength)
	enq := res.Timings.Enqueued
	received := enq.Add(-9 * time.Millisecond)
	info := RequestInfo{Operation: semconv.OperationChat, Model: "m", Received: received,
		Template: Phase{received.Add(time.Millisecond), received.Add(6 * time.Millisecond)},
		Tokenize: Phase{received.Add(6 * time.Millisecond), received.Add(8 * time.Millisecond)}}
	ctx := tr.StartRequest(context.Background(), info)
	tr.Finished(ctx, res)

	spans := rec.Ended()
	req, prep := byName(spans, "chat m"), byName(spans, semconv.SpanPrepare)
	tmpl, tok, queue := byName(spans, semconv.SpanTemplate), byName(spans, semconv.SpanTokenize), byName(spans, semconv.SpanQueue)
	if req == nil || prep == nil || tmpl == nil || tok == nil || queue == nil {
		t.Fatalf("spans %v: want the request, prepare, template, tokenize and queue", names(spans))
	}
	if !req.StartTime().Equal(received) || !prep.StartTime().Equal(received) || !prep.EndTime().Equal(queue.StartTime()) {
		t.Errorf("request starts %v, prepare %v–%v, queue starts %v; want %v, then prepare up to the queue",
			req.StartTime(), prep.StartTime(), prep.EndTime(), queue.StartTime(), received)
	}
	if prep.Parent().SpanID() != req.SpanContext().SpanID() {
		t.Error("prepare is not the request span's child")
	}
	for _, c := range []struct {
		s    sdktrace.ReadOnlySpan
		want Phase
	}{{tmpl, info.Template}, {tok, info.Tokenize}} {
		if c.s.Parent().SpanID() != prep.SpanContext().SpanID() || !c.s.StartTime().Equal(c.want.Start) || !c.s.EndTime().Equal(c.want.End) {
			t.Errorf("%s: parent %v, %v–%v; want prepare's child at %v–%v", c.s.Name(), c.s.Parent().SpanID(), c.s.StartTime(), c.s.EndTime(), c.want.Start, c.want.End)
		}
	}

	// A plain prompt has no template span; without a Received (callers
	// that know nothing of it) there is no prepare span at all.
	rec.Reset()
	ctx = tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationCompletion, Model: "m", Received: received, Tokenize: info.Tokenize})
	tr.Finished(ctx, res)
	if got := names(rec.Ended()); byName(rec.Ended(), semconv.SpanTemplate) != nil || byName(rec.Ended(), semconv.SpanTokenize) == nil {
		t.Errorf("plain prompt's spans %v: want tokenize and no template", got)
	}
	rec.Reset()
	ctx = tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationCompletion, Model: "m"})
	tr.Finished(ctx, res)
	if byName(rec.Ended(), semconv.SpanPrepare) != nil {
		t.Errorf("spans %v: a prepare span without a Received", names(rec.Ended()))
	}

	// A request refused for capacity keeps its prepare span.
	rec.Reset()
	ctx = tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationCompletion, Model: "m", Received: time.Now()})
	tr.Abort(ctx, fmt.Errorf("3 waiting: %w", reqerr.ErrQueueFull))
	if p, r := byName(rec.Ended(), semconv.SpanPrepare), byName(rec.Ended(), "text_completion m"); p == nil || r == nil || p.EndTime().After(r.EndTime()) {
		t.Errorf("refused request's spans %v: want a prepare span within the request span", names(rec.Ended()))
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}
