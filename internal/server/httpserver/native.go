package httpserver

import (
	"net/http"

	"github.com/lumenllm/lumen/internal/scheduler"
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
	Tokens []int32 `json:"tokens"`
	Count  int     `json:"count"`
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
	if !opts.Stream {
		out, res, err := collect(r.Context(), st.Events)
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
	res, err := pump(r.Context(), st.Events, func(ev scheduler.Event) error {
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
// prompt of the given text.
func (s *Server) tokenize(w http.ResponseWriter, r *http.Request) {
	var body tokenizeRequest
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, s.cfg.BodyTimeout, noRoute, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Text == nil {
		s.writeError(w, r, invalidField("text", "is required"))
		return
	}
	toks, err := s.cfg.API.Tokenize(body.Model, *body.Text)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if toks == nil {
		toks = []int32{} // [], not null
	}
	s.writeJSON(w, r, http.StatusOK, tokenizeResponse{Tokens: toks, Count: len(toks)})
}
