package httpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// marshal encodes v without HTML escaping: generated text is full of '<'
// and '>' (control tokens, code), and \u003c helps no API client.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeJSON writes a complete JSON response.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := marshal(v)
	if err != nil {
		// Only a bug can get here (every response type marshals).
		s.cfg.Logger.ErrorContext(r.Context(), "encoding response", "request", requestLabel(r), "err", err)
		status, body = http.StatusInternalServerError, []byte(`{"error":{"message":"internal server error","type":"server_error","param":null,"code":"internal_error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // a failed write means the client left; nothing to do
}

// setResponseHeaders writes the per-request response headers: the
// request id, and from a finished request's result (nil while streaming,
// whose headers leave before there is one) its Server-Timing. It is the
// one place for such headers; tracing adds traceparent here.
func setResponseHeaders(h http.Header, st *inference.Stream, res *inference.Result) {
	h.Set("X-Request-Id", st.ID)
	// traceparent tells the caller which trace holds this request (the
	// request span, so its id can be looked up in Jaeger directly).
	// The W3C propagator writes it (and tracestate), as it reads them.
	if sc := st.SpanContext; sc.IsValid() {
		propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.HeaderCarrier(h))
	}
	if res != nil {
		h.Set("Server-Timing", serverTiming(res))
	}
}

func serverTiming(res *inference.Result) string {
	t := res.Timings
	return fmt.Sprintf("queue;dur=%.3f, prefill;dur=%.3f, decode;dur=%.3f", inference.Millis(t.Queue()), inference.Millis(t.Prefill()), inference.Millis(t.Decode()))
}

// acceptsTrailers reports whether the client said it reads trailers
// (TE: trailers).
func acceptsTrailers(r *http.Request) bool {
	for _, v := range r.Header.Values("TE") {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]), "trailers") {
				return true
			}
		}
	}
	return false
}

// usage is OpenAI's token accounting.
type usage struct {
	PromptTokens        int           `json:"prompt_tokens"`
	CompletionTokens    int           `json:"completion_tokens"`
	TotalTokens         int           `json:"total_tokens"`
	PromptTokensDetails promptDetails `json:"prompt_tokens_details"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

func usageOf(res *inference.Result) *usage {
	return &usage{
		PromptTokens:        res.PromptTokens,
		CompletionTokens:    res.CompletionTokens,
		TotalTokens:         res.PromptTokens + res.CompletionTokens,
		PromptTokensDetails: promptDetails{CachedTokens: res.CachedTokens},
	}
}

// timings is a request's phases in milliseconds: a Lumen extension in
// OpenAI responses, standard in native ones.
type timings struct {
	QueueMS   float64 `json:"queue_ms"`
	PrefillMS float64 `json:"prefill_ms"`
	TTFTMS    float64 `json:"ttft_ms"`
	DecodeMS  float64 `json:"decode_ms"`
}

func timingsOf(res *inference.Result) *timings {
	t := res.Timings
	return &timings{QueueMS: inference.Millis(t.Queue()), PrefillMS: inference.Millis(t.Prefill()), TTFTMS: inference.Millis(t.TTFT()), DecodeMS: inference.Millis(t.Decode())}
}

// pump hands each event of a stream before the last (text, token
// logprobs) to onEvent and returns the stream's result. The error is the
// stream's own (Done.Err), onEvent's, or context.Canceled-wrapped when
// the client went away.
//
// Returning early without draining events is safe: the scheduler's
// channel has room for every event, and the same ctx cancellation tells
// the scheduler to drop the request.
func pump(ctx context.Context, st *inference.Stream, onEvent func(inference.Event) error) (*inference.Result, error) {
	for {
		ev, err := st.Recv(ctx)
		if err != nil {
			return ev.Result, err
		}
		if ev.Done {
			return ev.Result, nil
		}
		if err := onEvent(ev); err != nil {
			return nil, err
		}
	}
}

// collected is a whole stream, for non-streaming responses.
type collected struct {
	text         string
	tokens       []inference.TokenInfo
	promptTokens []inference.TokenInfo
}

// collect reads a whole stream.
func collect(ctx context.Context, st *inference.Stream) (collected, *inference.Result, error) {
	var sb strings.Builder
	var c collected
	res, err := pump(ctx, st, func(ev inference.Event) error {
		sb.WriteString(ev.Text)
		c.tokens = append(c.tokens, ev.Tokens...)
		c.promptTokens = append(c.promptTokens, ev.PromptTokens...)
		return nil
	})
	c.text = sb.String()
	return c, res, err
}

// streamWriter writes a streamed response one event at a time, flushing
// each so the client sees tokens as they are made.
type streamWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	// prefix and suffix frame each JSON value: "data: " and "\n\n" for
	// server-sent events, "" and "\n" for NDJSON.
	prefix, suffix string
	// trailers: Server-Timing goes in a trailer when the stream ends.
	trailers bool
}

// finish records a finished stream's timings in its Server-Timing
// trailer, when the client takes trailers (net/http sends it after the
// body).
func (sw *streamWriter) finish(res *inference.Result) {
	if sw.trailers && res != nil {
		sw.w.Header().Set("Server-Timing", serverTiming(res))
	}
}

// startStream sends the headers of a streamed response at once, so the
// client knows the request was accepted before the first token.
func startStream(w http.ResponseWriter, r *http.Request, st *inference.Stream, contentType, prefix, suffix string) (*streamWriter, error) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // keep reverse proxies (nginx) from buffering the stream
	setResponseHeaders(h, st, nil)
	trailers := acceptsTrailers(r)
	if trailers {
		h.Set("Trailer", "Server-Timing")
	}
	w.WriteHeader(http.StatusOK)
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), prefix: prefix, suffix: suffix, trailers: trailers}
	return sw, sw.flush()
}

func (sw *streamWriter) flush() error {
	if err := sw.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		// The connection is gone; treat it like a cancelled request.
		return fmt.Errorf("client went away: %w: %v", context.Canceled, err)
	}
	return nil
}

// send writes one JSON value as one event.
func (sw *streamWriter) send(v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	return sw.raw(b)
}

// raw writes one pre-encoded event.
func (sw *streamWriter) raw(b []byte) error {
	msg := make([]byte, 0, len(sw.prefix)+len(b)+len(sw.suffix))
	msg = append(append(append(msg, sw.prefix...), b...), sw.suffix...)
	if _, err := sw.w.Write(msg); err != nil {
		return fmt.Errorf("client went away: %w: %v", context.Canceled, err)
	}
	return sw.flush()
}

// streamFailed ends a stream that failed after its headers went out: the
// status is already 200, so the error travels as the last event. For
// server-sent events, a [DONE] follows it so that clients waiting for one
// end cleanly. A client that went away gets nothing.
func (s *Server) streamFailed(sw *streamWriter, r *http.Request, err error, sse bool) {
	if errors.Is(err, context.Canceled) || r.Context().Err() != nil {
		return
	}
	a := s.classifyAndLog(r, err)
	// The 200 went out before the failure: the transport's span must say
	// it failed, as the request span does.
	span := trace.SpanFromContext(r.Context())
	span.SetStatus(codes.Error, err.Error())
	span.SetAttributes(semconv.AttrErrorType.String(inference.ErrorType(err)))
	if sw.send(errorBody{Error: a.detail}) == nil && sse {
		_ = sw.raw([]byte("[DONE]"))
	}
}
