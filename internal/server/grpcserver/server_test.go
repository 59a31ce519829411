package grpcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/toolcall"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeAPI is an inference.API with canned answers.
type fakeAPI struct {
	// events is the stream Generate returns; it is closed after them.
	events []inference.Event
	// live, when set, makes the stream instead, on its own goroutine with
	// the request's context; it must close events and never block on a
	// full channel (it has room for 16 events).
	live func(ctx context.Context, events chan<- inference.Event)
	// err is returned by Generate and Tokenize.
	err    error
	tokens []int32
	models []inference.Model
	// got, when set, receives every Generate request (the test sizes it).
	got chan inference.GenerateRequest
	// toolFormat is the stream's ToolFormat (a request that may call tools).
	toolFormat toolcall.Format
}

func (f *fakeAPI) Generate(ctx context.Context, req inference.GenerateRequest) (*inference.Stream, error) {
	if f.got != nil {
		f.got <- req
	}
	if f.err != nil {
		return nil, f.err
	}
	ch := make(chan inference.Event, max(len(f.events), 16))
	if f.live != nil {
		go f.live(ctx, ch)
	} else {
		for _, ev := range f.events {
			ch <- ev
		}
		close(ch)
	}
	return &inference.Stream{ID: "req-1", Model: "fake-model", PromptTokens: 5, Events: ch, ToolFormat: f.toolFormat}, nil
}

func (f *fakeAPI) Tokenize(model, text string) ([]int32, error) { return f.tokens, f.err }

func (f *fakeAPI) Models() []inference.Model { return f.models }

func (f *fakeAPI) Detokenize(_ string, tokens []int32) (string, error) {
	return fmt.Sprint(tokens), f.err
}

func (f *fakeAPI) RenderChat(_ context.Context, _ string, msgs []chat.Message, tools []toolcall.Tool) (string, []int32, error) {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%s:%s;", m.Role, m.Content)
	}
	for _, t := range tools {
		fmt.Fprintf(&b, "tool:%s;", t.Name)
	}
	return b.String(), f.tokens, f.err
}

type fakeReady struct{ ready atomic.Bool }

func (r *fakeReady) Ready() bool { return r.ready.Load() }

// harness is a Server on a real 127.0.0.1 listener and a client of it.
type harness struct {
	srv    *Server
	conn   *grpc.ClientConn
	client lumenv1.LumenServiceClient
}

func start(t *testing.T, cfg Config) harness {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(cfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return harness{srv: srv, conn: conn, client: lumenv1.NewLumenServiceClient(conn)}
}

// rpc names the two ways to generate; every generation spec runs both.
type rpc string

const (
	unary    rpc = "Generate"
	streamed rpc = "GenerateStream"
)

// reply is a generation as its client sees it, whichever rpc it used.
type reply struct {
	id, model, text string
	deltas          []string // the text of each stream message before the last
	finish          lumenv1.FinishReason
	usage           *lumenv1.Usage
	timings         *lumenv1.Timings
}

// streamRequest is req as a GenerateStreamRequest: both have the same
// fields and numbers, so the wire form converts.
func streamRequest(t *testing.T, req *lumenv1.GenerateRequest) *lumenv1.GenerateStreamRequest {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var sr lumenv1.GenerateStreamRequest
	if err := proto.Unmarshal(b, &sr); err != nil {
		t.Fatal(err)
	}
	return &sr
}

func generate(ctx context.Context, t *testing.T, c lumenv1.LumenServiceClient, how rpc, req *lumenv1.GenerateRequest) (reply, error) {
	t.Helper()
	if how == unary {
		resp, err := c.Generate(ctx, req)
		if err != nil {
			return reply{}, err
		}
		return reply{id: resp.Id, model: resp.Model, text: resp.Text, finish: resp.FinishReason, usage: resp.Usage, timings: resp.Timings}, nil
	}
	stream, err := c.GenerateStream(ctx, streamRequest(t, req))
	if err != nil {
		return reply{}, err
	}
	var r reply
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			t.Fatalf("stream ended without a final message after %q", r.deltas)
		}
		if err != nil {
			return r, err
		}
		r.id, r.model = msg.Id, msg.Model
		r.text += msg.Text
		if msg.FinishReason == lumenv1.FinishReason_FINISH_REASON_UNSPECIFIED {
			if msg.Usage != nil || msg.Timings != nil {
				t.Errorf("message before the last has usage %v, timings %v", msg.Usage, msg.Timings)
			}
			r.deltas = append(r.deltas, msg.Text)
			continue
		}
		r.finish, r.usage, r.timings = msg.FinishReason, msg.Usage, msg.Timings
		if _, err := stream.Recv(); err != io.EOF {
			t.Errorf("after the final message: %v, want EOF", err)
		}
		return r, nil
	}
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func done(finish inference.FinishReason, prompt, completion, cached int, tm inference.Timings) inference.Event {
	return inference.Event{Done: true, Result: &inference.Result{
		ID: "req-1", Finish: finish, PromptTokens: prompt, CompletionTokens: completion, CachedTokens: cached, Timings: tm,
	}}
}

