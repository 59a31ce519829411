//go:build soak

package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/grpcclient"
	"github.com/lumenllm/lumen/test/internal/bintest"
)

// The server's shape and the load on it: twice its capacity (slots plus
// queue), so that a steady share of requests is refused with "queue full".
const (
	parallel = 4
	maxQueue = 4
	clients  = 2 * (parallel + maxQueue)
	// ctxSize gives each slot ctxSize/parallel tokens, far more than a
	// prompt plus maxTokens.
	ctxSize   = 4096
	maxTokens = 64
	modelName = "soak"
)

// Disconnects: this share of requests is abandoned, either after a delay
// of up to maxCutDelay or, for streams, after a few events.
const (
	cutShare    = 0.3
	maxCutDelay = 200 * time.Millisecond
	maxCutAfter = 8 // events
	// maxRefusedBackoff bounds the random pause of a client after a
	// refusal.
	maxRefusedBackoff = 50 * time.Millisecond
)

// Bounds of the assertions.
const (
	// requestDeadline is how long one request may take before it counts
	// as hung; an answered one takes milliseconds on the tiny model.
	requestDeadline = 30 * time.Second
	startTimeout    = 2 * time.Minute
	restTimeout     = 30 * time.Second
	stopTimeout     = 10 * time.Second
	// goroutineMargin is how far the server's goroutine count may stay
	// above its count before the load.
	goroutineMargin = 5
	rssGrowthLimit  = 150 << 20 // bytes
	pollInterval    = 100 * time.Millisecond
	logTail         = 256 << 10 // bytes of server output kept for failure messages
)

// The server's gauges that must return to rest, as internal/telemetry
// registers them, and the Go collector's goroutine count.
const (
	metricActive     = "lumen_active_sequences"
	metricQueued     = "lumen_queue_depth_requests"
	metricKVUsed     = "lumen_kv_cache_used_cells"
	metricKVCached   = "lumen_kv_cache_cached_cells"
	metricGoroutines = "go_goroutines"
)

var prompts = []string{
	"Once upon a time",
	"The quick brown fox jumps over the lazy dog.",
	"Write a haiku about soak tests.",
	"In a hole in the ground there lived",
	"List three colours:",
}

func TestSoak(t *testing.T) {
	// Registered first so it runs last, after the server and every
	// client are gone.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	cfg := readConfig(t)
	t.Logf("soak: %v at %d clients against --parallel %d --max-queue %d; seed %d (SOAK_SEED=%d replays the mix)",
		cfg.duration, clients, parallel, maxQueue, cfg.seed, cfg.seed)

	srv := startServer(t, cfg.bin, synthModel(t, cfg.bin))
	// The goroutine baseline: a ready server no client is connected to.
	idle := srv.waitForRest(t, nil)
	t.Logf("idle: %s", idle)

	// Warm up every route, so that what is allocated once is allocated
	// before the RSS baseline is taken.
	warm := mustClient(t, srv)
	for k := range numKinds {
		if o, err := warm.do(plan{kind: k, prompt: prompts[0], maxTokens: maxTokens}); o != outcomeOK {
			t.Fatalf("warm-up %s: %s: %v\n%s", k, o, err, srv.logs)
		}
	}
	warm.close()
	// The warmed server is the baseline: the first chat starts the chat
	// template workers, whose pipe readers live as long as they do.
	before := srv.waitForRest(t, nil)
	t.Logf("before: %s", before)

	tl := runLoad(srv, cfg)
	t.Logf("load: %s", tl)
	for _, f := range tl.failures {
		t.Error(f)
	}
	if n := tl.counts[outcomeHung]; n > 0 {
		t.Errorf("%d requests hung (no answer within %v)", n, requestDeadline)
	}
	if n := tl.counts[outcomeFailed]; n > 0 {
		t.Errorf("%d requests failed", n)
	}
	// A load that never completed or never cut a request tested nothing.
	if tl.counts[outcomeOK] == 0 || tl.counts[outcomeDisconnected] == 0 {
		t.Errorf("load did not exercise the server: %s", tl)
	}

	after := srv.waitForRest(t, &before)
	t.Logf("after: %s", after)
	t.Logf("rss: before %.1f MiB, after %.1f MiB (limit +%d MiB); goroutines: before %.0f, after %.0f",
		mib(before.rss), mib(after.rss), rssGrowthLimit>>20, before.goroutines, after.goroutines)
	if after.rss > before.rss+rssGrowthLimit {
		t.Errorf("rss grew from %.1f MiB to %.1f MiB, more than %d MiB", mib(before.rss), mib(after.rss), rssGrowthLimit>>20)
	}

	// Still serving.
	final := mustClient(t, srv)
	for k := range numKinds {
		if o, err := final.do(plan{kind: k, prompt: prompts[1], maxTokens: maxTokens}); o != outcomeOK {
			t.Errorf("request after the load, %s: %s: %v", k, o, err)
		}
	}
	final.close()

	srv.stop(t)
	if t.Failed() {
		t.Logf("server output (tail):\n%s", srv.logs)
	}
}

