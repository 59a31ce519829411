package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/status"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/grpcclient"
)

// GRPCTarget sends requests with LumenService.GenerateStream over one
// connection (HTTP/2 multiplexes the streams).
type GRPCTarget struct {
	client *grpcclient.Client
	addr   string
}

// NewGRPCTarget makes a target of the server cfg names; it connects on
// the first request.
func NewGRPCTarget(cfg grpcclient.Config) (*GRPCTarget, error) {
	c, err := grpcclient.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return &GRPCTarget{client: c, addr: cfg.Addr}, nil
}

// Close closes the connection.
func (t *GRPCTarget) Close() error { return t.client.Close() }

// Name implements Target.
func (t *GRPCTarget) Name() string { return "grpc " + t.addr }

// CountTokens implements TokenCounter with LumenService.Tokenize.
func (t *GRPCTarget) CountTokens(ctx context.Context, model, text string) (int, error) {
	resp, err := t.client.Tokenize(ctx, &lumenv1.TokenizeRequest{Model: model, Text: text})
	if err != nil {
		return 0, fmt.Errorf("loadgen: counting tokens: %w", grpcclient.Describe(err))
	}
	return len(resp.GetTokens()), nil
}

// Stream implements Target. Failed calls are *RequestError of their
// status code's name ("ResourceExhausted").
func (t *GRPCTarget) Stream(ctx context.Context, req Request, onText func(string) error) (Result, error) {
	temperature := req.Temperature
	sr := &lumenv1.GenerateStreamRequest{
		Model:       req.Model,
		Prompt:      req.Prompt,
		MaxTokens:   int32(min(req.MaxTokens, 1<<31-1)),
		Temperature: &temperature,
	}
	if req.Seed != 0 {
		seed := req.Seed
		sr.Seed = &seed
	}
	switch req.Constraint {
	case ConstraintJSONSchema:
		sr.JsonSchema = BenchSchema
	case ConstraintToolCall, ConstraintToolPrompt:
		// Tools need a chat: the prompt becomes the user's message.
		parallel := false
		sr.Prompt, sr.Messages = "", []*lumenv1.ChatMessage{{Role: "user", Content: req.Prompt}}
		sr.Tools = []*lumenv1.Tool{{Name: BenchTool, Description: "Records a story's title, year and tags.", ParametersJson: BenchSchema}}
		sr.ToolChoice = &lumenv1.ToolChoice{Mode: lumenv1.ToolChoice_MODE_REQUIRED}
		if req.Constraint == ConstraintToolPrompt {
			sr.ToolChoice.Mode = lumenv1.ToolChoice_MODE_NONE
		}
		sr.ParallelToolCalls = &parallel
	}
	var textErr error
	final, err := t.client.Stream(ctx, sr, func(m *lumenv1.GenerateStreamResponse) error {
		text := m.Text
		if len(m.ToolCalls) > 0 && text == "" {
			// A tool call's text comes whole at the end; count it as
			// the chunk it is.
			text = m.ToolCalls[0].Arguments
		}
		if text == "" {
			return nil
		}
		textErr = onText(text)
		return textErr
	})
	switch {
	case err == nil:
	case textErr != nil && errors.Is(err, textErr):
		return Result{}, err
	default:
		if st, ok := status.FromError(err); ok {
			return Result{}, &RequestError{Kind: st.Code().String(), Err: errors.New(st.Message())}
		}
		return Result{}, &RequestError{Kind: "stream", Err: err}
	}
	u, tm := final.GetUsage(), final.GetTimings()
	return Result{
		FinishReason:     strings.ToLower(strings.TrimPrefix(final.GetFinishReason().String(), "FINISH_REASON_")),
		PromptTokens:     int(u.GetPromptTokens()),
		CachedTokens:     int(u.GetCachedTokens()),
		CompletionTokens: int(u.GetCompletionTokens()),
		QueueMS:          tm.GetQueueMs(),
		PrefillMS:        tm.GetPrefillMs(),
	}, nil
}
