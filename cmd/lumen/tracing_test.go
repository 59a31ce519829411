package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/proto"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/benchtracing"
	"github.com/lumenllm/lumen/internal/grpcclient"
	"github.com/lumenllm/lumen/internal/loadgen"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// callReply is what a reply says about its request.
type callReply struct {
	finish           string // as the API names it
	completionTokens int
	traceID          string
}

var traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestTracingCollectorDown: with the OTLP collector unreachable, a burst
// of concurrent requests over both APIs is served exactly as usual, and
// every span that could not be delivered is counted in
// lumen_spans_dropped_total.
func TestTracingCollectorDown(t *testing.T) {
	ended := &benchtracing.SpanCounter{}
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  // ms: export soon after spans end
	t.Setenv("OTEL_BSP_EXPORT_TIMEOUT", "200") // ms: give up on the dead collector soon
	httpAddr, grpcAddr := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{ended}},
		nil, "--otlp-endpoint", closedPort(t))
	client, err := grpcclient.New(grpcclient.Config{Addr: grpcAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	const (
		perKind   = 4 // requests of each of the four kinds below
		maxTokens = 5
	)
	kinds := []struct {
		name string
		call func(ctx context.Context) (callReply, error)
	}{
		{"gRPC Generate", func(ctx context.Context) (callReply, error) {
			r, err := client.Generate(ctx, &lumenv1.GenerateRequest{Prompt: "Once upon a time", MaxTokens: maxTokens, Temperature: proto.Float32(0)})
			if err != nil {
				return callReply{}, err
			}
			return callReply{r.GetFinishReason().String(), int(r.GetUsage().GetCompletionTokens()), r.GetTraceId()}, nil
		}},
		{"gRPC GenerateStream", func(ctx context.Context) (callReply, error) {
			r, err := client.Stream(ctx, &lumenv1.GenerateStreamRequest{Prompt: "Once upon a time", MaxTokens: maxTokens, Temperature: proto.Float32(0)},
				func(*lumenv1.GenerateStreamResponse) error { return nil })
			if err != nil {
				return callReply{}, err
			}
			return callReply{r.GetFinishReason().String(), int(r.GetUsage().GetCompletionTokens()), r.GetTraceId()}, nil
		}},
		{"HTTP /v1/completions", func(ctx context.Context) (callReply, error) {
			return httpCompletion(ctx, httpAddr, fmt.Sprintf(`{"prompt":"Once upon a time","max_tokens":%d,"temperature":0}`, maxTokens))
		}},
		{"HTTP /v1/completions streamed", func(ctx context.Context) (callReply, error) {
			return httpCompletion(ctx, httpAddr, fmt.Sprintf(`{"prompt":"Once upon a time","max_tokens":%d,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`, maxTokens))
		}},
	}
	wantFinish := map[string]string{
		"gRPC Generate": "FINISH_REASON_LENGTH", "gRPC GenerateStream": "FINISH_REASON_LENGTH",
		"HTTP /v1/completions": "length", "HTTP /v1/completions streamed": "length",
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, k := range kinds {
		for i := range perKind {
			wg.Go(func() {
				r, err := k.call(ctx)
				switch {
				case err != nil:
					t.Errorf("%s #%d: %v", k.name, i, err)
				case r.finish != wantFinish[k.name] || r.completionTokens != maxTokens || !traceIDPattern.MatchString(r.traceID):
					t.Errorf("%s #%d: finish %q, %d completion tokens, trace id %q; want %s, %d and a trace id",
						k.name, i, r.finish, r.completionTokens, r.traceID, wantFinish[k.name], maxTokens)
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Every sampled span ended so far goes to the dead collector and is
	// dropped: the counter reaches the number ended (at least the five
	// spans of each request: transport, request, queue, prefill, decode).
	// Scraping /metrics makes no spans.
	pollUntil(t, 30*time.Second, func(ctx context.Context) error {
		dropped, err := loadgen.ScrapeSample(ctx, httpAddr, "lumen_spans_dropped_total")
		if err != nil {
			return err
		}
		n := ended.Load()
		if n < 5*perKind*int64(len(kinds)) {
			t.Fatalf("only %d sampled spans ended for %d requests", n, perKind*len(kinds))
		}
		if dropped != float64(n) {
			return fmt.Errorf("lumen_spans_dropped_total = %v, want all %d ended spans", dropped, n)
		}
		t.Logf("all %d sampled spans counted as dropped", n)
		return nil
	})
}

// httpCompletion posts an OpenAI completion request, streamed (SSE) or
// not, and returns what its reply says.
func httpCompletion(ctx context.Context, addr, body string) (reply callReply, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/completions", strings.NewReader(body))
	if err != nil {
		return reply, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return reply, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	// traceparent: 00-<trace id>-<span id>-<flags>
	if parts := strings.Split(resp.Header.Get("traceparent"), "-"); len(parts) == 4 {
		reply.traceID = parts[1]
	}
	type chunk struct {
		Choices []struct {
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage *struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	apply := func(c chunk) {
		for _, ch := range c.Choices {
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				reply.finish = *ch.FinishReason
			}
		}
		if c.Usage != nil {
			reply.completionTokens = c.Usage.CompletionTokens
		}
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var c chunk
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			return reply, err
		}
		apply(c)
		return reply, nil
	}
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			break
		}
		var c chunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return reply, fmt.Errorf("SSE event %q: %w", data, err)
		}
		apply(c)
	}
	if err := sc.Err(); err != nil {
		return reply, err
	}
	if !done {
		return reply, fmt.Errorf("SSE stream ended without [DONE]")
	}
	return reply, nil
}
