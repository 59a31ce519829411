package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// Request bodies. Pointers tell "absent or null" from a zero value;
// json.RawMessage holds the fields OpenAI lets take more than one type,
// decoded by hand so that a wrong type names its field. Unknown fields are
// ignored, as OpenAI does; a known field of the wrong type is a 400.
//
// A body is decoded twice, into the shared options and into the route's
// own fields, rather than into one struct embedding options: encoding/json
// would name the embedded struct in type errors ("options.max_tokens"),
// and the error's param must be the field the client wrote.

// options are the generation options every route shares.
type options struct {
	Model               string          `json:"model"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"` // chat's newer name for max_tokens
	Temperature         *float32        `json:"temperature"`
	TopP                *float32        `json:"top_p"`
	TopK                *int            `json:"top_k"`
	MinP                *float32        `json:"min_p"`
	RepetitionPenalty   *float32        `json:"repetition_penalty"`
	FrequencyPenalty    *float32        `json:"frequency_penalty"`
	PresencePenalty     *float32        `json:"presence_penalty"`
	Seed                *int64          `json:"seed"`
	Stop                json.RawMessage `json:"stop"`
	Stream              bool            `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	User                *string         `json:"user"`
	// logit_bias: token id (as a string key, as OpenAI sends it) → bias.
	LogitBias map[string]float64 `json:"logit_bias"`
	// llama.cpp and vLLM extensions.
	IgnoreEOS *bool `json:"ignore_eos"`
	MinTokens *int  `json:"min_tokens"`
	// N is the number of choices (completions and chat).
	N           *int  `json:"n"`
	CachePrompt *bool `json:"cache_prompt"`
	// Output constraints; at most one may be given.
	ResponseFormat json.RawMessage `json:"response_format"`
	Grammar        *string         `json:"grammar"`
	JSONSchema     json.RawMessage `json:"json_schema"`
	GuidedJSON     json.RawMessage `json:"guided_json"`
	GuidedRegex    *string         `json:"guided_regex"`
	GuidedChoice   []string        `json:"guided_choice"`
	GuidedGrammar  *string         `json:"guided_grammar"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// completionRequest is POST /v1/completions.
type completionRequest struct {
	Prompt json.RawMessage `json:"prompt"`
	// Logprobs is the number of alternatives (0–5) to report with each
	// token's logprob; absent: no logprobs.
	Logprobs *int `json:"logprobs"`
	// Echo puts the prompt before the completion (with its logprobs when
	// logprobs is set).
	Echo *bool `json:"echo"`
	// BestOf makes this many candidates per prompt and returns the n
	// with the highest mean token logprob.
	BestOf *int `json:"best_of"`
	// Suffix asks for the text between the prompt and it
	// (fill-in-the-middle, for models with FIM tokens).
	Suffix *string `json:"suffix"`
}

// chatRequest is POST /v1/chat/completions.
type chatRequest struct {
	Messages          []chatMessage   `json:"messages"`
	Tools             []chatTool      `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	Logprobs          *bool           `json:"logprobs"`
	TopLogprobs       *int            `json:"top_logprobs"`
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	ToolCalls  []chatToolCall  `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

// chatTool is one entry of tools.
type chatTool struct {
	Type     string       `json:"type"`
	Function *functionDef `json:"function"`
}

type functionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// chatToolCall is a tool call in a request's history or a reply.
type chatToolCall struct {
	Index    *int         `json:"index,omitempty"` // streaming deltas only
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function functionCall `json:"function"`
}

type functionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// contentPart is one element of a message content array.
type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// generateRequest is POST /generate.
type generateRequest struct {
	Prompt *string `json:"prompt"`
}

// tokenizeRequest is POST /tokenize: one of text (Lumen), prompt (vLLM),
// content (llama.cpp) or messages (vLLM: the chat template's prompt).
type tokenizeRequest struct {
	Model    string          `json:"model"`
	Text     *string         `json:"text"`
	Prompt   *string         `json:"prompt"`
	Content  *string         `json:"content"`
	Messages json.RawMessage `json:"messages"`
	Tools    json.RawMessage `json:"tools"`
}

// detokenizeRequest is POST /detokenize.
type detokenizeRequest struct {
	Model  string  `json:"model"`
	Tokens []int32 `json:"tokens"`
}

func invalidField(field, format string, args ...any) error {
	return &reqerr.InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// decodeBody reads r's body (at most limit bytes) into each of dsts,
// pointers to structs, after refusing the known fields rt does not
// honour (fields.go).
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration, rt route, dsts ...any) error {
	// The body must arrive within timeout (bodyDeadline set it).
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &tooLarge):
			return err
		case errors.As(err, &ne) && ne.Timeout():
			w.Header().Set("Connection", "close")
			return fmt.Errorf("%w (%s)", errBodyTimeout, timeout)
		}
		return fmt.Errorf("%w: reading it failed: %v", errMalformed, err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: it is empty; send a JSON object", errMalformed)
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD, feeding
	// the model text the client never sent.
	if !utf8.Valid(body) {
		if field := fieldWithInvalidUTF8(body); field != "" {
			return invalidField(field, "is not valid UTF-8")
		}
		return fmt.Errorf("%w: it is not valid UTF-8", errMalformed)
	}
	for _, dst := range dsts {
		if err := json.Unmarshal(body, dst); err != nil {
			return decodeError(err)
		}
	}
	if err := duplicateKey(body); err != nil {
		return err
	}
	if rt >= 0 {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			return decodeError(err)
		}
		return checkRefused(rt, fields)
	}
	return nil
}

