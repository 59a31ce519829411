package grpcserver

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/grpcmsg"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// Sampling defaults of unset request fields, as documented in lumen.proto.
const (
	defaultTemperature   = 1
	defaultTopP          = 1 // off
	defaultRepeatPenalty = 1 // off
)

// service implements lumenv1.LumenServiceServer over an inference.API.
type service struct {
	lumenv1.UnimplementedLumenServiceServer
	api inference.API
}

func (s *service) Generate(ctx context.Context, req *lumenv1.GenerateRequest) (*lumenv1.GenerateResponse, error) {
	in, err := generateRequest(req)
	if err != nil {
		return nil, failed(ctx, err)
	}
	gen, err := s.api.Generate(ctx, in)
	if err != nil {
		return nil, failed(ctx, err)
	}
	// The request's spans end before this call's, however it ends.
	defer gen.Close()
	var text strings.Builder
	var logprobs []*lumenv1.TokenLogprob
	for {
		ev, err := gen.Recv(ctx)
		if err != nil {
			return nil, failed(ctx, err)
		}
		text.WriteString(ev.Text)
		logprobs = append(logprobs, tokenLogprobs(ev.Tokens)...)
		if !ev.Done {
			continue
		}
		end := endOf(ev.Result, gen.TraceID)
		reply := gen.ParseReply(text.String())
		return &lumenv1.GenerateResponse{
			Id:           gen.ID,
			Model:        gen.Model,
			Text:         reply.Content,
			FinishReason: replyFinish(end.finish, reply),
			Usage:        end.usage,
			Timings:      end.timings,
			TraceId:      end.traceID,
			ToolCalls:    toolCalls(reply.ToolCalls),
			Logprobs:     logprobs,
		}, nil
	}
}

// tokenLogprobs shapes scheduler token infos for the API. A token may be
// part of a UTF-8 character, which a proto string cannot hold: token then
// has U+FFFD for the partial bytes, and bytes the exact ones.
func tokenLogprobs(tokens []inference.TokenInfo) []*lumenv1.TokenLogprob {
	var out []*lumenv1.TokenLogprob
	text := func(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }
	for _, t := range tokens {
		e := &lumenv1.TokenLogprob{Id: t.ID, Token: text(t.Bytes), Bytes: t.Bytes, Logprob: t.Logprob}
		for _, a := range t.Top {
			e.TopLogprobs = append(e.TopLogprobs, &lumenv1.TokenLogprob{Id: a.ID, Token: text(a.Bytes), Bytes: a.Bytes, Logprob: a.Logprob})
		}
		out = append(out, e)
	}
	return out
}

func (s *service) GenerateStream(req *lumenv1.GenerateStreamRequest, stream grpc.ServerStreamingServer[lumenv1.GenerateStreamResponse]) error {
	ctx := stream.Context()
	unary, err := grpcmsg.Unary(req)
	if err != nil {
		// Not for a decoded message: its strings are UTF-8.
		return failed(ctx, reqerr.Invalid("request", "%v", err))
	}
	in, err := generateRequest(unary)
	if err != nil {
		return failed(ctx, err)
	}
	// The scheduler watches ctx: when the client cancels, grpc cancels it
	// and the request stops.
	gen, err := s.api.Generate(ctx, in)
	if err != nil {
		return failed(ctx, err)
	}
	defer gen.Close()
	// With tools, text that may open a call is held back until it is
	// known to be text or is parsed into calls at the end.
	split := gen.ReplyStream()
	for {
		ev, err := gen.Recv(ctx)
		if err != nil {
			return failed(ctx, err)
		}
		text := ev.Text
		if split != nil {
			text = split.Push(text)
		}
		msg := &lumenv1.GenerateStreamResponse{Id: gen.ID, Model: gen.Model, Text: text, Logprobs: tokenLogprobs(ev.Tokens)}
		if ev.Done {
			end := endOf(ev.Result, gen.TraceID)
			msg.FinishReason, msg.Usage, msg.Timings, msg.TraceId = end.finish, end.usage, end.timings, end.traceID
			if split != nil {
				reply := split.Finish()
				msg.Text += reply.Content
				msg.ToolCalls = toolCalls(reply.ToolCalls)
				msg.FinishReason = replyFinish(end.finish, reply)
			}
		} else if text == "" && len(msg.Logprobs) == 0 {
			continue
		}
		if err := stream.Send(msg); err != nil {
			return failed(ctx, err)
		}
		if ev.Done {
			return nil
		}
	}
}

