package k8stest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/types"
	fwkdl "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/interface/datalayer"
	sourcemetrics "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/datalayer/source/metrics"
)

// lockedBuffer collects a child's output for failure messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freePort is a loopback TCP port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().(*net.TCPAddr).Port
}

// startLumen runs `lumen serve` on the committed tiny model with one slot
// (so a second request waits) and the vLLM names, and returns its HTTP
// address once /readyz says ready. It is stopped with SIGTERM at the end.
func startLumen(t *testing.T) string {
	t.Helper()
	bin := lumenBinary(t)
	model := filepath.Join(repoRoot(t), "testdata", "models", "llama-2-tiny-random.gguf")
	httpAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	grpcAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(bin, "serve", "--model", model, "--metrics-compat", "vllm",
		"--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--threads", "1",
		"--parallel", "1", "--ctx-size", "4096", "--drain-timeout", "5s")
	// The caller's LUMEN_* and OTEL_* settings would change the server.
	dir := t.TempDir()
	cmd.Env = []string{"HOME=" + dir, "LUMEN_CACHE_DIR=" + filepath.Join(dir, "cache")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LUMEN_") && !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("lumen serve ignored SIGTERM for 30s\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("lumen serve exited: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := http.Get("http://" + httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return httpAddr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("lumen serve not ready within 2m\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pickerView is what the picker knows of a pod after one scrape: the
// metrics its extractor stored, the scraped families, and the extractor's
// error (a metric its mapping names that the pod lacks).
type pickerView struct {
	metrics    *fwkdl.Metrics
	families   sourcemetrics.PrometheusMetricMap
	extractErr error
}

// scrape is one poll of ep by the picker's data source and extractor.
func (p *endpointPicker) scrape(t *testing.T, ep fwkdl.Endpoint) pickerView {
	t.Helper()
	ctx := context.Background()
	data, err := p.source.Poll(ctx, ep)
	if err != nil {
		t.Fatalf("picker scrape: %v", err)
	}
	fams, ok := data.(sourcemetrics.PrometheusMetricMap)
	if !ok {
		t.Fatalf("picker scrape gave %T", data)
	}
	before := ep.GetMetrics().UpdateTime
	err = p.extractor.Extract(ctx, data, ep)
	m := ep.GetMetrics()
	if !m.UpdateTime.After(before) {
		t.Fatalf("the extractor stored nothing (error %v)", err)
	}
	return pickerView{metrics: m, families: fams, extractErr: err}
}

// gauge is the value of a gauge without labels (0 if absent).
func gauge(fams sourcemetrics.PrometheusMetricMap, name string) float64 {
	f, ok := fams[name]
	if !ok || f.GetType() != dto.MetricType_GAUGE || len(f.GetMetric()) != 1 {
		return 0
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

// waitFor scrapes ep until cond holds, failing after a minute.
func (p *endpointPicker) waitFor(t *testing.T, ep fwkdl.Endpoint, what string, cond func(pickerView) bool) pickerView {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		v := p.scrape(t, ep)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never seen; last the picker read %+v (extract error %v)", what, v.metrics, v.extractErr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// completion posts a completion of maxTokens tokens (no early stop) and
// returns the response once its headers are in; the caller reads or
// closes the body.
func completion(ctx context.Context, httpAddr string, maxTokens int, stream bool) (*http.Response, error) {
	body := fmt.Sprintf(`{"prompt":"Once upon a time","max_tokens":%d,"ignore_eos":true,"stream":%v}`, maxTokens, stream)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/v1/completions", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err == nil && resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("completion: %s: %s", resp.Status, b)
	}
	return resp, err
}

// TestPickerScrapesLumen runs the endpoint picker's own metrics data
// source and core-metrics-extractor, as deploy/epp/endpointpicker.yaml
// configures them, against a real lumen serve: at rest, while one long
// request runs and a second waits for the only slot, and at rest again.
// The pod's labels are those the chart gives its pods, so the "lumen"
// engine mapping (Lumen's own metric names) is the one used; a pod without
// the engine label gets the default vLLM mapping, read from
// --metrics-compat vllm.
func TestPickerScrapesLumen(t *testing.T) {
	p, err := loadPicker(t, eppConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	podLabels := render(t, "").Deployment.Spec.Template.Labels
	if podLabels[engineKey] != "lumen" {
		t.Fatalf("chart pod labels %v lack %s: lumen", podLabels, engineKey)
	}
	httpAddr := startLumen(t)
	host, port, _ := net.SplitHostPort(httpAddr)
	endpoint := func(name string, labels map[string]string) fwkdl.Endpoint {
		// As the picker's datastore builds it from a pod: its IP, the
		// pool's target port (also the metrics port), the pod's labels.
		return fwkdl.NewEndpoint(&fwkdl.EndpointMetadata{
			NamespacedName: types.NamespacedName{Namespace: namespace, Name: name},
			PodName:        name, Address: host, Port: port, MetricsHost: httpAddr,
			Labels: labels,
		}, nil)
	}
	lumenPod := endpoint("lumen-0", podLabels)
	stockLabels := maps.Clone(podLabels)
	delete(stockLabels, engineKey)
	stockPod := endpoint("stock-0", stockLabels)

	// The vLLM mapping also wants LoRA and cache info, which Lumen has
	// not; the three gauges are read all the same.
	checkStock := func(t *testing.T, want *fwkdl.Metrics) {
		t.Helper()
		v := p.scrape(t, stockPod)
		if v.extractErr == nil {
			t.Error("vLLM mapping: no error, but Lumen has no vllm:lora_requests_info or vllm:cache_config_info")
		} else {
			msg := v.extractErr.Error()
			for _, name := range []string{"vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc"} {
				if strings.Contains(msg, name) {
					t.Errorf("vLLM mapping: %s missing: %v", name, v.extractErr)
				}
			}
			if !strings.Contains(msg, "vllm:lora_requests_info") || !strings.Contains(msg, "vllm:cache_config_info") {
				t.Errorf("vLLM mapping error %q, want only the LoRA and cache info families missing", msg)
			}
		}
		if v.metrics.WaitingQueueSize != want.WaitingQueueSize || v.metrics.RunningRequestsSize != want.RunningRequestsSize ||
			(v.metrics.KVCacheUsagePercent > 0) != (want.KVCacheUsagePercent > 0) {
			t.Errorf("vLLM mapping read %+v, Lumen mapping %+v", v.metrics, want)
		}
	}

	// At rest.
	rest := p.scrape(t, lumenPod)
	if rest.extractErr != nil {
		t.Fatalf("Lumen mapping: %v (every metric it names must be on /metrics)", rest.extractErr)
	}
	if m := rest.metrics; m.WaitingQueueSize != 0 || m.RunningRequestsSize != 0 || m.KVCacheUsagePercent != 0 {
		t.Fatalf("at rest the picker reads %+v, want all 0", m)
	}
	checkStock(t, rest.metrics)

	// One long request holds the only slot...
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	respA, err := completion(ctxA, httpAddr, 4000, true)
	if err != nil {
		t.Fatal(err)
	}
	defer respA.Body.Close()
	p.waitFor(t, lumenPod, "the long request running", func(v pickerView) bool {
		return v.metrics.RunningRequestsSize == 1 && v.metrics.KVCacheUsagePercent > 0
	})
	// ... and a second one waits for it.
	doneB := make(chan error, 1)
	go func() {
		resp, err := completion(context.Background(), httpAddr, 8, false)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		doneB <- err
	}()
	busy := p.waitFor(t, lumenPod, "one running, one waiting", func(v pickerView) bool {
		return v.metrics.WaitingQueueSize == 1 && v.metrics.RunningRequestsSize == 1
	})
	if busy.extractErr != nil {
		t.Errorf("Lumen mapping: %v", busy.extractErr)
	}
	t.Logf("busy: waiting %d, running %d, KV usage %.4f", busy.metrics.WaitingQueueSize, busy.metrics.RunningRequestsSize, busy.metrics.KVCacheUsagePercent)
	// The usage the picker reads is that of running sequences: used
	// cells less those kept only for prefix reuse, over all cells.
	f := busy.families
	want := (gauge(f, "lumen_kv_cache_used_cells") - gauge(f, "lumen_kv_cache_cached_cells")) / gauge(f, "lumen_kv_cache_size_cells")
	if got := busy.metrics.KVCacheUsagePercent; got <= 0 || got > 1 || got != want {
		t.Errorf("busy: KV usage %v, want (used - cached) / size = %v", got, want)
	}
	checkStock(t, busy.metrics)

	// Cancel the long one: the waiting one runs, finishes, and leaves its
	// cells for prefix reuse, which count as free.
	cancelA()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	after := p.waitFor(t, lumenPod, "at rest after the requests", func(v pickerView) bool {
		return v.metrics.RunningRequestsSize == 0 && v.metrics.WaitingQueueSize == 0
	})
	if after.metrics.KVCacheUsagePercent != 0 {
		t.Errorf("after the requests: KV usage %v, want 0", after.metrics.KVCacheUsagePercent)
	}
	if used := gauge(after.families, "lumen_kv_cache_used_cells"); used <= 0 {
		t.Errorf("after the requests: %v cells in use, want the finished request's kept for prefix reuse", used)
	}
	t.Logf("after: waiting %d, running %d, KV usage %v with %v cells kept", after.metrics.WaitingQueueSize, after.metrics.RunningRequestsSize,
		after.metrics.KVCacheUsagePercent, gauge(after.families, "lumen_kv_cache_used_cells"))
	checkStock(t, after.metrics)
}
