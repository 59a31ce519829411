package httpserver

import (
	"net/http"
	"time"

	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/scheduler"
)

// OpenAI response objects, shaped as in the OpenAI API reference.

type modelList struct {
	Object string        `json:"object"` // "list"
	Data   []modelObject `json:"data"`
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// completion is a text_completion object, whole or as a stream chunk.
type completion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"` // "text_completion"
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
	Timings *timings           `json:"timings,omitempty"`
}

type completionChoice struct {
	Index        int       `json:"index"`
	Text         string    `json:"text"`
	Logprobs     *struct{} `json:"logprobs"`      // always null
	FinishReason *string   `json:"finish_reason"` // null until the last chunk
}

// chatCompletion is a chat.completion object.
type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"` // "chat.completion"
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage"`
	Timings *timings     `json:"timings,omitempty"`
}

type chatChoice struct {
	Index        int              `json:"index"`
	Message      assistantMessage `json:"message"`
	Logprobs     *struct{}        `json:"logprobs"` // always null
	FinishReason string           `json:"finish_reason"`
}

type assistantMessage struct {
	Role string `json:"role"` // "assistant"
	// Content is null when the reply is only tool calls, as in OpenAI.
	Content   *string        `json:"content"`
	ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
}

// finishToolCalls is OpenAI's finish_reason for a reply that calls tools.
const finishToolCalls = "tool_calls"

// toolCallsJSON shapes a reply's calls; index is set for stream deltas.
func toolCallsJSON(calls []inference.ToolCall, withIndex bool) []chatToolCall {
	out := make([]chatToolCall, len(calls))
	for i, c := range calls {
		out[i] = chatToolCall{ID: c.ID, Type: "function", Function: functionCall{Name: c.Name, Arguments: c.Arguments}}
		if withIndex {
			out[i].Index = &i
		}
	}
	return out
}

// replyFinish is the finish_reason of a chat reply: tool_calls when it
// made calls and stopped by itself.
func replyFinish(res *scheduler.Result, reply inference.Reply) string {
	if len(reply.ToolCalls) > 0 && res.Finish == scheduler.FinishStop {
		return finishToolCalls
	}
	return string(res.Finish)
}

// chatChunk is a chat.completion.chunk object.
type chatChunk struct {
	ID      string            `json:"id"`
	Object  string            `json:"object"` // "chat.completion.chunk"
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices []chatChunkChoice `json:"choices"`
	Usage   *usage            `json:"usage,omitempty"` // only on the usage chunk
}

type chatChunkChoice struct {
	Index        int       `json:"index"`
	Delta        chatDelta `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"`      // always null
	FinishReason *string   `json:"finish_reason"` // null until the last chunk
}

// chatDelta is empty ({}) on the last chunk.
type chatDelta struct {
	Role      string         `json:"role,omitempty"`
	Content   *string        `json:"content,omitempty"`
	ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
}

// meta is what every object of one response shares.
type meta struct {
	id      string
	created int64
	model   string
}

func newMeta(prefix string, st *inference.Stream) meta {
	return meta{id: prefix + st.ID, created: time.Now().Unix(), model: st.Model}
}

func finishOf(res *scheduler.Result) *string {
	f := string(res.Finish)
	return &f
}

