package httpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/inference"
)

// POST /v1/responses, OpenAI's Responses API, stateless: nothing is
// stored, so previous_response_id and store: true are refused. A request
// becomes a chat (instructions a system message, input items messages,
// function calls and their outputs the tool history) and the reply an
// output list of a message and function calls.

type responsesRequest struct {
	Model             string          `json:"model"`
	Input             json.RawMessage `json:"input"`
	Instructions      *string         `json:"instructions"`
	MaxOutputTokens   *int            `json:"max_output_tokens"`
	Temperature       *float32        `json:"temperature"`
	TopP              *float32        `json:"top_p"`
	Stream            bool            `json:"stream"`
	Text              *responsesText  `json:"text"`
	Tools             []responsesTool `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	User              *string         `json:"user"`
	SafetyIdentifier  *string         `json:"safety_identifier"`
}

type responsesText struct {
	Format json.RawMessage `json:"format"`
}

// responsesTool is the Responses API's flat function tool.
type responsesTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// responsesItem is one input item: a message (type "message" or absent),
// a function call the model made, or its output.
type responsesItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

// refusedResponses are the Responses fields Lumen knows and does not honour.
var refusedResponses = map[string]refusal{
	"previous_response_id": {never, "is not supported: Lumen stores no responses (send the whole conversation as input)"},
	"store":                {isFalse, "is not supported: Lumen stores no responses; send store: false or leave it out"},
	"conversation":         {never, "is not supported: Lumen stores no conversations"},
	"background":           {isFalse, "is not supported: responses are not run in the background"},
	"include":              {isEmpty, "is not supported yet"},
	"reasoning":            {isEmpty, "is not supported: the model is not a reasoning model to Lumen"},
	"top_logprobs":         {isZero, "is not supported on /v1/responses yet; use /v1/chat/completions"},
	"max_tool_calls":       {never, "is not supported yet"},
	"truncation":           {oneOfStrings("disabled"), "is not supported: Lumen does not truncate input"},
	"prompt":               {never, "is not supported: Lumen stores no prompt templates"},
	"metadata":             {isEmpty, "is not supported: Lumen stores no responses"},
	"service_tier":         {oneOfStrings("auto", "default"), "is not supported: Lumen has one service tier"},
}

// generateRequest turns a Responses request into a chat request.
func (b *responsesRequest) generateRequest() (inference.GenerateRequest, error) {
	req := inference.GenerateRequest{Model: b.Model}
	req.Sampling.Temperature = 1 // OpenAI's default
	setIf(&req.Sampling.Temperature, b.Temperature)
	setIf(&req.Sampling.TopP, b.TopP)
	if b.MaxOutputTokens != nil {
		if *b.MaxOutputTokens < 1 {
			return req, invalidField("max_output_tokens", "must be at least 1, got %d", *b.MaxOutputTokens)
		}
		req.MaxTokens = *b.MaxOutputTokens
	}
	if b.SafetyIdentifier != nil {
		req.User = *b.SafetyIdentifier
	} else if b.User != nil {
		req.User = *b.User
	}
	if b.Instructions != nil && *b.Instructions != "" {
		req.Messages = append(req.Messages, chat.Message{Role: "system", Content: *b.Instructions})
	}
	msgs, err := responsesInput(b.Input)
	if err != nil {
		return req, err
	}
	req.Messages = append(req.Messages, msgs...)
	if b.Text != nil && !isNull(b.Text.Format) {
		c, err := responsesFormat(b.Text.Format)
		if err != nil {
			return req, err
		}
		req.Constraint = c
	}
	// The tools, in the chat shape, decoded by the chat code.
	chat := chatRequest{ToolChoice: b.ToolChoice, ParallelToolCalls: b.ParallelToolCalls}
	for i, t := range b.Tools {
		if t.Type != "function" {
			return req, invalidField(fmt.Sprintf("tools[%d].type", i), "%q is not supported; only \"function\"", t.Type)
		}
		if t.Name == "" {
			return req, invalidField(fmt.Sprintf("tools[%d].name", i), "is required")
		}
		chat.Tools = append(chat.Tools, chatTool{Type: "function", Function: &functionDef{Name: t.Name, Description: t.Description, Parameters: t.Parameters, Strict: t.Strict}})
	}
	if named := responsesNamedChoice(b.ToolChoice); named != "" {
		chat.ToolChoice = json.RawMessage(fmt.Sprintf(`{"type":"function","function":{"name":%q}}`, named))
	}
	if req.Tools, err = chat.tools(); err != nil {
		return req, err
	}
	return req, nil
}

// responsesNamedChoice is the function a Responses tool_choice names
// ({"type":"function","name":…}), or "".
func responsesNamedChoice(raw json.RawMessage) string {
	var c struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &c) == nil && c.Type == "function" {
		return c.Name
	}
	return ""
}

// responsesInput decodes input: a string (one user message) or items.
func responsesInput(raw json.RawMessage) ([]chat.Message, error) {
	if isNull(raw) {
		return nil, invalidField("input", "is required")
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return []chat.Message{{Role: "user", Content: text}}, nil
	}
	var items []responsesItem
	if json.Unmarshal(raw, &items) != nil {
		return nil, invalidField("input", "must be a string or an array of input items")
	}
	if len(items) == 0 {
		return nil, invalidField("input", "must not be empty")
	}
	var out []chat.Message
	for i, it := range items {
		field := fmt.Sprintf("input[%d]", i)
		switch it.Type {
		case "", "message":
			content, err := responsesContent(it.Content, field+".content")
			if err != nil {
				return nil, err
			}
			out = append(out, chat.Message{Role: it.Role, Content: content})
		case "function_call":
			if it.Name == "" || it.CallID == "" {
				return nil, invalidField(field, "a function_call needs name and call_id")
			}
			call := chat.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments}
			// Consecutive calls are one assistant turn, as in chat.
			if n := len(out); n > 0 && out[n-1].Role == "assistant" && len(out[n-1].ToolCalls) > 0 {
				out[n-1].ToolCalls = append(out[n-1].ToolCalls, call)
			} else {
				out = append(out, chat.Message{Role: "assistant", ToolCalls: []chat.ToolCall{call}})
			}
		case "function_call_output":
			if it.CallID == "" {
				return nil, invalidField(field+".call_id", "is required")
			}
			output, err := responsesContent(it.Output, field+".output")
			if err != nil {
				return nil, err
			}
			out = append(out, chat.Message{Role: "tool", ToolCallID: it.CallID, Content: output})
		default:
			return nil, invalidField(field+".type", "%q items are not supported; only message, function_call and function_call_output", it.Type)
		}
	}
	return out, nil
}

// responsesContent decodes a Responses message's content: a string, or
// parts of which only text ones (input_text, output_text, text) are
// supported.
func responsesContent(raw json.RawMessage, field string) (string, error) {
	return textContent(raw, field, "input_text", "output_text", "text")
}

// responsesFormat decodes text.format: text, json_object, or json_schema
// {name, schema, strict} (flat, unlike chat's response_format).
func responsesFormat(raw json.RawMessage) (*inference.Constraint, error) {
	var f struct {
		Type   string          `json:"type"`
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, invalidField("text.format", "must be an object with a type")
	}
	switch f.Type {
	case "text":
		return nil, nil
	case "json_object":
		return &inference.Constraint{Kind: inference.ConstraintJSONObject, Field: "text.format"}, nil
	case "json_schema":
		if f.Name == "" {
			return nil, invalidField("text.format.name", "is required")
		}
		schema := json.RawMessage(`{}`)
		if !isNull(f.Schema) {
			var err error
			if schema, err = schemaValue(f.Schema, "text.format.schema"); err != nil {
				return nil, err
			}
		}
		return &inference.Constraint{Kind: inference.ConstraintJSONSchema, Field: "text.format.schema", Schema: schema}, nil
	}
	return nil, invalidField("text.format.type", "%q is not one of text, json_object, json_schema", f.Type)
}

// The response object and its parts.

type responseObject struct {
	ID                string              `json:"id"`
	Object            string              `json:"object"` // "response"
	CreatedAt         int64               `json:"created_at"`
	Status            string              `json:"status"` // in_progress, completed, incomplete
	Model             string              `json:"model"`
	Output            []responseItem      `json:"output"`
	Usage             *responseUsage      `json:"usage"`
	IncompleteDetails *incompleteDetails  `json:"incomplete_details"`
	Error             *struct{}           `json:"error"`
	Instructions      *string             `json:"instructions"`
	MaxOutputTokens   *int                `json:"max_output_tokens"`
	Temperature       *float32            `json:"temperature"`
	TopP              *float32            `json:"top_p"`
	ParallelToolCalls bool                `json:"parallel_tool_calls"`
	ToolChoice        json.RawMessage     `json:"tool_choice"`
	Tools             []responsesTool     `json:"tools"`
	Text              responsesTextOut    `json:"text"`
	PreviousResponse  *string             `json:"previous_response_id"`
	Store             bool                `json:"store"`
	Metadata          map[string]struct{} `json:"metadata"`
	Timings           *timings            `json:"timings,omitempty"`
}

type responsesTextOut struct {
	Format json.RawMessage `json:"format"`
}

type incompleteDetails struct {
	Reason string `json:"reason"`
}

type responseUsage struct {
	InputTokens         int            `json:"input_tokens"`
	InputTokensDetails  cachedDetails  `json:"input_tokens_details"`
	OutputTokens        int            `json:"output_tokens"`
	OutputTokensDetails reasoningCount `json:"output_tokens_details"`
	TotalTokens         int            `json:"total_tokens"`
}

type cachedDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type reasoningCount struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// responseItem is an output item: a message or a function call.
type responseItem struct {
	Type   string `json:"type"` // message, function_call
	ID     string `json:"id"`
	Status string `json:"status"`
	// message
	Role    string          `json:"role,omitempty"`
	Content *[]responsePart `json:"content,omitempty"` // [] on a message, absent on a call
	// function_call
	CallID    string  `json:"call_id,omitempty"`
	Name      string  `json:"name,omitempty"`
	Arguments *string `json:"arguments,omitempty"`
}

type responsePart struct {
	Type        string     `json:"type"` // output_text
	Text        string     `json:"text"`
	Annotations []struct{} `json:"annotations"`
}

// responses answers POST /v1/responses.
func (s *Server) responses(w http.ResponseWriter, r *http.Request) {
	var body responsesRequest
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, s.cfg.BodyTimeout, routeResponses, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := body.generateRequest()
	req.ID = clientID("resp_")
	st, ok := s.start(w, r, req, err)
	if !ok {
		return
	}
	defer st.Close()
	base := responseObject{
		ID: withPrefix("resp_", st.ID), Object: "response", CreatedAt: time.Now().Unix(), Status: "in_progress", Model: st.Model,
		Output: []responseItem{}, Instructions: body.Instructions, MaxOutputTokens: body.MaxOutputTokens,
		Temperature: &req.Sampling.Temperature, TopP: body.TopP, ParallelToolCalls: req.Tools.Parallel,
		ToolChoice: body.ToolChoice, Tools: body.Tools, Metadata: map[string]struct{}{},
		Text: responsesTextOut{Format: json.RawMessage(`{"type":"text"}`)},
	}
	if base.Tools == nil {
		base.Tools = []responsesTool{}
	}
	if isNull(base.ToolChoice) {
		base.ToolChoice = json.RawMessage(`"auto"`)
	}
	if body.Text != nil && !isNull(body.Text.Format) {
		base.Text.Format = body.Text.Format
	}
	msgID := "msg_" + strings.TrimPrefix(st.ID, "resp_")
	if !body.Stream {
		out, res, err := collect(r.Context(), st)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		resp := finishResponse(base, msgID, st.ParseReply(out.text), res)
		setResponseHeaders(w.Header(), st, res)
		s.writeJSON(w, r, http.StatusOK, resp)
		return
	}
	sw, err := startStream(w, r, st, "text/event-stream", "", "\n\n")
	if err != nil {
		return // the client is gone
	}
	ev := responseEvents{sw: sw}
	created := base
	if err = ev.send("response.created", map[string]any{"response": created}); err == nil {
		err = ev.send("response.in_progress", map[string]any{"response": created})
	}
	// The message item opens with the first text; tool calls follow it.
	opened := false
	var text strings.Builder
	open := func() error {
		if opened {
			return nil
		}
		opened = true
		item := responseItem{Type: "message", ID: msgID, Status: "in_progress", Role: "assistant", Content: &[]responsePart{}}
		if err := ev.send("response.output_item.added", map[string]any{"output_index": 0, "item": item}); err != nil {
			return err
		}
		return ev.send("response.content_part.added", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0,
			"part": responsePart{Type: "output_text", Annotations: []struct{}{}}})
	}
	delta := func(d string) error {
		if d == "" {
			return nil
		}
		if err := open(); err != nil {
			return err
		}
		text.WriteString(d)
		return ev.send("response.output_text.delta", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "delta": d, "logprobs": []struct{}{}})
	}
	split := st.ReplyStream()
	var res *inference.Result
	if err == nil {
		res, err = pump(r.Context(), st, func(e inference.Event) error {
			d := e.Text
			if split != nil {
				d = split.Push(d)
			}
			return delta(d)
		})
	}
	reply := inference.Reply{}
	if err == nil && split != nil {
		reply = split.Finish()
		err = delta(reply.Content)
	}
	reply.Content = text.String()
	if err == nil && (reply.Content != "" || len(reply.ToolCalls) == 0) {
		if err = open(); err == nil {
			part := responsePart{Type: "output_text", Text: reply.Content, Annotations: []struct{}{}}
			if err = ev.send("response.output_text.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "text": reply.Content, "logprobs": []struct{}{}}); err == nil {
				err = ev.send("response.content_part.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "part": part})
			}
		}
	}
	var final responseObject
	if err == nil {
		final = finishResponse(base, msgID, reply, res)
		for i, item := range final.Output {
			if item.Type == "message" {
				err = ev.send("response.output_item.done", map[string]any{"output_index": i, "item": item})
				continue
			}
			added, empty := item, ""
			added.Status, added.Arguments = "in_progress", &empty
			if err = ev.send("response.output_item.added", map[string]any{"output_index": i, "item": added}); err == nil {
				err = ev.send("response.function_call_arguments.delta", map[string]any{"item_id": item.ID, "output_index": i, "delta": *item.Arguments})
			}
			if err == nil {
				err = ev.send("response.function_call_arguments.done", map[string]any{"item_id": item.ID, "output_index": i, "arguments": *item.Arguments})
			}
			if err == nil {
				err = ev.send("response.output_item.done", map[string]any{"output_index": i, "item": item})
			}
			if err != nil {
				break
			}
		}
	}
	if err == nil {
		kind := "response.completed"
		if final.Status == "incomplete" {
			kind = "response.incomplete"
		}
		sw.finish(res)
		err = ev.send(kind, map[string]any{"response": final})
	}
	if err != nil {
		s.responsesFailed(&ev, r, err)
	}
}

// finishResponse fills base from a finished reply.
func finishResponse(base responseObject, msgID string, reply inference.Reply, res *inference.Result) responseObject {
	out := base
	out.Status = "completed"
	if res.Finish == inference.FinishLength {
		out.Status, out.IncompleteDetails = "incomplete", &incompleteDetails{Reason: "max_output_tokens"}
	}
	out.Output = nil
	if reply.Content != "" || len(reply.ToolCalls) == 0 {
		out.Output = append(out.Output, responseItem{Type: "message", ID: msgID, Status: out.Status, Role: "assistant",
			Content: &[]responsePart{{Type: "output_text", Text: reply.Content, Annotations: []struct{}{}}}})
	}
	for i, c := range reply.ToolCalls {
		args := c.Arguments
		out.Output = append(out.Output, responseItem{Type: "function_call", ID: fmt.Sprintf("fc_%s_%d", strings.TrimPrefix(msgID, "msg_"), i),
			Status: "completed", CallID: c.ID, Name: c.Name, Arguments: &args})
	}
	out.Usage = &responseUsage{
		InputTokens: res.PromptTokens, InputTokensDetails: cachedDetails{CachedTokens: res.CachedTokens},
		OutputTokens: res.CompletionTokens, TotalTokens: res.PromptTokens + res.CompletionTokens,
	}
	out.Timings = timingsOf(res)
	return out
}

// responseEvents writes the Responses API's typed server-sent events
// ("event: type" then "data: {...,type, sequence_number}").
type responseEvents struct {
	sw  *streamWriter
	seq int
}

func (e *responseEvents) send(kind string, fields map[string]any) error {
	fields["type"] = kind
	fields["sequence_number"] = e.seq
	e.seq++
	b, err := marshal(fields)
	if err != nil {
		return err
	}
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "event: %s\ndata: ", kind)
	msg.Write(b)
	return e.sw.raw(msg.Bytes())
}

// responsesFailed ends a Responses stream that failed after its headers:
// an "error" event, as OpenAI sends, unless the client is gone.
func (s *Server) responsesFailed(ev *responseEvents, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) || r.Context().Err() != nil {
		return
	}
	a := s.classifyAndLog(r, err)
	_ = ev.send("error", map[string]any{"code": a.detail.Code, "message": a.detail.Message, "param": a.detail.Param})
}
