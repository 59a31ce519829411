package main

import (
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// bucketLine is one histogram bucket of the OpenMetrics exposition, with
// its exemplar when it has one:
// name_bucket{labels,le="0.1"} 3 # {trace_id="…",span_id="…"} 0.05 1.7e9
var bucketLine = regexp.MustCompile(`^(\w+)_bucket\{(.*)\} (\S+)(?: # \{(.*)\} (\S+)(?: \S+)?)?$`)

var labelPair = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

func labels(s string) map[string]string {
	m := map[string]string{}
	for _, p := range labelPair.FindAllStringSubmatch(s, -1) {
		m[p[1]] = p[2]
	}
	return m
}

func TestMetricsEndpointExemplarsNameRecordedTraces(t *testing.T) {
	log := newSpanLog()
	httpAddr, _ := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log}}, nil)
	for _, tenant := range []string{"acme", "globex", "acme"} {
		resp := do(t, http.MethodPost, "http://"+httpAddr+"/generate", `{"prompt":"Hello","max_tokens":6}`,
			map[string]string{"Content-Type": "application/json", "X-Tenant-ID": tenant})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// The metrics are recorded as each request span ends.
	spans := log.waitFor(t, "three request spans", func(spans []sdktrace.ReadOnlySpan) bool {
		n := 0
		for _, s := range spans {
			if s.Name() == "text_completion tiny" {
				n++
			}
		}
		return n == 3
	})
	traces := map[string]bool{}
	for _, s := range spans {
		if s.Name() == "text_completion tiny" {
			traces[s.SpanContext().TraceID().String()] = true
		}
	}

	req, err := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("Content-Type %q, want OpenMetrics (exemplars need it)", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	wantBuckets := map[string][]float64{
		"gen_ai_server_request_duration_seconds":      {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92},
		"gen_ai_server_time_to_first_token_seconds":   {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0},
		"gen_ai_server_time_per_output_token_seconds": {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5},
	}
	bounds := map[string]map[string][]float64{} // metric → tenant → le
	exemplars := map[string]int{}
	tokens := map[string]bool{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, "gen_ai_server_tokens_total{") {
			l := labels(line)
			tokens[l["tenant"]+"/"+l["gen_ai_token_type"]] = true
		}
		m := bucketLine.FindStringSubmatch(line)
		if m == nil || wantBuckets[m[1]] == nil {
			continue
		}
		l := labels(m[2])
		if l["le"] != "+Inf" {
			le, err := strconv.ParseFloat(l["le"], 64)
			if err != nil {
				t.Fatalf("bad le in %q", line)
			}
			if bounds[m[1]] == nil {
				bounds[m[1]] = map[string][]float64{}
			}
			bounds[m[1]][l["tenant"]] = append(bounds[m[1]][l["tenant"]], le)
		}
		if m[4] != "" {
			ex := labels(m[4])
			if !traces[ex["trace_id"]] {
				t.Errorf("exemplar %q names trace %q, not one of the requests' traces", line, ex["trace_id"])
			}
			exemplars[m[1]]++
		}
	}
	for name, want := range wantBuckets {
		for _, tenant := range []string{"acme", "globex"} {
			if got := bounds[name][tenant]; !slices.Equal(got, want) {
				t.Errorf("%s{tenant=%q} buckets %v, want %v", name, tenant, got, want)
			}
		}
		if exemplars[name] == 0 {
			t.Errorf("%s has no exemplars", name)
		}
	}
	for _, k := range []string{"acme/input", "acme/output", "globex/input", "globex/output"} {
		if !tokens[k] {
			t.Errorf("no gen_ai_server_tokens_total series for tenant/type %s (have %v)", k, tokens)
		}
	}
}

// Tenants are chosen by clients, so their ids are checked and their label
// values bounded: with --max-tenants 3, ten tenants make four label values
// (three of their own and "(other)"), and an over-long or odd id is a 400
// that records nothing.
func TestMetricsTenantLabelsAreBounded(t *testing.T) {
	log := newSpanLog()
	httpAddr, _ := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log}}, nil, "--max-tenants", "3")
	post := func(tenant string) int {
		t.Helper()
		return do(t, http.MethodPost, "http://"+httpAddr+"/generate", `{"prompt":"Hello","max_tokens":2}`,
			map[string]string{"Content-Type": "application/json", "X-Tenant-ID": tenant}).StatusCode
	}
	for _, bad := range []string{strings.Repeat("a", 65), "acme corp", "x\u00e9"} {
		if got := post(bad); got != http.StatusBadRequest {
			t.Errorf("tenant %q: status %d, want 400", bad, got)
		}
	}
	for i := range 10 {
		if got := post("tenant-" + strconv.Itoa(i)); got != http.StatusOK {
			t.Fatalf("tenant-%d: status %d", i, got)
		}
	}
	log.waitFor(t, "ten request spans", func(spans []sdktrace.ReadOnlySpan) bool {
		n := 0
		for _, s := range spans {
			if s.Name() == "text_completion tiny" {
				n++
			}
		}
		return n == 10
	})
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if !strings.HasPrefix(line, "lumen_requests_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		seen[labels(line)["tenant"]] += v
	}
	want := map[string]float64{"tenant-0": 1, "tenant-1": 1, "tenant-2": 1, "(other)": 7}
	if !maps.Equal(seen, want) {
		t.Errorf("lumen_requests_total by tenant %v, want %v", seen, want)
	}
}
