package stacktest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// lumenServer is a running `lumen serve` child process.
type lumenServer struct {
	httpAddr string
	model    string // the model id clients name
}

// lockedBuffer collects a child's output while tests may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) writeLine(p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	b.buf.WriteByte('\n')
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// containerEnv is the environment `lumen serve` gets in the compose
// stack: the image's ENV, then the compose service's environment, with
// container paths mapped through the service's mounts to files here.
func containerEnv(t testing.TB) map[string]string {
	t.Helper()
	envs := parseDockerfile(t).env(t)
	s := service(t, loadCompose(t, nil), "lumen")
	for k, v := range s.Environment {
		if v != nil {
			envs[k] = *v
		}
	}
	envs["LUMEN_SAMPLING_CONFIG"] = hostPathIn(t, s, envs["LUMEN_SAMPLING_CONFIG"])
	return envs
}

// startLumen runs the binary as the image does (`lumen serve`, configured
// by environment) on a generated tiny model, with its traces sent to
// otlpEndpoint. It returns once the server logs that it is serving; the
// server is stopped with SIGTERM when the test ends.
func startLumen(t *testing.T, otlpEndpoint string) *lumenServer {
	t.Helper()
	bin := lumenBinary(t)
	dir := t.TempDir()
	modelPath := filepath.Join(dir, "tiny.gguf")
	if out, err := exec.Command(bin, "model", "synth", "--preset", "tiny", "--out", modelPath).CombinedOutput(); err != nil {
		t.Fatalf("lumen model synth: %v\n%s", err, out)
	}

	envs := containerEnv(t)
	for k, v := range map[string]string{
		// Ephemeral ports: the server logs the ones it bound.
		"LUMEN_HTTP_ADDR":     "127.0.0.1:0",
		"LUMEN_GRPC_ADDR":     "127.0.0.1:0",
		"LUMEN_LOG_FORMAT":    "json",
		"LUMEN_MODEL":         modelPath,
		"LUMEN_CACHE_DIR":     filepath.Join(dir, "cache"),
		"LUMEN_OTLP_ENDPOINT": otlpEndpoint,
		"LUMEN_THREADS":       "1",
		"LUMEN_PARALLEL":      "2",
		"LUMEN_CTX_SIZE":      "1024",
		// Export finished spans at once rather than every 5s.
		"OTEL_BSP_SCHEDULE_DELAY": "100",
		"HOME":                    dir,
	} {
		envs[k] = v
	}
	var kv []string
	for k, v := range envs {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)

	cmd := exec.Command(bin, "serve")
	cmd.Env = kv
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	type logLine struct {
		Msg  string `json:"msg"`
		HTTP string `json:"http"`
	}
	var logs lockedBuffer // all of stderr, for failure messages
	listening := make(chan string, 1)
	serving := make(chan struct{})
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		servingSeen := false
		for sc.Scan() {
			logs.writeLine(sc.Bytes())
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			switch {
			case l.Msg == "listening" && l.HTTP != "":
				listening <- l.HTTP
			case l.Msg == "serving" && !servingSeen:
				servingSeen = true
				close(serving)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		exited <- cmd.Wait()
	}()
	stopped := false
	t.Cleanup(func() {
		if stopped {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("lumen serve exited with %v after SIGTERM\n%s", err, logs.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("lumen serve ignored SIGTERM for 30s\n%s", logs.String())
		}
	})

	srv := &lumenServer{model: "tiny"}
	deadline := time.After(2 * time.Minute)
	for srv.httpAddr == "" {
		select {
		case srv.httpAddr = <-listening:
		case err := <-exited:
			stopped = true
			t.Fatalf("lumen serve exited before listening: %v\n%s", err, logs.String())
		case <-deadline:
			t.Fatalf("lumen serve did not listen within 2m\n%s", logs.String())
		}
	}
	select {
	case <-serving:
	case err := <-exited:
		stopped = true
		t.Fatalf("lumen serve exited before serving: %v\n%s", err, logs.String())
	case <-deadline:
		t.Fatalf("lumen serve did not serve within 2m\n%s", logs.String())
	}
	return srv
}

// completion is POST /v1/completions with the tenant header and, when
// traceparent is set, a caller's trace to continue. It returns the
// reply's traceparent header.
func (s *lumenServer) completion(t testing.TB, tenant, traceparent string) string {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"prompt":"Once upon a time","max_tokens":8,"temperature":0,"seed":7}`, s.model)
	req, err := http.NewRequest(http.MethodPost, "http://"+s.httpAddr+"/v1/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Tenant-ID", tenant)
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/completions: %s: %s", resp.Status, data)
	}
	var reply struct {
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		t.Fatalf("completion reply %s: %v", data, err)
	}
	// Two tokens or more, so time-per-output-token has an observation.
	if reply.Usage.CompletionTokens < 2 {
		t.Fatalf("completion produced %d tokens, want at least 2: %s", reply.Usage.CompletionTokens, data)
	}
	return resp.Header.Get("traceparent")
}

// scrape reads /metrics in the classic text format.
func (s *lumenServer) scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	body := s.get(t, "/metrics", "text/plain;version=0.0.4")
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return families
}

func (s *lumenServer) get(t testing.TB, path, accept string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.httpAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	return data
}

// family maps a selected series name to its metric family: histogram
// series (_bucket, _sum, _count) belong to the histogram's family.
func family(families map[string]*dto.MetricFamily, name string) (*dto.MetricFamily, bool) {
	if f, ok := families[name]; ok {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := families[base]; ok && f.GetType() == dto.MetricType_HISTOGRAM {
			return f, true
		}
	}
	return nil, false
}

// labelNames are the label names a selected series may carry.
func labelNames(f *dto.MetricFamily, series string) map[string]bool {
	out := map[string]bool{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			out[l.GetName()] = true
		}
	}
	if strings.HasSuffix(series, "_bucket") {
		out["le"] = true
	}
	return out
}

func TestLumenExportsTheDashboardMetrics(t *testing.T) {
	queries := dashboardSelections(t)
	srv := startLumen(t, "http://"+startSink(t).addr)
	traceparent := srv.completion(t, "tenant-a", "")
	families := srv.scrape(t)

	for _, q := range queries {
		for name := range q.metrics {
			f, ok := family(families, name)
			if !ok {
				if !slices.Contains(gpuMetrics, name) {
					t.Errorf("%s: lumen does not export %s", q.where, name)
				}
				continue
			}
			if len(f.GetMetric()) == 0 {
				t.Errorf("%s: %s has no series", q.where, name)
			}
		}
		// Labels the query matches on or groups by exist on its metrics.
		for label, metrics := range q.labels {
			known := false
			for _, name := range metrics {
				f, ok := family(families, name)
				if !ok {
					known = known || slices.Contains(gpuMetrics, name) // checked where a GPU exports them
					continue
				}
				known = known || labelNames(f, name)[label]
			}
			if !known {
				t.Errorf("%s: label %q is on none of %v", q.where, label, metrics)
			}
		}
	}

	// The tenant header reaches the per-tenant token counts.
	tenants := map[string]bool{}
	if f := families["gen_ai_server_tokens_total"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" {
					tenants[l.GetValue()] = true
				}
			}
		}
	}
	if !tenants["tenant-a"] {
		t.Errorf("gen_ai_server_tokens_total tenants %v, want tenant-a", tenants)
	}

	// Exemplars carry the label Grafana links to Jaeger with, holding the
	// trace id the reply named.
	traceID := traceIDOf(t, traceparent)
	want := exemplarLabel(t)
	found := false
	body := srv.get(t, "/metrics", "application/openmetrics-text;version=1.0.0")
	p := textparse.NewOpenMetricsParser(body, labels.NewSymbolTable())
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("OpenMetrics /metrics: %v", err)
		}
		if entry != textparse.EntrySeries {
			continue
		}
		var lset labels.Labels
		p.Labels(&lset)
		if lset.Get(labels.MetricName) != "gen_ai_server_request_duration_seconds_bucket" {
			continue
		}
		var e exemplar.Exemplar
		for p.Exemplar(&e) {
			if e.Labels.Get(want) == traceID {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no gen_ai_server_request_duration_seconds exemplar with %s=%s", want, traceID)
	}
}

// traceIDOf is the trace id of a W3C traceparent header.
func traceIDOf(t testing.TB, traceparent string) string {
	t.Helper()
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		t.Fatalf("traceparent %q is not version-traceid-spanid-flags", traceparent)
	}
	return parts[1]
}

// The compose healthcheck command, run here against the real server.
func TestHealthcheckAgainstLumen(t *testing.T) {
	hc := service(t, loadCompose(t, nil), "lumen").HealthCheck
	if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
		t.Fatalf("lumen healthcheck %+v: want exec form", hc)
	}
	const inContainer = "127.0.0.1/8080"
	script := strings.Join(hc.Test[1:], "\x00")
	if !strings.Contains(script, inContainer) {
		t.Fatalf("healthcheck %q does not address %s", hc.Test, inContainer)
	}
	run := func(addr string) error {
		argv := strings.Split(strings.ReplaceAll(script, inContainer, strings.Replace(addr, ":", "/", 1)), "\x00")
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}

	srv := startLumen(t, "http://"+startSink(t).addr)
	if err := run(srv.httpAddr); err != nil {
		t.Errorf("healthcheck against a serving lumen: %v", err)
	}
	// And it can fail: nothing listens on port 1.
	if err := run("127.0.0.1:1"); err == nil {
		t.Error("healthcheck passed with no server")
	}
}