// start submits req, unless building it failed (err), and reports whether
// the handler may go on; on failure the error response is written.
func (s *Server) start(w http.ResponseWriter, r *http.Request, req inference.GenerateRequest, err error) (*inference.Stream, bool) {
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	// r's context: a client that disconnects cancels the request in the
	// scheduler.
	st, err := s.cfg.API.Generate(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return st, true
}

// completions answers POST /v1/completions.
func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var opts options
	var body completionRequest
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, s.cfg.BodyTimeout, routeCompletions, &opts, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := body.generateRequest(&opts)
	st, ok := s.start(w, r, req, err)
	if !ok {
		return
	}
	m := newMeta("cmpl-", st)
	chunk := func(text string, finish *string) completion {
		return completion{ID: m.id, Object: "text_completion", Created: m.created, Model: m.model,
			Choices: []completionChoice{{Text: text, FinishReason: finish}}}
	}
	if !opts.Stream {
		text, res, err := collect(r.Context(), st.Events)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		resp := chunk(text, finishOf(res))
		resp.Usage, resp.Timings = usageOf(res), timingsOf(res)
		setResponseHeaders(w.Header(), st, res)
		s.writeJSON(w, r, http.StatusOK, resp)
		return
	}
	sw, err := startStream(w, st, "text/event-stream", "data: ", "\n\n")
	if err != nil {
		return // the client is gone
	}
	res, err := pump(r.Context(), st.Events, func(text string) error {
		return sw.send(chunk(text, nil))
	})
	if err == nil {
		err = sw.send(chunk("", finishOf(res)))
	}
	if err == nil && opts.includeUsage() {
		final := chunk("", nil)
		final.Choices, final.Usage = []completionChoice{}, usageOf(res)
		err = sw.send(final)
	}
	if err != nil {
		s.streamFailed(sw, r, err, true)
		return
	}
	_ = sw.raw([]byte("[DONE]"))
}

// chatCompletions answers POST /v1/chat/completions.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var opts options
	var body chatRequest
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, s.cfg.BodyTimeout, routeChat, &opts, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := body.generateRequest(&opts)
	st, ok := s.start(w, r, req, err)
	if !ok {
		return
	}
	m := newMeta("chatcmpl-", st)
	if !opts.Stream {
		text, res, err := collect(r.Context(), st.Events)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		reply := st.ParseReply(text)
		msg := assistantMessage{Role: "assistant", Content: &reply.Content}
		if len(reply.ToolCalls) > 0 {
			msg.ToolCalls = toolCallsJSON(reply.ToolCalls, false)
			if reply.Content == "" {
				msg.Content = nil
			}
		}
		setResponseHeaders(w.Header(), st, res)
		s.writeJSON(w, r, http.StatusOK, chatCompletion{
			ID: m.id, Object: "chat.completion", Created: m.created, Model: m.model,
			Choices: []chatChoice{{Message: msg, FinishReason: replyFinish(res, reply)}},
			Usage:   usageOf(res), Timings: timingsOf(res),
		})
		return
	}
	chunk := func(d chatDelta, finish *string) chatChunk {
		return chatChunk{ID: m.id, Object: "chat.completion.chunk", Created: m.created, Model: m.model,
			Choices: []chatChunkChoice{{Delta: d, FinishReason: finish}}}
	}
	sw, err := startStream(w, st, "text/event-stream", "data: ", "\n\n")
	if err == nil {
		empty := ""
		err = sw.send(chunk(chatDelta{Role: "assistant", Content: &empty}, nil))
	}
	if err != nil {
		return // the client is gone
	}
	// With tools, text that may open a call is held back until it is
	// known to be content or is parsed into calls at the end.
	split := st.ReplyStream()
	sendText := func(text string) error {
		if text == "" {
			return nil
		}
		return sw.send(chunk(chatDelta{Content: &text}, nil))
	}
	res, err := pump(r.Context(), st.Events, func(text string) error {
		if split != nil {
			text = split.Push(text)
		}
		return sendText(text)
	})
	reply := inference.Reply{}
	if err == nil && split != nil {
		reply = split.Finish()
		err = sendText(reply.Content)
		if err == nil && len(reply.ToolCalls) > 0 {
			err = sw.send(chunk(chatDelta{ToolCalls: toolCallsJSON(reply.ToolCalls, true)}, nil))
		}
	}
	if err == nil {
		finish := replyFinish(res, reply)
		err = sw.send(chunk(chatDelta{}, &finish))
	}
	if err == nil && opts.includeUsage() {
		final := chunk(chatDelta{}, nil)
		final.Choices, final.Usage = []chatChunkChoice{}, usageOf(res)
		err = sw.send(final)
	}
	if err != nil {
		s.streamFailed(sw, r, err, true)
		return
	}
	_ = sw.raw([]byte("[DONE]"))
}
