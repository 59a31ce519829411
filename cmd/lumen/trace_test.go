package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/lumenllm/lumen/internal/traceanalyze"
)

// fxSpan is a fixture span as the tests read it, independently of
// internal/traceanalyze: times in ns, attribute values as strings.
type fxSpan struct {
	trace, id, parent, name string
	start, end              int64
	attrs                   map[string]string
	links                   [][2]string
}

func (s fxSpan) dur() int64 { return s.end - s.start }

// loadOTLPFixture reads the OTLP JSON fixture with encoding/json alone.
func loadOTLPFixture(t *testing.T) []fxSpan {
	t.Helper()
	b, err := os.ReadFile(otlpFixture)
	if err != nil {
		t.Fatal(err)
	}
	var out []fxSpan
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var doc struct {
			ResourceSpans []struct {
				ScopeSpans []struct {
					Spans []struct {
						TraceID, SpanID, ParentSpanID, Name string
						StartTimeUnixNano, EndTimeUnixNano  string
						Attributes                          []struct {
							Key   string
							Value map[string]any
						}
						Links []struct{ TraceID, SpanID string }
					}
				}
			}
		}
		if err := json.Unmarshal(line, &doc); err != nil {
			t.Fatal(err)
		}
		for _, rs := range doc.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					f := fxSpan{trace: s.TraceID, id: s.SpanID, parent: s.ParentSpanID, name: s.Name, attrs: map[string]string{}}
					f.start, _ = strconv.ParseInt(s.StartTimeUnixNano, 10, 64)
					f.end, _ = strconv.ParseInt(s.EndTimeUnixNano, 10, 64)
					for _, a := range s.Attributes {
						for _, v := range a.Value {
							f.attrs[a.Key] = fmt.Sprint(v)
						}
					}
					for _, l := range s.Links {
						f.links = append(f.links, [2]string{l.TraceID, l.SpanID})
					}
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// loadJaegerFixture reads the Jaeger JSON fixture with encoding/json alone.
func loadJaegerFixture(t *testing.T) []fxSpan {
	t.Helper()
	b, err := os.ReadFile(jaegerFixture)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Data []struct {
			Spans []struct {
				TraceID, SpanID, OperationName string
				StartTime, Duration            int64
				References                     []struct{ RefType, TraceID, SpanID string }
				Tags                           []struct {
					Key   string
					Value any
				}
			}
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var out []fxSpan
	for _, tr := range doc.Data {
		for _, s := range tr.Spans {
			f := fxSpan{trace: s.TraceID, id: s.SpanID, name: s.OperationName, attrs: map[string]string{},
				start: s.StartTime * 1000, end: (s.StartTime + s.Duration) * 1000}
			for _, r := range s.References {
				if r.RefType == "CHILD_OF" {
					f.parent = r.SpanID
				} else {
					f.links = append(f.links, [2]string{r.TraceID, r.SpanID})
				}
			}
			for _, tag := range s.Tags {
				f.attrs[tag.Key] = fmt.Sprint(tag.Value)
			}
			out = append(out, f)
		}
	}
	return out
}

// expected is what the analysis should report, computed from fxSpans.
type expected struct {
	spans, traces, requests, batches int
	ops                              map[string]opWant
	slowestTrace                     string
	slowestChain                     []string
	slowestSpans                     int
	phaseTotals                      [3]int64 // ns: queue, prefill, decode
	tenantTokens                     map[string][2]int64
	meanBatchLinked                  float64
	maxBatchLinked                   int64
	meanStepsLinked                  float64
	traceSpans                       map[string]int
}

type opWant struct {
	count                    int
	mean, p50, p99, max, tot int64
}

// nearestRank is the p-th percentile of sorted values, as documented by
// traceanalyze.Percentile, written out again here.
func nearestRank(sorted []int64, p float64) int64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func expect(spans []fxSpan) expected {
	e := expected{spans: len(spans), ops: map[string]opWant{}, tenantTokens: map[string][2]int64{}, traceSpans: map[string]int{}}
	durs := map[string][]int64{}
	byID := map[[2]string]fxSpan{}
	traceStart, traceEnd := map[string]int64{}, map[string]int64{}
	for _, s := range spans {
		durs[s.name] = append(durs[s.name], s.dur())
		byID[[2]string{s.trace, s.id}] = s
		e.traceSpans[s.trace]++
		if st, ok := traceStart[s.trace]; !ok || s.start < st {
			traceStart[s.trace] = s.start
		}
		traceEnd[s.trace] = max(traceEnd[s.trace], s.end)
	}
	e.traces = len(e.traceSpans)
	for name, ds := range durs {
		slices.Sort(ds)
		var sum int64
		for _, d := range ds {
			sum += d
		}
		e.ops[name] = opWant{len(ds), sum / int64(len(ds)), nearestRank(ds, 50), nearestRank(ds, 99), ds[len(ds)-1], sum}
	}
	requestTraces := map[string]bool{}
	linkedSizes := map[[2]string][]int64{}
	for _, s := range spans {
		if s.name == "batch" {
			e.batches++
			n, _ := strconv.ParseInt(s.attrs["lumen.batch.size"], 10, 64)
			for _, l := range s.links {
				linkedSizes[l] = append(linkedSizes[l], n)
			}
		}
		if s.attrs["gen_ai.operation.name"] != "" {
			e.requests++
			requestTraces[s.trace] = true
			tenant := s.attrs["tenant.id"]
			if tenant == "" {
				tenant = traceanalyze.NoTenant
			}
			in, _ := strconv.ParseInt(s.attrs["gen_ai.usage.input_tokens"], 10, 64)
			out, _ := strconv.ParseInt(s.attrs["gen_ai.usage.output_tokens"], 10, 64)
			w := e.tenantTokens[tenant]
			e.tenantTokens[tenant] = [2]int64{w[0] + in, w[1] + out}
		}
		if p, ok := byID[[2]string{s.trace, s.parent}]; ok && p.attrs["gen_ai.operation.name"] != "" {
			switch s.name {
			case "queue":
				e.phaseTotals[0] += s.dur()
			case "prefill":
				e.phaseTotals[1] += s.dur()
			case "decode":
				e.phaseTotals[2] += s.dur()
			}
		}
	}
	var sumMeans, sumSteps float64
	for _, sizes := range linkedSizes {
		var sum int64
		for _, n := range sizes {
			sum += n
			e.maxBatchLinked = max(e.maxBatchLinked, n)
		}
		sumMeans += float64(sum) / float64(len(sizes))
		sumSteps += float64(len(sizes))
	}
	e.meanBatchLinked = sumMeans / float64(len(linkedSizes))
	e.meanStepsLinked = sumSteps / float64(len(linkedSizes))

	// The slowest request trace, and its chain: the root (no parent in
	// the trace), the request span, then its queue, prefill and decode.
	var ids []string
	for id := range requestTraces {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if e.slowestTrace == "" || traceEnd[id]-traceStart[id] > traceEnd[e.slowestTrace]-traceStart[e.slowestTrace] {
			e.slowestTrace = id
		}
	}
	e.slowestSpans = e.traceSpans[e.slowestTrace]
	for _, s := range spans {
		if s.trace != e.slowestTrace {
			continue
		}
		if _, ok := byID[[2]string{s.trace, s.parent}]; !ok {
			e.slowestChain = append([]string{s.name}, e.slowestChain...)
		} else if s.attrs["gen_ai.operation.name"] != "" {
			e.slowestChain = append(e.slowestChain, s.name)
		}
	}
	e.slowestChain = append(e.slowestChain, "queue", "prefill", "decode")
	return e
}

// reportJSON is the part of `trace analyze --json` the tests read.
type reportJSON struct {
	Spans, Traces, Requests int
	Batches                 int `json:"batch_spans"`
	Operations              []struct {
		Name  string
		Count int
		Total float64 `json:"total_ms"`
		Mean  float64 `json:"mean_ms"`
		P50   float64 `json:"p50_ms"`
		P99   float64 `json:"p99_ms"`
		Max   float64 `json:"max_ms"`
	}
	Selected struct {
		TraceID string `json:"trace_id"`
		Chain   []string
	} `json:"selected_critical_path"`
	CriticalPaths []struct {
		TraceID string `json:"trace_id"`
		Chain   []string
	} `json:"critical_paths"`
	Bottlenecks []struct {
		Name  string
		Time  float64 `json:"critical_ms"`
		Share float64
	}
	Phases struct {
		Requests               int
		Queue, Prefill, Decode struct {
			Total float64 `json:"total_ms"`
			Share float64
			Mean  float64 `json:"mean_per_request_ms"`
		}
	}
	Contention struct {
		LinkedRequests  int     `json:"linked_requests"`
		MeanBatchLinked float64 `json:"mean_batch_size_linked"`
		MaxBatchLinked  int64   `json:"max_batch_size_linked"`
		MeanSteps       float64 `json:"mean_steps_linked"`
	} `json:"batch_contention"`
	Currency string
	Models   []usageJSON
	Tenants  []usageJSON
}

type usageJSON struct {
	Name         string
	Requests     int
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	Cost         *float64
}

func analyzeJSON(t *testing.T, args ...string) reportJSON {
	t.Helper()
	out, stderr, err := runCLI(t, append([]string{"trace", "analyze", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("trace analyze %q: %v\n%s", args, err, stderr)
	}
	var r reportJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return r
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func close12(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

// writePrices writes a prices file: default 1/2, tiny 3/7 per million.
func writePrices(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prices.yaml")
	doc := "currency: EUR\ndefault: {input_per_million: 1, output_per_million: 2}\nmodels:\n  tiny: {input_per_million: 3, output_per_million: 7}\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkReport compares a report with figures computed from the fixture.
func checkReport(t *testing.T, got reportJSON, want expected) {
	t.Helper()
	if got.Spans != want.spans || got.Traces != want.traces || got.Requests != want.requests || got.Batches != want.batches {
		t.Errorf("spans/traces/requests/batches = %d/%d/%d/%d, want %d/%d/%d/%d",
			got.Spans, got.Traces, got.Requests, got.Batches, want.spans, want.traces, want.requests, want.batches)
	}
	if len(got.Operations) != len(want.ops) {
		t.Errorf("%d operations, want %d", len(got.Operations), len(want.ops))
	}
	for _, o := range got.Operations {
		w, ok := want.ops[o.Name]
		if !ok {
			t.Errorf("unexpected operation %q", o.Name)
			continue
		}
		if o.Count != w.count || o.Total != ms(w.tot) || o.Mean != ms(w.mean) || o.P50 != ms(w.p50) || o.P99 != ms(w.p99) || o.Max != ms(w.max) {
			t.Errorf("%s: count %d total %v mean %v p50 %v p99 %v max %v; want %d %v %v %v %v %v", o.Name,
				o.Count, o.Total, o.Mean, o.P50, o.P99, o.Max, w.count, ms(w.tot), ms(w.mean), ms(w.p50), ms(w.p99), ms(w.max))
		}
	}
	if got.Selected.TraceID != want.slowestTrace || !slices.Equal(got.Selected.Chain, want.slowestChain) {
		t.Errorf("selected path %s %q, want %s %q", got.Selected.TraceID, got.Selected.Chain, want.slowestTrace, want.slowestChain)
	}
	if len(got.CriticalPaths) != want.requests {
		t.Errorf("%d critical paths, want one per request trace", len(got.CriticalPaths))
	}
	p := got.Phases
	if p.Requests != want.requests || p.Queue.Total != ms(want.phaseTotals[0]) || p.Prefill.Total != ms(want.phaseTotals[1]) || p.Decode.Total != ms(want.phaseTotals[2]) {
		t.Errorf("phases %+v, want totals %v ns", p, want.phaseTotals)
	}
	all := float64(want.phaseTotals[0] + want.phaseTotals[1] + want.phaseTotals[2])
	if !close12(p.Decode.Share, float64(want.phaseTotals[2])/all) || p.Queue.Mean != ms(want.phaseTotals[0]/int64(want.requests)) {
		t.Errorf("decode share %v, queue mean %v", p.Decode.Share, p.Queue.Mean)
	}
	c := got.Contention
	if c.LinkedRequests != want.requests || !close12(c.MeanBatchLinked, want.meanBatchLinked) || c.MaxBatchLinked != want.maxBatchLinked || !close12(c.MeanSteps, want.meanStepsLinked) {
		t.Errorf("contention %+v, want mean %v max %d steps %v", c, want.meanBatchLinked, want.maxBatchLinked, want.meanStepsLinked)
	}
	tenants := map[string][2]int64{}
	for _, u := range got.Tenants {
		tenants[u.Name] = [2]int64{u.InputTokens, u.OutputTokens}
	}
	if fmt.Sprint(tenants) != fmt.Sprint(want.tenantTokens) {
		t.Errorf("tenants %v, want %v", tenants, want.tenantTokens)
	}
}

func TestTraceAnalyzeOTLPFixture(t *testing.T) {
	want := expect(loadOTLPFixture(t))
	got := analyzeJSON(t, "--file", otlpFixture, "--prices", writePrices(t))
	checkReport(t, got, want)

	// Literal figures of the committed fixture (six requests: three of
	// tenant acme, two of globex, one without a tenant).
	if got.Requests != 6 || want.ops["queue"].count != 6 || want.ops["decode"].count != 6 {
		t.Errorf("fixture has %d requests", got.Requests)
	}
	wantTenants := []usageJSON{
		{Name: "(none)", Requests: 1, InputTokens: 4, OutputTokens: 4},
		{Name: "acme", Requests: 3, InputTokens: 84, OutputTokens: 19},
		{Name: "globex", Requests: 2, InputTokens: 22, OutputTokens: 13},
	}
	if got.Currency != "EUR" || len(got.Tenants) != len(wantTenants) {
		t.Fatalf("tenants %+v", got.Tenants)
	}
	for i, w := range wantTenants {
		g := got.Tenants[i]
		// Every request is for model tiny: 3 per million in, 7 out.
		cost := float64(w.InputTokens)*3/1e6 + float64(w.OutputTokens)*7/1e6
		if g.Name != w.Name || g.Requests != w.Requests || g.InputTokens != w.InputTokens || g.OutputTokens != w.OutputTokens || g.Cost == nil || !close12(*g.Cost, cost) {
			t.Errorf("tenant %+v (cost %v), want %+v (cost %v)", g, g.Cost, w, cost)
		}
	}
	if len(got.Models) != 1 || got.Models[0].Name != "tiny" || got.Models[0].InputTokens != 110 || got.Models[0].OutputTokens != 36 ||
		!close12(*got.Models[0].Cost, 110*3/1e6+36*7/1e6) {
		t.Errorf("models %+v", got.Models)
	}
	var names []string
	for _, o := range got.Operations {
		names = append(names, o.Name)
	}
	slices.Sort(names)
	wantNames := []string{"POST /generate", "POST /v1/chat/completions", "POST /v1/completions", "batch", "chat tiny", "decode",
		"lumen.v1.LumenService/Generate", "lumen.v1.LumenService/GenerateStream", "prefill", "queue", "text_completion tiny"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("operations %q, want %q", names, wantNames)
	}
	// The ranking is by time on critical paths: decode is on all six.
	var sum float64
	for i, b := range got.Bottlenecks {
		sum += b.Share
		if i > 0 && b.Time > got.Bottlenecks[i-1].Time {
			t.Errorf("bottlenecks not ranked: %+v", got.Bottlenecks)
		}
	}
	if !close12(sum, 1) {
		t.Errorf("bottleneck shares add up to %v", sum)
	}
}

func TestTraceAnalyzeJaegerFixture(t *testing.T) {
	want := expect(loadJaegerFixture(t))
	got := analyzeJSON(t, "--file", jaegerFixture)
	checkReport(t, got, want)
	// The same spans as the OTLP fixture: same traces, requests, tokens
	// and critical path, only times cut to microseconds.
	fromOTLP := expect(loadOTLPFixture(t))
	if want.slowestTrace != fromOTLP.slowestTrace || fmt.Sprint(want.tenantTokens) != fmt.Sprint(fromOTLP.tenantTokens) ||
		want.spans != fromOTLP.spans || want.batches != fromOTLP.batches {
		t.Errorf("Jaeger fixture differs from the OTLP one: %+v vs %+v", want, fromOTLP)
	}
	if got.Currency != "" || got.Tenants[0].Cost != nil {
		t.Errorf("cost without --prices: %+v", got.Tenants)
	}
	// --format jaeger reads it too; --format otlp does not.
	if _, _, err := runCLI(t, "trace", "analyze", "--file", jaegerFixture, "--format", "jaeger"); err != nil {
		t.Error(err)
	}
	if _, _, err := runCLI(t, "trace", "analyze", "--file", jaegerFixture, "--format", "otlp"); err == nil {
		t.Error("Jaeger JSON read as OTLP")
	}
}

func TestTraceAnalyzeText(t *testing.T) {
	want := expect(loadOTLPFixture(t))
	out, _, err := runCLI(t, "trace", "analyze", "--file", otlpFixture, "--trace-id", strings.ToUpper(callerTraceID))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		fmt.Sprintf("%d spans in %d traces: 6 requests, %d batch steps", want.spans, want.traces, want.batches),
		"Operations (durations: p50/p99 by nearest rank)",
		// The caller's traceparent trace: its root is /generate's span,
		// whose parent (the caller's span) is not in the file.
		"Critical path of trace " + callerTraceID + " (POST /generate, ",
		"POST /generate → text_completion tiny → queue → prefill → decode",
		"Bottlenecks: time on the critical paths of 6 request traces",
		"Phases over 6 requests",
		"linked batch spans, 6 requests:",
		"  acme           3     84      19",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	q := want.ops["queue"]
	row := fmt.Sprintf("queue %s %s %s %s %s", strconv.Itoa(q.count), fmtMs(q.mean), fmtMs(q.p50), fmtMs(q.p99), fmtMs(q.max))
	if !strings.Contains(strings.Join(strings.Fields(out), " "), row) {
		t.Errorf("output lacks the queue row %q:\n%s", row, out)
	}
}

func fmtMs(ns int64) string { return fmt.Sprintf("%.3fms", float64(ns)/1e6) }

func TestTraceAnalyzeHTML(t *testing.T) {
	want := expect(loadOTLPFixture(t))
	for _, tc := range []struct {
		name    string
		args    []string
		traceID string
	}{
		{"slowest trace", nil, want.slowestTrace},
		{"chosen trace", []string{"--trace-id", callerTraceID}, callerTraceID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "report.html")
			_, stderr, err := runCLI(t, append([]string{"trace", "analyze", "--file", otlpFixture, "--html", path}, tc.args...)...)
			if err != nil || !strings.Contains(stderr, "wrote "+path) {
				t.Fatalf("%v\n%s", err, stderr)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := html.Parse(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			var waterfall *html.Node
			var charts int
			visit(doc, func(n *html.Node) {
				if n.Type != html.ElementNode {
					return
				}
				if n.Data == "svg" && attrOf(n, "id") == "waterfall" {
					waterfall = n
				}
				if n.Data == "svg" && attrOf(n, "class") == "chart" {
					charts++
				}
				switch n.Data {
				case "script", "link", "img", "iframe", "object", "embed":
					t.Errorf("report has a <%s> element", n.Data)
				}
				for _, a := range n.Attr {
					if a.Key == "src" || a.Key == "href" || strings.HasSuffix(a.Key, "href") ||
						strings.Contains(a.Val, "http://") || strings.Contains(a.Val, "https://") {
						t.Errorf("<%s %s=%q> refers outside the report", n.Data, a.Key, a.Val)
					}
				}
			})
			if waterfall == nil || charts != 3 {
				t.Fatalf("waterfall %v, %d charts (want latency, tokens, rate)", waterfall != nil, charts)
			}
			bars := map[string]bool{}
			var nbars, links int
			visit(waterfall, func(n *html.Node) {
				cls := strings.Fields(attrOf(n, "class"))
				if slices.Contains(cls, "bar") {
					nbars++
				}
				if slices.Contains(cls, "batch-link") {
					links++
				}
				if id := attrOf(n, "data-span-id"); id != "" {
					bars[id] = true
				}
			})
			if nbars != want.traceSpans[tc.traceID] || len(bars) != nbars {
				t.Errorf("%d bars (%d distinct spans), want one per span of trace %s: %d", nbars, len(bars), tc.traceID, want.traceSpans[tc.traceID])
			}
			if links == 0 {
				t.Error("no batch steps marked on the request")
			}
		})
	}
}

func visit(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		visit(c, f)
	}
}

func attrOf(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// fakeJaeger serves the Jaeger fixture the way Jaeger's query API does:
// by trace id, and by service and time window (traces with a span that
// starts in it, at most limit of them). Trace "…500" fails with a 500.
type fakeJaeger struct {
	traces  map[string]json.RawMessage
	starts  map[string][]int64 // µs
	order   []string
	service string

	mu      sync.Mutex
	queries []string
}

func newFakeJaeger(t *testing.T) (*fakeJaeger, *httptest.Server) {
	t.Helper()
	b, err := os.ReadFile(jaegerFixture)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Data []json.RawMessage }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	f := &fakeJaeger{traces: map[string]json.RawMessage{}, starts: map[string][]int64{}, service: "lumen"}
	for _, raw := range doc.Data {
		var tr struct {
			TraceID string
			Spans   []struct{ StartTime int64 }
		}
		if err := json.Unmarshal(raw, &tr); err != nil {
			t.Fatal(err)
		}
		f.traces[tr.TraceID] = raw
		f.order = append(f.order, tr.TraceID)
		for _, s := range tr.Spans {
			f.starts[tr.TraceID] = append(f.starts[tr.TraceID], s.StartTime)
		}
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeJaeger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.RequestURI())
	f.mu.Unlock()
	reply := func(status int, body any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}
	type jerr struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/traces/"):
		id := strings.TrimPrefix(r.URL.Path, "/api/traces/")
		if strings.HasSuffix(id, "500") {
			reply(500, map[string]any{"data": nil, "errors": []jerr{{500, "storage backend unavailable"}}})
			return
		}
		raw, ok := f.traces[id]
		if !ok {
			reply(404, map[string]any{"data": nil, "errors": []jerr{{404, "trace not found"}}})
			return
		}
		reply(200, map[string]any{"data": []json.RawMessage{raw}})
	case r.URL.Path == "/api/traces":
		q := r.URL.Query()
		start, err1 := strconv.ParseInt(q.Get("start"), 10, 64)
		end, err2 := strconv.ParseInt(q.Get("end"), 10, 64)
		limit, err3 := strconv.Atoi(q.Get("limit"))
		if err := errors.Join(err1, err2, err3); err != nil || q.Get("service") == "" {
			reply(400, map[string]any{"data": nil, "errors": []jerr{{400, fmt.Sprint("bad query: ", err)}}})
			return
		}
		data := []json.RawMessage{}
		if q.Get("service") == f.service {
			for _, id := range f.order {
				if len(data) == limit {
					break
				}
				if slices.ContainsFunc(f.starts[id], func(s int64) bool { return s >= start && s <= end }) {
					data = append(data, f.traces[id])
				}
			}
		}
		reply(200, map[string]any{"data": data})
	default:
		http.NotFound(w, r)
	}
}

func TestTraceAnalyzeJaegerAPI(t *testing.T) {
	f, srv := newFakeJaeger(t)
	fixture := expect(loadJaegerFixture(t))
	var first, last int64 = math.MaxInt64, 0
	for _, s := range loadJaegerFixture(t) {
		first, last = min(first, s.start/1000), max(last, s.start/1000)
	}
	end := time.UnixMicro(last + 1).UTC().Format(time.RFC3339Nano)

	t.Run("by trace id", func(t *testing.T) {
		got := analyzeJSON(t, "--jaeger", srv.URL, "--trace-id", fixture.slowestTrace)
		if got.Requests != 1 || got.Spans != fixture.traceSpans[fixture.slowestTrace] || !slices.Equal(got.Selected.Chain, fixture.slowestChain) {
			t.Errorf("got %d requests, %d spans, path %q; want 1, %d, %q", got.Requests, got.Spans, got.Selected.Chain,
				fixture.traceSpans[fixture.slowestTrace], fixture.slowestChain)
		}
		// Batch spans are traces of their own: fetching a request's trace
		// does not bring them, so contention comes from attributes only.
		if got.Contention.LinkedRequests != 0 {
			t.Errorf("linked requests %d", got.Contention.LinkedRequests)
		}
	})

	t.Run("by service and window", func(t *testing.T) {
		f.mu.Lock()
		before := len(f.queries)
		f.mu.Unlock()
		got := analyzeJSON(t, "--jaeger", srv.URL, "--service", "lumen", "--end", end, "--since", "1h", "--limit", "100")
		checkReport(t, got, fixture)
		f.mu.Lock()
		q := f.queries[before]
		f.mu.Unlock()
		endMicros := last + 1
		// --limit counts request traces; batch traces come in the same
		// search, so the first page asks Jaeger for twice as many.
		wantQ := fmt.Sprintf("/api/traces?end=%d&limit=200&service=lumen&start=%d", endMicros, endMicros-time.Hour.Microseconds())
		if q != wantQ {
			t.Errorf("query %s, want %s", q, wantQ)
		}
	})

	t.Run("limit", func(t *testing.T) {
		got := analyzeJSON(t, "--jaeger", srv.URL, "--service", "lumen", "--end", end, "--limit", "3")
		if got.Requests != 3 || got.Traces < got.Requests {
			t.Errorf("%d requests in %d traces, want the limit, 3 requests (and the batch traces around them)", got.Requests, got.Traces)
		}
	})

	t.Run("settings from the environment", func(t *testing.T) {
		var out, errOut bytes.Buffer
		vars := map[string]string{"LUMEN_JAEGER": srv.URL, "LUMEN_TRACE_ID": fixture.slowestTrace}
		err := run(context.Background(), []string{"trace", "analyze", "--json"}, env{stdout: &out, stderr: &errOut, getenv: func(k string) string { return vars[k] }})
		if err != nil || !strings.Contains(out.String(), fixture.slowestTrace) {
			t.Errorf("LUMEN_JAEGER/LUMEN_TRACE_ID: %v %s", err, errOut.String())
		}
	})

	failures := []struct {
		name string
		args []string
		want string
		is   error
	}{
		{"unknown trace", []string{"--trace-id", "0123456789abcdef0123456789abcdef"}, "trace 0123456789abcdef0123456789abcdef: trace not found", traceanalyze.ErrTraceNotFound},
		{"server error", []string{"--trace-id", "abc500"}, "HTTP 500: 500 storage backend unavailable", nil},
		{"empty window", []string{"--service", "lumen", "--end", time.UnixMicro(first).Add(-2 * time.Hour).Format(time.RFC3339), "--since", "1h"}, `no traces of service "lumen"`, nil},
		{"unknown service", []string{"--service", "other", "--end", end}, `no traces of service "other"`, nil},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, append([]string{"trace", "analyze", "--jaeger", srv.URL}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || tc.is != nil && !errors.Is(err, tc.is) || exitCode(err) != 1 {
				t.Errorf("err = %v, want %q (exit 1)", err, tc.want)
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := lis.Addr().String()
		lis.Close()
		_, _, err = runCLI(t, "trace", "analyze", "--jaeger", "http://"+addr, "--trace-id", "1")
		if err == nil || !strings.Contains(err.Error(), "jaeger unreachable") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestTraceAnalyzeBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	usage := []struct {
		name string
		args []string
		want string
	}{
		{"no source", nil, "exactly one of --file and --jaeger"},
		{"two sources", []string{"--file", otlpFixture, "--jaeger", "http://x"}, "exactly one of --file and --jaeger"},
		{"jaeger without a query", []string{"--jaeger", "http://x"}, "needs --trace-id or --service"},
		{"both queries", []string{"--jaeger", "http://x", "--trace-id", "1", "--service", "s"}, "alternatives"},
		{"service with a file", []string{"--file", otlpFixture, "--service", "s"}, "need --jaeger"},
		{"bad format", []string{"--file", otlpFixture, "--format", "zipkin"}, `format "zipkin"`},
		{"bad trace id", []string{"--file", otlpFixture, "--trace-id", "xyz"}, "not hex"},
		{"zero limit", []string{"--jaeger", "http://x", "--service", "s", "--limit", "0"}, "must be positive"},
		{"bad end", []string{"--jaeger", "http://127.0.0.1:1", "--service", "s", "--end", "yesterday"}, "--end"},
		{"positional argument", []string{"--file", otlpFixture, "extra"}, "unexpected arguments"},
	}
	for _, tc := range usage {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, append([]string{"trace", "analyze"}, tc.args...)...)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a usage error with %q", err, tc.want)
			}
		})
	}
	failures := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--file", filepath.Join(dir, "none.json")}, "no such file"},
		{"empty file", []string{"--file", write("empty.json", "")}, "no spans"},
		{"truncated file", []string{"--file", write("cut.json", `{"resourceSpans":[{"scopeSpans":[`)}, "malformed JSON"},
		{"not traces", []string{"--file", write("other.json", `{"hello":"world"}`)}, "neither OTLP JSON"},
		{"binary", []string{"--file", write("bin.json", "\x00\xff\x10garbage")}, "malformed JSON"},
		{"trace not in file", []string{"--file", otlpFixture, "--trace-id", "0123456789abcdef0123456789abcdef"}, "trace not in the input"},
		{"bad prices", []string{"--file", otlpFixture, "--prices", write("p.yaml", "default: {input_per_million: -1, output_per_million: 1}")}, "want a finite price"},
		{"html to a missing directory", []string{"--file", otlpFixture, "--html", filepath.Join(dir, "no", "r.html")}, "html report"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, append([]string{"trace", "analyze"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, _, err := runCLI(t, "trace"); err == nil {
		t.Error("lumen trace without a subcommand succeeded")
	}
	if _, _, err := runCLI(t, "trace", "frobnicate"); err == nil || !strings.Contains(err.Error(), "unknown subcommand") {
		t.Errorf("unknown subcommand: %v", err)
	}
}

// TestTraceAnalyzeRealJaeger reads a request's trace back from a real
// Jaeger (bin/tools/jaeger, built by make tools) by id and by service
// search: the client needs nothing but the query API's base URL.
func TestTraceAnalyzeRealJaeger(t *testing.T) {
	otlp, queryURL := startJaeger(t)
	const service = "lumen-analyze"
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // export within 100ms of a span's end
	t.Setenv("OTEL_SERVICE_NAME", service)
	httpAddr, _ := startServeHooked(t, serveHooks{}, nil, "--otlp-endpoint", otlp, "--batch-span-rate", "0")

	const traceID = "0af7651916cd43dd8448eb211c80319c"
	req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/completions",
		strings.NewReader(`{"prompt":"Once upon a time","max_tokens":5,"temperature":0}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Tenant-ID", "acme")
	req.Header.Set("traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var reply struct {
		Usage struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	err = json.NewDecoder(resp.Body).Decode(&reply)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("completion: %d %v", resp.StatusCode, err)
	}
	onPath := []string{"POST /v1/completions", "text_completion tiny", "prepare", "tokenize", "queue", "prefill", "decode"}
	waitForJaegerTrace(t, queryURL, traceID, hasSpans(onPath...))

	got := analyzeJSON(t, "--jaeger", queryURL, "--trace-id", traceID)
	// Every span of the trace is on its critical path, the transport span
	// first and the phases in their order. Where the request span's and
	// prepare's own time first shows depends on Jaeger's microseconds
	// (the phases tile them exactly), so their places are not asserted.
	chain := got.Selected.Chain
	sorted, want := slices.Sorted(slices.Values(chain)), slices.Sorted(slices.Values(onPath))
	phases := slices.DeleteFunc(slices.Clone(chain), func(n string) bool { return n == "text_completion tiny" || n == "prepare" })
	if got.Requests != 1 || got.Selected.TraceID != traceID || !slices.Equal(sorted, want) ||
		!slices.Equal(phases, []string{"POST /v1/completions", "tokenize", "queue", "prefill", "decode"}) {
		t.Errorf("by id: %d requests, path %s %q; want 1, %s through %q, the transport first and then tokenize, queue, prefill, decode",
			got.Requests, got.Selected.TraceID, chain, traceID, onPath)
	}
	if len(got.Tenants) != 1 || got.Tenants[0].Name != "acme" || got.Tenants[0].InputTokens != reply.Usage.PromptTokens ||
		got.Tenants[0].OutputTokens != reply.Usage.CompletionTokens {
		t.Errorf("tenants %+v, reply usage %+v", got.Tenants, reply.Usage)
	}

	// The service search also brings the request's batch steps, which are
	// traces of their own, once Jaeger has them all.
	jc := &traceanalyze.JaegerClient{BaseURL: queryURL}
	pollUntil(t, 30*time.Second, func(ctx context.Context) error {
		spans, err := jc.Search(ctx, traceanalyze.JaegerQuery{Service: service, Start: time.Now().Add(-time.Hour), End: time.Now().Add(time.Minute), Limit: 100})
		if err != nil {
			return err
		}
		r, err := traceanalyze.Analyze(spans, traceanalyze.Options{})
		if err != nil {
			return err
		}
		if c := r.Contention; r.Requests != 1 || c.LinkedRequests != 1 || c.MeanSteps < float64(reply.Usage.CompletionTokens) {
			return fmt.Errorf("%d requests, contention %+v: want the request and at least one step per output token", r.Requests, c)
		}
		return nil
	})
}
