package httpserver

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// fakeAPI is an inference.API with canned streams.
type fakeAPI struct {
	texts   []string         // text events of every stream
	result  inference.Result // the Done event's result
	doneErr error            // the Done event's error
	genErr  error            // Generate's error
	// hold: after the texts, the stream waits for the request's ctx to
	// end, then closes cancelled and finishes as the scheduler would.
	hold      bool
	started   chan struct{} // closed when a held Generate is called (hold only)
	cancelled chan struct{} // closed when a held request's ctx ends (hold only)
	tokens    []int32
	tokErr    error
	models    []inference.Model
	// toolFormat is set on streams of requests that may call tools, as
	// the real API does.
	toolFormat toolcall.Format

	mu     sync.Mutex
	reqs   []inference.GenerateRequest
	embeds []inference.EmbedRequest
	tenant string         // inference.Tenant of the last Generate's ctx
	wg     sync.WaitGroup // held streams' goroutines
}

const (
	fakeID    = "0123abcd"
	fakeModel = "test-model"
)

// testResult is a finished request: 7 prompt tokens (2 cached), 3
// generated; queue 2ms, prefill 3ms, decode 10ms.
func testResult() inference.Result {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return inference.Result{
		ID: fakeID, Finish: inference.FinishStop, PromptTokens: 7, CompletionTokens: 3, CachedTokens: 2,
		Timings: inference.Timings{
			Enqueued:   t0,
			Admitted:   t0.Add(2 * time.Millisecond),
			FirstToken: t0.Add(5 * time.Millisecond),
			Finished:   t0.Add(15 * time.Millisecond),
		},
	}
}

func newFake() *fakeAPI {
	return &fakeAPI{
		texts:  []string{"Hel", "lo <b>", " world"},
		result: testResult(),
		tokens: []int32{1, 15043, 3186},
		models: []inference.Model{{ID: fakeModel, ContextSize: 4096, Created: time.Unix(1700000000, 0), OwnedBy: "lumen", Dimensions: 2}},
	}
}

func (f *fakeAPI) Generate(ctx context.Context, req inference.GenerateRequest) (*inference.Stream, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.tenant = inference.Tenant(ctx)
	f.mu.Unlock()
	if f.genErr != nil {
		return nil, f.genErr
	}
	// Room for every event, as the scheduler's channel has.
	events := make(chan inference.Event, len(f.texts)+1)
	for _, t := range f.texts {
		ev := inference.Event{Text: t}
		if req.Logprobs {
			// One token per event, its logprob set by the seed, so that
			// best_of has something to rank.
			ev.Tokens = []inference.TokenInfo{{TokenLogprob: inference.TokenLogprob{ID: 1, Bytes: []byte(t), Logprob: -float32(req.Sampling.Seed % 7)}}}
		}
		events <- ev
	}
	st := &inference.Stream{ID: fakeID, Model: fakeModel, PromptTokens: f.result.PromptTokens, Events: events}
	if len(req.Tools.Tools) > 0 && req.Tools.Choice.Mode != toolcall.None {
		st.ToolFormat = cmp.Or(f.toolFormat, toolcall.Hermes)
	}
	if f.hold {
		close(f.started)
		f.wg.Go(func() {
			<-ctx.Done()
			close(f.cancelled)
			res := f.result
			res.Finish = inference.FinishCancelled
			events <- inference.Event{Done: true, Result: &res, Err: ctx.Err()}
			close(events)
		})
		return st, nil
	}
	res := f.result
	events <- inference.Event{Done: true, Result: &res, Err: f.doneErr}
	close(events)
	return st, nil
}

func (f *fakeAPI) Tokenize(model, text string) ([]int32, error) {
	if model != "" && model != fakeModel {
		return nil, inference.ErrUnknownModel
	}
	return f.tokens, f.tokErr
}

func (f *fakeAPI) Models() []inference.Model { return f.models }

// Detokenize spells each token as t<id>.
func (f *fakeAPI) Detokenize(model string, tokens []int32) (string, error) {
	if model != "" && model != fakeModel {
		return "", inference.ErrUnknownModel
	}
	var b strings.Builder
	for _, t := range tokens {
		fmt.Fprintf(&b, "t%d", t)
	}
	return b.String(), f.tokErr
}

// RenderChat renders each message as role:content; and records them.
func (f *fakeAPI) RenderChat(_ context.Context, model string, msgs []chat.Message, tools []toolcall.Tool) (string, []int32, error) {
	if model != "" && model != fakeModel {
		return "", nil, inference.ErrUnknownModel
	}
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%s:%s;", m.Role, m.Content)
	}
	for _, t := range tools {
		fmt.Fprintf(&b, "tool:%s;", t.Name)
	}
	return b.String(), f.tokens, f.tokErr
}

// lastRequest is the last request Generate received.
func (f *fakeAPI) lastRequest(t *testing.T) inference.GenerateRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("Generate was not called")
	}
	return f.reqs[len(f.reqs)-1]
}

type fakeReady struct{ ready atomic.Bool }

func (r *fakeReady) Ready() bool { return r.ready.Load() }

// serve runs a Server for cfg (API defaulting to a fresh fake) on
// 127.0.0.1:0 until the test ends.
func serve(t *testing.T, cfg Config) (*httptest.Server, *fakeAPI) {
	t.Helper()
	fake, _ := cfg.API.(*fakeAPI)
	if cfg.API == nil {
		fake = newFake()
		cfg.API = fake
	}
	ts := httptest.NewServer(New(cfg).Handler())
	t.Cleanup(func() {
		ts.Close()
		if fake != nil {
			fake.wg.Wait()
		}
	})
	return ts, fake
}

type response struct {
	status  int
	header  http.Header
	trailer http.Header // after the body
	body    []byte
}

// do sends one request; header holds extra header name/value pairs. A
// POST says its body is JSON, as real clients do, unless header sets
// Content-Type; an empty value sends no such header. "Host" sets the Host
// header (the connection still goes to ts).
func do(t *testing.T, ts *httptest.Server, method, path, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		switch name, value := header[i], header[i+1]; {
		case strings.EqualFold(name, "Host"):
			req.Host = value
		case value == "":
			req.Header.Del(name)
		default:
			req.Header.Set(name, value)
		}
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, trailer: resp.Trailer, body: b}
}

// decodeStrict decodes b into v, failing on fields v does not have, so a
// response with extra fields fails the test.
func decodeStrict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

// Embed gives input i the vector {i, len(text or tokens)} and records the
// request.
func (f *fakeAPI) Embed(_ context.Context, req inference.EmbedRequest) (*inference.Embeddings, error) {
	f.mu.Lock()
	f.embeds = append(f.embeds, req)
	f.mu.Unlock()
	if f.genErr != nil {
		return nil, f.genErr
	}
	out := &inference.Embeddings{Model: fakeModel, PromptTokens: 5}
	for i, in := range req.Inputs {
		out.Vectors = append(out.Vectors, []float32{float32(i), float32(len(in.Text) + len(in.Tokens))})
	}
	return out, nil
}