// noRoute is decodeBody's rt for bodies that are not generation requests.
const noRoute route = -1

// decodeError turns an encoding/json error into a client-facing one that
// names the field at fault.
func decodeError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("%w: invalid JSON at byte %d: %v", errMalformed, syntax.Offset, syntax)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Errorf("%w: it must be a JSON object, not %s", errMalformed, typ.Value)
	case errors.As(err, &typ):
		return invalidField(typ.Field, "must be %s, not %s", jsonType(typ.Type), typ.Value)
	default:
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
}

// jsonType names a Go type the way a JSON client thinks of it.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return jsonType(t.Elem())
	}
	return t.String()
}

// fieldWithInvalidUTF8 finds the top-level field whose raw value holds
// invalid UTF-8, to name it in the error; "" when there is none to name.
func fieldWithInvalidUTF8(body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return ""
	}
	for name, raw := range fields {
		if !utf8.Valid(raw) {
			return name
		}
	}
	return ""
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// stringOrList decodes a field that may be a string or an array of
// strings (OpenAI's prompt and stop). Absent or null gives nil.
func stringOrList(raw json.RawMessage, field string) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list, nil
	}
	return nil, invalidField(field, "must be a string or an array of strings")
}

// request turns the shared options into a GenerateRequest. openAI applies
// the OpenAI API's documented default temperature (1) when none is given;
// the native route keeps the inference default (greedy).
func (o *options) request(openAI bool) (inference.GenerateRequest, error) {
	req := inference.GenerateRequest{Model: o.Model}
	maxTokens, maxField := o.MaxTokens, "max_tokens"
	if o.MaxCompletionTokens != nil {
		maxTokens, maxField = o.MaxCompletionTokens, "max_completion_tokens"
	}
	if maxTokens != nil {
		// 0 would mean "the server's default" to inference; a client
		// that writes 0 more likely has a bug than wants that.
		if *maxTokens < 1 {
			return req, invalidField(maxField, "must be at least 1, got %d", *maxTokens)
		}
		req.MaxTokens = *maxTokens
	}
	if o.Seed != nil {
		if *o.Seed < 0 || *o.Seed > math.MaxUint32 {
			return req, invalidField("seed", "must be between 0 and %d, got %d", uint32(math.MaxUint32), *o.Seed)
		}
		req.Sampling.Seed = uint32(*o.Seed)
	}
	stop, err := stringOrList(o.Stop, "stop")
	if err != nil {
		return req, err
	}
	req.Stop = stop
	if openAI {
		req.Sampling.Temperature = 1
	}
	setIf(&req.Sampling.Temperature, o.Temperature)
	setIf(&req.Sampling.TopP, o.TopP)
	setIf(&req.Sampling.TopK, o.TopK)
	setIf(&req.Sampling.MinP, o.MinP)
	setIf(&req.Sampling.RepeatPenalty, o.RepetitionPenalty)
	setIf(&req.Sampling.FrequencyPenalty, o.FrequencyPenalty)
	setIf(&req.Sampling.PresencePenalty, o.PresencePenalty)
	setIf(&req.Sampling.IgnoreEOS, o.IgnoreEOS)
	if o.MinTokens != nil {
		if *o.MinTokens < 0 {
			return req, invalidField("min_tokens", "must not be negative, got %d", *o.MinTokens)
		}
		if maxTokens != nil && *o.MinTokens > *maxTokens {
			return req, invalidField("min_tokens", "%d exceeds %s (%d)", *o.MinTokens, maxField, *maxTokens)
		}
		req.Sampling.MinTokens = *o.MinTokens
	}
	if o.User != nil {
		req.User = *o.User
	}
	if o.CachePrompt != nil {
		req.NoCache = !*o.CachePrompt
	}
	if len(o.LogitBias) > 0 {
		raw := make(map[int32]float64, len(o.LogitBias))
		for k, b := range o.LogitBias {
			tok, err := strconv.ParseInt(k, 10, 32)
			if err != nil {
				return req, invalidField("logit_bias", "keys must be token ids, got %q", k)
			}
			raw[int32(tok)] = b
		}
		bias, err := inference.LogitBias(raw)
		if err != nil {
			return req, err
		}
		req.Sampling.LogitBias = bias
	}
	c, err := o.constraint()
	if err != nil {
		return req, err
	}
	req.Constraint = c
	return req, nil
}

