package liveview

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/scheduler"
)

// serveRig puts the rig's handler on a real server at 127.0.0.1:0.
func serveRig(t *testing.T, r *rig) string {
	t.Helper()
	srv := httptest.NewServer(r.view.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, url, key string) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodGet, url, key)
}

func do(t *testing.T, method, url, key string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// keysOf lists a JSON object's keys, sorted.
func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestAPIShapes(t *testing.T) {
	r := newRig(t, Config{Stats: func() scheduler.Stats { return scheduler.Stats{Queued: 1, KVUsed: 10, KVSize: 100} }})
	ctx, transport := r.start(reqSpec{tenant: "acme", prepare: true})
	r.step(ctx)
	sc := trace.SpanContextFromContext(ctx)
	r.finish(ctx, transport, reqSpec{out: 4})
	r.view.sample(r.clock.Advance(time.Second))
	base := serveRig(t, r)

	t.Run("trace list", func(t *testing.T) {
		resp, b := get(t, base+"/live/api/traces", "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		raw := decode[struct {
			Traces []map[string]any `json:"traces"`
		}](t, b).Traces
		if len(raw) != 1 {
			t.Fatalf("traces = %s", b)
		}
		want := []string{"batchStepCount", "durationMs", "finishReason", "inputTokens", "model", "name", "operation",
			"outputTokens", "requests", "spanCount", "startUs", "status", "tenant", "traceId", "ttftMs"}
		if got := keysOf(raw[0]); !slices.Equal(got, want) {
			t.Errorf("summary keys = %q, want %q", got, want)
		}
		list := decode[TraceList](t, b)
		s := list.Traces[0]
		if !list.Tracing || s.TraceID != sc.TraceID().String() || s.Tenant != "acme" || s.Status != StatusOK || s.BatchStepCount != 1 {
			t.Errorf("list = %+v", list)
		}
	})

	t.Run("trace detail", func(t *testing.T) {
		resp, b := get(t, base+"/live/api/traces/"+sc.TraceID().String(), "")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		raw := decode[map[string]any](t, b)
		for _, k := range []string{"traceId", "spans", "batchSteps", "droppedSpans", "droppedBatchSteps", "status", "ttftMs"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("detail lacks %q: %s", k, b)
			}
		}
		d := decode[TraceDetail](t, b)
		roles := map[string]SpanJSON{}
		for _, s := range d.Spans {
			roles[s.Role] = s
		}
		for _, role := range []string{RoleTransport, RoleRequest, RolePrepare, RoleQueue, RolePrefill, RoleDecode} {
			if _, ok := roles[role]; !ok {
				t.Errorf("no %s span in %s", role, b)
			}
		}
		req := roles[RoleRequest]
		if roles[RoleQueue].ParentSpanID != req.SpanID || req.ParentSpanID != roles[RoleTransport].SpanID {
			t.Errorf("parents: queue→%s request→%s; want request %s, transport %s",
				roles[RoleQueue].ParentSpanID, req.ParentSpanID, req.SpanID, roles[RoleTransport].SpanID)
		}
		if req.Attributes["gen_ai.usage.output_tokens"] != 4.0 || req.Attributes["tenant.id"] != "acme" {
			t.Errorf("request attributes = %v", req.Attributes)
		}
		var chunks int
		for _, e := range roles[RolePrefill].Events {
			if e.Name == "chunk" && e.Attributes["lumen.chunk.tokens"] == 4.0 {
				chunks++
			}
		}
		if chunks != 2 {
			t.Errorf("prefill events = %+v, want two chunks of 4 tokens", roles[RolePrefill].Events)
		}
		if len(d.BatchSteps) != 1 || d.BatchSteps[0].RequestSpanID != req.SpanID || d.BatchSteps[0].Size != 1 {
			t.Errorf("batch steps = %+v", d.BatchSteps)
		}
		if !slices.IsSortedFunc(d.Spans, func(a, b SpanJSON) int { return int(a.StartUs - b.StartUs) }) {
			t.Error("spans not ordered by start")
		}
	})

	t.Run("series", func(t *testing.T) {
		resp, b := get(t, base+"/live/api/series", "")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		raw := decode[struct {
			IntervalMs int64            `json:"intervalMs"`
			Samples    []map[string]any `json:"samples"`
		}](t, b)
		if raw.IntervalMs != 1000 || len(raw.Samples) != 1 {
			t.Fatalf("series = %s", b)
		}
		want := []string{"activeSequences", "batchSize", "kvSizeCells", "kvUsedCells", "kvUsedRatio", "outputTokensPerSec",
			"queueDepth", "requestsPerSec", "t", "ttftP50Ms"}
		if got := keysOf(raw.Samples[0]); !slices.Equal(got, want) {
			t.Errorf("sample keys = %q, want %q", got, want)
		}
		if s := raw.Samples[0]; s["requestsPerSec"] != 1.0 || s["kvUsedRatio"] != 0.1 || s["batchSize"] != 1.0 {
			t.Errorf("sample = %v", s)
		}
		ts := int64(raw.Samples[0]["t"].(float64))
		_, b = get(t, base+"/live/api/series?since="+itoa(ts), "")
		if got := decode[SeriesResponse](t, b); len(got.Samples) != 0 {
			t.Errorf("since the last sample: %s, want none", b)
		}
	})

	t.Run("status", func(t *testing.T) {
		_, b := get(t, base+"/live/api/status", "")
		if got := decode[Status](t, b); got != (Status{Tracing: true, IntervalMs: 1000, MaxTraces: DefaultMaxTraces, History: DefaultHistory}) {
			t.Errorf("status = %+v", got)
		}
		r.view.SetTracing(false)
		defer r.view.SetTracing(true)
		_, b = get(t, base+"/live/api/status", "")
		if decode[Status](t, b).Tracing {
			t.Errorf("status after SetTracing(false) = %s", b)
		}
	})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestAPIErrors(t *testing.T) {
	r := newRig(t, Config{})
	base := serveRig(t, r)
	tests := []struct {
		method, path string
		status       int
		message      string
	}{
		{"GET", "/live/api/traces/0123456789abcdef0123456789abcdef", 404, "no such trace"},
		{"GET", "/live/api/traces/nothex", 400, "malformed trace id"},
		{"GET", "/live/api/traces/00000000000000000000000000000000", 400, "malformed trace id"},
		{"GET", "/live/api/traces?limit=0", 400, "limit"},
		{"GET", "/live/api/series?since=yesterday", 400, "since"},
		{"GET", "/live/api/nothing", 404, "no such live view route"},
		{"POST", "/live/api/traces", 405, "method not allowed"},
		{"DELETE", "/live/api/series", 405, "method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, b := do(t, tt.method, base+tt.path, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			body := decode[errorBody](t, b)
			if !strings.Contains(body.Error.Message, tt.message) {
				t.Errorf("message %q, want it to contain %q", body.Error.Message, tt.message)
			}
			if tt.status == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}
}

func TestAPIAuth(t *testing.T) {
	r := newRig(t, Config{Keys: auth.NewKeys("sesame")})
	id := r.request(reqSpec{out: 1}).TraceID()
	base := serveRig(t, r)
	guarded := []string{"/live/api/traces", "/live/api/traces/" + id.String(), "/live/api/series"}
	open := []string{"/", "/live/static/app.js", "/live/static/app.css", "/live/api/status"}
	for _, p := range guarded {
		for _, c := range []struct {
			key    string
			status int
		}{{"", 401}, {"wrong", 401}, {"sesame", 200}} {
			resp, b := get(t, base+p, c.key)
			if resp.StatusCode != c.status {
				t.Errorf("GET %s with key %q: status %d, want %d: %s", p, c.key, resp.StatusCode, c.status, b)
			}
			if c.status == 401 && (resp.Header.Get("WWW-Authenticate") == "" || !strings.Contains(string(b), auth.ErrUnauthenticated.Error())) {
				t.Errorf("GET %s: 401 without a challenge or a clear message: %s", p, b)
			}
		}
	}
	for _, p := range open {
		if resp, b := get(t, base+p, ""); resp.StatusCode != 200 {
			t.Errorf("GET %s without a key: status %d, want 200: %s", p, resp.StatusCode, b)
		}
	}
	_, b := get(t, base+"/live/api/status", "")
	if !decode[Status](t, b).AuthRequired {
		t.Errorf("status %s does not say a key is required", b)
	}
}

func TestPageAndAssets(t *testing.T) {
	r := newRig(t, Config{})
	base := serveRig(t, r)
	resp, b := get(t, base+"/", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP = %q: want everything from the server itself, nothing unsafe", csp)
	}
	for _, want := range []string{`src="live/static/app.js"`, `href="live/static/app.css"`, `id="traces"`, `id="waterfall"`, `data-series="kvUsedRatio"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if resp, _ := get(t, base+"/live/static/app.js", ""); !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
		t.Errorf("app.js served as %q", resp.Header.Get("Content-Type"))
	}
	// Users may be offline: no asset may load anything from elsewhere.
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(staticFiles, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFiles.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range external.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" { // the SVG namespace name, never fetched
				t.Errorf("%s refers to %s", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
