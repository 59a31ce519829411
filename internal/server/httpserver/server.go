// Package httpserver owns Lumen's HTTP transport: the OpenAI-compatible
// routes (/v1/completions, /v1/chat/completions, /v1/responses,
// /v1/embeddings, /v1/models), the native curl-friendly routes
// (/generate, /tokenize, /detokenize, /apply-template) and the health
// probes (/healthz, /readyz).
//
// It decodes and validates request bodies, checks API keys, calls
// inference.API and writes its results as JSON, server-sent events or
// newline-delimited JSON. It does no inference work itself. Every error,
// whatever its source, becomes a status code and an OpenAI-style error
// body in one function, classify.
//
// Defaults are the wire format's: an OpenAI request without a temperature
// samples at 1, as the OpenAI API documents; a native /generate request
// without one decodes greedily, the inference default. A request without
// max_tokens gets the inference default.
//
// Before any of that, the inference routes defend a keyless server
// against web pages (origin.go): JSON routes require Content-Type:
// application/json, the Host header must be one that DNS rebinding cannot
// forge, and CORS is off unless origins are configured.
//
// A client that disconnects cancels its request: handlers pass the
// request's context to inference.API.Generate, and streaming handlers stop
// at once when it ends.
package httpserver

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
	"github.com/lumenllm/lumen/internal/telemetry/w3c"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
)

// DefaultMaxBodyBytes caps request bodies when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 4 << 20

// DefaultBodyTimeout bounds receiving a request body when
// Config.BodyTimeout is 0.
const DefaultBodyTimeout = 30 * time.Second

// Config builds a Server.
type Config struct {
	// API serves the inference routes. Required.
	API inference.API
	// Ready answers /readyz; nil means always ready.
	Ready inference.Readiness
	// Keys guard the inference routes (/v1/*, /generate, /tokenize); the
	// zero value lets every request through. Health routes are open.
	Keys auth.Keys
	// MaxBodyBytes caps a request body (default DefaultMaxBodyBytes);
	// larger bodies get 413.
	MaxBodyBytes int64
	// BodyTimeout bounds the time to receive a request body (default
	// DefaultBodyTimeout); a slower one gets 408 and the connection is
	// closed. It does not limit responses: streams run as long as they
	// run.
	BodyTimeout time.Duration
	// Logger receives server-side failures (5xx) and streams that fail
	// after their headers went out; nil discards them.
	Logger *slog.Logger
	// Middleware, when set, wraps the whole handler, e.g. with otelhttp.
	Middleware func(http.Handler) http.Handler

	// AllowedHosts are the Host header names the inference routes answer
	// to besides those always allowed: IP literals, "localhost" and
	// "*.localhost", and the host of ListenAddr. An entry is an exact
	// name ("gpu.lan"; a port in it is ignored), a domain with every name
	// under it (".example.com" or "*.example.com", both also matching
	// example.com), or "*", which turns the check off. Other Hosts get
	// 403. The check guards against DNS rebinding; when Keys are set it
	// runs only if AllowedHosts is non-empty (a page cannot know the key).
	// Health routes are never checked.
	AllowedHosts []string
	// ListenAddr is the HTTP listen address as given (host:port); a name
	// as its host is an allowed Host. Optional; it does not count as
	// setting AllowedHosts.
	ListenAddr string
	// CORSOrigins are the web origins whose pages may call the inference
	// routes from a browser: exact origins ("https://app.example.com",
	// scheme://host[:port]) or "*" for any. Empty (the default) sends no
	// CORS headers at all, so browsers block cross-origin calls. When set,
	// a preflight from a listed origin gets 204, one from another 403, and
	// responses to a listed origin carry Access-Control-Allow-Origin.
	CORSOrigins []string
}

// Server is the HTTP transport. It holds no per-request state.
type Server struct {
	cfg     Config
	hosts   hostPolicy
	cors    corsPolicy
	handler http.Handler
	mux     *http.ServeMux
}