// constraint reads the output-constraint fields, of which at most one
// may be given.
func (o *options) constraint() (*inference.Constraint, error) {
	var found []*inference.Constraint
	add := func(c *inference.Constraint) { found = append(found, c) }
	if !isNull(o.ResponseFormat) {
		c, err := responseFormat(o.ResponseFormat)
		if err != nil {
			return nil, err
		}
		if c != nil {
			add(c)
		}
	}
	if o.Grammar != nil {
		add(&inference.Constraint{Kind: inference.ConstraintGrammar, Field: "grammar", Grammar: *o.Grammar})
	}
	if o.GuidedGrammar != nil {
		add(&inference.Constraint{Kind: inference.ConstraintGrammar, Field: "guided_grammar", Grammar: *o.GuidedGrammar})
	}
	for _, js := range []struct {
		field string
		raw   json.RawMessage
	}{{"json_schema", o.JSONSchema}, {"guided_json", o.GuidedJSON}} {
		if isNull(js.raw) {
			continue
		}
		schema, err := schemaValue(js.raw, js.field)
		if err != nil {
			return nil, err
		}
		add(&inference.Constraint{Kind: inference.ConstraintJSONSchema, Field: js.field, Schema: schema})
	}
	if o.GuidedRegex != nil {
		add(&inference.Constraint{Kind: inference.ConstraintRegex, Field: "guided_regex", Regex: *o.GuidedRegex})
	}
	if o.GuidedChoice != nil {
		if len(o.GuidedChoice) == 0 {
			return nil, invalidField("guided_choice", "must list at least one choice")
		}
		add(&inference.Constraint{Kind: inference.ConstraintChoice, Field: "guided_choice", Choices: o.GuidedChoice})
	}
	return inference.OneConstraint(found...)
}