func (s *service) Tokenize(ctx context.Context, req *lumenv1.TokenizeRequest) (*lumenv1.TokenizeResponse, error) {
	if len(req.GetMessages()) > 0 {
		if req.GetText() != "" {
			return nil, toStatus(&reqerr.InvalidError{Field: "text", Reason: "give either text or messages, not both"})
		}
		prompt, toks, err := s.api.RenderChat(ctx, req.GetModel(), messages(req.GetMessages()), toolList(req.GetTools()))
		if err != nil {
			return nil, toStatus(err)
		}
		return &lumenv1.TokenizeResponse{Tokens: toks, Prompt: prompt}, nil
	}
	if len(req.GetTools()) > 0 {
		return nil, toStatus(&reqerr.InvalidError{Field: "tools", Reason: "need messages"})
	}
	toks, err := s.api.Tokenize(req.GetModel(), req.GetText())
	if err != nil {
		return nil, toStatus(err)
	}
	return &lumenv1.TokenizeResponse{Tokens: toks}, nil
}

func (s *service) Detokenize(_ context.Context, req *lumenv1.DetokenizeRequest) (*lumenv1.DetokenizeResponse, error) {
	text, err := s.api.Detokenize(req.GetModel(), req.GetTokens())
	if err != nil {
		return nil, toStatus(err)
	}
	return &lumenv1.DetokenizeResponse{Text: text}, nil
}

func (s *service) Embed(ctx context.Context, req *lumenv1.EmbedRequest) (*lumenv1.EmbedResponse, error) {
	in := inference.EmbedRequest{Model: req.GetModel()}
	for _, text := range req.GetInput() {
		in.Inputs = append(in.Inputs, inference.EmbedInput{Text: text})
	}
	out, err := s.api.Embed(ctx, in)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &lumenv1.EmbedResponse{Model: out.Model, TraceId: out.TraceID,
		Usage: &lumenv1.Usage{PromptTokens: int32(out.PromptTokens), TotalTokens: int32(out.PromptTokens)}}
	for _, v := range out.Vectors {
		resp.Embeddings = append(resp.Embeddings, &lumenv1.Embedding{Values: v})
	}
	return resp, nil
}

