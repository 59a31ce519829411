package httpserver

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/reqerr"
	"go.opentelemetry.io/otel/propagation"
)

// Failures this package detects itself; classify gives each its status.
// Field-level problems use *reqerr.InvalidError, the vocabulary the
// inference layer already speaks, so one rule covers both.
var (
	errMalformed = errors.New("malformed request body")
	// errBodyTimeout: the client did not send its body in time.
	errBodyTimeout = errors.New("request body not received in time")
	errMethod      = errors.New("method not allowed")
	errNoRoute     = errors.New("no such route")
	// errMediaType: a JSON route got a body not declared as JSON.
	errMediaType = errors.New("unsupported media type")
	// errHostNotAllowed: a keyless server got a Host that DNS rebinding
	// could have forged.
	errHostNotAllowed = errors.New("host not allowed")
	// errOriginNotAllowed: a CORS preflight from an origin not listed.
	errOriginNotAllowed = errors.New("origin not allowed")
)

// OpenAI error types. Clients mostly go by status; these keep the body
// recognisable to them.
const (
	typeInvalidRequest = "invalid_request_error"
	typeRateLimit      = "rate_limit_error"
	typeServer         = "server_error"
)

// errorBody is the OpenAI error envelope:
// {"error":{"message":…,"type":…,"param":…,"code":…}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// apiError is an error as the client sees it.
type apiError struct {
	status int
	detail errorDetail
	// retryAfter, when set, is sent as a Retry-After header (seconds).
	retryAfter int
	// internal: the client gets a generic message; the real error is
	// logged.
	internal bool
}

// statusClientClosedRequest is nginx's code for a client that went away
// before the answer; nobody reads it, but logs and metrics do.
const statusClientClosedRequest = 499

// classify maps every error to its status and body. It is the only place
// that decides status codes.
func classify(err error) apiError {
	e := func(status int, typ, code, message string) apiError {
		a := apiError{status: status, detail: errorDetail{Message: message, Type: typ}}
		if code != "" {
			a.detail.Code = &code
		}
		return a
	}
	var invalid *reqerr.InvalidError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &invalid):
		a := e(http.StatusBadRequest, typeInvalidRequest, "", invalid.Error())
		if invalid.Field != "" {
			a.detail.Param = &invalid.Field
		}
		return a
	case errors.Is(err, errBodyTimeout):
		return e(http.StatusRequestTimeout, typeInvalidRequest, "request_timeout", err.Error())
	case errors.Is(err, errMalformed), errors.Is(err, reqerr.ErrInvalid):
		return e(http.StatusBadRequest, typeInvalidRequest, "", err.Error())
	case errors.As(err, &tooLarge):
		msg := "request body is too large"
		if tooLarge != nil {
			msg = "request body exceeds " + strconv.FormatInt(tooLarge.Limit, 10) + " bytes"
		}
		return e(http.StatusRequestEntityTooLarge, typeInvalidRequest, "request_too_large", msg)
	case errors.Is(err, auth.ErrUnauthenticated):
		// OpenAI answers a bad key this way (not with an
		// authentication_error type).
		return e(http.StatusUnauthorized, typeInvalidRequest, "invalid_api_key", "missing or invalid API key; send it as 'Authorization: Bearer <key>'")
	case errors.Is(err, inference.ErrUnknownModel):
		a := e(http.StatusNotFound, typeInvalidRequest, "model_not_found", err.Error())
		param := "model"
		a.detail.Param = &param
		return a
	case errors.Is(err, errNoRoute):
		return e(http.StatusNotFound, typeInvalidRequest, "not_found", err.Error())
	case errors.Is(err, errMediaType):
		return e(http.StatusUnsupportedMediaType, typeInvalidRequest, "unsupported_media_type", err.Error())
	case errors.Is(err, errHostNotAllowed):
		return e(http.StatusForbidden, typeInvalidRequest, "host_not_allowed", err.Error())
	case errors.Is(err, errOriginNotAllowed):
		return e(http.StatusForbidden, typeInvalidRequest, "origin_not_allowed", err.Error())
	case errors.Is(err, errMethod):
		return e(http.StatusMethodNotAllowed, typeInvalidRequest, "method_not_allowed", err.Error())
	case errors.Is(err, reqerr.ErrQueueFull):
		// The queue drains at decode speed; a second is a fair first
		// back-off for clients that honour it.
		a := e(http.StatusTooManyRequests, typeRateLimit, "queue_full", "the server has too many requests waiting; retry later")
		a.retryAfter = 1
		return a
	case errors.Is(err, reqerr.ErrDraining), errors.Is(err, reqerr.ErrShutdown):
		return e(http.StatusServiceUnavailable, typeServer, "unavailable", err.Error())
	case errors.Is(err, inference.ErrLoading):
		a := e(http.StatusServiceUnavailable, typeServer, "model_loading", err.Error())
		a.retryAfter = 1
		return a
	case errors.Is(err, inference.ErrRenderFailed):
		// The model's template, not the request: a server error, logged,
		// whose message says which limit it blew.
		return e(http.StatusInternalServerError, typeServer, "chat_template_failed", err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return e(statusClientClosedRequest, typeInvalidRequest, "cancelled", "request cancelled")
	default: // reqerr.ErrEngine, inference.ErrNoResult, anything unforeseen
		a := e(http.StatusInternalServerError, typeServer, "internal_error", "internal server error")
		a.internal = true
		return a
	}
}

// writeError writes err's status, headers and body. Server-side failures
// are logged with their detail, which the client does not get.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	a := s.classifyAndLog(r, err)
	h := w.Header()
	if a.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(a.retryAfter))
	}
	if a.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="lumen"`)
	}
	// A refused client can find its trace too: the request's span (the
	// transport's, when no request span was started) and an id to quote.
	if h.Get("traceparent") == "" {
		propagation.TraceContext{}.Inject(r.Context(), propagation.HeaderCarrier(h))
	}
	if h.Get("X-Request-Id") == "" {
		h.Set("X-Request-Id", inference.NewID())
	}
	s.writeJSON(w, r, a.status, errorBody{Error: a.detail})
}

// classifyAndLog classifies err and logs it when it is the server's fault.
func (s *Server) classifyAndLog(r *http.Request, err error) apiError {
	a := classify(err)
	if a.status >= 500 || a.internal {
		s.cfg.Logger.ErrorContext(r.Context(), "request failed", "request", requestLabel(r), "status", a.status, "err", err)
	}
	return a
}