// schemaValue accepts a JSON Schema given as an object, or as a string
// holding one (vLLM allows both).
func schemaValue(raw json.RawMessage, field string) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	var text string
	if json.Unmarshal(raw, &text) == nil {
		raw = json.RawMessage(text)
	}
	var obj map[string]any
	if json.Unmarshal(raw, &obj) != nil {
		var b bool
		if json.Unmarshal(raw, &b) == nil && b {
			return json.RawMessage(`{}`), nil
		}
		return nil, invalidField(field, "must be a JSON Schema object")
	}
	return raw, nil
}

// responseFormat decodes OpenAI's response_format: text (no constraint),
// json_object, or json_schema {name, schema, strict, description}.
func responseFormat(raw json.RawMessage) (*inference.Constraint, error) {
	var rf struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict"`
		} `json:"json_schema"`
		// llama.cpp's server also takes {"type":"json_object","schema":…}.
		Schema json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		return nil, invalidField("response_format", "must be an object with a type")
	}
	switch rf.Type {
	case "text":
		return nil, nil
	case "json_object":
		if !isNull(rf.Schema) {
			schema, err := schemaValue(rf.Schema, "response_format.schema")
			if err != nil {
				return nil, err
			}
			return &inference.Constraint{Kind: inference.ConstraintJSONSchema, Field: "response_format.schema", Schema: schema}, nil
		}
		return &inference.Constraint{Kind: inference.ConstraintJSONObject, Field: "response_format"}, nil
	case "json_schema":
		if rf.JSONSchema == nil {
			return nil, invalidField("response_format.json_schema", "is required when type is json_schema")
		}
		if rf.JSONSchema.Name == "" {
			return nil, invalidField("response_format.json_schema.name", "is required")
		}
		// Without a schema OpenAI's json_schema is any JSON; strict is
		// what Lumen does anyway (the grammar enforces the schema).
		schema := json.RawMessage(`{}`)
		if !isNull(rf.JSONSchema.Schema) {
			var err error
			if schema, err = schemaValue(rf.JSONSchema.Schema, "response_format.json_schema.schema"); err != nil {
				return nil, err
			}
		}
		return &inference.Constraint{Kind: inference.ConstraintJSONSchema, Field: "response_format.json_schema.schema", Schema: schema}, nil
	case "":
		return nil, invalidField("response_format.type", "is required")
	}
	return nil, invalidField("response_format.type", "%q is not one of text, json_object, json_schema", rf.Type)
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (o *options) includeUsage() bool {
	return o.StreamOptions != nil && o.StreamOptions.IncludeUsage
}

// generateRequests validates a completions body and builds its
// candidates' requests: per for each prompt, those of one prompt
// consecutive. per is n, or best_of when that asks for more candidates
// than choices (the n likeliest of each prompt's are returned).
func (c *completionRequest) generateRequests(o *options) (reqs []inference.GenerateRequest, n, per int, err error) {
	base, err := c.generateRequest(o)
	if err != nil {
		return nil, 0, 0, err
	}
	ps, err := prompts(c.Prompt, "prompt")
	if err != nil {
		return nil, 0, 0, err
	}
	if len(ps) > maxChoices {
		return nil, 0, 0, invalidField("prompt", "has %d prompts; at most %d are allowed", len(ps), maxChoices)
	}
	if n, err = choiceCount(o.N, len(ps)); err != nil {
		return nil, 0, 0, err
	}
	per = n
	if c.BestOf != nil {
		switch bo := *c.BestOf; {
		case bo < n || bo*len(ps) > maxChoices:
			return nil, 0, 0, invalidField("best_of", "must be between n (%d) and %d, got %d", n, maxChoices/len(ps), bo)
		case bo > n && o.Stream:
			return nil, 0, 0, invalidField("best_of", "cannot be streamed: the best are known only at the end")
		default:
			per = bo
		}
	}
	if per > n {
		// Candidates are ranked by their tokens' logprobs.
		base.Logprobs = true
	}
	for _, p := range ps {
		if p.tokens != nil && c.echo() {
			return nil, 0, 0, invalidField("echo", "needs text prompts (the prompt is token ids)")
		}
		req := base
		req.Prompt, req.PromptTokens = p.text, p.tokens
		if c.Suffix != nil {
			req.Suffix = *c.Suffix
		}
		if p.tokens == nil && p.text == "" {
			return nil, 0, 0, invalidField("prompt", "is empty")
		}
		reqs = append(reqs, expand(req, per)...)
	}
	return reqs, n, per, nil
}