func TestGenerateReplies(t *testing.T) {
	tests := []struct {
		name        string
		events      []inference.Event
		wantText    string
		wantDeltas  []string
		wantFinish  lumenv1.FinishReason
		wantUsage   *lumenv1.Usage
		wantTimings *lumenv1.Timings
	}{
		{
			name: "text then stop",
			events: []inference.Event{
				{Text: "Hel"}, {Text: "lo, "}, {Text: "world"},
				done(inference.FinishStop, 5, 3, 2, inference.Timings{Enqueued: at(0), Admitted: at(2), FirstToken: at(10), Finished: at(50)}),
			},
			wantText: "Hello, world", wantDeltas: []string{"Hel", "lo, ", "world"},
			wantFinish:  lumenv1.FinishReason_FINISH_REASON_STOP,
			wantUsage:   &lumenv1.Usage{PromptTokens: 5, CompletionTokens: 3, CachedTokens: 2, TotalTokens: 8},
			wantTimings: &lumenv1.Timings{QueueMs: 2, PrefillMs: 8, TtftMs: 10, DecodeMs: 40},
		},
		{
			name: "max tokens reached, final event carries text",
			events: []inference.Event{
				{Text: "a"},
				func() inference.Event {
					ev := done(inference.FinishLength, 7, 2, 0, inference.Timings{Enqueued: at(0), Admitted: at(0), FirstToken: at(1), Finished: at(3)})
					ev.Text = "b"
					return ev
				}(),
			},
			wantText: "ab", wantDeltas: []string{"a"},
			wantFinish:  lumenv1.FinishReason_FINISH_REASON_LENGTH,
			wantUsage:   &lumenv1.Usage{PromptTokens: 7, CompletionTokens: 2, TotalTokens: 9},
			wantTimings: &lumenv1.Timings{PrefillMs: 1, TtftMs: 1, DecodeMs: 2},
		},
		{
			name: "no text generated",
			events: []inference.Event{
				done(inference.FinishStop, 4, 0, 0, inference.Timings{Enqueued: at(0), Admitted: at(1), Finished: at(5)}),
			},
			wantFinish:  lumenv1.FinishReason_FINISH_REASON_STOP,
			wantUsage:   &lumenv1.Usage{PromptTokens: 4, TotalTokens: 4},
			wantTimings: &lumenv1.Timings{QueueMs: 1, PrefillMs: 4},
		},
	}
	for _, tt := range tests {
		for _, how := range []rpc{unary, streamed} {
			t.Run(tt.name+"/"+string(how), func(t *testing.T) {
				h := start(t, Config{API: &fakeAPI{events: tt.events}})
				got, err := generate(t.Context(), t, h.client, how, &lumenv1.GenerateRequest{Prompt: "hi"})
				if err != nil {
					t.Fatal(err)
				}
				if got.id != "req-1" || got.model != "fake-model" {
					t.Errorf("id, model = %q, %q; want req-1, fake-model", got.id, got.model)
				}
				if got.text != tt.wantText {
					t.Errorf("text = %q, want %q", got.text, tt.wantText)
				}
				if how == streamed && !slices.Equal(got.deltas, tt.wantDeltas) {
					t.Errorf("deltas = %q, want %q", got.deltas, tt.wantDeltas)
				}
				if got.finish != tt.wantFinish {
					t.Errorf("finish = %v, want %v", got.finish, tt.wantFinish)
				}
				if !proto.Equal(got.usage, tt.wantUsage) {
					t.Errorf("usage = %v, want %v", got.usage, tt.wantUsage)
				}
				if !proto.Equal(got.timings, tt.wantTimings) {
					t.Errorf("timings = %v, want %v", got.timings, tt.wantTimings)
				}
			})
		}
	}
}