// config is what the environment sets: the binary, the load's length and
// the seed of its request mix.
type config struct {
	bin      string
	duration time.Duration
	seed     uint64
}

func readConfig(t *testing.T) config {
	t.Helper()
	cfg := config{bin: os.Getenv("LUMEN_BIN"), duration: 10 * time.Second}
	if cfg.bin == "" {
		t.Fatal("LUMEN_BIN is not set: run `make soak`, which builds bin/lumen and passes its path")
	}
	if _, err := os.Stat(cfg.bin); err != nil {
		t.Fatalf("LUMEN_BIN: %v: run `make soak`, which builds bin/lumen", err)
	}
	if s := os.Getenv("SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("SOAK_DURATION=%q: want a positive duration such as 10s or 3m", s)
		}
		cfg.duration = d
	}
	cfg.seed = uint64(time.Now().UnixNano())
	if s := os.Getenv("SOAK_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED=%q: want an unsigned integer", s)
		}
		cfg.seed = n
	}
	need := startTimeout + cfg.duration + requestDeadline + restTimeout + stopTimeout
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < need {
		t.Fatalf("SOAK_DURATION=%v needs a test timeout of at least %v; raise SOAK_TIMEOUT", cfg.duration, need.Round(time.Minute))
	}
	return cfg
}

// synthModel generates the tiny random-weight model with the binary
// itself, so the test needs nothing outside the repository.
func synthModel(t *testing.T, bin string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), modelName+".gguf")
	cmd := exec.Command(bin, "model", "synth", "--out", path, "--preset", "tiny", "--ctx", strconv.Itoa(ctxSize))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lumen model synth: %v\n%s", err, out)
	}
	return path
}

// server is a running `lumen serve` child process.
type server struct {
	cmd        *exec.Cmd
	httpAddr   string
	grpcAddr   string
	logs       *bintest.TailBuffer
	exited     chan error // cmd.Wait's result, once
	stopped    bool
	scrapeHTTP *http.Client // no keep-alive: leaves no connection behind
}

// startServer starts `lumen serve` on ephemeral loopback ports and
// returns once it is ready. It is killed when the test ends unless
// stop has stopped it.
func startServer(t *testing.T, bin, modelPath string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--model", modelPath, "--model-name", modelName,
		"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--log-format", "json",
		"--parallel", strconv.Itoa(parallel), "--max-queue", strconv.Itoa(maxQueue),
		"--ctx-size", strconv.Itoa(ctxSize), "--threads", "1")
	cmd.Env = bintest.HermeticEnv(t.TempDir())
	// Should the test process die without its cleanups (a -timeout
	// panic, a killed go test), the server dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s := &server{
		cmd:        cmd,
		logs:       &bintest.TailBuffer{Max: logTail},
		exited:     make(chan error, 1),
		scrapeHTTP: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second},
	}
	cmd.Stdout = s.logs
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !s.stopped {
			_ = cmd.Process.Kill()
			<-s.exited
		}
	})

	type listening struct{ http, grpc string }
	addrs := make(chan listening, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			_, _ = s.logs.Write(append(sc.Bytes(), '\n'))
			var l struct{ Msg, HTTP, GRPC string }
			if !seen && json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				seen = true
				addrs <- listening{l.HTTP, l.GRPC}
			}
		}
		_, _ = io.Copy(s.logs, stderr)
		s.exited <- cmd.Wait()
	}()

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	select {
	case a := <-addrs:
		s.httpAddr, s.grpcAddr = a.http, a.grpc
	case err := <-s.exited:
		s.stopped = true
		t.Fatalf("lumen serve exited before listening: %v\n%s", err, s.logs)
	case <-deadline.C:
		t.Fatalf("lumen serve did not listen within %v\n%s", startTimeout, s.logs)
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !s.ready() {
		select {
		case <-tick.C:
		case err := <-s.exited:
			s.stopped = true
			t.Fatalf("lumen serve exited before it was ready: %v\n%s", err, s.logs)
		case <-deadline.C:
			t.Fatalf("lumen serve was not ready within %v\n%s", startTimeout, s.logs)
		}
	}
	return s
}

