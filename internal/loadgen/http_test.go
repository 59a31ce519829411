package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
)

func TestHTTPTargetStream(t *testing.T) {
	const final = `{"id":"r1","finish_reason":"length","usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":2}},"timings":{"queue_ms":1.5,"prefill_ms":2.5,"ttft_ms":4,"decode_ms":9}}`
	tests := []struct {
		name      string
		status    int
		body      string
		wantTexts []string
		wantRes   Result
		wantKind  string // of the *RequestError; "" for success
	}{
		{
			name: "text then final", status: 200,
			body:      `{"text":"a"}` + "\n" + `{"text":""}` + "\n" + `{"text":"b"}` + "\n" + final + "\n",
			wantTexts: []string{"a", "b"},
			wantRes:   Result{FinishReason: "length", PromptTokens: 7, CachedTokens: 2, CompletionTokens: 3, QueueMS: 1.5, PrefillMS: 2.5},
		},
		{
			name: "final without newline", status: 200,
			body:      `{"text":"a"}` + "\n" + final,
			wantTexts: []string{"a"},
			wantRes:   Result{FinishReason: "length", PromptTokens: 7, CachedTokens: 2, CompletionTokens: 3, QueueMS: 1.5, PrefillMS: 2.5},
		},
		{
			name: "queue full", status: 429,
			body:     `{"error":{"message":"the server has too many requests waiting; retry later","type":"rate_limit_error","param":null,"code":"queue_full"}}`,
			wantKind: "HTTP 429",
		},
		{name: "not JSON", status: 502, body: "bad gateway", wantKind: "HTTP 502"},
		{
			name: "error midway", status: 200,
			body:      `{"text":"a"}` + "\n" + `{"error":{"message":"internal server error","type":"server_error","param":null,"code":"internal_error"}}` + "\n",
			wantTexts: []string{"a"}, wantKind: "stream: internal_error",
		},
		{name: "truncated", status: 200, body: `{"text":"a"}` + "\n", wantTexts: []string{"a"}, wantKind: "stream"},
		{name: "malformed", status: 200, body: "{\"text\":\n", wantKind: "stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got generateBody
			var auth string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth = r.Header.Get("Authorization")
				if r.Method != http.MethodPost || r.URL.Path != "/generate" || json.NewDecoder(r.Body).Decode(&got) != nil {
					http.Error(w, "unexpected request", http.StatusTeapot)
					return
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			target, err := NewHTTPTarget(HTTPConfig{Addr: srv.Listener.Addr().String(), APIKey: "k"})
			if err != nil {
				t.Fatal(err)
			}
			defer target.Close()
			req := Request{Prompt: "hello there", MaxTokens: 3, Temperature: 0.5, Seed: 9, Model: "m"}
			var texts []string
			res, err := target.Stream(t.Context(), req, func(s string) error {
				texts = append(texts, s)
				return nil
			})
			want := generateBody{Model: "m", Prompt: "hello there", MaxTokens: 3, Temperature: 0.5, Seed: 9, Stream: true}
			if !reflect.DeepEqual(got, want) || auth != "Bearer k" {
				t.Errorf("server got %+v with authorization %q, want %+v", got, auth, want)
			}
			if !slices.Equal(texts, tt.wantTexts) {
				t.Errorf("texts = %q, want %q", texts, tt.wantTexts)
			}
			var re *RequestError
			switch {
			case tt.wantKind == "" && (err != nil || res != tt.wantRes):
				t.Errorf("Stream = %+v, %v; want %+v", res, err, tt.wantRes)
			case tt.wantKind != "" && (!errors.As(err, &re) || re.Kind != tt.wantKind):
				t.Errorf("Stream error = %v, want a RequestError of kind %q", err, tt.wantKind)
			}
		})
	}
}

// A stream the caller stops must end on the server too.
func TestHTTPTargetStopClosesTheStream(t *testing.T) {
	ctx := testContext(t)
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"text":"a"}`+"\n")
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
			close(gone)
		case <-ctx.Done():
		}
	}))
	defer srv.Close()
	target, err := NewHTTPTarget(HTTPConfig{Addr: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	errStop := errors.New("stop")
	if _, err := target.Stream(ctx, Request{Prompt: "p", MaxTokens: 100}, func(string) error { return errStop }); !errors.Is(err, errStop) {
		t.Fatalf("Stream = %v, want the callback's error", err)
	}
	select {
	case <-gone:
	case <-ctx.Done():
		t.Fatal("the server never saw the client go")
	}
}

func TestHTTPTargetTransportError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	target, err := NewHTTPTarget(HTTPConfig{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = target.Stream(t.Context(), Request{Prompt: "p", MaxTokens: 1}, func(string) error { return nil })
	if re := (*RequestError)(nil); !errors.As(err, &re) || re.Kind != "transport" {
		t.Errorf("Stream to a closed port = %v, want a transport RequestError", err)
	}
}

func TestHTTPTargetCountTokens(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Text string }
		if r.URL.Path != "/tokenize" || json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, "unexpected request", http.StatusTeapot)
			return
		}
		io.WriteString(w, `{"tokens":[1,2,3],"count":3}`)
	}))
	defer srv.Close()
	target, err := NewHTTPTarget(HTTPConfig{Addr: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := target.CountTokens(context.Background(), "", "abc"); n != 3 || err != nil {
		t.Errorf("CountTokens = %d, %v; want 3", n, err)
	}
}
