package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	_ "image/png" // image.DecodeConfig reads the screenshot
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/lumenllm/lumen/internal/synth"
)

// The browser test saves a screenshot of the live view under t.TempDir();
// with this flag it rewrites the one the README shows:
//
//	go test ./cmd/lumen -run TestLiveViewInBrowser -update-liveview-png
var updateLiveViewPNG = flag.Bool("update-liveview-png", false, "rewrite docs/liveview.png from TestLiveViewInBrowser")

// liveLog collects serve's stderr, written from several goroutines.
type liveLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *liveLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *liveLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLiveServe runs `lumen serve` in-process on a generated tiny model
// with ephemeral ports, the environment vars, and returns its HTTP
// address and what it printed.
func startLiveServe(t *testing.T, vars map[string]string, extra ...string) (httpAddr string, stderr *liveLog) {
	t.Helper()
	cfg, err := synth.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := synth.WriteFile(model, cfg, nil); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--model", model, "--threads", "1", "--ctx-size", "2048", "--parallel", "4",
		"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, extra...)
	stderr = &liveLog{}
	ready := make(chan [2]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServeWith(ctx, args, env{stdout: io.Discard, stderr: stderr, getenv: func(k string) string { return vars[k] }}, ready)
	}()
	select {
	case addrs := <-ready:
		httpAddr = addrs[0]
	case err := <-done:
		t.Fatalf("serve exited: %v\n%s", err, stderr)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return httpAddr, stderr
}

var liveTraceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$`)

// liveStreamChat makes one streaming chat request, reads it to the end and
// returns the trace id its traceparent header names.
func liveStreamChat(ctx context.Context, base, key, tenant string, maxTokens int) (string, error) {
	body := fmt.Sprintf(`{"messages":[{"role":"user","content":"Tell me a long story"}],"max_tokens":%d,"stream":true}`, maxTokens)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Tenant-ID", tenant)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("[DONE]")) {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	m := liveTraceparentRE.FindStringSubmatch(resp.Header.Get("traceparent"))
	if m == nil {
		return "", fmt.Errorf("traceparent %q: not a sampled W3C trace parent", resp.Header.Get("traceparent"))
	}
	return m[1], nil
}

// liveLoad keeps the server busy until the test ends: every loadPace, n
// streaming requests at once (so they share engine steps), waiting for
// them all. Paced, because the tiny model answers in milliseconds and an
// unpaced load would push the test's own trace out of the view's ring
// before the page lists it.
func liveLoad(t *testing.T, base, key string, n int) {
	t.Helper()
	const loadPace = 150 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(loadPace)
		defer tick.Stop()
		for {
			var wg sync.WaitGroup
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := liveStreamChat(ctx, base, key, "load", 60); err != nil && ctx.Err() == nil {
						t.Errorf("load request: %v", err)
					}
				}()
			}
			wg.Wait()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// liveChromium finds the browser `make tools` installs.
func liveChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: `make tools` installs it (apt-get install chromium)")
	return ""
}

// TestLiveViewInBrowser loads the live view of a real server under load
// in headless Chromium: the key prompt, the trace row of a request the
// test made, its waterfall (phases and linked batch steps) and the live
// charts, then saves a screenshot.
func TestLiveViewInBrowser(t *testing.T) {
	browser := liveChromium(t)
	const key = "live-key"
	// Every batch span sampled, so the test's request surely has linked
	// steps (by default they are rate-limited).
	// A long model name, as real GGUF file names are, must not push the
	// traces table's last columns out of its pane.
	httpAddr, stderr := startLiveServe(t, nil, "--api-key", key, "--batch-span-rate", "0",
		"--model-name", "Meta-Llama-3.1-8B-Instruct-abliterated-GGUF-Q4_K_M-imatrix-2026")
	base := "http://" + httpAddr
	if want := "Open http://" + httpAddr + "/ for the live view"; !strings.Contains(stderr.String(), want) {
		t.Errorf("serve did not print %q:\n%s", want, stderr)
	}
	liveLoad(t, base, key, 3)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900))...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	// Start the browser, then collect any uncaught exception of the page.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var (
		exMu       sync.Mutex
		exceptions []string
	)
	thrown := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range thrown {
			if err != nil {
				return
			}
			exMu.Lock()
			exceptions = append(exceptions, ev.ExceptionDetails.Text+" "+fmt.Sprint(ev.ExceptionDetails.Exception))
			exMu.Unlock()
		}
	}()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}

	t.Run("asks for the key", func(t *testing.T) {
		run("open the page without a key", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#key-form")))
		if got := eval(`document.querySelector('#conn').dataset.state`); got != "auth" {
			t.Errorf("connection state %v, want auth", got)
		}
	})

	// A request of the test's own, made with the browser up so that its
	// trace is among the newest when the page first lists traces.
	traceID, err := liveStreamChat(context.Background(), base, key, "browser-test", 24)
	if err != nil {
		t.Fatal(err)
	}
	row := `#traces tr[data-trace-id="` + traceID + `"]`
	t.Run("lists the request's trace", func(t *testing.T) {
		run("open the page with ?key=", chromedp.Navigate(base+"/?key="+key), chromedp.WaitVisible(chromedp.CSS(row)))
		if got := eval(`location.search + '|' + sessionStorage.getItem('lumen.liveview.key')`); got != "|"+key {
			t.Errorf("search|stored key = %v: want the key moved from the URL into sessionStorage", got)
		}
		cells := eval(`Array.from(document.querySelectorAll('` + row + ` td')).map(td => td.textContent)`)
		text := fmt.Sprint(cells)
		for _, want := range []string{"chat", "browser-test", "→ ", "ok"} {
			if !strings.Contains(text, want) {
				t.Errorf("row %s lacks %q", text, want)
			}
		}
	})

	t.Run("the traces table fits its pane", func(t *testing.T) {
		// Every column, Status last, lies within the scroll box: nothing
		// needs a sideways scroll at 1400×900.
		got := eval(`(() => {
			const box = document.querySelector('#traces-pane .table-scroll').getBoundingClientRect();
			const out = [];
			for (const th of document.querySelectorAll('#traces th')) {
				const r = th.getBoundingClientRect();
				if (r.right > box.right + 0.5 || r.width < 20) out.push(th.textContent + ' ' + r.left + '..' + r.right + ' of ' + box.right);
			}
			const sc = document.querySelector('#traces-pane .table-scroll');
			if (sc.scrollWidth > sc.clientWidth) out.push('scroll width ' + sc.scrollWidth + ' > ' + sc.clientWidth);
			return out.join('; ');
		})()`)
		if got != "" {
			t.Errorf("traces table overflows its pane: %v", got)
		}
		cell := eval(`document.querySelector('` + row + ` td:nth-child(3)').title`)
		if !strings.Contains(fmt.Sprint(cell), "abliterated") {
			t.Errorf("the model cell's title %v does not carry the whole name", cell)
		}
	})

	t.Run("opens its waterfall", func(t *testing.T) {
		wf := `#waterfall[data-trace-id="` + traceID + `"]`
		run("click the row", chromedp.Click(chromedp.CSS(row)),
			chromedp.WaitVisible(chromedp.CSS(wf+` .bar[data-span-name="decode"]`)))
		roles := eval(`Array.from(document.querySelectorAll('` + wf + ` .bar')).map(b => b.dataset.role)`)
		got := fmt.Sprint(roles)
		for _, want := range []string{"transport", "request", "queue", "prefill", "decode", "batch"} {
			if !slices.Contains(roles.([]any), any(want)) {
				t.Errorf("waterfall bars %s: no %s bar", got, want)
			}
		}
		for _, name := range []string{"queue", "prefill", "decode"} {
			if n := eval(`document.querySelectorAll('` + wf + ` .bar[data-span-name="` + name + `"]').length`); n != 1.0 {
				t.Errorf("%v %s bars, want 1", n, name)
			}
		}
		if n := eval(`document.querySelectorAll('` + wf + ` .bar[data-span-name="prefill"] .event[data-event-name="chunk"]').length`); n.(float64) < 1 {
			t.Errorf("%v prefill chunk marks, want at least one", n)
		}
		// Bars sit inside the track, in time order: queue, prefill, decode.
		lefts := eval(`['queue','prefill','decode'].map(n => parseFloat(document.querySelector('` + wf + ` .bar[data-span-name="' + n + '"]').style.left))`).([]any)
		if !(lefts[0].(float64) <= lefts[1].(float64) && lefts[1].(float64) <= lefts[2].(float64)) {
			t.Errorf("bar offsets queue, prefill, decode = %v: not in time order", lefts)
		}
		run("show the prefill span", chromedp.Click(chromedp.CSS(`.wf-row[data-role="prefill"]`)),
			chromedp.WaitVisible(chromedp.CSS("#span-detail")))
		if got := eval(`document.querySelector('#sd-attrs').textContent`).(string); !strings.Contains(got, "lumen.prefill.chunks") {
			t.Errorf("prefill attributes %q lack lumen.prefill.chunks", got)
		}
	})

	t.Run("draws live charts", func(t *testing.T) {
		points := 2
		if *updateLiveViewPNG {
			points = 25 // a fuller picture for the README
		}
		cond := fmt.Sprintf(`(() => { const c = Array.from(document.querySelectorAll('svg.chart'));
			return c.length === 6 && c.every(s => Number(s.dataset.points) >= %d); })()`, points)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			t.Fatalf("charts never got %d points each: %v; points %v", points, err,
				eval(`Array.from(document.querySelectorAll('svg.chart')).map(s => s.dataset.series + '=' + s.dataset.points)`))
		}
		// Under load, requests finish, tokens flow and steps batch.
		for _, series := range []string{"requestsPerSec", "outputTokensPerSec", "batchSize", "ttftP50Ms", "kvUsedRatio"} {
			max := eval(`Number(document.querySelector('svg.chart[data-series="` + series + `"]').dataset.max)`)
			if max.(float64) <= 0 {
				t.Errorf("%s chart peaks at %v, want above 0", series, max)
			}
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(png))
		if err != nil || format != "png" || cfg.Width < 1000 || cfg.Height < 600 {
			t.Fatalf("screenshot: %s %dx%d, %v; want a PNG at least 1000x600", format, cfg.Width, cfg.Height, err)
		}
		path := filepath.Join(t.TempDir(), "liveview.png")
		if *updateLiveViewPNG {
			path = filepath.Join("..", "..", "docs", "liveview.png")
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	})

	t.Run("says when tracing is off", func(t *testing.T) {
		t.Setenv("OTEL_SDK_DISABLED", "true")
		offAddr, _ := startLiveServe(t, nil)
		run("open the page of a server without tracing", chromedp.Navigate("http://"+offAddr+"/"),
			chromedp.WaitVisible(chromedp.CSS(`#notice[data-kind="tracing-off"]`)))
		// The scheduler's figures need no spans.
		cond := `Number(document.querySelector('svg.chart[data-series="kvUsedRatio"]').dataset.points) >= 1`
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Errorf("KV chart without tracing: %v", err)
		}
	})

	exMu.Lock()
	defer exMu.Unlock()
	if len(exceptions) > 0 {
		t.Errorf("the page threw: %q", exceptions)
	}
}

