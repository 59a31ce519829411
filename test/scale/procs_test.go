//go:build scale

package scale

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lumenllm/lumen/test/internal/bintest"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// modelName is the id the replicas serve the committed model under.
const modelName = "tiny"

const (
	startTimeout = time.Minute // a replica's start, or HAProxy seeing all of them up
	stopTimeout  = 10 * time.Second
	pollInterval = 25 * time.Millisecond
	logTail      = 64 << 10 // bytes of a child's output kept for failure messages
)

// deps are the binaries and the model the tests run.
type deps struct {
	lumen, haproxy, model string
}

// readDeps finds what the tests need, failing (never skipping) with how
// to get it: `make scale-test` builds bin/lumen and installs haproxy.
func readDeps(t *testing.T) deps {
	t.Helper()
	var d deps
	if d.lumen = os.Getenv("LUMEN_BIN"); d.lumen == "" {
		t.Fatal("LUMEN_BIN is not set: run `make scale-test`, which builds bin/lumen and passes its path")
	}
	if _, err := os.Stat(d.lumen); err != nil {
		t.Fatalf("LUMEN_BIN: %v: run `make scale-test`, which builds bin/lumen", err)
	}
	var err error
	if d.haproxy, err = exec.LookPath("haproxy"); err != nil {
		t.Fatalf("haproxy is not on PATH (%v): run `make scale-test`, which installs Debian's haproxy package", err)
	}
	dir := os.Getenv("LUMEN_TEST_MODELS")
	if dir == "" {
		t.Fatal("LUMEN_TEST_MODELS is not set: run `make scale-test`, which points it at testdata/models")
	}
	d.model = filepath.Join(dir, "llama-2-tiny-random.gguf")
	if _, err := os.Stat(d.model); err != nil {
		t.Fatalf("the committed test model: %v", err)
	}
	return d
}

// proc is a child process whose output is kept (its tail) and whose end
// is awaited once, by a goroutine of its own.
type proc struct {
	name   string
	cmd    *exec.Cmd
	logs   *bintest.TailBuffer
	exited chan struct{} // closed when the process has ended
	err    error         // cmd.Wait's result, once exited is closed
}

// startProc starts cmd, whose stderr is handed line by line to onLine
// (when not nil) and kept with its stdout. The process is killed when
// the test ends, unless it has ended before.
func startProc(t *testing.T, name string, cmd *exec.Cmd, onLine func([]byte)) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, logs: &bintest.TailBuffer{Max: logTail}, exited: make(chan struct{})}
	cmd.Stdout = p.logs
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Should the test process die without its cleanups (a -timeout
	// panic), the child dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			_, _ = p.logs.Write(append(sc.Bytes(), '\n'))
			if onLine != nil {
				onLine(sc.Bytes())
			}
		}
		_, _ = io.Copy(p.logs, stderr)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if !p.done() {
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

func (p *proc) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v: %v", p.name, sig, err)
	}
}

// waitExit waits up to timeout for the process to end and returns
// cmd.Wait's result, or an error saying it is still running.
func (p *proc) waitExit(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running %v later", p.name, timeout)
	}
}

// replica is one `lumen serve` child process.
type replica struct {
	*proc
	httpAddr string
	scrape   *http.Client // no keep-alive: leaves no connection behind
}

// replicaConfig is the shape of a replica.
type replicaConfig struct {
	parallel, threads int
	drainTimeout      time.Duration
	otlpEndpoint      string // "": no tracing
}

// startReplicas starts one replica per name, all at once, and returns
// them once each is ready.
func startReplicas(t *testing.T, d deps, cfg replicaConfig, names ...string) []*replica {
	t.Helper()
	var rs []*replica
	listening := make([]chan string, len(names))
	for i, name := range names {
		listening[i] = make(chan string, 1)
		rs = append(rs, startReplica(t, d, cfg, name, listening[i]))
	}
	for i, r := range rs {
		r.waitReady(t, listening[i])
	}
	return rs
}

