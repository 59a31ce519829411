package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/loadgen"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// TestShutdownMarksSpans: requests cut short by a server shutdown — one
// over SSE, whose 200 has gone out, and one over gRPC — end with status
// Error and error.type=shutdown on both the request span and the
// transport span, and each request span ends within its transport's.
func TestShutdownMarksSpans(t *testing.T) {
	log := newSpanLog()
	gate := &gatedEngine{}
	httpAddr, grpcAddr, stop := launchServe(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log},
		engine: func(e scheduler.Engine) scheduler.Engine { gate.Engine = e; return gate }},
		env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }},
		"--drain-timeout", "1ms")
	defer stop()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// The SSE request's second step is held, and the gRPC request is
	// submitted (admitted or queued behind the held step): neither can
	// finish before the shutdown, whatever the model writes.
	release, held := gate.arm(2)
	defer release()
	sse, rpc := newCaller(t), newCaller(t)
	resp := sse.post(t, "http://"+httpAddr+"/v1/chat/completions",
		`{"messages":[{"role":"user","content":"Tell a long story"}],"max_tokens":90,"ignore_eos":true,"stream":true}`)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("SSE status %d: %s", resp.StatusCode, b)
	}
	rpcErr := make(chan error, 1)
	go func() {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", rpc.traceparent())
		stream, err := lumenv1.NewLumenServiceClient(conn).GenerateStream(ctx, &lumenv1.GenerateStreamRequest{Prompt: "Tell a long story", MaxTokens: 90, IgnoreEos: true})
		for err == nil {
			_, err = stream.Recv()
		}
		rpcErr <- err
	}()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the requests' second step never came")
	}
	waitSubmitted(t, httpAddr, 2)

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// Draining has begun (readiness is off, new work is refused) before
	// the held step goes on, so the 1ms drain cuts both requests.
	waitStatus(t, "http://"+httpAddr+"/readyz", http.StatusServiceUnavailable)
	release()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"error"`) {
		t.Errorf("the SSE stream did not end with an error event:\n%s", body)
	}
	if err := <-rpcErr; status.Code(err) != grpccodes.Unavailable {
		t.Errorf("gRPC stream ended with %v, want Unavailable", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("serve: %v", err)
	}

	for _, tc := range []struct {
		who                  caller
		transport, operation string
	}{
		{sse, "POST /v1/chat/completions", "chat tiny"},
		{rpc, "lumen.v1.LumenService/GenerateStream", "text_completion tiny"},
	} {
		named := spansByName(log.Ended(), tc.who.traceID)
		transport, request := named[tc.transport], named[tc.operation]
		if transport == nil || request == nil {
			t.Errorf("%s: no transport or request span:\n%s", tc.transport, describeSpans(log.Ended()))
			continue
		}
		for _, s := range []sdktrace.ReadOnlySpan{request, transport} {
			if s.Status().Code != codes.Error {
				t.Errorf("%s: status %v, want Error", s.Name(), s.Status())
			}
			if got := attrs(s)[semconv.AttrErrorType].AsString(); got != semconv.ErrorShutdown {
				t.Errorf("%s: error.type %q, want %q", s.Name(), got, semconv.ErrorShutdown)
			}
		}
		if got := attrs(request)[semconv.AttrCancelReason].AsString(); got != "server shutdown" {
			t.Errorf("%s: %s = %q, want server shutdown", request.Name(), semconv.AttrCancelReason, got)
		}
		if request.EndTime().After(transport.EndTime()) {
			t.Errorf("%s ends %v after its transport span", request.Name(), request.EndTime().Sub(transport.EndTime()))
		}
	}
}

// waitSubmitted waits until /metrics shows n requests in the scheduler,
// holding slots or queued for one.
func waitSubmitted(t *testing.T, httpAddr string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sum := 0.0
		for _, name := range []string{"lumen_active_sequences", "lumen_queue_depth_requests"} {
			v, err := loadgen.ScrapeSample(context.Background(), httpAddr, name)
			if err != nil {
				t.Fatal(err)
			}
			sum += v
		}
		if int(sum) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests never were in the scheduler together", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitStatus polls url until it answers want.
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d", url, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
