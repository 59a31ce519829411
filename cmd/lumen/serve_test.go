package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lumenllm/lumen/internal/synth"
)

// startServe runs `lumen serve` in-process on a generated model with
// ephemeral ports and returns the HTTP and gRPC addresses.
func startServe(t *testing.T, extra ...string) (httpAddr, grpcAddr string) {
	t.Helper()
	return startServeHooked(t, serveHooks{}, nil, extra...)
}

// startServeHooked is startServe with test hooks and an environment of
// its own (vars; nothing else leaks in).
func startServeHooked(t *testing.T, hooks serveHooks, vars map[string]string, extra ...string) (httpAddr, grpcAddr string) {
	t.Helper()
	return startServeEnv(t, hooks, env{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return vars[k] }}, extra...)
}

// startServeEnv is startServe with test hooks and the given environment.
func startServeEnv(t *testing.T, hooks serveHooks, e env, extra ...string) (httpAddr, grpcAddr string) {
	t.Helper()
	httpAddr, grpcAddr, stop := launchServe(t, hooks, e, extra...)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return httpAddr, grpcAddr
}

// launchServe starts serve in process and returns once it serves; stop
// stops it (as SIGTERM does: drain, then close) and returns what serve
// returned. The caller calls stop; later calls return the same.
func launchServe(t *testing.T, hooks serveHooks, e env, extra ...string) (httpAddr, grpcAddr string, stop func() error) {
	t.Helper()
	cfg, err := synth.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := synth.WriteFile(model, cfg, nil); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--model", model, "--threads", "1", "--ctx-size", "2048", "--parallel", "4"}, extra...)
	ready := make(chan [2]string, 1)
	hooks.ready = ready
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServeHooked(ctx, append(args, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"), e, hooks)
	}()
	select {
	case addrs := <-ready:
		httpAddr, grpcAddr = addrs[0], addrs[1]
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v", err)
	}
	return httpAddr, grpcAddr, sync.OnceValue(func() error {
		cancel()
		return <-done
	})
}

func post(t *testing.T, url, key, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestServeEndToEnd(t *testing.T) {
	httpAddr, grpcAddr := startServe(t, "--api-key", "test-key")
	base := "http://" + httpAddr

	t.Run("health is open", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(base + p)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET %s: %v %v", p, resp.StatusCode, err)
			}
			resp.Body.Close()
		}
	})

	t.Run("missing key is 401", func(t *testing.T) {
		resp := post(t, base+"/v1/completions", "", `{"prompt":"hi","max_tokens":4}`)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})

	t.Run("completion usage counts", func(t *testing.T) {
		resp := post(t, base+"/v1/completions", "test-key", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0}`)
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		var out struct {
			Object  string `json:"object"`
			Choices []struct {
				Text         string `json:"text"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
				TotalTokens      int `json:"total_tokens"`
			} `json:"usage"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		u := out.Usage
		if out.Object != "text_completion" || len(out.Choices) != 1 || out.Choices[0].FinishReason != "length" ||
			u.CompletionTokens != 12 || u.PromptTokens == 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
			t.Errorf("response = %+v", out)
		}
	})

	t.Run("chat SSE stream", func(t *testing.T) {
		resp := post(t, base+"/v1/chat/completions", "test-key",
			`{"messages":[{"role":"user","content":"Hello"}],"max_tokens":8,"stream":true,"stream_options":{"include_usage":true}}`)
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("status %d content-type %q", resp.StatusCode, ct)
		}
		var events []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line := sc.Text(); line != "" {
				if !strings.HasPrefix(line, "data: ") {
					t.Fatalf("SSE line %q lacks the data: prefix", line)
				}
				events = append(events, strings.TrimPrefix(line, "data: "))
			}
		}
		if len(events) < 3 || events[len(events)-1] != "[DONE]" {
			t.Fatalf("events = %q, want chunks ending in [DONE]", events)
		}
		var usage struct {
			Usage struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(events[len(events)-2]), &usage); err != nil || usage.Usage.CompletionTokens != 8 {
			t.Errorf("usage chunk %q: %v", events[len(events)-2], err)
		}
	})

	t.Run("lumen client over gRPC", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		e := env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		err := run(context.Background(), []string{"client", "generate", "--addr", grpcAddr, "--api-key", "test-key",
			"--prompt", "Hello", "--max-tokens", "6", "--temperature", "0"}, e)
		if err != nil || stdout.Len() == 0 {
			t.Fatalf("client generate: %v; stdout %q stderr %q", err, stdout.String(), stderr.String())
		}
		stdout.Reset()
		err = run(context.Background(), []string{"client", "generate", "--addr", grpcAddr, "--api-key", "wrong",
			"--prompt", "Hello"}, e)
		if err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
			t.Errorf("wrong key: err = %v, want Unauthenticated", err)
		}
	})
}

func TestServeGracefulStop(t *testing.T) {
	ready := make(chan [2]string, 1)
	cfg, _ := synth.Preset("tiny")
	model := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := synth.WriteFile(model, cfg, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServeWith(ctx, []string{"--model", model, "--threads", "1", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--drain-timeout", "200ms"},
			env{stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv}, ready)
	}()
	addrs := <-ready
	// Start a long request, then stop the server under it: the request
	// must end (completed or with a clear error), never hang.
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Post("http://"+addrs[0]+"/generate", "application/json",
			strings.NewReader(`{"prompt":"a story","max_tokens":400,"stream":true}`))
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), err}
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	r := <-got
	if r.err == nil && r.status == 200 && !strings.Contains(r.body, "finish_reason") && !strings.Contains(r.body, "error") {
		t.Errorf("request neither completed nor failed clearly: %d %q", r.status, r.body)
	}
}

// TestServeSIGHUPReloadsSampling: SIGHUP re-reads the sampling strategies
// file at once, and a file that no longer parses is reported and leaves
// the previous strategies in force.
func TestServeSIGHUPReloadsSampling(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sampling.json")
	if err := os.WriteFile(file, []byte(`{"default_strategy":{"type":"probabilistic","param":1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	startServeEnv(t, serveHooks{}, env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }},
		"--sampling-config", file, "--log-format", "json")
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(stderr.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", want, stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait("sampling strategies reloaded")
	if err := os.WriteFile(file, []byte(`{not json`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait("sampling strategies not reloaded")
}

// TestResponseTraceparentKeepsTracestate: the reply's traceparent names
// the request span in the caller's trace, and the caller's tracestate
// comes back with it (the W3C propagator writes both).
func TestResponseTraceparentKeepsTracestate(t *testing.T) {
	httpAddr, _ := startServe(t)
	req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/generate", strings.NewReader(`{"prompt":"hi","max_tokens":2}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.Header.Set("tracestate", "vendor=abc,other=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tp := strings.Split(resp.Header.Get("traceparent"), "-")
	if len(tp) != 4 || tp[1] != "4bf92f3577b34da6a3ce929d0e0e4736" || tp[2] == "00f067aa0ba902b7" {
		t.Errorf("traceparent %q: want the caller's trace and a span of the server's", resp.Header.Get("traceparent"))
	}
	if got := resp.Header.Get("tracestate"); got != "vendor=abc,other=1" {
		t.Errorf("tracestate %q, want the caller's", got)
	}
}