// generateRequest builds what every choice of a completions body shares.
func (c *completionRequest) generateRequest(o *options) (inference.GenerateRequest, error) {
	req, err := o.request(true)
	if err != nil {
		return req, err
	}
	if c.Logprobs != nil {
		if *c.Logprobs < 0 || *c.Logprobs > maxCompletionTopLogprobs {
			return req, invalidField("logprobs", "must be between 0 and %d, got %d", maxCompletionTopLogprobs, *c.Logprobs)
		}
		req.Logprobs, req.TopLogprobs = true, *c.Logprobs
		req.PromptLogprobs = c.echo()
	}
	return req, nil
}

func (c *completionRequest) echo() bool { return c.Echo != nil && *c.Echo }

// generateRequest validates a chat body and builds its request.
func (c *chatRequest) generateRequest(o *options) (inference.GenerateRequest, error) {
	req, err := o.request(true)
	if err != nil {
		return req, err
	}
	if req.Messages, err = c.messages(); err != nil {
		return req, err
	}
	tools, err := c.tools()
	if err != nil {
		return req, err
	}
	req.Tools = tools
	req.Logprobs = c.Logprobs != nil && *c.Logprobs
	if c.TopLogprobs != nil {
		if *c.TopLogprobs < 0 || *c.TopLogprobs > maxChatTopLogprobs {
			return req, invalidField("top_logprobs", "must be between 0 and %d, got %d", maxChatTopLogprobs, *c.TopLogprobs)
		}
		if !req.Logprobs && *c.TopLogprobs > 0 {
			return req, invalidField("top_logprobs", "needs logprobs: true")
		}
		req.TopLogprobs = *c.TopLogprobs
	}
	return req, nil
}