// startReplica starts `lumen serve` on ephemeral loopback ports; its
// "listening" log line sends the HTTP address to listening.
func startReplica(t *testing.T, d deps, cfg replicaConfig, name string, listening chan<- string) *replica {
	t.Helper()
	args := []string{"serve", "--model", d.model, "--model-name", modelName,
		"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--log-format", "json",
		"--parallel", strconv.Itoa(cfg.parallel), "--max-queue", "64", "--threads", strconv.Itoa(cfg.threads),
		"--ctx-size", "4096", "--drain-timeout", cfg.drainTimeout.String(), "--live-view=false"}
	if cfg.otlpEndpoint != "" {
		args = append(args, "--otlp-endpoint", cfg.otlpEndpoint) // loopback: plaintext
	}
	cmd := exec.Command(d.lumen, args...)
	cmd.Env = bintest.HermeticEnv(t.TempDir())
	if cfg.otlpEndpoint != "" {
		cmd.Env = append(cmd.Env,
			"OTEL_SERVICE_NAME=lumen",
			// Which replica a span comes from.
			"OTEL_RESOURCE_ATTRIBUTES=service.instance.id="+name,
			// Spans reach the receiver within a tenth of a second, and
			// none is dropped under the load (the assertions need all).
			"OTEL_BSP_SCHEDULE_DELAY=100",
			"OTEL_BSP_MAX_QUEUE_SIZE=200000",
		)
	} else {
		cmd.Env = append(cmd.Env, "OTEL_TRACES_EXPORTER=none")
	}
	seen := false
	p := startProc(t, name, cmd, func(line []byte) {
		var l struct{ Msg, HTTP string }
		if !seen && json.Unmarshal(line, &l) == nil && l.Msg == "listening" {
			seen = true
			listening <- l.HTTP
		}
	})
	return &replica{proc: p, scrape: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}}
}

// waitReady waits for the replica's address, then for GET /readyz to
// answer 200.
func (r *replica) waitReady(t *testing.T, listening <-chan string) {
	t.Helper()
	deadline := time.After(startTimeout)
	select {
	case r.httpAddr = <-listening:
	case <-r.exited:
		t.Fatalf("%s exited before listening: %v\n%s", r.name, r.err, r.logs)
	case <-deadline:
		t.Fatalf("%s did not listen within %v\n%s", r.name, startTimeout, r.logs)
	}
	for !r.ready() {
		select {
		case <-time.After(pollInterval):
		case <-r.exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", r.name, r.err, r.logs)
		case <-deadline:
			t.Fatalf("%s was not ready within %v\n%s", r.name, startTimeout, r.logs)
		}
	}
}

func (r *replica) ready() bool {
	resp, err := r.scrape.Get("http://" + r.httpAddr + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// gauges reads the replica's gauges named in names from /metrics.
func (r *replica) gauges(names ...string) (map[string]float64, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+r.httpAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := r.scrape.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: GET /metrics: %s", r.name, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: /metrics: %w", r.name, err)
	}
	out := map[string]float64{}
	for _, name := range names {
		f := families[name]
		if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetGauge() == nil {
			return nil, fmt.Errorf("%s: /metrics: no single gauge %s", r.name, name)
		}
		out[name] = f.GetMetric()[0].GetGauge().GetValue()
	}
	return out, nil
}

// stopAll sends SIGTERM to every replica still running and requires each
// to exit cleanly: their last spans are exported on the way out.
func stopAll(t *testing.T, rs []*replica) {
	t.Helper()
	for _, r := range rs {
		if !r.done() {
			r.signal(t, syscall.SIGTERM)
		}
	}
	for _, r := range rs {
		if err := r.waitExit(stopTimeout); err != nil {
			t.Errorf("%s after SIGTERM: %v, want exit status 0\n%s", r.name, err, r.logs)
		}
	}
}
