package httpserver

import (
	"net/http"

	"github.com/lumenllm/lumen/internal/inference"
)

// Native responses: plain shapes for curl and scripts.

// generateResponse answers POST /generate.
type generateResponse struct {
	ID           string   `json:"id"`
	Text         string   `json:"text"`
	FinishReason string   `json:"finish_reason"`
	Usage        *usage   `json:"usage"`
	Timings      *timings `json:"timings"`
}

// generateText is one NDJSON line of streamed text.
type generateText struct {
	Text string `json:"text"`
}

// generateDone is the last NDJSON line of a successful stream.
type generateDone struct {
	ID           string   `json:"id"`
	FinishReason string   `json:"finish_reason"`
	Usage        *usage   `json:"usage"`
	Timings      *timings `json:"timings"`
}

type tokenizeResponse struct {
	Tokens      []int32 `json:"tokens"`
	Count       int     `json:"count"`
	MaxModelLen int     `json:"max_model_len"`
	// Prompt is the rendered chat, when messages were given.
	Prompt *string `json:"prompt,omitempty"`
}

type detokenizeResponse struct {
	Prompt  string `json:"prompt"`
	Content string `json:"content"`
}

type applyTemplateResponse struct {
	Prompt string `json:"prompt"`
}

// generate answers POST /generate: one JSON object, or with "stream":
// true, NDJSON lines {"text":…} then one with the finish reason, usage
// and timings (or {"error":…} if the request fails midway).
func (s *Server) generate(w http.ResponseWriter, r *http.Request) {
	var opts options
	var body generateRequest
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, s.cfg.BodyTimeout, routeGenerate, &opts, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := body.generateRequest(&opts)
	st, ok := s.start(w, r, req, err)
	if !ok {
		return
	}
	defer st.Close()
	if !opts.Stream {
		out, res, err := collect(r.Context(), st)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		setResponseHeaders(w.Header(), st, res)
		s.writeJSON(w, r, http.StatusOK, generateResponse{
			ID: st.ID, Text: out.text, FinishReason: string(res.Finish), Usage: usageOf(res), Timings: timingsOf(res),
		})
		return
	}
	sw, err := startStream(w, r, st, "application/x-ndjson", "", "\n")
	if err != nil {
		return // the client is gone
	}
	res, err := pump(r.Context(), st, func(ev inference.Event) error {
		if ev.Text == "" {
			return nil
		}
		return sw.send(generateText{Text: ev.Text})
	})
	if err == nil {
		sw.finish(res)
		err = sw.send(generateDone{ID: st.ID, FinishReason: string(res.Finish), Usage: usageOf(res), Timings: timingsOf(res)})
	}
	if err != nil {
		s.streamFailed(sw, r, err, false)
	}
}

// tokenize answers POST /tokenize with the tokens the model sees for a
// prompt of the given text, or for a chat's messages rendered through its
// template (as /v1/chat/completions would feed them).
func (s *Server) tokenize(w http.ResponseWriter, r *http.Request) {
	var body tokenizeRequest
	var chat chatRequest
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, s.cfg.BodyTimeout, noRoute, &body, &chat); err != nil {
		s.writeError(w, r, err)
		return
	}
	var given []string
	var text *string
	for _, f := range []struct {
		name string
		v    *string
	}{{"text", body.Text}, {"prompt", body.Prompt}, {"content", body.Content}} {
		if f.v != nil {
			given, text = append(given, f.name), f.v
		}
	}
	if !isNull(body.Messages) {
		given = append(given, "messages")
	}
	if len(given) != 1 {
		s.writeError(w, r, invalidField("text", "give exactly one of text, prompt, content and messages (got %d)", len(given)))
		return
	}
	if !isNull(body.Tools) && text != nil {
		s.writeError(w, r, invalidField("tools", "need messages"))
		return
	}
	var toks []int32
	var err error
	var rendered *string
	if text != nil {
		toks, err = s.cfg.API.Tokenize(body.Model, *text)
	} else {
		var prompt string
		if prompt, toks, err = s.renderChat(r, body.Model, &chat); err == nil {
			rendered = &prompt
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if toks == nil {
		toks = []int32{} // [], not null
	}
	s.writeJSON(w, r, http.StatusOK, tokenizeResponse{Tokens: toks, Count: len(toks), MaxModelLen: s.contextSize(), Prompt: rendered})
}

// renderChat decodes a chat body's messages and tools and renders them.
func (s *Server) renderChat(r *http.Request, model string, chat *chatRequest) (string, []int32, error) {
	msgs, err := chat.messages()
	if err != nil {
		return "", nil, err
	}
	tools, err := chat.tools()
	if err != nil {
		return "", nil, err
	}
	return s.cfg.API.RenderChat(r.Context(), model, msgs, tools.Tools)
}

// contextSize is the served model's context per request (0: unknown).
func (s *Server) contextSize() int {
	if models := s.cfg.API.Models(); len(models) > 0 {
		return models[0].ContextSize
	}
	return 0
}

// detokenize answers POST /detokenize with the text of a prompt's tokens.
func (s *Server) detokenize(w http.ResponseWriter, r *http.Request) {
	var body detokenizeRequest
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, s.cfg.BodyTimeout, noRoute, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Tokens == nil {
		s.writeError(w, r, invalidField("tokens", "is required"))
		return
	}
	text, err := s.cfg.API.Detokenize(body.Model, body.Tokens)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// prompt is vLLM's name, content llama.cpp's.
	s.writeJSON(w, r, http.StatusOK, detokenizeResponse{Prompt: text, Content: text})
}

// applyTemplate answers POST /apply-template with a chat's messages
// rendered through the model's template: the prompt, not tokenized.
func (s *Server) applyTemplate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Model string `json:"model"`
	}
	var chat chatRequest
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, s.cfg.BodyTimeout, noRoute, &body, &chat); err != nil {
		s.writeError(w, r, err)
		return
	}
	prompt, _, err := s.renderChat(r, body.Model, &chat)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, applyTemplateResponse{Prompt: prompt})
}