// TestLiveViewRoutes checks how the view sits on the HTTP port: exactly
// GET / and its prefix, other paths left to the API; off with
// --live-view=false; and a page that knows when tracing is off.
func TestLiveViewRoutes(t *testing.T) {
	t.Run("tracing off", func(t *testing.T) {
		t.Setenv("OTEL_SDK_DISABLED", "true")
		httpAddr, _ := startLiveServe(t, nil)
		base := "http://" + httpAddr
		for _, c := range []struct {
			method, path string
			status       int
			contains     string
		}{
			{"GET", "/", 200, `id="traces"`},
			{"GET", "/live/api/status", 200, `"tracing":false`},
			{"GET", "/live/api/traces", 200, `"traces":[]`},
			// Not the page: the API's own error body.
			{"POST", "/", 404, "no such route"},
			{"GET", "/nothing-here", 404, "no such route"},
			{"GET", "/v1/models", 200, `"object":"list"`},
		} {
			req, err := http.NewRequest(c.method, base+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(b), c.contains) {
				t.Errorf("%s %s: %d %s; want %d containing %s", c.method, c.path, resp.StatusCode, b, c.status, c.contains)
			}
		}
	})

	t.Run("turned off", func(t *testing.T) {
		httpAddr, stderr := startLiveServe(t, nil, "--live-view=false")
		for _, p := range []string{"/", "/live/api/status"} {
			resp, err := http.Get("http://" + httpAddr + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s with --live-view=false: %d, want 404", p, resp.StatusCode)
			}
		}
		if strings.Contains(stderr.String(), "live view") {
			t.Errorf("serve advertises a live view it does not serve:\n%s", stderr)
		}
	})
}