// SpanName names r's span by its route: "POST /v1/chat/completions", or
// "GET unknown route" for paths the server does not serve. Paths are the
// client's to choose; used as span names they would be unbounded.
func (s *Server) SpanName(r *http.Request) string {
	method := r.Method
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
	default:
		method = "_OTHER" // as OpenTelemetry's HTTP conventions name it
	}
	if _, pattern := s.mux.Handler(r); pattern != "" && pattern != "/" {
		if _, path, ok := strings.Cut(pattern, " "); ok {
			pattern = path
		}
		return method + " " + pattern
	}
	return method + " unknown route"
}

// New builds a Server from cfg.
func New(cfg Config) *Server {
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, hosts: newHostPolicy(cfg), cors: newCORSPolicy(cfg.CORSOrigins, cfg.Logger)}
	s.mux = s.routes()
	s.handler = tenantFromHeader(s.mux)
	if cfg.Middleware != nil {
		s.handler = cfg.Middleware(s.handler)
	}
	// Before the Middleware's propagator reads them.
	s.handler = traceHeaders(s.handler)
	// Outermost, so that it holds the connection's own ResponseWriter
	// (wrappers such as otelhttp's may hide the read deadline).
	s.handler = bodyDeadline(s.handler, cfg.BodyTimeout)
	return s
}

// Handler returns the server's handler, to mount on an http.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// routes builds the mux. Each path also gets a method-less pattern so a
// wrong method is answered by this package (405 with an error body and an
// Allow header) rather than by ServeMux's plain-text reply; the
// method-specific pattern is more specific, so it wins for its method.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	handle := func(method, path string, h http.Handler) {
		mux.Handle(method+" "+path, routed(path, h))
		mux.Handle(path, s.methodNotAllowed(allowed(method)))
	}
	// api registers an inference route. In order: the Host check and
	// CORS (browserChecks), the body's type (every POST route takes
	// JSON), the key, then the handler, which decodes the body.
	api := func(method, path string, h http.HandlerFunc) {
		h = s.authed(h)
		if method == http.MethodPost {
			h = s.jsonBody(h)
		}
		handle(method, path, s.browserChecks(h))
		if s.cors.enabled() {
			mux.Handle(http.MethodOptions+" "+path, s.preflight(allowed(method)))
		}
	}
	api(http.MethodPost, "/v1/completions", s.completions)
	api(http.MethodPost, "/v1/chat/completions", s.chatCompletions)
	api(http.MethodPost, "/v1/responses", s.responses)
	api(http.MethodPost, "/v1/embeddings", s.embeddings)
	api(http.MethodGet, "/v1/models", s.listModels)
	api(http.MethodGet, "/v1/models/{model...}", s.getModel)
	api(http.MethodPost, "/generate", s.generate)
	api(http.MethodPost, "/tokenize", s.tokenize)
	api(http.MethodPost, "/detokenize", s.detokenize)
	api(http.MethodPost, "/apply-template", s.applyTemplate)
	// Health routes skip the Host check: they tell a page nothing but
	// "up" or "ready", and probes and load balancers send whatever Host
	// they were configured with (Kubernetes sends the pod IP, which
	// would pass anyway; Docker's healthcheck sends none).
	handle(http.MethodGet, "/healthz", http.HandlerFunc(s.healthz))
	handle(http.MethodGet, "/readyz", http.HandlerFunc(s.readyz))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fmt.Errorf("%w: %s %s", errNoRoute, r.Method, r.URL.Path))
	})
	return mux
}

// allowed is the Allow header of a route answering method.
func allowed(method string) string {
	if method == http.MethodGet {
		return "GET, HEAD" // ServeMux serves HEAD with GET handlers
	}
	return method
}

// authed checks the request's bearer key before h runs.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.cfg.Keys.Check(auth.BearerToken(r.Header.Get("Authorization"))); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r)
	}
}

func (s *Server) methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.writeError(w, r, fmt.Errorf("%w: %s %s (allowed: %s)", errMethod, r.Method, r.URL.Path, allow))
	}
}

// healthz says the process is up; it never depends on the model.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok\n")
}