func TestGenerateDecodesRequest(t *testing.T) {
	defaults := inference.SamplingParams{Temperature: 1, TopP: 1, RepeatPenalty: 1}
	tests := []struct {
		name string
		give *lumenv1.GenerateRequest
		// want's seed is checked only when give sets one (unset is random).
		want inference.GenerateRequest
	}{
		{
			name: "unset sampling takes the defaults",
			give: &lumenv1.GenerateRequest{Prompt: "hi"},
			want: inference.GenerateRequest{Prompt: "hi", Sampling: defaults, Tools: inference.Tools{Parallel: true}},
		},
		{
			name: "explicit zeros are kept",
			give: &lumenv1.GenerateRequest{
				Prompt: "hi", Temperature: proto.Float32(0), TopK: proto.Int32(0), TopP: proto.Float32(0), MinP: proto.Float32(0),
				RepetitionPenalty: proto.Float32(0), FrequencyPenalty: proto.Float32(0), PresencePenalty: proto.Float32(0), Seed: proto.Uint32(0),
			},
			want: inference.GenerateRequest{Prompt: "hi", Tools: inference.Tools{Parallel: true}},
		},
		{
			name: "every field",
			give: &lumenv1.GenerateRequest{
				Model: "m", Messages: []*lumenv1.ChatMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hi"}},
				MaxTokens: 12, Temperature: proto.Float32(0.5), TopK: proto.Int32(40), TopP: proto.Float32(0.9), MinP: proto.Float32(0.05),
				RepetitionPenalty: proto.Float32(1.1), FrequencyPenalty: proto.Float32(-0.5), PresencePenalty: proto.Float32(0.25),
				Seed: proto.Uint32(42), Stop: []string{"\n", "END"},
			},
			want: inference.GenerateRequest{
				Model: "m", Messages: []chat.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hi"}},
				MaxTokens: 12,
				Sampling: inference.SamplingParams{
					Temperature: 0.5, TopK: 40, TopP: 0.9, MinP: 0.05, RepeatPenalty: 1.1, FrequencyPenalty: -0.5, PresencePenalty: 0.25, Seed: 42,
				},
				Stop:  []string{"\n", "END"},
				Tools: inference.Tools{Parallel: true},
			},
		},
		{
			name: "constraints, tools and bias",
			give: &lumenv1.GenerateRequest{
				Messages: []*lumenv1.ChatMessage{
					{Role: "user", Content: "hi"},
					{Role: "assistant", ToolCalls: []*lumenv1.ToolCall{{Id: "call_1", Name: "f", Arguments: `{"a":1}`}}},
					{Role: "tool", ToolCallId: "call_1", Name: "f", Content: "42"},
				},
				Temperature: proto.Float32(0), Seed: proto.Uint32(1), JsonSchema: `{"type":"object"}`,
				Tools:      []*lumenv1.Tool{{Name: "f", Description: "d", ParametersJson: `{"type":"object"}`}, {Name: "g"}},
				ToolChoice: &lumenv1.ToolChoice{Mode: lumenv1.ToolChoice_MODE_FUNCTION, Function: "g"}, ParallelToolCalls: proto.Bool(false),
				LogitBias: map[int32]float32{7: 2, 9: -100}, IgnoreEos: true,
			},
			want: inference.GenerateRequest{
				Messages: []chat.Message{
					{Role: "user", Content: "hi"},
					{Role: "assistant", ToolCalls: []chat.ToolCall{{ID: "call_1", Name: "f", Arguments: `{"a":1}`}}},
					{Role: "tool", ToolCallID: "call_1", Name: "f", Content: "42"},
				},
				Sampling:   inference.SamplingParams{Seed: 1, TopP: 1, RepeatPenalty: 1, LogitBias: map[int32]float32{7: 2, 9: float32(math.Inf(-1))}, IgnoreEOS: true},
				Constraint: &inference.Constraint{Kind: inference.ConstraintJSONSchema, Field: "json_schema", Schema: json.RawMessage(`{"type":"object"}`)},
				Tools: inference.Tools{
					Tools:  []toolcall.Tool{{Name: "f", Description: "d", Parameters: json.RawMessage(`{"type":"object"}`)}, {Name: "g"}},
					Choice: toolcall.Choice{Mode: toolcall.Named, Name: "g"},
				},
			},
		},
	}
	for _, tt := range tests {
		for _, how := range []rpc{unary, streamed} {
			t.Run(tt.name+"/"+string(how), func(t *testing.T) {
				api := &fakeAPI{got: make(chan inference.GenerateRequest, 1), events: []inference.Event{done(inference.FinishStop, 1, 0, 0, inference.Timings{})}}
				h := start(t, Config{API: api})
				if _, err := generate(t.Context(), t, h.client, how, tt.give); err != nil {
					t.Fatal(err)
				}
				got := <-api.got
				want := tt.want
				if tt.give.Seed == nil {
					want.Sampling.Seed = got.Sampling.Seed
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("API got\n%#v\nwant\n%#v", got, want)
				}
			})
		}
	}
}