func (s *service) ApplyTemplate(ctx context.Context, req *lumenv1.ApplyTemplateRequest) (*lumenv1.ApplyTemplateResponse, error) {
	prompt, _, err := s.api.RenderChat(ctx, req.GetModel(), messages(req.GetMessages()), toolList(req.GetTools()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &lumenv1.ApplyTemplateResponse{Prompt: prompt}, nil
}

func (s *service) ListModels(context.Context, *lumenv1.ListModelsRequest) (*lumenv1.ListModelsResponse, error) {
	models := s.api.Models()
	resp := &lumenv1.ListModelsResponse{Models: make([]*lumenv1.Model, len(models))}
	for i, m := range models {
		pm := &lumenv1.Model{Id: m.ID, ContextSize: int32(min(m.ContextSize, math.MaxInt32)), OwnedBy: m.OwnedBy}
		if !m.Created.IsZero() {
			pm.Created = timestamppb.New(m.Created)
		}
		resp.Models[i] = pm
	}
	return resp, nil
}

// end is what a finished request's Result puts in a reply; unary and
// streamed replies share it.
type end struct {
	finish  lumenv1.FinishReason
	usage   *lumenv1.Usage
	timings *lumenv1.Timings
	traceID string // empty when the request is not traced
}

func endOf(r *inference.Result, traceID string) end {
	ms := inference.Millis
	return end{
		traceID: traceID,
		finish:  finishReason(r.Finish),
		usage: &lumenv1.Usage{
			PromptTokens:     int32(r.PromptTokens),
			CompletionTokens: int32(r.CompletionTokens),
			CachedTokens:     int32(r.CachedTokens),
			TotalTokens:      int32(r.PromptTokens + r.CompletionTokens),
		},
		timings: &lumenv1.Timings{
			QueueMs:   ms(r.Timings.Queue()),
			PrefillMs: ms(r.Timings.Prefill()),
			TtftMs:    ms(r.Timings.TTFT()),
			DecodeMs:  ms(r.Timings.Decode()),
		},
	}
}

func finishReason(f inference.FinishReason) lumenv1.FinishReason {
	switch f {
	case inference.FinishStop:
		return lumenv1.FinishReason_FINISH_REASON_STOP
	case inference.FinishLength:
		return lumenv1.FinishReason_FINISH_REASON_LENGTH
	case inference.FinishCancelled:
		return lumenv1.FinishReason_FINISH_REASON_CANCELLED
	case inference.FinishError:
		return lumenv1.FinishReason_FINISH_REASON_ERROR
	}
	return lumenv1.FinishReason_FINISH_REASON_UNSPECIFIED
}

// generateRequest decodes a request, applying the defaults of unset
// sampling fields. It checks only what the API cannot see (the sign of
// max_tokens, which the API reads as "0 = default"); the API validates
// the rest.
func generateRequest(r *lumenv1.GenerateRequest) (inference.GenerateRequest, error) {
	if r.GetMaxTokens() < 0 {
		return inference.GenerateRequest{}, &reqerr.InvalidError{
			Field: "max_tokens", Reason: fmt.Sprintf("must not be negative, got %d", r.GetMaxTokens()),
		}
	}
	msgs := messages(r.GetMessages())
	c, err := constraint(r)
	if err != nil {
		return inference.GenerateRequest{}, err
	}
	tl, err := tools(r)
	if err != nil {
		return inference.GenerateRequest{}, err
	}
	raw := make(map[int32]float64, len(r.GetLogitBias()))
	for tok, b := range r.GetLogitBias() {
		raw[tok] = float64(b)
	}
	bias, err := inference.LogitBias(raw)
	if err != nil {
		return inference.GenerateRequest{}, err
	}
	// Unset stays 0: inference picks a random seed (and the request span
	// records that none was requested).
	var seed uint32
	if r.Seed != nil {
		seed = *r.Seed
	}
	return inference.GenerateRequest{
		Model:     r.GetModel(),
		Prompt:    r.GetPrompt(),
		Messages:  msgs,
		MaxTokens: int(r.GetMaxTokens()),
		Sampling: inference.SamplingParams{
			Temperature:      valueOr(r.Temperature, defaultTemperature),
			TopK:             int(valueOr(r.TopK, 0)),
			TopP:             valueOr(r.TopP, defaultTopP),
			MinP:             valueOr(r.MinP, 0),
			RepeatPenalty:    valueOr(r.RepetitionPenalty, defaultRepeatPenalty),
			FrequencyPenalty: valueOr(r.FrequencyPenalty, 0),
			PresencePenalty:  valueOr(r.PresencePenalty, 0),
			Seed:             seed,
			LogitBias:        bias,
			IgnoreEOS:        r.GetIgnoreEos(),
			MinTokens:        int(r.GetMinTokens()),
		},
		Stop:        r.GetStop(),
		Constraint:  c,
		Tools:       tl,
		Logprobs:    r.GetLogprobs(),
		TopLogprobs: int(r.GetTopLogprobs()),
	}, nil
}

// replyFinish is TOOL_CALLS for a reply that made calls and stopped by
// itself.
func replyFinish(f lumenv1.FinishReason, reply inference.Reply) lumenv1.FinishReason {
	if len(reply.ToolCalls) > 0 && f == lumenv1.FinishReason_FINISH_REASON_STOP {
		return lumenv1.FinishReason_FINISH_REASON_TOOL_CALLS
	}
	return f
}

func toolCalls(calls []chat.ToolCall) []*lumenv1.ToolCall {
	var out []*lumenv1.ToolCall
	for _, c := range calls {
		out = append(out, &lumenv1.ToolCall{Id: c.ID, Name: c.Name, Arguments: c.Arguments})
	}
	return out
}

// constraint reads the output-constraint fields, of which at most one may
// be set.
func constraint(r *lumenv1.GenerateRequest) (*inference.Constraint, error) {
	var found []*inference.Constraint
	if r.GetGrammar() != "" {
		found = append(found, &inference.Constraint{Kind: inference.ConstraintGrammar, Field: "grammar", Grammar: r.GetGrammar()})
	}
	if r.GetJsonSchema() != "" {
		found = append(found, &inference.Constraint{Kind: inference.ConstraintJSONSchema, Field: "json_schema", Schema: json.RawMessage(r.GetJsonSchema())})
	}
	if r.GetJsonObject() {
		found = append(found, &inference.Constraint{Kind: inference.ConstraintJSONObject, Field: "json_object"})
	}
	return inference.OneConstraint(found...)
}

// tools reads tools, tool_choice and parallel_tool_calls.
func tools(r *lumenv1.GenerateRequest) (inference.Tools, error) {
	t := inference.Tools{Parallel: valueOr(r.ParallelToolCalls, true), Tools: toolList(r.GetTools())}
	switch c := r.GetToolChoice(); c.GetMode() {
	case lumenv1.ToolChoice_MODE_UNSPECIFIED, lumenv1.ToolChoice_MODE_AUTO:
		t.Choice = toolcall.Choice{Mode: toolcall.Auto}
	case lumenv1.ToolChoice_MODE_NONE:
		t.Choice = toolcall.Choice{Mode: toolcall.None}
	case lumenv1.ToolChoice_MODE_REQUIRED:
		t.Choice = toolcall.Choice{Mode: toolcall.Required}
	case lumenv1.ToolChoice_MODE_FUNCTION:
		if c.GetFunction() == "" {
			return t, &reqerr.InvalidError{Field: "tool_choice.function", Reason: "is required with MODE_FUNCTION"}
		}
		t.Choice = toolcall.Choice{Mode: toolcall.Named, Name: c.GetFunction()}
	default:
		return t, &reqerr.InvalidError{Field: "tool_choice.mode", Reason: fmt.Sprintf("unknown mode %d", c.GetMode())}
	}
	return t, nil
}

func valueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// messages converts chat messages.
func messages(in []*lumenv1.ChatMessage) []chat.Message {
	var msgs []chat.Message
	for _, m := range in {
		msg := chat.Message{Role: m.GetRole(), Content: m.GetContent(), ToolCallID: m.GetToolCallId(), Name: m.GetName()}
		for _, c := range m.GetToolCalls() {
			msg.ToolCalls = append(msg.ToolCalls, chat.ToolCall{ID: c.GetId(), Name: c.GetName(), Arguments: c.GetArguments()})
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// toolList converts declared functions.
func toolList(in []*lumenv1.Tool) []toolcall.Tool {
	var out []toolcall.Tool
	for _, tool := range in {
		var params json.RawMessage
		if p := tool.GetParametersJson(); p != "" {
			params = json.RawMessage(p)
		}
		out = append(out, toolcall.Tool{Name: tool.GetName(), Description: tool.GetDescription(), Parameters: params})
	}
	return out
}
