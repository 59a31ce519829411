package httpserver

import (
	"net/http"
	"strings"
	"time"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/inference"
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
	Index        int                 `json:"index"`
	Text         string              `json:"text"`
	Logprobs     *completionLogprobs `json:"logprobs"`      // null unless asked for
	FinishReason *string             `json:"finish_reason"` // null until the last chunk
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
	Logprobs     *chatLogprobs    `json:"logprobs"` // null unless asked for
	FinishReason string           `json:"finish_reason"`
}

type assistantMessage struct {
	Role string `json:"role"` // "assistant"
	// Content is null when the reply is only tool calls, as in OpenAI.
	Content   *string        `json:"content"`
	ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
}

// echoLogprobs joins an echoed prompt's token logprobs and the
// completion's: text_offset counts from the start of the prompt's tokens,
// and the completion's from the end of the echoed prompt text (the
// prompt's tokens may spell it with an extra leading space).
func echoLogprobs(prompt, completion []inference.TokenInfo, echoed int) *completionLogprobs {
	lp := completionLogprobsOf(prompt, 0)
	rest := completionLogprobsOf(completion, echoed)
	lp.Tokens = append(lp.Tokens, rest.Tokens...)
	lp.TokenLogprobs = append(lp.TokenLogprobs, rest.TokenLogprobs...)
	lp.TopLogprobs = append(lp.TopLogprobs, rest.TopLogprobs...)
	lp.TextOffset = append(lp.TextOffset, rest.TextOffset...)
	return lp
}

// lastOffset is the text offset after the tokens of lp.
func lastOffset(lp *completionLogprobs, offset int) int {
	for _, t := range lp.Tokens {
		offset += len(t)
	}
	return offset
}

// finishToolCalls is OpenAI's finish_reason for a reply that calls tools.
const finishToolCalls = "tool_calls"