func TestErrors(t *testing.T) {
	cancelled := func(err error) []inference.Event {
		return []inference.Event{{Text: "partial"}, {Done: true, Err: err, Result: &inference.Result{Finish: inference.FinishCancelled}}}
	}
	tests := []struct {
		name      string
		api       *fakeAPI
		give      *lumenv1.GenerateRequest
		wantCode  codes.Code
		wantField string // of the google.rpc.BadRequest detail
	}{
		{
			name:     "invalid field",
			api:      &fakeAPI{err: &reqerr.InvalidError{Field: "temperature", Reason: "must be between 0 and 2, got 3"}},
			wantCode: codes.InvalidArgument, wantField: "temperature",
		},
		{
			name:     "invalid without a field",
			api:      &fakeAPI{err: fmt.Errorf("%w: bad", reqerr.ErrInvalid)},
			wantCode: codes.InvalidArgument,
		},
		{
			name:     "negative max_tokens never reaches the API",
			api:      &fakeAPI{got: make(chan inference.GenerateRequest)}, // unbuffered: a call would block
			give:     &lumenv1.GenerateRequest{Prompt: "hi", MaxTokens: -1},
			wantCode: codes.InvalidArgument, wantField: "max_tokens",
		},
		{"unknown model", &fakeAPI{err: fmt.Errorf("model %q: %w", "x", inference.ErrUnknownModel)}, nil, codes.NotFound, ""},
		{"queue full", &fakeAPI{err: reqerr.ErrQueueFull}, nil, codes.ResourceExhausted, ""},
		{"draining", &fakeAPI{err: reqerr.ErrDraining}, nil, codes.Unavailable, ""},
		{"loading", &fakeAPI{err: inference.ErrLoading}, nil, codes.Unavailable, ""},
		{"shut down while running", &fakeAPI{events: cancelled(reqerr.ErrShutdown)}, nil, codes.Unavailable, ""},
		{"cancelled", &fakeAPI{err: context.Canceled}, nil, codes.Canceled, ""},
		{"cancelled while running", &fakeAPI{events: cancelled(context.Canceled)}, nil, codes.Canceled, ""},
		{"deadline", &fakeAPI{err: fmt.Errorf("wait: %w", context.DeadlineExceeded)}, nil, codes.DeadlineExceeded, ""},
		{
			name: "engine failure",
			api: &fakeAPI{events: []inference.Event{{Done: true, Err: fmt.Errorf("%w: decode: -1", reqerr.ErrEngine),
				Result: &inference.Result{Finish: inference.FinishError}}}},
			wantCode: codes.Internal,
		},
		{"unforeseen error", &fakeAPI{err: errors.New("boom")}, nil, codes.Internal, ""},
		{"stream closed without a final event", &fakeAPI{events: []inference.Event{{Text: "a"}}}, nil, codes.Internal, ""},
		{"final event without a result", &fakeAPI{events: []inference.Event{{Done: true}}}, nil, codes.Internal, ""},
	}
	for _, tt := range tests {
		for _, how := range []rpc{unary, streamed} {
			t.Run(tt.name+"/"+string(how), func(t *testing.T) {
				h := start(t, Config{API: tt.api})
				give := tt.give
				if give == nil {
					give = &lumenv1.GenerateRequest{Prompt: "hi"}
				}
				_, err := generate(t.Context(), t, h.client, how, give)
				st := status.Convert(err)
				if st.Code() != tt.wantCode {
					t.Fatalf("got %v, want code %v", err, tt.wantCode)
				}
				var field string
				for _, d := range st.Details() {
					if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) > 0 {
						field = br.FieldViolations[0].Field
					}
				}
				if field != tt.wantField {
					t.Errorf("BadRequest field = %q, want %q", field, tt.wantField)
				}
				if tt.wantField != "" && !bytes.Contains([]byte(st.Message()), []byte(tt.wantField)) {
					t.Errorf("message %q does not name the field %q", st.Message(), tt.wantField)
				}
			})
		}
	}
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		name       string
		api        *fakeAPI
		wantTokens []int32
		wantCode   codes.Code
	}{
		{"tokens", &fakeAPI{tokens: []int32{1, 15043, 29991}}, []int32{1, 15043, 29991}, codes.OK},
		{"unknown model", &fakeAPI{err: fmt.Errorf("%w", inference.ErrUnknownModel)}, nil, codes.NotFound},
		{"invalid text", &fakeAPI{err: &reqerr.InvalidError{Field: "text", Reason: "is not valid UTF-8"}}, nil, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, Config{API: tt.api})
			resp, err := h.client.Tokenize(t.Context(), &lumenv1.TokenizeRequest{Text: "Hello!"})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("got %v, want code %v", err, tt.wantCode)
			}
			if !slices.Equal(resp.GetTokens(), tt.wantTokens) {
				t.Errorf("tokens = %v, want %v", resp.GetTokens(), tt.wantTokens)
			}
		})
	}
}

