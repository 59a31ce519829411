package traceanalyze

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// twoRequests is two Lumen-shaped request traces and four batch steps,
// with figures easy to check by hand (all times in ms):
//
//	t1: POST /a [0,100] > chat m1 [4,96] > queue [5,15] prefill [15,35] decode [35,95]
//	t2: POST /b [20,200] > text_completion m2 [25,190] > queue [25,65] prefill [65,85] decode [85,190]
//	batch steps: b1 [15,35] size 1 → r1; b2 [40,50] size 2 → r1 r2; b3 [70,80] size 2 → r1 r2; b4 [100,110] size 1 → r2
func twoRequests() []Span {
	r1, r2 := [2]string{"t1", "r1"}, [2]string{"t2", "r2"}
	return []Span{
		span("t1", "h1", "remote", "POST /a", 0, 100),
		span("t1", "r1", "h1", "chat m1", 4, 96, "gen_ai.operation.name", "chat", "gen_ai.request.model", "m1",
			"tenant.id", "acme", "gen_ai.usage.input_tokens", int64(10), "gen_ai.usage.output_tokens", int64(5)),
		span("t1", "q1", "r1", "queue", 5, 15),
		span("t1", "p1", "r1", "prefill", 15, 35),
		span("t1", "d1", "r1", "decode", 35, 95, "lumen.decode.mean_batch_size", 2.0, "lumen.decode.steps", int64(4)),
		span("t2", "h2", "", "POST /b", 20, 200),
		span("t2", "r2", "h2", "text_completion m2", 25, 190, "gen_ai.operation.name", "text_completion", "gen_ai.request.model", "m2",
			"tenant.id", "globex", "gen_ai.usage.input_tokens", "100", "gen_ai.usage.output_tokens", int64(50)),
		span("t2", "q2", "r2", "queue", 25, 65),
		span("t2", "p2", "r2", "prefill", 65, 85),
		span("t2", "d2", "r2", "decode", 85, 190, "lumen.decode.mean_batch_size", 1.5, "lumen.decode.steps", int64(6)),
		batch("b1", 15, 35, 1, r1),
		batch("b2", 40, 50, 2, r1, r2),
		batch("b3", 70, 80, 2, r1, r2),
		batch("b4", 100, 110, 1, r2),
	}
}

