package httpserver

// Defences against web pages. A server on localhost without an API key is
// reachable by any page open in the operator's browser, in two ways:
//
//   - "Simple" cross-origin requests: a form or fetch POST whose
//     Content-Type is text/plain, form-urlencoded or multipart is sent
//     without a CORS preflight. The page cannot read the answer, but the
//     request runs. Requiring Content-Type: application/json on every
//     JSON route turns such a request into one that needs a preflight,
//     which fails unless CORS allows the page's origin.
//   - DNS rebinding: attacker.example first resolves to the attacker,
//     then to 127.0.0.1; the page is then same-origin with this server
//     and may read everything. Its requests carry Host: attacker.example,
//     so a keyless server answers only to Hosts that cannot be rebound:
//     IP literals, localhost, and names the operator listed.
//
// CORS is off unless origins are configured: browsers then block every
// cross-origin read, which is what a local inference server wants.

import (
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// CORS response values. No Access-Control-Allow-Credentials, ever: the
// API authenticates with a bearer header the page sends itself, not with
// cookies, so credentialed requests have nothing to carry, and leaving it
// out keeps a listed origin from riding on a browser's ambient
// credentials.
const (
	// corsAllowHeaders: the request headers the server reads (the key,
	// the body's type, the trace context propagator's headers, the
	// tenant).
	corsAllowHeaders = "Authorization, Content-Type, traceparent, tracestate, baggage, " + semconv.HeaderTenant
	// corsExposeHeaders: the response headers set beyond the CORS
	// safelist that a page may want (see setResponseHeaders and
	// writeError).
	corsExposeHeaders = "X-Request-Id, traceparent, Server-Timing, Retry-After, WWW-Authenticate"
	// corsMaxAge: seconds a browser may cache a preflight; two hours is
	// Chromium's cap.
	corsMaxAge = "7200"
)

// allowedHostsHint tells an operator how to admit a refused Host.
const allowedHostsHint = "this server answers only to localhost, IP addresses and the names given with --allowed-hosts; add the name there to serve it"

// hostPolicy decides which Host headers the server answers to.
type hostPolicy struct {
	// off: every Host passes (a key is required and no hosts were
	// listed, or "*" was listed).
	off   bool
	exact map[string]bool
	// domains match themselves and every name under them.
	domains []string
}

// newHostPolicy builds the Host check of cfg. With keys set and no
// AllowedHosts the check is off: a page cannot know the key, so a
// rebound request fails authentication anyway.
func newHostPolicy(cfg Config) hostPolicy {
	p := hostPolicy{
		off:   cfg.Keys.Enabled() && len(cfg.AllowedHosts) == 0,
		exact: map[string]bool{},
		// RFC 6761: browsers resolve localhost and *.localhost to
		// loopback themselves, and no public DNS may answer for them.
		domains: []string{"localhost"},
	}
	for _, h := range cfg.AllowedHosts {
		h = strings.TrimSpace(h)
		var domain bool
		switch {
		case h == "*":
			p.off = true
			continue
		case strings.HasPrefix(h, "*."):
			h, domain = h[2:], true
		case strings.HasPrefix(h, "."):
			h, domain = h[1:], true
		}
		name := hostName(h)
		switch {
		case name == "":
		case domain:
			p.domains = append(p.domains, name)
		default:
			p.exact[name] = true
		}
	}
	// The name the server was told to listen on is one its operator
	// uses; listening on it is listing it.
	if name := hostName(cfg.ListenAddr); name != "" {
		p.exact[name] = true
	}
	return p
}

// allows reports whether a request with Host header host may be served.
func (p hostPolicy) allows(host string) bool {
	if p.off {
		return true
	}
	name := hostName(host)
	if name == "" {
		// Only HTTP/1.0 requests lack a Host (Go refuses HTTP/1.1 without
		// one); no browser sends those.
		return true
	}
	// A browser sends an IP literal only when the page's URL named that
	// address, so it connected there on purpose: an IP literal cannot be
	// rebound, whatever address the server listens on.
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	if p.exact[name] {
		return true
	}
	for _, d := range p.domains {
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	return false
}

// hostName is the name part of a Host header or listen address:
// lower-cased, without port, IPv6 brackets or a trailing root dot.
func hostName(hostport string) string {
	name := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		name = h
	} else if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		name = name[1 : len(name)-1]
	}
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// corsPolicy decides which web origins may read the API's answers.
type corsPolicy struct {
	any     bool
	origins map[string]bool
}

// newCORSPolicy builds the CORS policy for origins. An entry that is not
// an origin (scheme://host[:port]) could never match, so it is logged.
func newCORSPolicy(origins []string, log *slog.Logger) corsPolicy {
	c := corsPolicy{origins: map[string]bool{}}
	for _, o := range origins {
		o = strings.TrimSpace(o)
		switch {
		case o == "*":
			c.any = true
		case o != "":
			if u, err := url.Parse(o); o != "null" && (err != nil || u.Scheme == "" || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "") {
				log.Warn("CORS origin will never match: an origin is scheme://host[:port]", "origin", o)
			}
			c.origins[normalOrigin(o)] = true
		}
	}
	return c
}

func (c corsPolicy) enabled() bool { return c.any || len(c.origins) > 0 }

func (c corsPolicy) allows(origin string) bool {
	return origin != "" && (c.any || c.origins[normalOrigin(origin)])
}

// normalOrigin: browsers serialise origins in lower case without a
// trailing slash; configured ones may have either.
func normalOrigin(o string) string { return strings.ToLower(strings.TrimSuffix(o, "/")) }

// annotate adds the CORS headers of an actual (non-preflight) request.
// A request from another origin is served all the same: the browser keeps
// its page from reading the answer, and a non-browser client may send any
// Origin it likes.
func (c corsPolicy) annotate(h http.Header, origin string) {
	if !c.enabled() {
		return
	}
	h.Add("Vary", "Origin")
	if !c.allows(origin) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin) // echoed, even for "*"
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
}

