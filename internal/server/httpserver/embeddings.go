package httpserver

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"

	"github.com/lumenllm/lumen/internal/inference"
)

// POST /v1/embeddings, in OpenAI's shape.

type embeddingsRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat *string         `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           *string         `json:"user"`
}

type embeddingList struct {
	Object string          `json:"object"` // "list"
	Data   []embeddingData `json:"data"`
	Model  string          `json:"model"`
	Usage  embeddingUsage  `json:"usage"`
}

type embeddingData struct {
	Object    string `json:"object"` // "embedding"
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string
}

type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// embeddings answers POST /v1/embeddings.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	var body embeddingsRequest
	if err := decodeBody(w, r, s.cfg.MaxBodyBytes, s.cfg.BodyTimeout, noRoute, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if isNull(body.Input) {
		s.writeError(w, r, invalidField("input", "is required"))
		return
	}
	// input has the shapes of a completions prompt.
	ps, err := prompts(body.Input, "input")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	base64Out := false
	if f := body.EncodingFormat; f != nil {
		switch *f {
		case "float":
		case "base64":
			base64Out = true
		default:
			s.writeError(w, r, invalidField("encoding_format", "%q is not one of float, base64", *f))
			return
		}
	}
	dims := 0
	if models := s.cfg.API.Models(); len(models) > 0 {
		dims = models[0].Dimensions
	}
	if body.Dimensions != nil && *body.Dimensions != dims {
		s.writeError(w, r, invalidField("dimensions", "this model's embeddings have %d dimensions and cannot be shortened; leave dimensions out or send %d", dims, dims))
		return
	}
	req := inference.EmbedRequest{Model: body.Model}
	if body.User != nil {
		req.User = *body.User
	}
	for _, p := range ps {
		req.Inputs = append(req.Inputs, inference.EmbedInput{Text: p.text, Tokens: p.tokens})
	}
	out, err := s.cfg.API.Embed(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := embeddingList{Object: "list", Model: out.Model, Data: make([]embeddingData, len(out.Vectors)),
		Usage: embeddingUsage{PromptTokens: out.PromptTokens, TotalTokens: out.PromptTokens}}
	for i, v := range out.Vectors {
		resp.Data[i] = embeddingData{Object: "embedding", Index: i, Embedding: v}
		if base64Out {
			resp.Data[i].Embedding = floatsBase64(v)
		}
	}
	w.Header().Set("X-Request-Id", out.TraceID)
	s.writeJSON(w, r, http.StatusOK, resp)
}

// floatsBase64 is OpenAI's base64 encoding: little-endian float32s.
func floatsBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}
