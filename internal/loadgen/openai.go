package loadgen

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// OpenAITarget sends requests to POST /v1/completions with "stream": true
// and reads the server-sent events: any OpenAI-compatible server (Lumen,
// llama-server, vLLM) can be loaded and compared with the same requests.
type OpenAITarget struct {
	http *HTTPTarget
	// ignoreEOS asks the server to run every request to max_tokens
	// (llama.cpp's and vLLM's ignore_eos), so both sides of a comparison
	// produce the same number of tokens.
	ignoreEOS bool
}

// NewOpenAITarget makes a target of the server cfg names; ignoreEOS adds
// "ignore_eos": true to every request.
func NewOpenAITarget(cfg HTTPConfig, ignoreEOS bool) (*OpenAITarget, error) {
	h, err := NewHTTPTarget(cfg)
	if err != nil {
		return nil, err
	}
	return &OpenAITarget{http: h, ignoreEOS: ignoreEOS}, nil
}

// Name implements Target.
func (t *OpenAITarget) Name() string { return "openai " + t.http.base }

// Close closes idle connections.
func (t *OpenAITarget) Close() error { return t.http.Close() }

type completionBody struct {
	Model         string  `json:"model,omitempty"`
	Prompt        string  `json:"prompt"`
	MaxTokens     int     `json:"max_tokens"`
	Temperature   float32 `json:"temperature"`
	Seed          uint32  `json:"seed,omitempty"`
	Stream        bool    `json:"stream"`
	IgnoreEOS     bool    `json:"ignore_eos,omitempty"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
}

type completionChunk struct {
	Choices []struct {
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error *errorDetail `json:"error"`
}

// Stream implements Target. Token counts come from the final usage chunk
// when the server sends one (stream_options.include_usage); otherwise
// each chunk of text counts as one token, as servers stream a token per
// chunk.
func (t *OpenAITarget) Stream(ctx context.Context, req Request, onText func(string) error) (Result, error) {
	cb := completionBody{Model: req.Model, Prompt: req.Prompt, MaxTokens: req.MaxTokens, Temperature: req.Temperature,
		Seed: req.Seed, Stream: true, IgnoreEOS: t.ignoreEOS}
	cb.StreamOptions.IncludeUsage = true
	switch req.Constraint {
	case ConstraintNone, "":
	case ConstraintJSONSchema:
		cb.ResponseFormat = json.RawMessage(`{"type":"json_schema","json_schema":{"name":"bench","schema":` + BenchSchema + `}}`)
	default:
		return Result{}, &RequestError{Kind: "config", Err: fmt.Errorf("%s load needs the grpc protocol", req.Constraint)}
	}
	body, err := json.Marshal(cb)
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: encoding request: %w", err)
	}
	resp, err := t.http.post(ctx, "/v1/completions", body)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	var res Result
	chunks := 0
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadBytes('\n')
		data, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data:"))
		if ok {
			data = bytes.TrimSpace(data)
			if string(data) == "[DONE]" {
				if res.FinishReason == "" {
					return Result{}, &RequestError{Kind: "stream", Err: errors.New("stream ended without a finish reason")}
				}
				if res.CompletionTokens == 0 {
					res.CompletionTokens = chunks
				}
				return res, nil
			}
			var c completionChunk
			if err := json.Unmarshal(data, &c); err != nil {
				return Result{}, &RequestError{Kind: "stream", Err: fmt.Errorf("malformed event %q: %w", data, err)}
			}
			if c.Error != nil {
				return Result{}, &RequestError{Kind: "stream: " + cmp.Or(c.Error.Code, c.Error.Type, "error"), Err: errors.New(c.Error.Message)}
			}
			for _, ch := range c.Choices {
				if ch.Text != "" {
					chunks++
					if err := onText(ch.Text); err != nil {
						return Result{}, err
					}
				}
				if ch.FinishReason != nil && *ch.FinishReason != "" {
					res.FinishReason = *ch.FinishReason
				}
			}
			if u := c.Usage; u != nil {
				res.PromptTokens, res.CompletionTokens = u.PromptTokens, u.CompletionTokens
			}
		}
		if err == io.EOF {
			return Result{}, &RequestError{Kind: "stream", Err: errors.New("stream ended without data: [DONE]")}
		}
		if err != nil {
			return Result{}, &RequestError{Kind: "transport", Err: err}
		}
	}
}
