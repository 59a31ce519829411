package loadgen

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HTTPConfig says how to reach a server's HTTP API.
type HTTPConfig struct {
	// Addr is host:port, or a base URL such as http://host:port.
	Addr string
	// APIKey, when set, is sent as "Authorization: Bearer <key>".
	APIKey string
	// Client sends the requests; nil is a client that keeps a connection
	// alive per request in flight.
	Client *http.Client
}

// HTTPTarget sends requests to POST /generate with "stream": true and
// reads the NDJSON reply: {"text":…} lines, then one with the finish
// reason, usage and timings, or {"error":…} if the request fails midway.
type HTTPTarget struct {
	base   string // URL without the path
	apiKey string
	client *http.Client
}

// NewHTTPTarget makes a target of the server cfg names.
func NewHTTPTarget(cfg HTTPConfig) (*HTTPTarget, error) {
	base := strings.TrimSuffix(cfg.Addr, "/")
	if base == "" {
		return nil, errors.New("loadgen: no server address")
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	client := cfg.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// Every stream holds a connection; keep them for the next request.
		tr.MaxIdleConns = 0
		tr.MaxIdleConnsPerHost = 4096
		client = &http.Client{Transport: tr}
	}
	return &HTTPTarget{base: base, apiKey: cfg.APIKey, client: client}, nil
}

// Close closes idle connections.
func (t *HTTPTarget) Close() error {
	t.client.CloseIdleConnections()
	return nil
}

// Name implements Target.
func (t *HTTPTarget) Name() string { return "http " + t.base }

// generateBody is the JSON body of POST /generate.
type generateBody struct {
	Model       string  `json:"model,omitempty"`
	Prompt      string  `json:"prompt"`
	MaxTokens   int     `json:"max_tokens"`
	Temperature float32 `json:"temperature"`
	Seed        uint32  `json:"seed,omitempty"`
	Stream      bool    `json:"stream"`
	// JSONSchema is llama.cpp's json_schema field.
	JSONSchema json.RawMessage `json:"json_schema,omitempty"`
}

// streamLine is any line of the NDJSON reply.
type streamLine struct {
	Text         string `json:"text"`
	FinishReason string `json:"finish_reason"`
	Usage        *struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Timings *struct {
		QueueMS   float64 `json:"queue_ms"`
		PrefillMS float64 `json:"prefill_ms"`
	} `json:"timings"`
	Error *errorDetail `json:"error"`
}

// errorDetail is the body of Lumen's (OpenAI's) error envelope.
type errorDetail struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code"`
}

// Stream implements Target. A status other than 200 is a *RequestError
// of kind "HTTP <status>", an error line inside the stream one of kind
// "stream: <code>", a failed connection one of kind "transport".
func (t *HTTPTarget) Stream(ctx context.Context, req Request, onText func(string) error) (Result, error) {
	gb := generateBody{
		Model: req.Model, Prompt: req.Prompt, MaxTokens: req.MaxTokens,
		Temperature: req.Temperature, Seed: req.Seed, Stream: true,
	}
	switch req.Constraint {
	case ConstraintJSONSchema:
		gb.JSONSchema = json.RawMessage(BenchSchema)
	case ConstraintToolCall, ConstraintToolPrompt:
		return Result{}, &RequestError{Kind: "config", Err: errors.New("tool_call load needs the grpc protocol (/generate takes no tools)")}
	}
	body, err := json.Marshal(gb)
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: encoding request: %w", err)
	}
	resp, err := t.post(ctx, "/generate", body)
	if err != nil {
		return Result{}, err
	}
	// Closing the body before its end drops the connection, which tells
	// the server the client has gone.
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var l streamLine
			if err := json.Unmarshal(line, &l); err != nil {
				return Result{}, &RequestError{Kind: "stream", Err: fmt.Errorf("malformed line %q: %w", line, err)}
			}
			switch {
			case l.Error != nil:
				return Result{}, &RequestError{Kind: "stream: " + cmp.Or(l.Error.Code, l.Error.Type, "error"), Err: errors.New(l.Error.Message)}
			case l.FinishReason != "":
				if l.Text != "" {
					if err := onText(l.Text); err != nil {
						return Result{}, err
					}
				}
				return resultOf(&l), nil
			case l.Text != "":
				if err := onText(l.Text); err != nil {
					return Result{}, err
				}
			}
		}
		if err == io.EOF {
			return Result{}, &RequestError{Kind: "stream", Err: errors.New("stream ended without a final line")}
		}
		if err != nil {
			return Result{}, &RequestError{Kind: "transport", Err: err}
		}
	}
}

// CountTokens implements TokenCounter with POST /tokenize.
func (t *HTTPTarget) CountTokens(ctx context.Context, model, text string) (int, error) {
	body, err := json.Marshal(struct {
		Model string `json:"model,omitempty"`
		Text  string `json:"text"`
	}{model, text})
	if err != nil {
		return 0, fmt.Errorf("loadgen: encoding request: %w", err)
	}
	resp, err := t.post(ctx, "/tokenize", body)
	if err != nil {
		return 0, fmt.Errorf("loadgen: counting tokens: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Count int `json:"count"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, fmt.Errorf("loadgen: counting tokens: %w", err)
	}
	return out.Count, nil
}

// post sends a JSON body to path and returns a 200 response; other
// statuses are a *RequestError of kind "HTTP <status>", a failed
// connection one of kind "transport".
func (t *HTTPTarget) post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	// Marks the POST as safe to resend, so that Go's transport retries it
	// on a keep-alive connection the server closed as the request went
	// out (llama-server closes idle ones); the server never saw it.
	var key [8]byte
	rand.Read(key[:])
	req.Header.Set("Idempotency-Key", hex.EncodeToString(key[:]))
	if t.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+t.apiKey)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, &RequestError{Kind: "transport", Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, &RequestError{Kind: fmt.Sprintf("HTTP %d", resp.StatusCode), Err: errors.New(errorMessage(resp))}
	}
	return resp, nil
}

func resultOf(l *streamLine) Result {
	res := Result{FinishReason: l.FinishReason}
	if u := l.Usage; u != nil {
		res.PromptTokens, res.CompletionTokens, res.CachedTokens = u.PromptTokens, u.CompletionTokens, u.PromptTokensDetails.CachedTokens
	}
	if tm := l.Timings; tm != nil {
		res.QueueMS, res.PrefillMS = tm.QueueMS, tm.PrefillMS
	}
	return res
}

// errorMessage is the message of an error reply, or its status text.
func errorMessage(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env struct {
		Error *errorDetail `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error != nil && env.Error.Message != "" {
		return env.Error.Message
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return http.StatusText(resp.StatusCode)
}