func (s *server) ready() bool {
	resp, err := s.scrapeHTTP.Get("http://" + s.httpAddr + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM and requires a clean exit within stopTimeout.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case err := <-s.exited:
		s.stopped = true
		if err != nil {
			t.Errorf("lumen serve after SIGTERM: %v, want exit status 0", err)
		}
	case <-timer.C:
		t.Errorf("lumen serve still running %v after SIGTERM", stopTimeout)
	}
}

// sample is the server's state as the test judges rest by.
type sample struct {
	active, queued, kvUsed, kvCached, goroutines float64
	rss                                          int64 // bytes
}

func (m sample) String() string {
	return fmt.Sprintf("active %.0f, queued %.0f, kv cells used %.0f (of them cached for prefix reuse %.0f), goroutines %.0f, rss %.1f MiB",
		m.active, m.queued, m.kvUsed, m.kvCached, m.goroutines, mib(m.rss))
}

// idle says whether no request holds a slot, a queue place or a KV
// cell (cells kept for prefix reuse are not held by any).
func (m sample) idle() bool {
	return m.active == 0 && m.queued == 0 && m.kvUsed == m.kvCached
}

// waitForRest polls until the server is idle and, given a baseline, its
// goroutines are back to the baseline's count, and returns that sample.
// Connections the clients closed take a moment to end on the server's
// side. After restTimeout an idle server within goroutineMargin of the
// baseline passes (with a note); anything else fails.
func (s *server) waitForRest(t *testing.T, base *sample) sample {
	t.Helper()
	timeout := time.NewTimer(restTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		m, err := s.sample()
		if err != nil {
			t.Fatalf("sampling the server: %v\n%s", err, s.logs)
		}
		if m.idle() && (base == nil || m.goroutines <= base.goroutines) {
			return m
		}
		select {
		case <-tick.C:
		case <-timeout.C:
			if m.idle() && m.goroutines <= base.goroutines+goroutineMargin {
				t.Logf("goroutines still %.0f above the baseline after %v (margin %d)", m.goroutines-base.goroutines, restTimeout, goroutineMargin)
				return m
			}
			want := "active, queued and held KV cells at 0"
			if base != nil {
				want += fmt.Sprintf(", goroutines at most %.0f", base.goroutines+goroutineMargin)
			}
			t.Fatalf("server not at rest within %v: %s; want %s\n%s", restTimeout, m, want, s.logs)
		case err := <-s.exited:
			s.stopped = true
			t.Fatalf("lumen serve exited: %v\n%s", err, s.logs)
		}
	}
}

func (s *server) sample() (sample, error) {
	var m sample
	req, err := http.NewRequest(http.MethodGet, "http://"+s.httpAddr+"/metrics", nil)
	if err != nil {
		return m, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.scrapeHTTP.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return m, fmt.Errorf("/metrics: %w", err)
	}
	for name, v := range map[string]*float64{
		metricActive: &m.active, metricQueued: &m.queued, metricKVUsed: &m.kvUsed,
		metricKVCached: &m.kvCached, metricGoroutines: &m.goroutines,
	} {
		f := families[name]
		if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetGauge() == nil {
			return m, fmt.Errorf("/metrics: no single gauge %s", name)
		}
		*v = f.GetMetric()[0].GetGauge().GetValue()
	}
	m.rss, err = rss(s.cmd.Process.Pid)
	return m, err
}