// checkHost refuses a request whose Host the server does not answer to.
func (s *Server) checkHost(r *http.Request) error {
	if s.hosts.allows(r.Host) {
		return nil
	}
	hint := allowedHostsHint
	if !s.cfg.Keys.Enabled() {
		hint += " (a server with an API key skips this check unless --allowed-hosts is given)"
	}
	return fmt.Errorf("%w: %q: %s", errHostNotAllowed, r.Host, hint)
}

// browserChecks runs the Host check and adds CORS headers before h (the
// body and key checks and the handler itself), so that even an error
// answer can be read by an allowed page.
func (s *Server) browserChecks(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkHost(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.cors.annotate(w.Header(), r.Header.Get("Origin"))
		h.ServeHTTP(w, r)
	})
}

// preflight answers a CORS preflight (OPTIONS with Origin and
// Access-Control-Request-Method) for a route that answers allow. It runs
// before authentication: browsers never send credentials on a preflight.
// A plain OPTIONS gets the route's 405, as it does with CORS off.
func (s *Server) preflight(allow string) http.HandlerFunc {
	notAllowed := s.methodNotAllowed(allow)
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkHost(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		origin := r.Header.Get("Origin")
		if origin == "" || r.Header.Get("Access-Control-Request-Method") == "" {
			notAllowed(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		if !s.cors.allows(origin) {
			s.writeError(w, r, fmt.Errorf("%w: %q", errOriginNotAllowed, origin))
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", allow)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
	}
}

// jsonBody admits only requests that say their body is JSON, before the
// key is checked or the body read; see the top of this file for why.
func (s *Server) jsonBody(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := checkJSONType(r.Header.Get("Content-Type")); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r)
	}
}

// checkJSONType accepts exactly application/json (any case, any
// parameters), with a UTF-8 charset if it names one (RFC 8259 allows no
// other). Other JSON media types (application/*+json) name other
// vocabularies than these request bodies, and no OpenAI client sends
// them, so they are refused like the rest.
func checkJSONType(contentType string) error {
	const want = "send the body with 'Content-Type: application/json'"
	if contentType == "" {
		return fmt.Errorf("%w: no Content-Type; %s", errMediaType, want)
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if (err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter)) || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q; %s", errMediaType, contentType, want)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Errorf("%w: charset %q; JSON bodies are UTF-8: %s", errMediaType, cs, want)
	}
	return nil
}

// Guard wraps another handler served on the same listener (the metrics
// endpoint, the live view) with the Host check of the API routes, so that
// a DNS-rebound page cannot read those either.
func (s *Server) Guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkHost(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// GuardWithKey is Guard that also requires one of the API keys, as the
// inference routes do (for `--metrics-auth`).
func (s *Server) GuardWithKey(h http.Handler) http.Handler {
	return s.Guard(s.authed(h.ServeHTTP))
}
