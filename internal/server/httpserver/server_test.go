package httpserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The wire shapes, written from the OpenAI API reference independently of
// the package's own types. decodeStrict rejects fields not listed here.

type wireUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

type wireTimings struct {
	QueueMS   float64 `json:"queue_ms"`
	PrefillMS float64 `json:"prefill_ms"`
	TTFTMS    float64 `json:"ttft_ms"`
	DecodeMS  float64 `json:"decode_ms"`
}

type wireCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index        int             `json:"index"`
		Text         string          `json:"text"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	} `json:"choices"`
	Usage   *wireUsage   `json:"usage"`
	Timings *wireTimings `json:"timings"`
}

type wireChat struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason string          `json:"finish_reason"`
	} `json:"choices"`
	Usage   *wireUsage   `json:"usage"`
	Timings *wireTimings `json:"timings"`
}

type wireChatChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	} `json:"choices"`
	Usage   *wireUsage   `json:"usage"`
	Timings *wireTimings `json:"timings"`
}

type wireError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func wantUsage() *wireUsage {
	u := &wireUsage{PromptTokens: 7, CompletionTokens: 3, TotalTokens: 10}
	u.PromptTokensDetails.CachedTokens = 2
	return u
}

func wantTimings() *wireTimings {
	return &wireTimings{QueueMS: 2, PrefillMS: 3, TTFTMS: 5, DecodeMS: 10}
}

const wantText = "Hello <b> world"

func TestCompletion(t *testing.T) {
	ts, _ := serve(t, Config{})
	resp := do(t, ts, "POST", "/v1/completions", `{"model":"test-model","prompt":"Say hi","max_tokens":5}`)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	checkJSONHeaders(t, resp)
	var got wireCompletion
	decodeStrict(t, resp.body, &got)
	if got.ID != "cmpl-"+fakeID || got.Object != "text_completion" || got.Model != fakeModel || got.Created <= 0 {
		t.Errorf("id %q object %q model %q created %d", got.ID, got.Object, got.Model, got.Created)
	}
	if len(got.Choices) != 1 {
		t.Fatalf("%d choices, want 1", len(got.Choices))
	}
	c := got.Choices[0]
	if c.Index != 0 || c.Text != wantText || c.FinishReason == nil || *c.FinishReason != "stop" || string(c.Logprobs) != "null" {
		t.Errorf("choice = %+v (finish %v, logprobs %s)", c, c.FinishReason, c.Logprobs)
	}
	if !reflect.DeepEqual(got.Usage, wantUsage()) {
		t.Errorf("usage = %+v, want %+v", got.Usage, wantUsage())
	}
	if !reflect.DeepEqual(got.Timings, wantTimings()) {
		t.Errorf("timings = %+v, want %+v", got.Timings, wantTimings())
	}
}

func TestChatCompletion(t *testing.T) {
	ts, _ := serve(t, Config{})
	resp := do(t, ts, "POST", "/v1/chat/completions", `{"model":"test-model","messages":[{"role":"user","content":"Hi"}]}`)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	checkJSONHeaders(t, resp)
	var got wireChat
	decodeStrict(t, resp.body, &got)
	if got.ID != "chatcmpl-"+fakeID || got.Object != "chat.completion" || got.Model != fakeModel || got.Created <= 0 {
		t.Errorf("id %q object %q model %q created %d", got.ID, got.Object, got.Model, got.Created)
	}
	if len(got.Choices) != 1 {
		t.Fatalf("%d choices, want 1", len(got.Choices))
	}
	c := got.Choices[0]
	if c.Index != 0 || c.Message.Role != "assistant" || c.Message.Content != wantText || c.FinishReason != "stop" || string(c.Logprobs) != "null" {
		t.Errorf("choice = %+v", c)
	}
	if !reflect.DeepEqual(got.Usage, wantUsage()) {
		t.Errorf("usage = %+v, want %+v", got.Usage, wantUsage())
	}
}

// checkJSONHeaders checks the headers of a finished JSON response.
func checkJSONHeaders(t *testing.T, resp response) {
	t.Helper()
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if st, want := resp.header.Get("Server-Timing"), "queue;dur=2.000, prefill;dur=3.000, decode;dur=10.000"; st != want {
		t.Errorf("Server-Timing = %q, want %q", st, want)
	}
	if id := resp.header.Get("X-Request-Id"); id != fakeID {
		t.Errorf("X-Request-Id = %q", id)
	}
}

// TestRequestDecoding: what each route hands the inference API.
func TestRequestDecoding(t *testing.T) {
	tests := []struct {
		name string
		path string
		body string
		want inference.GenerateRequest
	}{
		{
			name: "completion defaults", path: "/v1/completions", body: `{"prompt":"p"}`,
			want: inference.GenerateRequest{Prompt: "p", Sampling: inference.SamplingParams{Temperature: 1}},
		},
		{
			name: "completion all options", path: "/v1/completions",
			body: `{"model":"m","prompt":["p"],"max_tokens":9,"temperature":0.5,"top_p":0.9,"top_k":40,"min_p":0.05,
				"repetition_penalty":1.1,"frequency_penalty":0.2,"presence_penalty":-0.3,"seed":42,"stop":"\n","n":1,
				"user":"u1","logit_bias":{}}`,
			want: inference.GenerateRequest{Model: "m", Prompt: "p", MaxTokens: 9, Stop: []string{"\n"}, User: "u1",
				Sampling: inference.SamplingParams{Temperature: 0.5, TopP: 0.9, TopK: 40, MinP: 0.05,
					RepeatPenalty: 1.1, FrequencyPenalty: 0.2, PresencePenalty: -0.3, Seed: 42}},
		},
		{
			name: "completion nulls", path: "/v1/completions",
			body: `{"prompt":"p","max_tokens":null,"temperature":null,"stop":null,"seed":null,"stream_options":null}`,
			want: inference.GenerateRequest{Prompt: "p", Sampling: inference.SamplingParams{Temperature: 1}},
		},
		{
			name: "chat", path: "/v1/chat/completions",
			body: `{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
				{"role":"assistant","content":null}],"max_completion_tokens":4,"stop":["x","y"],"temperature":0}`,
			want: inference.GenerateRequest{
				Messages:  []chat.Message{{Role: "system", Content: "s"}, {Role: "user", Content: "a\nb"}, {Role: "assistant"}},
				MaxTokens: 4, Stop: []string{"x", "y"}, Tools: inference.Tools{Parallel: true},
			},
		},
		{
			name: "native keeps greedy default", path: "/generate", body: `{"prompt":"p","max_tokens":3,"top_k":5,"stop":["."]}`,
			want: inference.GenerateRequest{Prompt: "p", MaxTokens: 3, Stop: []string{"."}, Sampling: inference.SamplingParams{TopK: 5}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, fake := serve(t, Config{})
			if resp := do(t, ts, "POST", tt.path, tt.body); resp.status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			got := fake.lastRequest(t)
			// OpenAI routes name their requests as the client will see
			// them (cmpl-…, chatcmpl-…), so spans record that id.
			wantPrefix := map[string]string{"/v1/completions": "cmpl-", "/v1/chat/completions": "chatcmpl-"}[tt.path]
			if !strings.HasPrefix(got.ID, wantPrefix) || (wantPrefix == "") != (got.ID == "") {
				t.Errorf("request id %q, want one starting %q", got.ID, wantPrefix)
			}
			got.ID = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("request =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// sseEvents checks a server-sent event body line by line ("data: …"
// then a blank line, for every event) and returns the events' data.
func sseEvents(t *testing.T, resp response) []string {
	t.Helper()
	if ct := resp.header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	lines := strings.Split(string(resp.body), "\n")
	if len(lines) < 3 || lines[len(lines)-1] != "" {
		t.Fatalf("body does not end with a blank line: %q", resp.body)
	}
	var data []string
	for i, line := range lines[:len(lines)-1] {
		if i%2 == 1 {
			if line != "" {
				t.Fatalf("line %d = %q, want a blank line between events", i, line)
			}
			continue
		}
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %d = %q, want a data: line", i, line)
		}
		data = append(data, d)
	}
	if data[len(data)-1] != "[DONE]" {
		t.Errorf("last event %q, want [DONE]", data[len(data)-1])
	}
	return data[:len(data)-1]
}

func TestChatStream(t *testing.T) {
	for _, includeUsage := range []bool{false, true} {
		t.Run(fmt.Sprint("include_usage=", includeUsage), func(t *testing.T) {
			ts, _ := serve(t, Config{})
			body := fmt.Sprintf(`{"messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":%v}}`, includeUsage)
			resp := do(t, ts, "POST", "/v1/chat/completions", body)
			if resp.status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			if resp.header.Get("X-Request-Id") != fakeID {
				t.Errorf("X-Request-Id = %q", resp.header.Get("X-Request-Id"))
			}
			events := sseEvents(t, resp)
			chunks := make([]wireChatChunk, len(events))
			for i, e := range events {
				decodeStrict(t, []byte(e), &chunks[i])
				c := chunks[i]
				if c.ID != "chatcmpl-"+fakeID || c.Object != "chat.completion.chunk" || c.Model != fakeModel || c.Created != chunks[0].Created {
					t.Errorf("chunk %d: id %q object %q model %q created %d", i, c.ID, c.Object, c.Model, c.Created)
				}
			}
			if includeUsage {
				last := chunks[len(chunks)-1]
				chunks = chunks[:len(chunks)-1]
				if len(last.Choices) != 0 || !reflect.DeepEqual(last.Usage, wantUsage()) {
					t.Errorf("usage chunk: choices %+v usage %+v, want none and %+v", last.Choices, last.Usage, wantUsage())
				}
				if !strings.Contains(events[len(events)-1], `"choices":[]`) {
					t.Errorf("usage chunk %s: choices must be [], not absent or null", events[len(events)-1])
				}
			}
			var text strings.Builder
			for i, c := range chunks {
				if len(c.Choices) != 1 || c.Usage != nil {
					t.Fatalf("chunk %d: %d choices, usage %+v", i, len(c.Choices), c.Usage)
				}
				ch := c.Choices[0]
				first, last := i == 0, i == len(chunks)-1
				switch {
				case first:
					if ch.Delta.Role == nil || *ch.Delta.Role != "assistant" || ch.Delta.Content == nil || *ch.Delta.Content != "" {
						t.Errorf("first delta = %s, want role assistant and empty content", events[i])
					}
				case ch.Delta.Role != nil:
					t.Errorf("chunk %d repeats the role", i)
				}
				if last {
					if ch.FinishReason == nil || *ch.FinishReason != "stop" || ch.Delta.Content != nil {
						t.Errorf("last chunk = %s, want an empty delta and finish_reason stop", events[i])
					}
					// Streaming clients see the phases too, as whole replies do.
					if c.Timings == nil || c.Timings.TTFTMS != c.Timings.QueueMS+c.Timings.PrefillMS || c.Timings.DecodeMS <= 0 {
						t.Errorf("last chunk = %s, want timings whose queue and prefill add up to ttft", events[i])
					}
				} else if c.Timings != nil {
					t.Errorf("chunk %d = %s: timings before the last chunk", i, events[i])
				} else if ch.FinishReason != nil || string(ch.Logprobs) != "null" {
					t.Errorf("chunk %d = %s, want finish_reason and logprobs null", i, events[i])
				}
				if ch.Delta.Content != nil {
					text.WriteString(*ch.Delta.Content)
				}
			}
			if text.String() != wantText {
				t.Errorf("deltas concatenate to %q, want %q", text.String(), wantText)
			}
		})
	}
}

func TestCompletionStream(t *testing.T) {
	ts, _ := serve(t, Config{})
	resp := do(t, ts, "POST", "/v1/completions", `{"prompt":"p","stream":true,"stream_options":{"include_usage":true}}`)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	events := sseEvents(t, resp)
	var text strings.Builder
	for i, e := range events {
		var c wireCompletion
		decodeStrict(t, []byte(e), &c)
		if c.ID != "cmpl-"+fakeID || c.Object != "text_completion" || (c.Timings != nil) != (i == len(events)-2) {
			t.Errorf("chunk %d = %s (timings on the finish chunk only)", i, e)
		}
		switch i {
		case len(events) - 1:
			if len(c.Choices) != 0 || !reflect.DeepEqual(c.Usage, wantUsage()) {
				t.Errorf("usage chunk = %s", e)
			}
		case len(events) - 2:
			if len(c.Choices) != 1 || c.Choices[0].FinishReason == nil || *c.Choices[0].FinishReason != "stop" || c.Choices[0].Text != "" {
				t.Errorf("finish chunk = %s", e)
			}
		default:
			if len(c.Choices) != 1 || c.Choices[0].FinishReason != nil || c.Usage != nil {
				t.Errorf("text chunk = %s", e)
			}
			text.WriteString(c.Choices[0].Text)
		}
	}
	if text.String() != wantText {
		t.Errorf("text = %q, want %q", text.String(), wantText)
	}
}

// TestStreamFailsMidway: an error after the stream started is its last
// event (then [DONE]), without internal detail.
func TestStreamFailsMidway(t *testing.T) {
	fake := newFake()
	fake.doneErr = fmt.Errorf("%w: decode: secret detail", reqerr.ErrEngine)
	fake.result.Finish = inference.FinishError
	ts, _ := serve(t, Config{API: fake})
	resp := do(t, ts, "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"stream":true}`)
	events := sseEvents(t, resp)
	if strings.Contains(string(resp.body), "secret") {
		t.Errorf("body leaks the internal error: %s", resp.body)
	}
	// role chunk, 3 text chunks, the error.
	if len(events) != 5 {
		t.Fatalf("%d events, want 5: %q", len(events), events)
	}
	var e wireError
	decodeStrict(t, []byte(events[4]), &e)
	if e.Error.Type != "server_error" || e.Error.Code == nil || *e.Error.Code != "internal_error" {
		t.Errorf("error event = %s", events[4])
	}

	// The same failure before anything was sent is a plain 500.
	resp = do(t, ts, "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}]}`)
	if resp.status != http.StatusInternalServerError || strings.Contains(string(resp.body), "secret") {
		t.Errorf("non-streaming: status %d body %s", resp.status, resp.body)
	}
}

