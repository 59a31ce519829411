package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// TestW3CTraceContextCases: the W3C Trace Context suite's header cases
// that the propagator leaves to its carrier, over both transports: a
// tracestate in several headers is one list, empty members are skipped,
// and two traceparents start a new trace; and Level 2's random flag,
// set on every trace Lumen starts and kept as the caller sent it on one
// it continues.
func TestW3CTraceContextCases(t *testing.T) {
	log := newSpanLog()
	httpAddr, grpcAddr := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log}}, nil)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := lumenv1.NewLumenServiceClient(conn)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const tp2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	cases := []struct {
		name         string
		traceparents []string
		tracestates  []string
		continued    bool
		wantState    string
		random       bool // the request span's trace flags have random set
	}{
		{"tracestate in three headers", []string{tp}, []string{"foo=1,bar=2", "rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"}, true, "foo=1,bar=2,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", false},
		{"empty member skipped", []string{tp}, []string{"foo=1, ,bar=2"}, true, "foo=1,bar=2", false},
		{"two traceparents", []string{tp, tp2}, []string{"foo=1"}, false, "", true},
		{"no traceparent: a new random trace", nil, nil, false, "", true},
		{"caller's random flag kept", []string{strings.TrimSuffix(tp, "01") + "03"}, nil, true, "", true},
	}
	// check looks at the newest request span, that of the n'th request.
	check := func(t *testing.T, name string, continued bool, wantState string, random bool, n int) {
		t.Helper()
		spans := log.waitFor(t, name, func(spans []sdktrace.ReadOnlySpan) bool {
			c := 0
			for _, s := range spans {
				if strings.HasPrefix(s.Name(), semconv.OperationCompletion+" ") {
					c++
				}
			}
			return c >= n
		})
		var last sdktrace.ReadOnlySpan
		for _, s := range spans {
			if strings.HasPrefix(s.Name(), semconv.OperationCompletion+" ") {
				last = s
			}
		}
		sc := last.SpanContext()
		gotContinued := sc.TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736"
		if gotContinued != continued || (sc.TraceID().String() == "0af7651916cd43dd8448eb211c80319c") {
			t.Errorf("%s: trace %s, want the caller's continued: %v (and never the second traceparent's)", name, sc.TraceID(), continued)
		}
		if got := sc.TraceState().String(); got != wantState {
			t.Errorf("%s: tracestate %q, want %q", name, got, wantState)
		}
		if sc.TraceFlags().IsRandom() != random || !sc.IsSampled() {
			t.Errorf("%s: trace flags %s, want sampled and random: %v", name, sc.TraceFlags(), random)
		}
	}
	n := 0
	for _, tt := range cases {
		t.Run("http/"+tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/generate", strings.NewReader(`{"prompt":"hi","max_tokens":1}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			for _, v := range tt.traceparents {
				req.Header.Add("traceparent", v)
			}
			for _, v := range tt.tracestates {
				req.Header.Add("tracestate", v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			n++
			check(t, tt.name, tt.continued, tt.wantState, tt.random, n)
		})
		t.Run("grpc/"+tt.name, func(t *testing.T) {
			var kv []string
			for _, v := range tt.traceparents {
				kv = append(kv, "traceparent", v)
			}
			for _, v := range tt.tracestates {
				kv = append(kv, "tracestate", v)
			}
			ctx := metadata.AppendToOutgoingContext(context.Background(), kv...)
			if _, err := client.Generate(ctx, &lumenv1.GenerateRequest{Prompt: "hi", MaxTokens: 1}); err != nil {
				t.Fatal(err)
			}
			n++
			check(t, tt.name, tt.continued, tt.wantState, tt.random, n)
		})
	}
}