func TestListModels(t *testing.T) {
	h := start(t, Config{API: &fakeAPI{models: []inference.Model{
		{ID: "demo", ContextSize: 4096, Created: t0, OwnedBy: "lumen"},
		{ID: "undated", ContextSize: 512},
	}}})
	resp, err := h.client.ListModels(t.Context(), &lumenv1.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := &lumenv1.ListModelsResponse{Models: []*lumenv1.Model{
		{Id: "demo", ContextSize: 4096, Created: timestamppb.New(t0), OwnedBy: "lumen"},
		{Id: "undated", ContextSize: 512},
	}}
	if !proto.Equal(resp, want) {
		t.Errorf("got %v, want %v", resp, want)
	}
}

func TestAuth(t *testing.T) {
	api := &fakeAPI{events: []inference.Event{done(inference.FinishStop, 1, 0, 0, inference.Timings{})}, tokens: []int32{1}}
	calls := map[string]func(context.Context, lumenv1.LumenServiceClient) error{
		"Generate": func(ctx context.Context, c lumenv1.LumenServiceClient) error {
			_, err := c.Generate(ctx, &lumenv1.GenerateRequest{Prompt: "hi"})
			return err
		},
		"GenerateStream": func(ctx context.Context, c lumenv1.LumenServiceClient) error {
			s, err := c.GenerateStream(ctx, &lumenv1.GenerateStreamRequest{Prompt: "hi"})
			for err == nil {
				_, err = s.Recv()
			}
			if err == io.EOF {
				return nil
			}
			return err
		},
		"Tokenize": func(ctx context.Context, c lumenv1.LumenServiceClient) error {
			_, err := c.Tokenize(ctx, &lumenv1.TokenizeRequest{Text: "hi"})
			return err
		},
		"ListModels": func(ctx context.Context, c lumenv1.LumenServiceClient) error {
			_, err := c.ListModels(ctx, &lumenv1.ListModelsRequest{})
			return err
		},
	}
	tests := []struct {
		name          string
		keys          auth.Keys
		authorization []string // metadata values
		want          codes.Code
	}{
		{"no keys configured", auth.Keys{}, nil, codes.OK},
		{"right key", auth.NewKeys("k1", "k2"), []string{"Bearer k2"}, codes.OK},
		{"scheme is case-insensitive", auth.NewKeys("k1"), []string{"bearer k1"}, codes.OK},
		{"missing key", auth.NewKeys("k1"), nil, codes.Unauthenticated},
		{"wrong key", auth.NewKeys("k1"), []string{"Bearer k3"}, codes.Unauthenticated},
		{"other scheme", auth.NewKeys("k1"), []string{"Basic k1"}, codes.Unauthenticated},
		{"empty bearer", auth.NewKeys("k1"), []string{"Bearer "}, codes.Unauthenticated},
	}
	for _, tt := range tests {
		h := start(t, Config{API: api, Keys: tt.keys})
		for method, call := range calls {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				ctx := t.Context()
				for _, v := range tt.authorization {
					ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
				}
				if err := call(ctx, h.client); status.Code(err) != tt.want {
					t.Errorf("got %v, want code %v", err, tt.want)
				}
			})
		}
		t.Run(tt.name+"/health needs no key", func(t *testing.T) {
			_, err := healthpb.NewHealthClient(h.conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
			if err != nil {
				t.Errorf("health check: %v", err)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	ready := &fakeReady{}
	ready.ready.Store(true)
	h := start(t, Config{API: &fakeAPI{}, Ready: ready, Keys: auth.NewKeys("k")})
	hc := healthpb.NewHealthClient(h.conn)

	// A watch sees the changes SetServing makes.
	watch, err := hc.Watch(t.Context(), &healthpb.HealthCheckRequest{Service: "lumen.v1.LumenService"})
	if err != nil {
		t.Fatal(err)
	}
	watched := func(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		resp, err := watch.Recv()
		if err != nil || resp.Status != want {
			t.Errorf("watch got %v, %v; want %v", resp.GetStatus(), err, want)
		}
	}
	watched(t, healthpb.HealthCheckResponse_NOT_SERVING)

	const (
		serving    = healthpb.HealthCheckResponse_SERVING
		notServing = healthpb.HealthCheckResponse_NOT_SERVING
	)
	steps := []struct {
		name  string
		do    func()
		want  healthpb.HealthCheckResponse_ServingStatus
		watch bool // the step changes what a watch sees
	}{
		{"before SetServing(true)", func() {}, notServing, false},
		{"SetServing(true)", func() { h.srv.SetServing(true) }, serving, true},
		{"Ready() false", func() { ready.ready.Store(false) }, notServing, false},
		{"Ready() true again", func() { ready.ready.Store(true) }, serving, false},
		{"SetServing(false) when draining", func() { h.srv.SetServing(false) }, notServing, true},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.do()
			for _, svc := range []string{"", "lumen.v1.LumenService"} {
				resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
				if err != nil || resp.Status != step.want {
					t.Errorf("Check(%q) = %v, %v; want %v", svc, resp.GetStatus(), err, step.want)
				}
			}
			list, err := hc.List(t.Context(), &healthpb.HealthListRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for svc, st := range list.Statuses {
				if st.Status != step.want {
					t.Errorf("List: %q is %v, want %v", svc, st.Status, step.want)
				}
			}
			if step.watch {
				watched(t, step.want)
			}
		})
	}

	t.Run("unknown service", func(t *testing.T) {
		_, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "nope.v1.Nope"})
		if status.Code(err) != codes.NotFound {
			t.Errorf("got %v, want NotFound", err)
		}
	})
}

func TestReflectionListsServices(t *testing.T) {
	h := start(t, Config{API: &fakeAPI{}, Keys: auth.NewKeys("k")}) // reflection needs no key
	stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	for _, want := range []string{"lumen.v1.LumenService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("services %v lack %s", names, want)
		}
	}
}