// rss is a process's resident set size, from /proc: like Pdeathsig
// above, this ties the test to Linux.
func rss(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the server's RSS: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", strings.TrimSpace(v), err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// kind is one of the request shapes the load mixes.
type kind int

const (
	kindChatStream kind = iota // POST /v1/chat/completions, "stream": true
	kindCompletion             // POST /v1/completions, one JSON answer
	kindGRPCStream             // LumenService.GenerateStream
	numKinds
)

func (k kind) String() string {
	return [...]string{"http chat stream", "http completion", "grpc stream"}[k]
}

// plan is one request of the load.
type plan struct {
	kind      kind
	prompt    string
	maxTokens int
	seed      uint32
	// With cut set, the client gives up after cutDelay, or, when
	// cutAfter > 0, once it has read that many stream events.
	cut      bool
	cutDelay time.Duration
	cutAfter int
}

func drawPlan(rng *rand.Rand) plan {
	p := plan{
		kind:      kind(rng.IntN(int(numKinds))),
		prompt:    prompts[rng.IntN(len(prompts))],
		maxTokens: 1 + rng.IntN(maxTokens),
		seed:      rng.Uint32(),
	}
	if rng.Float64() < cutShare {
		p.cut = true
		if p.kind != kindCompletion && rng.IntN(2) == 0 {
			p.cutAfter = 1 + rng.IntN(maxCutAfter)
		} else {
			p.cutDelay = time.Duration(rng.Int64N(int64(maxCutDelay) + 1))
		}
	}
	return p
}

// outcome is how a request ended.
type outcome int

const (
	outcomeOK           outcome = iota // answered in full and well formed
	outcomeDisconnected                // cut by the client before its end
	outcomeRefused                     // 429 / 503, RESOURCE_EXHAUSTED / UNAVAILABLE
	outcomeFailed                      // any other error, or a malformed answer
	outcomeHung                        // no end within requestDeadline
	numOutcomes
)

func (o outcome) String() string {
	return [...]string{"ok", "disconnected", "refused", "failed", "hung"}[o]
}

var (
	errHung    = errors.New("request deadline exceeded")
	errCut     = errors.New("client disconnected on purpose")
	errRefused = errors.New("refused")
)

// loadClient is one client of the load, with connections of its own.
type loadClient struct {
	base      string
	transport *http.Transport
	http      *http.Client
	grpc      *grpcclient.Client
}

func newLoadClient(s *server) (*loadClient, error) {
	g, err := grpcclient.New(grpcclient.Config{Addr: s.grpcAddr})
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &loadClient{base: "http://" + s.httpAddr, transport: tr, http: &http.Client{Transport: tr}, grpc: g}, nil
}

// mustClient is newLoadClient for the test goroutine.
func mustClient(t *testing.T, s *server) *loadClient {
	t.Helper()
	c, err := newLoadClient(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// close closes every connection, so that the server's side of them can
// end too.
func (c *loadClient) close() {
	c.transport.CloseIdleConnections()
	_ = c.grpc.Close()
}

// do runs one request and says how it ended; the error says why, for
// outcomeFailed and outcomeHung.
func (c *loadClient) do(p plan) (outcome, error) {
	ctx, cancel := context.WithTimeoutCause(context.Background(), requestDeadline, errHung)
	defer cancel()
	ctx, cut := context.WithCancelCause(ctx)
	defer cut(nil)
	if p.cut && p.cutAfter == 0 {
		timer := time.AfterFunc(p.cutDelay, func() { cut(errCut) })
		defer timer.Stop()
	}
	var err error
	switch p.kind {
	case kindChatStream:
		err = c.chatStream(ctx, cut, p)
	case kindCompletion:
		err = c.completion(ctx, p)
	case kindGRPCStream:
		err = c.grpcStream(ctx, cut, p)
	}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errHung):
		return outcomeHung, fmt.Errorf("%s: no end within %v (last error: %v)", p.kind, requestDeadline, err)
	case err == nil:
		return outcomeOK, nil
	case errors.Is(cause, errCut) || errors.Is(err, errCut):
		return outcomeDisconnected, nil
	case errors.Is(err, errRefused):
		return outcomeRefused, nil
	}
	return outcomeFailed, fmt.Errorf("%s (max_tokens %d): %w", p.kind, p.maxTokens, err)
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type generationBody struct {
	Model     string        `json:"model"`
	Prompt    string        `json:"prompt,omitempty"`
	Messages  []chatMessage `json:"messages,omitempty"`
	MaxTokens int           `json:"max_tokens"`
	Seed      uint32        `json:"seed"`
	Stream    bool          `json:"stream,omitempty"`
}

// post sends body as JSON and returns a 200 response; 429 and 503 are
// errRefused, other statuses errors carrying the answer.
func (c *loadClient) post(ctx context.Context, path string, body generationBody) (*http.Response, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		return nil, fmt.Errorf("POST %s: %s: %w", path, resp.Status, errRefused)
	}
	return nil, fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(msg))
}