// toolCallsJSON shapes a reply's calls; index is set for stream deltas.
func toolCallsJSON(calls []chat.ToolCall, withIndex bool) []chatToolCall {
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
func replyFinish(res *inference.Result, reply inference.Reply) string {
	if len(reply.ToolCalls) > 0 && res.Finish == inference.FinishStop {
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
	// Timings ride on the chunk with the finish reason, as on whole replies.
	Timings *timings `json:"timings,omitempty"`
}

type chatChunkChoice struct {
	Index        int           `json:"index"`
	Delta        chatDelta     `json:"delta"`
	Logprobs     *chatLogprobs `json:"logprobs"`      // null unless asked for
	FinishReason *string       `json:"finish_reason"` // null until the last chunk
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
	return meta{id: withPrefix(prefix, st.ID), created: time.Now().Unix(), model: st.Model}
}

// withPrefix is an OpenAI object id: the routes give their requests ids
// that already carry it (so spans record the id the client sees), and a
// bare id gets it here.
func withPrefix(prefix, id string) string {
	if strings.HasPrefix(id, prefix) {
		return id
	}
	return prefix + id
}

// clientID is a new request id as an OpenAI route shows it.
func clientID(prefix string) string { return prefix + inference.NewID() }

func finishOf(res *inference.Result) *string {
	f := string(res.Finish)
	return &f
}

// completions answers POST /v1/completions: one choice per prompt and n.
func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var opts options
	var body completionRequest
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, s.cfg.BodyTimeout, routeCompletions, &opts, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	reqs, n, per, err := body.generateRequests(&opts)
	id := clientID("cmpl-")
	for i := range reqs {
		reqs[i].ID = id
	}
	streams, ok := s.startAll(w, r, reqs, err)
	if !ok {
		return
	}
	// A choice still running when the handler returns (a sibling failed,
	// the client left) is stopped, and its spans end first.
	defer closeAll(streams)
	ctx := r.Context()
	m := newMeta("cmpl-", streams[0])
	chunk := func(i int, text string, finish *string) completion {
		return completion{ID: m.id, Object: "text_completion", Created: m.created, Model: m.model,
			Choices: []completionChoice{{Index: i, Text: text, FinishReason: finish}}}
	}
	echo := func(i int) string {
		if body.echo() {
			return reqs[i].Prompt
		}
		return ""
	}
	if !opts.Stream {
		resp := completion{ID: m.id, Object: "text_completion", Created: m.created, Model: m.model}
		var results []*inference.Result
		var scores []float64
		for i, st := range streams {
			out, res, err := collect(ctx, st)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			c := completionChoice{Index: i, Text: echo(i) + out.text, FinishReason: finishOf(res)}
			if body.Logprobs != nil {
				c.Logprobs = echoLogprobs(out.promptTokens, out.tokens, len(echo(i)))
			}
			resp.Choices = append(resp.Choices, c)
			results = append(results, res)
			scores = append(scores, meanLogprob(out.tokens))
		}
		if per > n {
			resp.Choices = bestOf(resp.Choices, scores, per, n)
		}
		resp.Usage, resp.Timings = usageOfAll(results, per), timingsOf(results[0])
		setResponseHeaders(w.Header(), streams[0], results[0])
		s.writeJSON(w, r, http.StatusOK, resp)
		return
	}
	sw, err := startStream(w, r, streams[0], "text/event-stream", "data: ", "\n\n")
	if err != nil {
		return // the client is gone
	}
	for i := range streams {
		if e := echo(i); e != "" && err == nil {
			err = sw.send(chunk(i, e, nil))
		}
	}
	// Text offsets of each choice's prompt tokens and of its completion.
	promptOffset, offset := make([]int, len(streams)), make([]int, len(streams))
	for i := range streams {
		offset[i] = len(echo(i))
	}
	var results []*inference.Result
	if err == nil {
		results, err = fanIn(ctx, streams, func(i int, ev inference.Event) error {
			if ev.Done {
				last := chunk(i, "", finishOf(ev.Result))
				last.Timings = timingsOf(ev.Result)
				return sw.send(last)
			}
			c := chunk(i, ev.Text, nil)
			if reqs[i].Logprobs {
				switch {
				case len(ev.PromptTokens) > 0:
					c.Choices[0].Logprobs = completionLogprobsOf(ev.PromptTokens, promptOffset[i])
					promptOffset[i] = lastOffset(c.Choices[0].Logprobs, promptOffset[i])
				case len(ev.Tokens) > 0:
					c.Choices[0].Logprobs = completionLogprobsOf(ev.Tokens, offset[i])
					offset[i] = lastOffset(c.Choices[0].Logprobs, offset[i])
				}
			}
			if ev.Text == "" && c.Choices[0].Logprobs == nil {
				return nil
			}
			return sw.send(c)
		})
	}
	if err == nil && opts.includeUsage() {
		final := completion{ID: m.id, Object: "text_completion", Created: m.created, Model: m.model,
			Choices: []completionChoice{}, Usage: usageOfAll(results, n)}
		err = sw.send(final)
	}
	if err != nil {
		s.streamFailed(sw, r, err, true)
		return
	}
	sw.finish(results[0])
	_ = sw.raw([]byte("[DONE]"))
}

// chatCompletions answers POST /v1/chat/completions, with n choices.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var opts options
	var body chatRequest
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, s.cfg.BodyTimeout, routeChat, &opts, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := body.generateRequest(&opts)
	req.ID = clientID("chatcmpl-")
	var reqs []inference.GenerateRequest
	n := 1
	if err == nil {
		if n, err = choiceCount(opts.N, 1); err == nil {
			reqs = expand(req, n)
		}
	}
	streams, ok := s.startAll(w, r, reqs, err)
	if !ok {
		return
	}
	defer closeAll(streams)
	ctx := r.Context()
	m := newMeta("chatcmpl-", streams[0])
	if !opts.Stream {
		resp := chatCompletion{ID: m.id, Object: "chat.completion", Created: m.created, Model: m.model}
		var results []*inference.Result
		for i, st := range streams {
			out, res, err := collect(ctx, st)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			reply := st.ParseReply(out.text)
			msg := assistantMessage{Role: "assistant", Content: &reply.Content}
			if len(reply.ToolCalls) > 0 {
				msg.ToolCalls = toolCallsJSON(reply.ToolCalls, false)
				if reply.Content == "" {
					msg.Content = nil
				}
			}
			c := chatChoice{Index: i, Message: msg, FinishReason: replyFinish(res, reply)}
			if req.Logprobs {
				c.Logprobs = chatLogprobsOf(out.tokens)
			}
			resp.Choices = append(resp.Choices, c)
			results = append(results, res)
		}
		resp.Usage, resp.Timings = usageOfAll(results, n), timingsOf(results[0])
		setResponseHeaders(w.Header(), streams[0], results[0])
		s.writeJSON(w, r, http.StatusOK, resp)
		return
	}
	chunk := func(i int, d chatDelta, finish *string) chatChunk {
		return chatChunk{ID: m.id, Object: "chat.completion.chunk", Created: m.created, Model: m.model,
			Choices: []chatChunkChoice{{Index: i, Delta: d, FinishReason: finish}}}
	}
	sw, err := startStream(w, r, streams[0], "text/event-stream", "data: ", "\n\n")
	for i := range streams {
		if err == nil {
			empty := ""
			err = sw.send(chunk(i, chatDelta{Role: "assistant", Content: &empty}, nil))
		}
	}
	if err != nil {
		return // the client is gone
	}
	// With tools, text that may open a call is held back until it is
	// known to be content or is parsed into calls at the end.
	splits := make([]*inference.ReplyStream, len(streams))
	for i, st := range streams {
		splits[i] = st.ReplyStream()
	}
	sendText := func(i int, text string, tokens []inference.TokenInfo) error {
		var c chatChunk
		switch {
		case text != "":
			c = chunk(i, chatDelta{Content: &text}, nil)
		case len(tokens) > 0 && req.Logprobs:
			c = chunk(i, chatDelta{}, nil) // tokens whose text is held back
		default:
			return nil
		}
		if req.Logprobs && len(tokens) > 0 {
			c.Choices[0].Logprobs = chatLogprobsOf(tokens)
		}
		return sw.send(c)
	}
	results, err := fanIn(ctx, streams, func(i int, ev inference.Event) error {
		split := splits[i]
		if !ev.Done {
			text := ev.Text
			if split != nil {
				text = split.Push(text)
			}
			return sendText(i, text, ev.Tokens)
		}
		reply := inference.Reply{}
		if split != nil {
			reply = split.Finish()
			if err := sendText(i, reply.Content, nil); err != nil {
				return err
			}
			if len(reply.ToolCalls) > 0 {
				if err := sw.send(chunk(i, chatDelta{ToolCalls: toolCallsJSON(reply.ToolCalls, true)}, nil)); err != nil {
					return err
				}
			}
		}
		finish := replyFinish(ev.Result, reply)
		last := chunk(i, chatDelta{}, &finish)
		last.Timings = timingsOf(ev.Result)
		return sw.send(last)
	})
	if err == nil && opts.includeUsage() {
		final := chatChunk{ID: m.id, Object: "chat.completion.chunk", Created: m.created, Model: m.model,
			Choices: []chatChunkChoice{}, Usage: usageOfAll(results, n)}
		err = sw.send(final)
	}
	if err != nil {
		s.streamFailed(sw, r, err, true)
		return
	}
	sw.finish(results[0])
	_ = sw.raw([]byte("[DONE]"))
}

// start submits req, unless building it failed (err), and reports whether
// the handler may go on; on failure the error response is written.
func (s *Server) start(w http.ResponseWriter, r *http.Request, req inference.GenerateRequest, err error) (*inference.Stream, bool) {
	streams, ok := s.startAll(w, r, []inference.GenerateRequest{req}, err)
	if !ok {
		return nil, false
	}
	return streams[0], true
}