func testPrices() *Prices {
	return &Prices{Currency: "EUR", Default: Price{InputPerMillion: 1, OutputPerMillion: 2},
		Models: map[string]Price{"m1": {InputPerMillion: 3, OutputPerMillion: 4}}}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

func TestAnalyzeByHand(t *testing.T) {
	r, err := Analyze(twoRequests(), Options{Prices: testPrices()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Spans != 14 || r.Traces != 6 || r.Requests != 2 || r.Batches != 4 || !r.Start.Equal(at(0)) || !r.End.Equal(at(200)) {
		t.Errorf("counts: %d spans %d traces %d requests %d batches, %v–%v", r.Spans, r.Traces, r.Requests, r.Batches, r.Start, r.End)
	}

	t.Run("operations", func(t *testing.T) {
		var b OpStats
		for _, o := range r.Operations {
			if o.Name == "batch" {
				b = o
			}
		}
		// 20, 10, 10, 10 ms: mean 12.5, p50 the 2nd of 4 sorted, p99 the max.
		want := OpStats{Name: "batch", Count: 4, Total: msDur(50), Mean: msDur(12.5), P50: msDur(10), P99: msDur(20), Max: msDur(20)}
		if b != want {
			t.Errorf("batch = %+v, want %+v", b, want)
		}
		if r.Operations[0].Name != "POST /b" || r.Operations[0].Total != msDur(180) {
			t.Errorf("largest total first: %+v", r.Operations[0])
		}
	})

	t.Run("critical paths", func(t *testing.T) {
		if len(r.CriticalPaths) != 2 {
			t.Fatalf("%d paths, want one per request trace", len(r.CriticalPaths))
		}
		p1 := r.CriticalPaths[0]
		if !slices.Equal(p1.Chain, []string{"POST /a", "chat m1", "queue", "prefill", "decode"}) || p1.Duration != msDur(100) {
			t.Errorf("t1 path %q %v", p1.Chain, p1.Duration.Std())
		}
		var got []seg
		for _, s := range p1.Segments {
			got = append(got, seg{s.SpanID, float64(s.Offset) / 1e6, float64(s.Duration) / 1e6})
		}
		want := []seg{{"h1", 0, 4}, {"r1", 4, 1}, {"q1", 5, 10}, {"p1", 15, 20}, {"d1", 35, 60}, {"r1", 95, 1}, {"h1", 96, 4}}
		if !slices.Equal(got, want) {
			t.Errorf("t1 segments %v, want %v", got, want)
		}
		// t2 is the slowest request trace (180ms); its request span has no
		// time of its own, so it is not on the path.
		if r.Selected == nil || r.Selected.TraceID != "t2" || !slices.Equal(r.Selected.Chain, []string{"POST /b", "queue", "prefill", "decode"}) {
			t.Errorf("selected = %+v", r.Selected)
		}
	})

	t.Run("bottlenecks by time on critical paths", func(t *testing.T) {
		want := []Bottleneck{
			{"decode", msDur(165), 165.0 / 280, 2},
			{"queue", msDur(50), 50.0 / 280, 2},
			{"prefill", msDur(40), 40.0 / 280, 2},
			{"POST /b", msDur(15), 15.0 / 280, 1},
			{"POST /a", msDur(8), 8.0 / 280, 1},
			{"chat m1", msDur(2), 2.0 / 280, 1},
		}
		if len(r.Bottlenecks) != len(want) {
			t.Fatalf("bottlenecks %+v", r.Bottlenecks)
		}
		for i, w := range want {
			g := r.Bottlenecks[i]
			if g.Name != w.Name || g.Time != w.Time || !near(g.Share, w.Share) || g.Traces != w.Traces {
				t.Errorf("rank %d = %+v, want %+v", i+1, g, w)
			}
		}
	})

	t.Run("phases", func(t *testing.T) {
		p := r.Phases
		all := 50.0 + 40 + 165
		want := Phases{Requests: 2,
			Queue:   PhaseStat{Total: msDur(50), Share: 50 / all, Mean: msDur(25), Count: 2},
			Prefill: PhaseStat{Total: msDur(40), Share: 40 / all, Mean: msDur(20), Count: 2},
			Decode:  PhaseStat{Total: msDur(165), Share: 165 / all, Mean: msDur(82.5), Count: 2},
		}
		for _, c := range []struct{ got, want PhaseStat }{{p.Queue, want.Queue}, {p.Prefill, want.Prefill}, {p.Decode, want.Decode}} {
			if c.got.Total != c.want.Total || c.got.Mean != c.want.Mean || c.got.Count != c.want.Count || !near(c.got.Share, c.want.Share) {
				t.Errorf("phase %+v, want %+v", c.got, c.want)
			}
		}
	})

	t.Run("contention", func(t *testing.T) {
		c := r.Contention
		// Attributes: mean (2+1.5)/2, steps (4+6)/2. Links: both requests
		// were in 3 steps of sizes summing to 5.
		if c.AttrRequests != 2 || !near(c.MeanBatchAttr, 1.75) || c.MaxMeanBatchAttr != 2 || !near(c.MeanDecodeSteps, 5) || c.MaxDecodeSteps != 6 {
			t.Errorf("from attributes: %+v", c)
		}
		if c.LinkedRequests != 2 || !near(c.MeanBatchLinked, 5.0/3) || c.MaxBatchLinked != 2 || !near(c.MeanSteps, 3) || c.MaxSteps != 3 {
			t.Errorf("from links: %+v", c)
		}
	})

	t.Run("tokens and cost", func(t *testing.T) {
		c1 := 10*3/1e6 + 5*4/1e6   // m1's own price
		c2 := 100*1/1e6 + 50*2/1e6 // m2 falls back to the default
		wantModels := []Usage{{"m1", 1, 10, 5, &c1}, {"m2", 1, 100, 50, &c2}}
		wantTenants := []Usage{{"acme", 1, 10, 5, &c1}, {"globex", 1, 100, 50, &c2}}
		for _, tc := range []struct {
			got, want []Usage
		}{{r.Models, wantModels}, {r.Tenants, wantTenants}} {
			if len(tc.got) != len(tc.want) {
				t.Fatalf("usage %+v", tc.got)
			}
			for i, w := range tc.want {
				g := tc.got[i]
				if g.Name != w.Name || g.Requests != w.Requests || g.InputTokens != w.InputTokens || g.OutputTokens != w.OutputTokens || g.Cost == nil || !near(*g.Cost, *w.Cost) {
					t.Errorf("usage %+v (cost %v), want %+v (cost %v)", g, g.Cost, w, *w.Cost)
				}
			}
		}
		if r.Currency != "EUR" {
			t.Errorf("currency %q", r.Currency)
		}
	})
}

func TestAnalyzeWithoutPricesHasNoCost(t *testing.T) {
	r, err := Analyze(twoRequests(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `"cost"`) || strings.Contains(buf.String(), `"currency"`) {
		t.Errorf("JSON has cost without prices:\n%s", buf.String())
	}
}

func TestAnalyzeTraceIDSelects(t *testing.T) {
	r, err := Analyze(twoRequests(), Options{TraceID: "t1"})
	if err != nil || r.Selected == nil || r.Selected.TraceID != "t1" {
		t.Fatalf("selected %+v, %v", r.Selected, err)
	}
	if _, err := Analyze(twoRequests(), Options{TraceID: "nope"}); !errors.Is(err, ErrTraceNotInInput) {
		t.Errorf("unknown trace: %v, want ErrTraceNotInInput", err)
	}
	if _, err := Analyze(nil, Options{}); !errors.Is(err, ErrNoSpans) {
		t.Errorf("no spans: %v", err)
	}
}

func TestAnalyzeRequestsWithoutAttributes(t *testing.T) {
	// A request cancelled in the queue: no prefill, no decode, no model,
	// no tenant; and a lone batch trace.
	spans := []Span{
		span("t", "r", "", "chat x", 0, 10, "gen_ai.operation.name", "chat"),
		span("t", "q", "r", "queue", 0, 10),
		batch("b", 0, 1, 1),
	}
	r, err := Analyze(spans, Options{Prices: testPrices()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Models[0].Name != UnknownModel || r.Tenants[0].Name != NoTenant || *r.Models[0].Cost != 0 {
		t.Errorf("models %+v tenants %+v", r.Models, r.Tenants)
	}
	if p := r.Phases; p.Queue.Count != 1 || p.Prefill.Count != 0 || p.Decode.Count != 0 || p.Queue.Share != 1 {
		t.Errorf("phases %+v", p)
	}
	if c := r.Contention; c.AttrRequests != 0 || c.LinkedRequests != 0 {
		t.Errorf("contention %+v", c)
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"no lumen.decode.mean_batch_size", "linked batch spans: none"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestAnalyzeOnlyBatchTraces(t *testing.T) {
	r, err := Analyze([]Span{batch("b1", 0, 1, 1), batch("b2", 0, 5, 2)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.CriticalPaths) != 0 || r.Selected == nil || r.Selected.TraceID != "b2" || r.Requests != 0 {
		t.Errorf("paths %d selected %+v", len(r.CriticalPaths), r.Selected)
	}
	for _, w := range []func() error{
		func() error { return r.WriteText(&bytes.Buffer{}) },
		func() error { return r.WriteJSON(&bytes.Buffer{}) },
		func() error { return r.WriteHTML(&bytes.Buffer{}) },
	} {
		if err := w(); err != nil {
			t.Error(err)
		}
	}
}

func TestWriteTextAndJSON(t *testing.T) {
	r, err := Analyze(twoRequests(), Options{Prices: testPrices()})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"14 spans in 6 traces: 2 requests, 4 batch steps",
		"  batch                   4   12.500ms   10.000ms   20.000ms   20.000ms",
		"Critical path of trace t2 (POST /b, 180.000ms): POST /b → queue → prefill → decode",
		"  decode     165.000ms  58.9%       2",
		"  decode   165.000ms  64.7%      82.500ms         2",
		"decode spans (lumen.decode.*), 2 requests: mean batch size 1.75 (max 2.00), decode steps per request 5.00 (max 6)",
		"linked batch spans, 2 requests: mean batch size 1.67 (max 2), steps per request 3.00 (max 3)",
		"  globex         1    100      50      0.0002",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Operations []struct {
			Name   string  `json:"name"`
			MeanMs float64 `json:"mean_ms"`
		} `json:"operations"`
		Phases struct {
			Decode struct {
				Mean float64 `json:"mean_per_request_ms"`
			} `json:"decode"`
		} `json:"phases"`
		Tenants []struct {
			Name string  `json:"name"`
			Cost float64 `json:"cost"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Phases.Decode.Mean != 82.5 || back.Tenants[1].Name != "globex" || !near(back.Tenants[1].Cost, 0.0002) {
		t.Errorf("JSON: %+v", back)
	}
}

// Health-check and reflection traces are infrastructure: they stay out of
// the critical paths, the bottlenecks and the choice of the slowest
// trace, and the report says how many were left out.
func TestProbeTracesLeftOut(t *testing.T) {
	spans := []Span{
		span("req", "a", "", "POST /v1/completions", 0, 10),
		span("req", "b", "a", "text_completion tiny", 1, 9),
		span("hc", "h", "", "grpc.health.v1.Health/Check", 0, 50),
		span("rf", "r", "", "grpc.reflection.v1.ServerReflection/ServerReflectionInfo", 0, 40),
		span("rz", "z", "", "GET /readyz", 0, 30),
	}
	r, err := Analyze(spans, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Probes != 3 {
		t.Errorf("Probes = %d, want 3", r.Probes)
	}
	if len(r.CriticalPaths) != 1 || r.CriticalPaths[0].TraceID != "req" {
		t.Errorf("critical paths %+v, want only the request trace's", r.CriticalPaths)
	}
	if r.Selected == nil || r.Selected.TraceID != "req" {
		t.Errorf("selected %+v, want the request trace, not the slower probes", r.Selected)
	}
	for _, b := range r.Bottlenecks {
		if strings.HasPrefix(b.Name, "grpc.") || b.Name == "GET /readyz" {
			t.Errorf("bottleneck %q is a probe", b.Name)
		}
	}
	var out bytes.Buffer
	if err := r.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "3 health-check and reflection traces left out") {
		t.Errorf("text report does not say probes were left out:\n%s", out.String())
	}
	// A probe asked for by id is still shown.
	r, err = Analyze(spans, Options{TraceID: "hc"})
	if err != nil || r.Selected == nil || r.Selected.TraceID != "hc" {
		t.Errorf("--trace-id of a probe: selected %+v, err %v", r.Selected, err)
	}
}

// The text report lists the requests that failed, were refused or were
// cancelled, with their error.type and cancel reason, counted by kind.
func TestFailuresListed(t *testing.T) {
	ok := span("t1", "a", "", "text_completion tiny", 0, 10, "gen_ai.operation.name", "text_completion")
	full := span("t2", "b", "", "text_completion tiny", 1, 2, "gen_ai.operation.name", "text_completion", "error.type", "queue_full")
	full.Error = true
	cut := span("t3", "c", "", "chat tiny", 2, 8, "gen_ai.operation.name", "chat", "error.type", "cancelled", "lumen.cancel_reason", "client cancelled")
	r, err := Analyze([]Span{ok, full, cut}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"Failed, refused or cancelled requests: 2 of 3 (cancelled 1, queue_full 1)",
		"t2", "queue_full", "t3", "client cancelled",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
	if i := strings.Index(text, "Failed, refused"); i >= 0 && strings.Contains(text[i:], "t1 ") {
		t.Errorf("the successful request is listed as failed:\n%s", text[i:])
	}
	var got []string
	for _, q := range r.RequestList {
		if q.Failed() {
			got = append(got, q.ErrorType)
		}
	}
	if !slices.Equal(got, []string{"queue_full", "cancelled"}) {
		t.Errorf("failed requests' error types %q, want [queue_full cancelled]", got)
	}
}

// For the selected request that queued, the report names the requests
// that held the slots during its wait and how much of the wait each spent
// in prefill and in decode. The phases tile each request span: prepare
// first (where there is one), then queue, prefill and decode.
func TestQueueingExplained(t *testing.T) {
	// req's queue starts at start; its request span, prepare earlier.
	req := func(trace string, prepare, start, queue, prefill, end float64) []Span {
		spans := []Span{
			span(trace, trace+"r", "", "text_completion tiny", start-prepare, end, "gen_ai.operation.name", "text_completion"),
			span(trace, trace+"q", trace+"r", "queue", start, start+queue),
			span(trace, trace+"p", trace+"r", "prefill", start+queue, start+queue+prefill),
			span(trace, trace+"d", trace+"r", "decode", start+queue+prefill, end),
		}
		if prepare > 0 {
			spans = append(spans, span(trace, trace+"x", trace+"r", "prepare", start-prepare, start))
		}
		return spans
	}
	var spans []Span
	spans = append(spans, req("A", 2, 0, 10, 2, 30)...) // waits [0, 10]
	spans = append(spans, req("B", 0.5, 0, 0, 3, 8)...) // prefill 3, decode 5 of it
	spans = append(spans, req("C", 0, 0, 0, 1, 20)...)  // prefill 1, decode 9 of it
	spans = append(spans, req("D", 0, 25, 0, 1, 28)...) // after it
	r, err := Analyze(spans, Options{})
	if err != nil {
		t.Fatal(err)
	}
	qe := r.SelectedQueueing
	if qe == nil || qe.TraceID != "A" || qe.Wait.Std() != 10*time.Millisecond {
		t.Fatalf("queueing %+v, want trace A waiting 10 ms", qe)
	}
	want := []Holder{
		{TraceID: "C", Request: "text_completion tiny", Prefill: Dur(time.Millisecond), Decode: Dur(9 * time.Millisecond)},
		{TraceID: "B", Request: "text_completion tiny", Prefill: Dur(3 * time.Millisecond), Decode: Dur(5 * time.Millisecond)},
	}
	if !slices.Equal(qe.Holders, want) {
		t.Errorf("holders %+v, want %+v", qe.Holders, want)
	}
	var out bytes.Buffer
	if err := r.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "It queued 10.000ms while 2 other requests held the slots") {
		t.Errorf("text report does not explain the wait:\n%s", out.String())
	}
}