// readyz says whether to route traffic here: not while the model loads
// nor once draining starts.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.Ready != nil && !s.cfg.Ready.Ready() {
		writeText(w, http.StatusServiceUnavailable, "not ready\n")
		return
	}
	writeText(w, http.StatusOK, "ready\n")
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// listModels answers GET /v1/models.
func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	models := s.cfg.API.Models()
	list := modelList{Object: "list", Data: make([]modelObject, 0, len(models))}
	for _, m := range models {
		list.Data = append(list.Data, toModelObject(m))
	}
	s.writeJSON(w, r, http.StatusOK, list)
}

// getModel answers GET /v1/models/{model}. Model ids may contain slashes
// ("org/name"), hence the {model...} wildcard.
func (s *Server) getModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("model")
	for _, m := range s.cfg.API.Models() {
		if m.ID == id {
			s.writeJSON(w, r, http.StatusOK, toModelObject(m))
			return
		}
	}
	s.writeError(w, r, fmt.Errorf("model %q: %w", id, inference.ErrUnknownModel))
}

func toModelObject(m inference.Model) modelObject {
	var created int64
	if !m.Created.IsZero() {
		created = m.Created.Unix()
	}
	return modelObject{ID: m.ID, Object: "model", Created: created, OwnedBy: m.OwnedBy}
}

// requestLabel names a request in logs.
func requestLabel(r *http.Request) string { return r.Method + " " + r.URL.Path }

// bodyDeadline gives a request with a body timeout to send it: the
// connection's read deadline is set before the handler runs and lifted as
// soon as the body has been read to its end, so that a response stream
// afterwards is not cut (the server's background read would otherwise hit
// the deadline and cancel the request).
func bodyDeadline(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if rc.SetReadDeadline(time.Now().Add(timeout)) != nil {
			h.ServeHTTP(w, r) // not a network connection (tests)
			return
		}
		lift := func() { _ = rc.SetReadDeadline(time.Time{}) }
		// Not lifted when the handler returns early: a body left unread is
		// then drained by the server under the same deadline, and a slow
		// sender's connection is closed instead of held.
		r.Body = &deadlineBody{ReadCloser: r.Body, lift: lift}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body is read to its end.
type deadlineBody struct {
	io.ReadCloser
	lift   func()
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.lifted {
		b.lifted = true
		b.lift()
	}
	return n, err
}

// tenantFromHeader turns an X-Tenant-ID header into the tenant.id baggage
// member, where the inference layer looks for the tenant (gRPC callers
// send the baggage itself). It runs inside the Middleware, so it adds to
// the baggage the propagator extracted.
func tenantFromHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t := r.Header.Get(semconv.HeaderTenant); t != "" {
			if m, err := baggage.NewMemberRaw(semconv.BaggageTenantKey, t); err == nil {
				if b, err := baggage.FromContext(r.Context()).SetMember(m); err == nil {
					r = r.WithContext(baggage.ContextWithBaggage(r.Context(), b))
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// traceHeaders applies the W3C rules the propagator leaves to the
// carrier (w3c.Headers) to the request's trace headers.
func traceHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tps, tss := r.Header.Values(w3c.HeaderTraceparent), r.Header.Values(w3c.HeaderTracestate)
		if w3c.NeedsRewrite(tps, tss) {
			r = r.Clone(r.Context())
			r.Header.Del(w3c.HeaderTraceparent)
			r.Header.Del(w3c.HeaderTracestate)
			if tp, ts, ok := w3c.Headers(tps, tss); ok {
				r.Header.Set(w3c.HeaderTraceparent, tp)
				if ts != "" {
					r.Header.Set(w3c.HeaderTracestate, ts)
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// routed records the route template as http.route on the transport span
// (otelhttp reads the pattern of the router outside this server's, which
// matched "/", never this mux's) and the listener's address for the
// request span.
func routed(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.route", route))
		if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			r = r.WithContext(inference.WithServerAddr(r.Context(), addr))
		}
		next.ServeHTTP(w, r)
	})
}
