package loadgen

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/grpcclient"
)

// fakeService answers by the prompt: "ok" streams text and a final
// message, "busy" fails, "hang" sends one chunk and waits for the client
// to go, then closes gone.
type fakeService struct {
	lumenv1.UnimplementedLumenServiceServer
	ctx  context.Context // the test's, to give up waiting
	gone chan struct{}
	reqs chan seenRequest
}

// seenRequest is a request as the fake server got it.
type seenRequest struct {
	req  *lumenv1.GenerateStreamRequest
	auth []string // authorization metadata
}

func (s *fakeService) GenerateStream(req *lumenv1.GenerateStreamRequest, stream grpc.ServerStreamingServer[lumenv1.GenerateStreamResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	s.reqs <- seenRequest{req, md.Get("authorization")}
	switch req.GetPrompt() {
	case "ok":
		for _, text := range []string{"a", "", "b"} {
			if err := stream.Send(&lumenv1.GenerateStreamResponse{Text: text}); err != nil {
				return err
			}
		}
		return stream.Send(&lumenv1.GenerateStreamResponse{
			Text:         "c",
			FinishReason: lumenv1.FinishReason_FINISH_REASON_STOP,
			Usage:        &lumenv1.Usage{PromptTokens: 5, CompletionTokens: 3, CachedTokens: 1, TotalTokens: 8},
			Timings:      &lumenv1.Timings{QueueMs: 0.5, PrefillMs: 1.25},
		})
	case "busy":
		return status.Error(codes.ResourceExhausted, "the admission queue is full")
	case "hang":
		if err := stream.Send(&lumenv1.GenerateStreamResponse{Text: "a"}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			close(s.gone)
		case <-s.ctx.Done():
		}
		return stream.Context().Err()
	}
	return status.Error(codes.InvalidArgument, "unknown prompt")
}

func (s *fakeService) Tokenize(_ context.Context, req *lumenv1.TokenizeRequest) (*lumenv1.TokenizeResponse, error) {
	return &lumenv1.TokenizeResponse{Tokens: make([]int32, len(req.GetText())/2)}, nil
}

func startFakeGRPC(t *testing.T) (*fakeService, *GRPCTarget) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &fakeService{ctx: testContext(t), gone: make(chan struct{}), reqs: make(chan seenRequest, 16)}
	srv := grpc.NewServer()
	lumenv1.RegisterLumenServiceServer(srv, svc)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	target, err := NewGRPCTarget(grpcclient.Config{Addr: l.Addr().String(), APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	return svc, target
}

func TestGRPCTargetStream(t *testing.T) {
	tests := []struct {
		prompt    string
		wantTexts []string
		wantRes   Result
		wantKind  string
	}{
		{prompt: "ok", wantTexts: []string{"a", "b", "c"}, wantRes: Result{FinishReason: "stop", PromptTokens: 5, CachedTokens: 1, CompletionTokens: 3, QueueMS: 0.5, PrefillMS: 1.25}},
		{prompt: "busy", wantKind: "ResourceExhausted"},
	}
	svc, target := startFakeGRPC(t)
	for _, tt := range tests {
		t.Run(tt.prompt, func(t *testing.T) {
			var texts []string
			res, err := target.Stream(t.Context(), Request{Prompt: tt.prompt, MaxTokens: 3, Temperature: 0.5, Seed: 9}, func(s string) error {
				texts = append(texts, s)
				return nil
			})
			got := <-svc.reqs
			if r := got.req; r.GetPrompt() != tt.prompt || r.GetMaxTokens() != 3 || r.GetTemperature() != 0.5 || r.GetSeed() != 9 ||
				!slices.Equal(got.auth, []string{"Bearer k"}) {
				t.Errorf("server got %v with authorization %q", r, got.auth)
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
	if n, err := target.CountTokens(t.Context(), "", "abcdef"); n != 3 || err != nil {
		t.Errorf("CountTokens = %d, %v; want 3", n, err)
	}
}

// A stream the caller stops must end on the server too.
func TestGRPCTargetStopClosesTheStream(t *testing.T) {
	svc, target := startFakeGRPC(t)
	errStop := errors.New("stop")
	if _, err := target.Stream(t.Context(), Request{Prompt: "hang", MaxTokens: 100}, func(string) error { return errStop }); !errors.Is(err, errStop) {
		t.Fatalf("Stream = %v, want the callback's error", err)
	}
	select {
	case <-svc.gone:
	case <-svc.ctx.Done():
		t.Fatal("the server never saw the client go")
	}
}