// messages decodes messages, which must not be empty.
func (c *chatRequest) messages() ([]chat.Message, error) {
	if len(c.Messages) == 0 {
		return nil, invalidField("messages", "is required and must not be empty")
	}
	out := make([]chat.Message, len(c.Messages))
	for i, m := range c.Messages {
		content, err := messageContent(m.Content, fmt.Sprintf("messages[%d].content", i))
		if err != nil {
			return nil, err
		}
		msg := chat.Message{Role: m.Role, Content: content, Name: m.Name, ToolCallID: m.ToolCallID}
		for j, tc := range m.ToolCalls {
			if tc.Type != "" && tc.Type != "function" {
				return nil, invalidField(fmt.Sprintf("messages[%d].tool_calls[%d].type", i, j), "%q is not \"function\"", tc.Type)
			}
			if tc.Function.Name == "" {
				return nil, invalidField(fmt.Sprintf("messages[%d].tool_calls[%d].function.name", i, j), "is required")
			}
			msg.ToolCalls = append(msg.ToolCalls, chat.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		if m.Role == "tool" && m.ToolCallID == "" {
			return nil, invalidField(fmt.Sprintf("messages[%d].tool_call_id", i), "is required on tool messages")
		}
		out[i] = msg
	}
	return out, nil
}

// tools decodes tools, tool_choice and parallel_tool_calls.
func (c *chatRequest) tools() (inference.Tools, error) {
	t := inference.Tools{Parallel: true}
	if c.ParallelToolCalls != nil {
		t.Parallel = *c.ParallelToolCalls
	}
	for i, tool := range c.Tools {
		if tool.Type != "function" {
			return t, invalidField(fmt.Sprintf("tools[%d].type", i), "%q is not \"function\"", tool.Type)
		}
		if tool.Function == nil {
			return t, invalidField(fmt.Sprintf("tools[%d].function", i), "is required")
		}
		params := tool.Function.Parameters
		if isNull(params) {
			params = nil
		}
		t.Tools = append(t.Tools, toolcall.Tool{Name: tool.Function.Name, Description: tool.Function.Description, Parameters: params})
	}
	t.Choice = toolcall.Choice{Mode: toolcall.Auto}
	if isNull(c.ToolChoice) {
		return t, nil
	}
	var mode string
	if json.Unmarshal(c.ToolChoice, &mode) == nil {
		switch mode {
		case "auto":
		case "none":
			t.Choice.Mode = toolcall.None
		case "required":
			t.Choice.Mode = toolcall.Required
		default:
			return t, invalidField("tool_choice", "%q is not one of none, auto, required", mode)
		}
		return t, nil
	}
	var named struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(c.ToolChoice, &named) != nil || named.Type != "function" || named.Function.Name == "" {
		return t, invalidField("tool_choice", `must be "none", "auto", "required" or {"type":"function","function":{"name":…}}`)
	}
	t.Choice = toolcall.Choice{Mode: toolcall.Named, Name: named.Function.Name}
	return t, nil
}

// messageContent decodes a chat message's content: a string, null (an
// assistant turn with no text), or an array of content parts, of which
// only text parts are supported. Text parts are joined with newlines.
func messageContent(raw json.RawMessage, field string) (string, error) {
	return textContent(raw, field, "text")
}

// textContent decodes content that is a string, null, or an array of
// parts whose types must be among textTypes; the parts' texts are joined
// with newlines.
func textContent(raw json.RawMessage, field string, textTypes ...string) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return text, nil
	}
	var parts []contentPart
	if json.Unmarshal(raw, &parts) != nil {
		return "", invalidField(field, "must be a string or an array of content parts")
	}
	texts := make([]string, 0, len(parts))
	for j, p := range parts {
		if !slices.Contains(textTypes, p.Type) {
			return "", invalidField(fmt.Sprintf("%s[%d].type", field, j), "%q parts are not supported; only %s", p.Type, strings.Join(quoted(textTypes), ", "))
		}
		texts = append(texts, p.Text)
	}
	return strings.Join(texts, "\n"), nil
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// generateRequest validates a /generate body and builds its request.
func (g *generateRequest) generateRequest(o *options) (inference.GenerateRequest, error) {
	req, err := o.request(false)
	if err != nil {
		return req, err
	}
	if g.Prompt == nil {
		return req, invalidField("prompt", "is required")
	}
	req.Prompt = *g.Prompt
	return req, nil
}

// duplicateKey refuses an object, at any depth, that gives a key twice:
// encoding/json would keep the last silently, and a proxy or logger that
// keeps the first would see another request than the model does. body is
// valid JSON here.
func duplicateKey(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next string token is a key
		path   string
	}
	var stack []*frame
	var last string // the last key, for the next nested frame's path
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // EOF (or malformed, which Unmarshal reported)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				path := last
				if top != nil && top.path != "" && path != "" {
					path = top.path + "." + path
				} else if top != nil && path == "" {
					path = top.path
				}
				stack = append(stack, &frame{object: t == '{', keys: map[string]bool{}, key: t == '{', path: path})
				last = ""
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.object && top.key {
				if top.keys[t] {
					field := t
					if top.path != "" {
						field = top.path + "." + t
					}
					return invalidField(field, "is given more than once")
				}
				top.keys[t] = true
				top.key = false
				last = t
				continue
			}
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
		last = ""
	}
}