// chatStream is a streamed chat completion, read as server-sent events.
func (c *loadClient) chatStream(ctx context.Context, cut context.CancelCauseFunc, p plan) error {
	resp, err := c.post(ctx, "/v1/chat/completions", generationBody{
		Model: modelName, Messages: []chatMessage{{Role: "user", Content: p.prompt}},
		MaxTokens: p.maxTokens, Seed: p.seed, Stream: true,
	})
	if err != nil {
		return err
	}
	// Closing the body before its end drops the connection: the server
	// sees the client go.
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("stream Content-Type %q, want text/event-stream", ct)
	}
	events, finishes := 0, 0
	return bintest.ReadSSE(resp.Body, func(data []byte) error {
		var chunk struct {
			Object  string `json:"object"`
			Choices []struct {
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		switch err := json.Unmarshal(data, &chunk); {
		case err != nil:
			return fmt.Errorf("malformed event %q: %w", data, err)
		case chunk.Error != nil:
			return fmt.Errorf("error event: %s", chunk.Error.Message)
		case chunk.Object != "chat.completion.chunk" || len(chunk.Choices) != 1:
			return fmt.Errorf("malformed event %q: want one choice of a chat.completion.chunk", data)
		case finishes > 0:
			return fmt.Errorf("event %q after the finish reason", data)
		}
		if f := chunk.Choices[0].FinishReason; f != nil {
			if err := checkFinish(*f); err != nil {
				return err
			}
			finishes++
		}
		if events++; p.cut && events == p.cutAfter {
			cut(errCut)
			return errCut
		}
		return nil
	}, func() error {
		if finishes != 1 {
			return fmt.Errorf("stream ended with %d finish reasons, want 1", finishes)
		}
		return nil
	})
}

// completion is a non-streamed text completion.
func (c *loadClient) completion(ctx context.Context, p plan) error {
	resp, err := c.post(ctx, "/v1/completions", generationBody{
		Model: modelName, Prompt: p.prompt, MaxTokens: p.maxTokens, Seed: p.seed,
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var reply struct {
		Object  string `json:"object"`
		Choices []struct {
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage *struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return fmt.Errorf("completion reply: %w", err)
	}
	if reply.Object != "text_completion" || len(reply.Choices) != 1 || reply.Choices[0].FinishReason == nil || reply.Usage == nil {
		return fmt.Errorf("malformed completion reply %+v", reply)
	}
	return checkUsage(*reply.Choices[0].FinishReason, reply.Usage.CompletionTokens, p.maxTokens)
}

// grpcStream is a GenerateStream call.
func (c *loadClient) grpcStream(ctx context.Context, cut context.CancelCauseFunc, p plan) error {
	seed := p.seed
	events := 0
	last, err := c.grpc.Stream(ctx, &lumenv1.GenerateStreamRequest{
		Model: modelName, Prompt: p.prompt, MaxTokens: int32(p.maxTokens), Seed: &seed,
	}, func(*lumenv1.GenerateStreamResponse) error {
		if events++; p.cut && events == p.cutAfter {
			cut(errCut)
			return errCut
		}
		return nil
	})
	switch status.Code(err) {
	case codes.OK:
	case codes.ResourceExhausted, codes.Unavailable:
		return fmt.Errorf("GenerateStream: %w: %w", errRefused, err)
	default:
		return fmt.Errorf("GenerateStream: %w", err)
	}
	finish := map[lumenv1.FinishReason]string{
		lumenv1.FinishReason_FINISH_REASON_STOP:   "stop",
		lumenv1.FinishReason_FINISH_REASON_LENGTH: "length",
	}[last.GetFinishReason()]
	if finish == "" {
		return fmt.Errorf("GenerateStream finished with %v, want STOP or LENGTH", last.GetFinishReason())
	}
	return checkUsage(finish, int(last.GetUsage().GetCompletionTokens()), p.maxTokens)
}

func checkFinish(reason string) error {
	if reason != "stop" && reason != "length" {
		return fmt.Errorf("finish reason %q, want stop or length", reason)
	}
	return nil
}

// checkUsage: a request ends at its token limit or before it, and ends
// for its length only there (prompts are far shorter than a slot).
func checkUsage(finish string, tokens, limit int) error {
	if err := checkFinish(finish); err != nil {
		return err
	}
	if tokens > limit || (finish == "length" && tokens != limit) {
		return fmt.Errorf("finish %q after %d tokens with max_tokens %d", finish, tokens, limit)
	}
	return nil
}

// tally counts the load's outcomes.
type tally struct {
	counts   [numOutcomes]int
	byKind   [numKinds]int
	cuts     int      // requests planned to be cut; those answered or refused first are not disconnected
	failures []string // the first few failed or hung requests
}

func (tl *tally) add(p plan, o outcome, err error) {
	tl.counts[o]++
	tl.byKind[p.kind]++
	if p.cut {
		tl.cuts++
	}
	if err != nil && len(tl.failures) < 10 {
		tl.failures = append(tl.failures, err.Error())
	}
}

func (tl *tally) merge(o *tally) {
	for i, n := range o.counts {
		tl.counts[i] += n
	}
	for i, n := range o.byKind {
		tl.byKind[i] += n
	}
	tl.cuts += o.cuts
	tl.failures = append(tl.failures, o.failures[:min(len(o.failures), 10-min(10, len(tl.failures)))]...)
}

func (tl tally) String() string {
	total := 0
	var parts, kindParts []string
	for o, n := range tl.counts {
		total += n
		parts = append(parts, fmt.Sprintf("%s %d", outcome(o), n))
	}
	for k, n := range tl.byKind {
		kindParts = append(kindParts, fmt.Sprintf("%s %d", kind(k), n))
	}
	return fmt.Sprintf("%d requests: %s; %d planned cuts; by kind: %s",
		total, strings.Join(parts, ", "), tl.cuts, strings.Join(kindParts, ", "))
}

// runLoad runs the clients until cfg.duration has passed and their last
// requests have ended, and returns their tally.
func runLoad(s *server, cfg config) tally {
	end := time.Now().Add(cfg.duration)
	tallies := make([]tally, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			// A source per client, so that each client's sequence of
			// plans follows from the seed.
			rng := rand.New(rand.NewPCG(cfg.seed, uint64(i)))
			c, err := newLoadClient(s)
			if err != nil {
				tallies[i].add(plan{}, outcomeFailed, err)
				return
			}
			defer c.close()
			backoff := time.NewTimer(0)
			defer backoff.Stop()
			for time.Now().Before(end) {
				p := drawPlan(rng)
				o, err := c.do(p)
				tallies[i].add(p, o, err)
				if o == outcomeRefused {
					// A refused client comes back soon, as a retrying
					// one would, rather than spinning on 429s and
					// starving the decode loop of CPU.
					backoff.Reset(time.Duration(rng.Int64N(int64(maxRefusedBackoff)) + 1))
					<-backoff.C
				}
			}
		})
	}
	wg.Wait()
	var total tally
	for i := range tallies {
		total.merge(&tallies[i])
	}
	return total
}