// TestStreamFailureMarksTransportSpan: a stream cut by the server after
// its 200 (shutdown here) leaves the transport's span with status Error
// and the failure's error.type — the status code alone says success.
func TestStreamFailureMarksTransportSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	fake := newFake()
	fake.doneErr = fmt.Errorf("drain: %w", reqerr.ErrShutdown)
	fake.result.Finish = inference.FinishCancelled
	ts, _ := serve(t, Config{API: fake, Middleware: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, span := tp.Tracer("test").Start(r.Context(), "transport")
			defer span.End()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}})
	for _, tt := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"stream":true}`},
		{"/v1/completions", `{"prompt":"Hi","stream":true}`},
		{"/generate", `{"prompt":"Hi","stream":true}`},
	} {
		before := len(rec.Ended())
		resp := do(t, ts, "POST", tt.path, tt.body)
		if resp.status != http.StatusOK || !strings.Contains(string(resp.body), "error") {
			t.Fatalf("%s: status %d, body %s: want a 200 ending in an error event", tt.path, resp.status, resp.body)
		}
		ended := rec.Ended()
		if len(ended) != before+1 {
			t.Fatalf("%s: %d spans ended, want 1", tt.path, len(ended)-before)
		}
		span := ended[len(ended)-1]
		if span.Status().Code != codes.Error {
			t.Errorf("%s: transport span status %v, want Error", tt.path, span.Status())
		}
		var kind string
		for _, kv := range span.Attributes() {
			if kv.Key == semconv.AttrErrorType {
				kind = kv.Value.AsString()
			}
		}
		if kind != semconv.ErrorShutdown {
			t.Errorf("%s: error.type = %q, want %q", tt.path, kind, semconv.ErrorShutdown)
		}
	}
}

func TestGenerate(t *testing.T) {
	ts, _ := serve(t, Config{})
	resp := do(t, ts, "POST", "/generate", `{"prompt":"Once upon a time","max_tokens":3}`)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	checkJSONHeaders(t, resp)
	var got struct {
		ID           string       `json:"id"`
		Text         string       `json:"text"`
		FinishReason string       `json:"finish_reason"`
		Usage        *wireUsage   `json:"usage"`
		Timings      *wireTimings `json:"timings"`
	}
	decodeStrict(t, resp.body, &got)
	if got.ID != fakeID || got.Text != wantText || got.FinishReason != "stop" ||
		!reflect.DeepEqual(got.Usage, wantUsage()) || !reflect.DeepEqual(got.Timings, wantTimings()) {
		t.Errorf("response = %s", resp.body)
	}
}

func TestGenerateStream(t *testing.T) {
	ts, _ := serve(t, Config{})
	resp := do(t, ts, "POST", "/generate", `{"prompt":"Once","stream":true}`)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q", ct)
	}
	lines := strings.Split(strings.TrimSuffix(string(resp.body), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 3 text lines and a final one: %q", len(lines), resp.body)
	}
	var text strings.Builder
	for _, line := range lines[:3] {
		var l struct {
			Text string `json:"text"`
		}
		decodeStrict(t, []byte(line), &l)
		text.WriteString(l.Text)
	}
	if text.String() != wantText {
		t.Errorf("text = %q, want %q", text.String(), wantText)
	}
	var final struct {
		ID           string       `json:"id"`
		FinishReason string       `json:"finish_reason"`
		Usage        *wireUsage   `json:"usage"`
		Timings      *wireTimings `json:"timings"`
	}
	decodeStrict(t, []byte(lines[3]), &final)
	if final.ID != fakeID || final.FinishReason != "stop" || !reflect.DeepEqual(final.Usage, wantUsage()) || !reflect.DeepEqual(final.Timings, wantTimings()) {
		t.Errorf("final line = %s", lines[3])
	}
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		name   string
		tokens []int32
		body   string
		want   string
	}{
		{"tokens", []int32{1, 15043, 3186}, `{"text":"Hello world"}`, `{"tokens":[1,15043,3186],"count":3,"max_model_len":4096}`},
		{"with model", []int32{1}, `{"text":"","model":"test-model"}`, `{"tokens":[1],"count":1,"max_model_len":4096}`},
		{"none", nil, `{"text":""}`, `{"tokens":[],"count":0,"max_model_len":4096}`},
		{"vLLM prompt", []int32{1, 2}, `{"prompt":"Hi"}`, `{"tokens":[1,2],"count":2,"max_model_len":4096}`},
		{"llama.cpp content", []int32{1, 2}, `{"content":"Hi"}`, `{"tokens":[1,2],"count":2,"max_model_len":4096}`},
		{"messages", []int32{1, 2}, `{"messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}`,
			`{"tokens":[1,2],"count":2,"max_model_len":4096,"prompt":"user:Hi;tool:f;"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake()
			fake.tokens = tt.tokens
			ts, _ := serve(t, Config{API: fake})
			resp := do(t, ts, "POST", "/tokenize", tt.body)
			if resp.status != http.StatusOK || strings.TrimSpace(string(resp.body)) != tt.want {
				t.Errorf("status %d body %s, want %s", resp.status, resp.body, tt.want)
			}
		})
	}
	ts, _ := serve(t, Config{})
	for _, tt := range []struct{ body, param string }{
		{`{}`, "text"},
		{`{"text":"a","prompt":"b"}`, "text"},
		{`{"text":"a","messages":[{"role":"user","content":"x"}]}`, "text"},
		{`{"messages":[]}`, "messages"},
		{`{"text":"a","tools":[{"type":"function","function":{"name":"f"}}]}`, "tools"},
		{`{"messages":[{"role":"user","content":3}]}`, "messages[0].content"},
	} {
		checkError(t, do(t, ts, "POST", "/tokenize", tt.body), http.StatusBadRequest, tt.param, "")
	}
}

func TestDetokenizeAndApplyTemplate(t *testing.T) {
	ts, _ := serve(t, Config{})
	resp := do(t, ts, "POST", "/detokenize", `{"tokens":[5,7]}`)
	if want := `{"prompt":"t5t7","content":"t5t7"}`; resp.status != 200 || strings.TrimSpace(string(resp.body)) != want {
		t.Errorf("detokenize: status %d body %s, want %s", resp.status, resp.body, want)
	}
	checkError(t, do(t, ts, "POST", "/detokenize", `{}`), http.StatusBadRequest, "tokens", "")
	checkError(t, do(t, ts, "POST", "/detokenize", `{"tokens":["a"]}`), http.StatusBadRequest, "tokens", "")
	checkError(t, do(t, ts, "POST", "/detokenize", `{"tokens":[1],"model":"other"}`), http.StatusNotFound, "model", "model_not_found")

	resp = do(t, ts, "POST", "/apply-template", `{"messages":[{"role":"system","content":"S"},{"role":"user","content":"U"}]}`)
	if want := `{"prompt":"system:S;user:U;"}`; resp.status != 200 || strings.TrimSpace(string(resp.body)) != want {
		t.Errorf("apply-template: status %d body %s, want %s", resp.status, resp.body, want)
	}
	checkError(t, do(t, ts, "POST", "/apply-template", `{}`), http.StatusBadRequest, "messages", "")
}

func TestModels(t *testing.T) {
	ts, _ := serve(t, Config{})
	resp := do(t, ts, "GET", "/v1/models", "")
	want := `{"object":"list","data":[{"id":"test-model","object":"model","created":1700000000,"owned_by":"lumen"}]}`
	if resp.status != http.StatusOK || strings.TrimSpace(string(resp.body)) != want {
		t.Errorf("GET /v1/models: status %d body %s, want %s", resp.status, resp.body, want)
	}
	resp = do(t, ts, "GET", "/v1/models/test-model", "")
	want = `{"id":"test-model","object":"model","created":1700000000,"owned_by":"lumen"}`
	if resp.status != http.StatusOK || strings.TrimSpace(string(resp.body)) != want {
		t.Errorf("GET /v1/models/test-model: status %d body %s, want %s", resp.status, resp.body, want)
	}
	resp = do(t, ts, "GET", "/v1/models/org/other", "")
	checkError(t, resp, http.StatusNotFound, "model", "model_not_found")
}

func TestHealth(t *testing.T) {
	ready := &fakeReady{}
	ts, _ := serve(t, Config{Ready: ready, Keys: auth.NewKeys("k")})
	check := func(path string, want int, wantBody string) {
		t.Helper()
		resp := do(t, ts, "GET", path, "")
		if resp.status != want || string(resp.body) != wantBody {
			t.Errorf("GET %s = %d %q, want %d %q", path, resp.status, resp.body, want, wantBody)
		}
	}
	check("/healthz", http.StatusOK, "ok\n")
	check("/readyz", http.StatusServiceUnavailable, "not ready\n")
	ready.ready.Store(true)
	check("/readyz", http.StatusOK, "ready\n")
	check("/healthz", http.StatusOK, "ok\n")
}

// checkError checks an error response's status and OpenAI error body.
func checkError(t *testing.T, resp response, status int, param, code string) wireError {
	t.Helper()
	var e wireError
	if resp.status != status {
		t.Errorf("status %d, want %d (body %s)", resp.status, status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	decodeStrict(t, resp.body, &e)
	if e.Error.Message == "" || e.Error.Type == "" {
		t.Errorf("error body %s lacks message or type", resp.body)
	}
	if got := deref(e.Error.Param); got != param {
		t.Errorf("param %q, want %q (body %s)", got, param, resp.body)
	}
	if got := deref(e.Error.Code); code != "" && got != code {
		t.Errorf("code %q, want %q (body %s)", got, code, resp.body)
	}
	return e
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestBadRequests(t *testing.T) {
	const chat = "/v1/chat/completions"
	const maxBody = 4096
	tests := []struct {
		name       string
		method     string // default POST
		path       string
		body       string
		genErr     error // returned by the fake's Generate
		wantStatus int
		wantParam  string
		wantCode   string
		wantType   string
		wantHeader map[string]string
	}{
		{name: "malformed JSON", path: chat, body: `{"messages":[`, wantStatus: 400, wantType: "invalid_request_error"},
		{name: "trailing garbage", path: "/generate", body: `{"prompt":"p"} x`, wantStatus: 400},
		{name: "empty body", path: "/generate", body: ``, wantStatus: 400},
		{name: "not an object", path: "/generate", body: `["p"]`, wantStatus: 400},
		{name: "max_tokens wrong type", path: "/v1/completions", body: `{"prompt":"p","max_tokens":"ten"}`, wantStatus: 400, wantParam: "max_tokens"},
		{name: "max_tokens fractional", path: "/v1/completions", body: `{"prompt":"p","max_tokens":1.5}`, wantStatus: 400, wantParam: "max_tokens"},
		{name: "max_tokens negative", path: "/v1/completions", body: `{"prompt":"p","max_tokens":-1}`, wantStatus: 400, wantParam: "max_tokens"},
		{name: "max_tokens zero", path: "/generate", body: `{"prompt":"p","max_tokens":0}`, wantStatus: 400, wantParam: "max_tokens"},
		{name: "stream wrong type", path: chat, body: `{"messages":[{"role":"user","content":"a"}],"stream":"yes"}`, wantStatus: 400, wantParam: "stream"},
		{name: "temperature wrong type", path: chat, body: `{"messages":[{"role":"user","content":"a"}],"temperature":"hot"}`, wantStatus: 400, wantParam: "temperature"},
		{name: "n=0", path: chat, body: `{"messages":[{"role":"user","content":"a"}],"n":0}`, wantStatus: 400, wantParam: "n"},
		{name: "n over the limit", path: "/v1/completions", body: `{"prompt":["a","b"],"n":65}`, wantStatus: 400, wantParam: "n"},
		{name: "seed out of range", path: chat, body: `{"messages":[{"role":"user","content":"a"}],"seed":-1}`, wantStatus: 400, wantParam: "seed"},
		{name: "stop wrong type", path: "/v1/completions", body: `{"prompt":"p","stop":5}`, wantStatus: 400, wantParam: "stop"},
		{name: "stop array of numbers", path: "/v1/completions", body: `{"prompt":"p","stop":[1]}`, wantStatus: 400, wantParam: "stop"},
		{name: "invalid UTF-8", path: "/v1/completions", body: "{\"prompt\":\"a\xff\xfeb\"}", wantStatus: 400, wantParam: "prompt"},
		{name: "oversized body", path: "/generate", body: `{"prompt":"` + strings.Repeat("a", maxBody) + `"}`, wantStatus: 413, wantCode: "request_too_large"},
		{name: "messages missing", path: chat, body: `{"model":"m"}`, wantStatus: 400, wantParam: "messages"},
		{name: "messages empty", path: chat, body: `{"messages":[]}`, wantStatus: 400, wantParam: "messages"},
		{name: "content wrong type", path: chat, body: `{"messages":[{"role":"user","content":3}]}`, wantStatus: 400, wantParam: "messages[0].content"},
		{name: "image content", path: chat, body: `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, wantStatus: 400, wantParam: "messages[0].content[0].type"},
		{name: "prompt missing", path: "/v1/completions", body: `{"max_tokens":3}`, wantStatus: 400, wantParam: "prompt"},
		{name: "empty prompt array", path: "/v1/completions", body: `{"prompt":[]}`, wantStatus: 400, wantParam: "prompt"},
		{name: "mixed prompt array", path: "/v1/completions", body: `{"prompt":["a",1]}`, wantStatus: 400, wantParam: "prompt"},
		{name: "empty token array", path: "/v1/completions", body: `{"prompt":[[1],[]]}`, wantStatus: 400, wantParam: "prompt[1]"},
		{name: "echo of tokens", path: "/v1/completions", body: `{"prompt":[1,2],"echo":true}`, wantStatus: 400, wantParam: "echo"},
		{name: "top_logprobs over 20", path: chat, body: `{"messages":[{"role":"user","content":"a"}],"logprobs":true,"top_logprobs":21}`, wantStatus: 400, wantParam: "top_logprobs"},
		{name: "min_tokens over max_tokens", path: "/v1/completions", body: `{"prompt":"p","max_tokens":2,"min_tokens":3}`, wantStatus: 400, wantParam: "min_tokens"},
		{name: "native prompt missing", path: "/generate", body: `{}`, wantStatus: 400, wantParam: "prompt"},
		{name: "tokenize text missing", path: "/tokenize", body: `{}`, wantStatus: 400, wantParam: "text"},
		{name: "tokenize unknown model", path: "/tokenize", body: `{"text":"a","model":"nope"}`, wantStatus: 404, wantParam: "model", wantCode: "model_not_found"},
		{
			name: "unknown model", path: chat, body: `{"model":"nope","messages":[{"role":"user","content":"a"}]}`,
			genErr: fmt.Errorf("model %q: %w", "nope", inference.ErrUnknownModel), wantStatus: 404, wantParam: "model", wantCode: "model_not_found",
		},
		{
			name: "invalid from API", path: chat, body: `{"messages":[{"role":"user","content":"a"}],"temperature":7}`,
			genErr: &reqerr.InvalidError{Field: "temperature", Reason: "must be between 0 and 2"}, wantStatus: 400, wantParam: "temperature",
		},
		{
			name: "queue full", path: "/v1/completions", body: `{"prompt":"p"}`, genErr: fmt.Errorf("9 waiting: %w", reqerr.ErrQueueFull),
			wantStatus: 429, wantType: "rate_limit_error", wantHeader: map[string]string{"Retry-After": "1"},
		},
		{name: "draining", path: "/generate", body: `{"prompt":"p"}`, genErr: reqerr.ErrDraining, wantStatus: 503},
		{
			name: "loading", path: "/v1/chat/completions", body: `{"messages":[{"role":"user","content":"a"}]}`, genErr: inference.ErrLoading,
			wantStatus: 503, wantCode: "model_loading", wantHeader: map[string]string{"Retry-After": "1"},
		},
		{name: "shutdown", path: "/generate", body: `{"prompt":"p"}`, genErr: reqerr.ErrShutdown, wantStatus: 503},
		{name: "unexpected error", path: "/generate", body: `{"prompt":"p"}`, genErr: errors.New("secret detail"), wantStatus: 500, wantCode: "internal_error"},
		{name: "GET on a POST route", method: "GET", path: chat, wantStatus: 405, wantHeader: map[string]string{"Allow": "POST"}},
		{name: "POST on a GET route", path: "/v1/models", body: `{}`, wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, HEAD"}},
		{name: "DELETE on health", method: "DELETE", path: "/healthz", wantStatus: 405},
		{name: "unknown route", path: "/v1/audio/speech", body: `{}`, wantStatus: 404, wantCode: "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake()
			fake.genErr = tt.genErr
			ts, _ := serve(t, Config{API: fake, MaxBodyBytes: maxBody})
			method := tt.method
			if method == "" {
				method = "POST"
			}
			resp := do(t, ts, method, tt.path, tt.body)
			e := checkError(t, resp, tt.wantStatus, tt.wantParam, tt.wantCode)
			if tt.wantType != "" && e.Error.Type != tt.wantType {
				t.Errorf("type %q, want %q", e.Error.Type, tt.wantType)
			}
			if strings.Contains(string(resp.body), "secret") {
				t.Errorf("body leaks internals: %s", resp.body)
			}
			for k, v := range tt.wantHeader {
				if got := resp.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		header     []string
		wantStatus int
	}{
		{"missing key", "POST", "/v1/completions", nil, 401},
		{"wrong key", "POST", "/v1/chat/completions", []string{"Authorization", "Bearer nope"}, 401},
		{"wrong scheme", "POST", "/generate", []string{"Authorization", "Basic s3cret"}, 401},
		{"models needs a key", "GET", "/v1/models", nil, 401},
		{"tokenize needs a key", "POST", "/tokenize", nil, 401},
		{"right key", "POST", "/v1/completions", []string{"Authorization", "Bearer s3cret"}, 200},
		{"scheme is case-insensitive", "POST", "/generate", []string{"Authorization", "bearer s3cret"}, 200},
		{"healthz is open", "GET", "/healthz", nil, 200},
		{"readyz is open", "GET", "/readyz", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, _ := serve(t, Config{Keys: auth.NewKeys("s3cret")})
			body := ""
			if tt.method == "POST" {
				body = `{"prompt":"p","text":"t","messages":[{"role":"user","content":"a"}]}`
			}
			resp := do(t, ts, tt.method, tt.path, body, tt.header...)
			if tt.wantStatus != http.StatusUnauthorized {
				if resp.status != tt.wantStatus {
					t.Errorf("status %d, want %d: %s", resp.status, tt.wantStatus, resp.body)
				}
				return
			}
			checkError(t, resp, http.StatusUnauthorized, "", "invalid_api_key")
			if resp.header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate header")
			}
		})
	}
}

// TestClientDisconnect: a client that goes away cancels the context the
// API got, streaming or not, and the handler returns.
func TestClientDisconnect(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		body   string
		stream bool
	}{
		{"chat stream", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"stream":true}`, true},
		{"native stream", "/generate", `{"prompt":"p","stream":true}`, true},
		{"unary", "/v1/completions", `{"prompt":"p"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake()
			fake.hold = true
			fake.started = make(chan struct{})
			fake.cancelled = make(chan struct{})
			ts, _ := serve(t, Config{API: fake})

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "POST", ts.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			got := make(chan error, 1)
			go func() {
				resp, err := ts.Client().Do(req)
				if err == nil {
					if tt.stream {
						// The headers and the first event arrive before
						// the stream ends.
						_, err = bufio.NewReader(resp.Body).ReadString('\n')
					}
					resp.Body.Close()
				}
				got <- err
			}()
			<-fake.started
			if tt.stream {
				if err := <-got; err != nil {
					t.Fatalf("reading the first event: %v", err)
				}
			}
			cancel()
			select {
			case <-fake.cancelled:
			case <-time.After(10 * time.Second): // a guard against hanging, not synchronisation
				t.Fatal("the API's context was not cancelled")
			}
			if !tt.stream {
				if err := <-got; !errors.Is(err, context.Canceled) {
					t.Errorf("client error = %v, want context.Canceled", err)
				}
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	ts, _ := serve(t, Config{Middleware: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Wrapped", "yes")
			next.ServeHTTP(w, r)
		})
	}})
	for _, path := range []string{"/healthz", "/v1/models"} {
		if resp := do(t, ts, "GET", path, ""); resp.header.Get("X-Wrapped") != "yes" {
			t.Errorf("GET %s was not wrapped", path)
		}
	}
}