// TestResponseIDOnSpan: the request span's gen_ai.response.id is the id
// the client got (chatcmpl-…), so a logged id finds its trace.
func TestResponseIDOnSpan(t *testing.T) {
	log := newSpanLog()
	httpAddr, _ := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log}}, nil)
	var reply struct {
		ID string `json:"id"`
	}
	if err := postJSON("http://"+httpAddr+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}`, &reply); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(reply.ID, "chatcmpl-") {
		t.Fatalf("reply id %q", reply.ID)
	}
	log.waitFor(t, "the request span with the reply's id", func(spans []sdktrace.ReadOnlySpan) bool {
		for _, s := range spans {
			for _, a := range s.Attributes() {
				if a.Key == semconv.AttrResponseID && a.Value.AsString() == reply.ID {
					return true
				}
			}
		}
		return false
	})
}

// TestRefusedRepliesNameTheirTrace: a 400 (and any refusal) carries a
// traceparent in the caller's trace and a request id, so a refused
// client can find what happened.
func TestRefusedRepliesNameTheirTrace(t *testing.T) {
	httpAddr, _ := startServe(t)
	req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/completions", strings.NewReader(`{"prompt":"hi","temperature":5}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tp := strings.Split(resp.Header.Get("traceparent"), "-")
	if resp.StatusCode != http.StatusBadRequest || len(tp) != 4 || tp[1] != "4bf92f3577b34da6a3ce929d0e0e4736" || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("status %d, traceparent %q, X-Request-Id %q; want 400 in the caller's trace, with an id",
			resp.StatusCode, resp.Header.Get("traceparent"), resp.Header.Get("X-Request-Id"))
	}
}

// TestHTTPRouteOnTransportSpans: each HTTP transport span carries its
// route template as http.route, not the outer router's "/".
func TestHTTPRouteOnTransportSpans(t *testing.T) {
	log := newSpanLog()
	httpAddr, _ := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log}}, nil)
	var out map[string]any
	for _, call := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":1}`},
		{"/tokenize", `{"text":"hi"}`},
	} {
		if err := postJSON("http://"+httpAddr+call.path, call.body, &out); err != nil {
			t.Fatal(err)
		}
	}
	routes := map[string]bool{}
	log.waitFor(t, "both routes on transport spans", func(spans []sdktrace.ReadOnlySpan) bool {
		for _, s := range spans {
			for _, a := range s.Attributes() {
				if a.Key == "http.route" {
					routes[a.Value.AsString()] = true
				}
			}
		}
		return routes["/v1/chat/completions"] && routes["/tokenize"]
	})
	if routes["/"] {
		t.Errorf("a transport span still has http.route \"/\": %v", routes)
	}
}

// TestInvalidRequestsHaveNoRequestSpan: every request refused as invalid
// — by the API's checks (temperature 5) or the scheduler's (max_tokens
// beyond the context) — is answered 400 with no request span; the
// transport span shows it. (Capacity refusals get one: TestErrorType.)
func TestInvalidRequestsHaveNoRequestSpan(t *testing.T) {
	log := newSpanLog()
	httpAddr, _ := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log}}, nil)
	for _, body := range []string{`{"prompt":"hi","temperature":5}`, `{"prompt":"hi","max_tokens":100000}`} {
		resp := post(t, "http://"+httpAddr+"/v1/completions", "", body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400", body, resp.StatusCode)
		}
	}
	var out map[string]any
	if err := postJSON("http://"+httpAddr+"/v1/completions", `{"prompt":"hi","max_tokens":1}`, &out); err != nil {
		t.Fatal(err)
	}
	// The valid request's span ends after the refused ones would have.
	spans := log.waitFor(t, "the valid request's span", func(spans []sdktrace.ReadOnlySpan) bool {
		for _, s := range spans {
			if strings.HasPrefix(s.Name(), semconv.OperationCompletion+" ") {
				return true
			}
		}
		return false
	})
	n := 0
	for _, s := range spans {
		if strings.HasPrefix(s.Name(), semconv.OperationCompletion+" ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d request spans, want only the valid request's", n)
	}
}