// waitForCancel is a live stream: it sends one text event, reports that it
// started, and when its request's ctx ends reports the ctx error and
// finishes as the scheduler does.
func waitForCancel(started chan<- struct{}, cancelled chan<- error) func(context.Context, chan<- inference.Event) {
	return func(ctx context.Context, events chan<- inference.Event) {
		events <- inference.Event{Text: "a"}
		close(started)
		<-ctx.Done()
		cancelled <- ctx.Err()
		events <- inference.Event{Done: true, Err: ctx.Err(), Result: &inference.Result{Finish: inference.FinishCancelled}}
		close(events)
	}
}

func TestClientCancelCancelsRequest(t *testing.T) {
	for _, how := range []rpc{unary, streamed} {
		t.Run(string(how), func(t *testing.T) {
			started, cancelled := make(chan struct{}), make(chan error, 1)
			h := start(t, Config{API: &fakeAPI{live: waitForCancel(started, cancelled)}})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var callErr <-chan error
			if how == unary {
				errc := make(chan error, 1)
				go func() {
					_, err := h.client.Generate(ctx, &lumenv1.GenerateRequest{Prompt: "hi"})
					errc <- err
				}()
				callErr = errc
			} else {
				stream, err := h.client.GenerateStream(ctx, &lumenv1.GenerateStreamRequest{Prompt: "hi"})
				if err != nil {
					t.Fatal(err)
				}
				if msg, err := stream.Recv(); err != nil || msg.Text != "a" {
					t.Fatalf("first message %v, %v; want text a", msg, err)
				}
				errc := make(chan error, 1)
				go func() {
					_, err := stream.Recv()
					errc <- err
				}()
				callErr = errc
			}
			<-started
			cancel()
			if err := <-cancelled; !errors.Is(err, context.Canceled) {
				t.Errorf("API's ctx ended with %v, want context.Canceled", err)
			}
			if err := <-callErr; status.Code(err) != codes.Canceled {
				t.Errorf("call ended with %v, want Canceled", err)
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	tests := []struct {
		name    string
		running bool // a stream is running when Shutdown starts
		expired bool // Shutdown's ctx has already ended
		want    error
	}{
		{"idle", false, false, nil},
		{"running past the deadline: cancelled", true, true, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started, cancelled := make(chan struct{}), make(chan error, 1)
			h := start(t, Config{API: &fakeAPI{live: waitForCancel(started, cancelled)}})
			if tt.running {
				stream, err := h.client.GenerateStream(t.Context(), &lumenv1.GenerateStreamRequest{Prompt: "hi"})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Recv(); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			if tt.expired {
				cancel()
			}
			defer cancel()
			if err := h.srv.Shutdown(ctx); !errors.Is(err, tt.want) {
				t.Errorf("Shutdown = %v, want %v", err, tt.want)
			}
			if tt.running {
				if err := <-cancelled; !errors.Is(err, context.Canceled) {
					t.Errorf("running request's ctx ended with %v, want context.Canceled", err)
				}
			}
		})
	}
}

// A reply that holds tool calls carries them, without their text, and
// finishes with TOOL_CALLS, whole or streamed.
func TestGenerateToolCalls(t *testing.T) {
	for _, how := range []rpc{unary, streamed} {
		t.Run(string(how), func(t *testing.T) {
			api := &fakeAPI{toolFormat: toolcall.Hermes, events: []inference.Event{
				{Text: "Let me check. <tool"}, {Text: "_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"UTC\"}}\n</tool_call>"},
				done(inference.FinishStop, 5, 9, 0, inference.Timings{}),
			}}
			h := start(t, Config{API: api})
			req := &lumenv1.GenerateRequest{Messages: []*lumenv1.ChatMessage{{Role: "user", Content: "time?"}}}
			var calls []*lumenv1.ToolCall
			var text string
			var finish lumenv1.FinishReason
			if how == unary {
				resp, err := h.client.Generate(t.Context(), req)
				if err != nil {
					t.Fatal(err)
				}
				calls, text, finish = resp.GetToolCalls(), resp.GetText(), resp.GetFinishReason()
			} else {
				st, err := h.client.GenerateStream(t.Context(), unaryToStream(req))
				if err != nil {
					t.Fatal(err)
				}
				for {
					m, err := st.Recv()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if len(m.GetToolCalls()) > 0 && m.GetFinishReason() == lumenv1.FinishReason_FINISH_REASON_UNSPECIFIED {
						t.Error("tool calls before the last message")
					}
					text += m.GetText()
					calls = append(calls, m.GetToolCalls()...)
					finish = m.GetFinishReason()
				}
			}
			if finish != lumenv1.FinishReason_FINISH_REASON_TOOL_CALLS || len(calls) != 1 || strings.TrimSpace(text) != "Let me check." {
				t.Fatalf("finish %v, calls %v, text %q", finish, calls, text)
			}
			c := calls[0]
			if c.GetName() != "get_time" || c.GetArguments() != `{"zone":"UTC"}` || !strings.HasPrefix(c.GetId(), "call_") {
				t.Errorf("call = %v", c)
			}
		})
	}
}

func unaryToStream(r *lumenv1.GenerateRequest) *lumenv1.GenerateStreamRequest {
	return &lumenv1.GenerateStreamRequest{Model: r.GetModel(), Prompt: r.GetPrompt(), Messages: r.GetMessages(), MaxTokens: r.GetMaxTokens()}
}

// TestLogprobs: the request's logprobs fields reach inference, and the
// tokens' logprobs come back in order — all on the unary reply, each on
// the stream message of the event that carried it.
func TestLogprobs(t *testing.T) {
	tok := func(id int32, text string, lp float32) inference.TokenInfo {
		return inference.TokenInfo{
			TokenLogprob: inference.TokenLogprob{ID: id, Bytes: []byte(text), Logprob: lp},
			Top:          []inference.TokenLogprob{{ID: id, Bytes: []byte(text), Logprob: lp}, {ID: 9, Bytes: []byte("</s>"), Logprob: -3}},
		}
	}
	res := &inference.Result{Finish: inference.FinishStop, PromptTokens: 5, CompletionTokens: 3}
	got := make(chan inference.GenerateRequest, 2)
	h := start(t, Config{API: &fakeAPI{got: got, events: []inference.Event{
		{Text: "He", Tokens: []inference.TokenInfo{tok(1, "He", -0.5)}},
		{Tokens: []inference.TokenInfo{tok(2, "\xe2\x82", -1)}}, // half a character: no text yet
		{Text: "\u20acs", Tokens: []inference.TokenInfo{tok(3, "\xacs", -2)}},
		{Done: true, Result: res},
	}}})
	want := []int32{1, 2, 3}
	check := func(name string, lps []*lumenv1.TokenLogprob) {
		t.Helper()
		if len(lps) != len(want) {
			t.Fatalf("%s: %d logprobs, want %d", name, len(lps), len(want))
		}
		for i, e := range lps {
			if e.GetId() != want[i] || e.GetLogprob() >= 0 || len(e.GetTopLogprobs()) != 2 || e.GetTopLogprobs()[1].GetToken() != "</s>" {
				t.Errorf("%s: entry %d = %v", name, i, e)
			}
		}
		if string(lps[1].GetBytes()) != "\xe2\x82" {
			t.Errorf("%s: bytes %q, want the token's exact bytes", name, lps[1].GetBytes())
		}
	}
	req := &lumenv1.GenerateRequest{Prompt: "p", Logprobs: true, TopLogprobs: 2, MinTokens: 1}
	r, err := h.client.Generate(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	check("Generate", r.GetLogprobs())
	if in := <-got; !in.Logprobs || in.TopLogprobs != 2 || in.Sampling.MinTokens != 1 {
		t.Errorf("inference got logprobs %v top %d min_tokens %d", in.Logprobs, in.TopLogprobs, in.Sampling.MinTokens)
	}
	stream, err := h.client.GenerateStream(t.Context(), streamRequest(t, req))
	if err != nil {
		t.Fatal(err)
	}
	var all []*lumenv1.TokenLogprob
	var perMsg []int
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m.GetLogprobs()...)
		perMsg = append(perMsg, len(m.GetLogprobs()))
		if m.GetFinishReason() != lumenv1.FinishReason_FINISH_REASON_UNSPECIFIED {
			break
		}
	}
	check("GenerateStream", all)
	if fmt.Sprint(perMsg) != "[1 1 1 0]" {
		t.Errorf("logprobs per stream message %v, want one on each of the three token messages", perMsg)
	}
	<-got
}

func TestTokenizeDetokenizeApplyTemplate(t *testing.T) {
	h := start(t, Config{API: &fakeAPI{tokens: []int32{1, 2}}})
	chat := []*lumenv1.ChatMessage{{Role: "user", Content: "Hi"}}
	tools := []*lumenv1.Tool{{Name: "f"}}
	tr, err := h.client.Tokenize(t.Context(), &lumenv1.TokenizeRequest{Messages: chat, Tools: tools})
	if err != nil || fmt.Sprint(tr.GetTokens()) != "[1 2]" || tr.GetPrompt() != "user:Hi;tool:f;" {
		t.Errorf("Tokenize(messages) = %v, %v", tr, err)
	}
	for _, bad := range []*lumenv1.TokenizeRequest{{Text: "a", Messages: chat}, {Text: "a", Tools: tools}} {
		if _, err := h.client.Tokenize(t.Context(), bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Tokenize(%v) = %v, want INVALID_ARGUMENT", bad, err)
		}
	}
	dr, err := h.client.Detokenize(t.Context(), &lumenv1.DetokenizeRequest{Tokens: []int32{5, 7}})
	if err != nil || dr.GetText() != "[5 7]" {
		t.Errorf("Detokenize = %v, %v", dr, err)
	}
	ar, err := h.client.ApplyTemplate(t.Context(), &lumenv1.ApplyTemplateRequest{Messages: chat})
	if err != nil || ar.GetPrompt() != "user:Hi;" {
		t.Errorf("ApplyTemplate = %v, %v", ar, err)
	}
}

func (f *fakeAPI) Embed(_ context.Context, req inference.EmbedRequest) (*inference.Embeddings, error) {
	if f.err != nil {
		return nil, f.err
	}
	out := &inference.Embeddings{Model: "fake-model", PromptTokens: 4, TraceID: "t"}
	for i, in := range req.Inputs {
		out.Vectors = append(out.Vectors, []float32{float32(i), float32(len(in.Text))})
	}
	return out, nil
}

func TestEmbed(t *testing.T) {
	h := start(t, Config{API: &fakeAPI{}})
	r, err := h.client.Embed(t.Context(), &lumenv1.EmbedRequest{Input: []string{"a", "bcd"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetEmbeddings()) != 2 || fmt.Sprint(r.GetEmbeddings()[1].GetValues()) != "[1 3]" || r.GetUsage().GetPromptTokens() != 4 || r.GetTraceId() != "t" {
		t.Errorf("Embed = %v", r)
	}
	bad := start(t, Config{API: &fakeAPI{err: &reqerr.InvalidError{Field: "input", Reason: "not served"}}})
	if _, err := bad.client.Embed(t.Context(), &lumenv1.EmbedRequest{Input: []string{"a"}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Embed on a server without embeddings: %v, want INVALID_ARGUMENT", err)
	}
}