// TestClassify: the status of every error the server can meet, wrapped
// as callers wrap them.
func TestClassify(t *testing.T) {
	tests := []struct {
		have error
		want int
	}{
		{&reqerr.InvalidError{Field: "x", Reason: "y"}, 400},
		{fmt.Errorf("wrapped: %w", &reqerr.InvalidError{Field: "x"}), 400},
		{reqerr.ErrInvalid, 400},
		{fmt.Errorf("%w: x", errMalformed), 400},
		{&http.MaxBytesError{Limit: 10}, 413},
		{auth.ErrUnauthenticated, 401},
		{fmt.Errorf("m: %w", inference.ErrUnknownModel), 404},
		{errNoRoute, 404},
		{errMethod, 405},
		{fmt.Errorf("%w: no Content-Type", errMediaType), 415},
		{fmt.Errorf("%w: %q", errHostNotAllowed, "evil.example"), 403},
		{fmt.Errorf("%w: %q", errOriginNotAllowed, "https://evil.example"), 403},
		{fmt.Errorf("3: %w", reqerr.ErrQueueFull), 429},
		{reqerr.ErrDraining, 503},
		{inference.ErrLoading, 503},
		{reqerr.ErrShutdown, 503},
		{context.Canceled, statusClientClosedRequest},
		{fmt.Errorf("%w: boom", reqerr.ErrEngine), 500},
		{inference.ErrNoResult, 500},
		{errors.New("anything"), 500},
	}
	for _, tt := range tests {
		if got := classify(tt.have); got.status != tt.want {
			t.Errorf("classify(%v) = %d, want %d", tt.have, got.status, tt.want)
		}
	}
}

