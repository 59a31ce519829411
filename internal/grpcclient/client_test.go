package grpcclient

import (
	"context"
	"errors"
	"net"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/server/grpcserver"
	"github.com/lumenllm/lumen/internal/toolcall"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeAPI streams "Hel", "lo" and stops, or, with live set, sends "a" and
// waits for its request's ctx to end, reporting that on cancelled.
type fakeAPI struct {
	live      bool
	cancelled chan error
}

func (f *fakeAPI) Generate(ctx context.Context, _ inference.GenerateRequest) (*inference.Stream, error) {
	ch := make(chan scheduler.Event, 4)
	if f.live {
		ch <- scheduler.Event{Text: "a"}
		go func() {
			<-ctx.Done()
			f.cancelled <- ctx.Err()
			ch <- scheduler.Event{Done: true, Err: ctx.Err(), Result: &scheduler.Result{Finish: scheduler.FinishCancelled}}
			close(ch)
		}()
	} else {
		ch <- scheduler.Event{Text: "Hel"}
		ch <- scheduler.Event{Text: "lo"}
		ch <- scheduler.Event{Done: true, Result: &scheduler.Result{Finish: scheduler.FinishLength, PromptTokens: 3, CompletionTokens: 2}}
		close(ch)
	}
	return &inference.Stream{ID: "r1", Model: "m", Events: ch}, nil
}

func (f *fakeAPI) Tokenize(string, string) ([]int32, error)   { return []int32{1, 2}, nil }
func (f *fakeAPI) Models() []inference.Model                  { return []inference.Model{{ID: "m"}} }
func (f *fakeAPI) Detokenize(string, []int32) (string, error) { return "", nil }
func (f *fakeAPI) RenderChat(context.Context, string, []chat.Message, []toolcall.Tool) (string, []int32, error) {
	return "", nil, nil
}

// serve starts a real server on 127.0.0.1 and returns its address.
func serve(t *testing.T, api inference.API, keys auth.Keys) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(grpcserver.Config{API: api, Keys: keys})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

func dial(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStream(t *testing.T) {
	tests := []struct {
		name      string
		key       string
		wantText  string
		wantCode  codes.Code
		wantError string // Describe's text
	}{
		{"right key", "k", "Hello", codes.OK, ""},
		{"wrong key", "x", "", codes.Unauthenticated, "Unauthenticated: missing or invalid API key"},
		{"no key", "", "", codes.Unauthenticated, "Unauthenticated: missing or invalid API key"},
	}
	addr := serve(t, &fakeAPI{}, auth.NewKeys("k"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, Config{Addr: addr, APIKey: tt.key})
			var text string
			final, err := c.Stream(t.Context(), &lumenv1.GenerateStreamRequest{Prompt: "hi"}, func(m *lumenv1.GenerateStreamResponse) error {
				text += m.Text
				return nil
			})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("got %v, want code %v", err, tt.wantCode)
			}
			if err != nil {
				if got := Describe(err); got.Error() != tt.wantError || status.Code(got) != tt.wantCode {
					t.Errorf("Describe = %q (code %v), want %q", got, status.Code(got), tt.wantError)
				}
				return
			}
			if text != tt.wantText {
				t.Errorf("text = %q, want %q", text, tt.wantText)
			}
			if final.FinishReason != lumenv1.FinishReason_FINISH_REASON_LENGTH || final.Usage.GetTotalTokens() != 5 {
				t.Errorf("final message = %v", final)
			}
		})
	}
}

func TestStreamCallbackErrorCancelsGeneration(t *testing.T) {
	api := &fakeAPI{live: true, cancelled: make(chan error, 1)}
	c := dial(t, Config{Addr: serve(t, api, auth.Keys{})})
	stop := errors.New("reader gone")
	_, err := c.Stream(t.Context(), &lumenv1.GenerateStreamRequest{Prompt: "hi"}, func(*lumenv1.GenerateStreamResponse) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("Stream = %v, want the callback's error", err)
	}
	if err := <-api.cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("server request ended with %v, want context.Canceled", err)
	}
}

func TestUnaryCalls(t *testing.T) {
	c := dial(t, Config{Addr: serve(t, &fakeAPI{}, auth.NewKeys("k")), APIKey: "k"})
	resp, err := c.Generate(t.Context(), &lumenv1.GenerateRequest{Prompt: "hi"})
	if err != nil || resp.Text != "Hello" {
		t.Errorf("Generate = %v, %v", resp, err)
	}
	toks, err := c.Tokenize(t.Context(), &lumenv1.TokenizeRequest{Text: "hi"})
	if err != nil || len(toks.Tokens) != 2 {
		t.Errorf("Tokenize = %v, %v", toks, err)
	}
	models, err := c.ListModels(t.Context(), &lumenv1.ListModelsRequest{})
	if err != nil || len(models.Models) != 1 {
		t.Errorf("ListModels = %v, %v", models, err)
	}
}

func TestNewNeedsAddress(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without an address succeeded")
	}
}

func (f *fakeAPI) Embed(context.Context, inference.EmbedRequest) (*inference.Embeddings, error) {
	return nil, nil
}
