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
	Index        int                    `json:"index"`
	Message      assistantMessage       `json:"message"`
	Logprobs     *struct{}              `json:"logprobs"` // always null
	FinishReason scheduler.FinishReason `json:"finish_reason"`
}

type assistantMessage struct {
	Role    string `json:"role"` // "assistant"
	Content string `json:"content"`
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
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
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
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, &opts, &body); err != nil {
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
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, &opts, &body); err != nil {
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
		setResponseHeaders(w.Header(), st, res)
		s.writeJSON(w, r, http.StatusOK, chatCompletion{
			ID: m.id, Object: "chat.completion", Created: m.created, Model: m.model,
			Choices: []chatChoice{{Message: assistantMessage{Role: "assistant", Content: text}, FinishReason: res.Finish}},
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
	res, err := pump(r.Context(), st.Events, func(text string) error {
		return sw.send(chunk(chatDelta{Content: &text}, nil))
	})
	if err == nil {
		err = sw.send(chunk(chatDelta{}, finishOf(res)))
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