// TestServerTimingTrailer: a streaming client that takes trailers (TE:
// trailers) gets the finished request's Server-Timing after the body; one
// that does not gets no trailer (its timings are on the last event).
func TestServerTimingTrailer(t *testing.T) {
	ts, _ := serve(t, Config{})
	for _, tt := range []struct {
		path, body string
	}{
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"stream":true}`},
		{"/v1/completions", `{"prompt":"p","stream":true}`},
		{"/generate", `{"prompt":"p","stream":true}`},
	} {
		const want = "queue;dur=2.000, prefill;dur=3.000, decode;dur=10.000"
		resp := do(t, ts, "POST", tt.path, tt.body, "TE", "trailers")
		if got := resp.trailer.Get("Server-Timing"); resp.status != 200 || got != want {
			t.Errorf("%s: status %d, Server-Timing trailer %q, want %q", tt.path, resp.status, got, want)
		}
		resp = do(t, ts, "POST", tt.path, tt.body)
		if len(resp.trailer) != 0 || resp.header.Get("Trailer") != "" {
			t.Errorf("%s without TE: trailers %v (announced %q)", tt.path, resp.trailer, resp.header.Get("Trailer"))
		}
	}
}

// TestTenantHeader: X-Tenant-ID reaches the inference layer as the
// tenant.id baggage member, beside baggage the caller sent.
func TestTenantHeader(t *testing.T) {
	ts, fake := serve(t, Config{})
	for _, tt := range []struct{ header, want string }{{"acme", "acme"}, {"", ""}} {
		if resp := do(t, ts, "POST", "/generate", `{"prompt":"p"}`, "X-Tenant-ID", tt.header); resp.status != 200 {
			t.Fatalf("status %d", resp.status)
		}
		fake.mu.Lock()
		got := fake.tenant
		fake.mu.Unlock()
		if got != tt.want {
			t.Errorf("X-Tenant-ID %q: tenant %q, want %q", tt.header, got, tt.want)
		}
	}
}
