package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/scheduler"
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
	N                   *int            `json:"n"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// completionRequest is POST /v1/completions.
type completionRequest struct {
	Prompt   json.RawMessage `json:"prompt"`
	Echo     bool            `json:"echo"`
	Logprobs *int            `json:"logprobs"`
	BestOf   *int            `json:"best_of"`
}

// chatRequest is POST /v1/chat/completions.
type chatRequest struct {
	Messages []chatMessage `json:"messages"`
	Logprobs bool          `json:"logprobs"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
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

// tokenizeRequest is POST /tokenize.
type tokenizeRequest struct {
	Model string  `json:"model"`
	Text  *string `json:"text"`
}

func invalidField(field, format string, args ...any) error {
	return &scheduler.InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// decodeBody reads r's body (at most limit bytes) into each of dsts,
// pointers to structs.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, dsts ...any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
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
	return nil
}

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
	if o.N != nil && *o.N != 1 {
		return req, invalidField("n", "only n=1 is supported, got %d", *o.N)
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
	return req, nil
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (o *options) includeUsage() bool {
	return o.StreamOptions != nil && o.StreamOptions.IncludeUsage
}

// generateRequest validates a completions body and builds its request.
func (c *completionRequest) generateRequest(o *options) (inference.GenerateRequest, error) {
	req, err := o.request(true)
	if err != nil {
		return req, err
	}
	switch {
	case c.Echo:
		return req, invalidField("echo", "is not supported")
	case c.Logprobs != nil && *c.Logprobs > 0:
		return req, invalidField("logprobs", "is not supported")
	case c.BestOf != nil && *c.BestOf != 1:
		return req, invalidField("best_of", "only best_of=1 is supported, got %d", *c.BestOf)
	}
	if isNull(c.Prompt) {
		return req, invalidField("prompt", "is required")
	}
	prompts, err := stringOrList(c.Prompt, "prompt")
	if err != nil {
		// Token arrays are valid OpenAI prompts, but not ones we take.
		return req, invalidField("prompt", "must be a string or an array of one string (token arrays are not supported)")
	}
	if len(prompts) != 1 {
		return req, invalidField("prompt", "must hold exactly one prompt, got %d (batched prompts are not supported)", len(prompts))
	}
	req.Prompt = prompts[0]
	return req, nil
}

// generateRequest validates a chat body and builds its request.
func (c *chatRequest) generateRequest(o *options) (inference.GenerateRequest, error) {
	req, err := o.request(true)
	if err != nil {
		return req, err
	}
	if c.Logprobs {
		return req, invalidField("logprobs", "is not supported")
	}
	if len(c.Messages) == 0 {
		return req, invalidField("messages", "is required and must not be empty")
	}
	req.Messages = make([]inference.Message, len(c.Messages))
	for i, m := range c.Messages {
		content, err := messageContent(m.Content, fmt.Sprintf("messages[%d].content", i))
		if err != nil {
			return req, err
		}
		req.Messages[i] = inference.Message{Role: m.Role, Content: content}
	}
	return req, nil
}

// messageContent decodes a message's content: a string, null (an
// assistant turn with no text), or an array of content parts, of which
// only text parts are supported. Text parts are joined with newlines.
func messageContent(raw json.RawMessage, field string) (string, error) {
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
		if p.Type != "text" {
			return "", invalidField(fmt.Sprintf("%s[%d].type", field, j), "%q parts are not supported; only \"text\"", p.Type)
		}
		texts = append(texts, p.Text)
	}
	return strings.Join(texts, "\n"), nil
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
