package httpserver

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/auth"
)

// okBodies are valid bodies of every JSON route.
var okBodies = map[string]string{
	"/v1/completions":      `{"prompt":"p"}`,
	"/v1/chat/completions": `{"messages":[{"role":"user","content":"a"}]}`,
	"/generate":            `{"prompt":"p"}`,
	"/tokenize":            `{"text":"t"}`,
}

// TestContentType: a JSON route serves only bodies declared as
// application/json; anything a browser may send without a preflight is a
// 415, before the key is checked.
func TestContentType(t *testing.T) {
	type test struct {
		name        string
		method      string // default POST
		path        string
		contentType string // "" sends none
		keys        auth.Keys
		want        int
	}
	tests := []test{
		{name: "charset utf-8", path: "/v1/chat/completions", contentType: "application/json; charset=utf-8", want: 200},
		{name: "case-insensitive", path: "/generate", contentType: "Application/JSON; Charset=UTF-8", want: 200},
		{name: "trailing semicolon", path: "/generate", contentType: "application/json;", want: 200},
		{name: "other charset", path: "/generate", contentType: "application/json; charset=utf-16", want: 415},
		{name: "+json suffix", path: "/v1/completions", contentType: "application/merge-patch+json", want: 415},
		{name: "browser text/plain", path: "/v1/chat/completions", contentType: "text/plain;charset=UTF-8", want: 415},
		{name: "form", path: "/v1/completions", contentType: "application/x-www-form-urlencoded", want: 415},
		{name: "multipart", path: "/generate", contentType: "multipart/form-data; boundary=x", want: 415},
		{name: "garbage", path: "/generate", contentType: "json", want: 415},
		{name: "before auth", path: "/generate", contentType: "text/plain", keys: auth.NewKeys("k"), want: 415},
		{name: "GET without type", method: "GET", path: "/v1/models", want: 200},
		{name: "GET with text/plain", method: "GET", path: "/v1/models", contentType: "text/plain", want: 200},
		{name: "health", method: "GET", path: "/healthz", contentType: "text/plain", want: 200},
	}
	for path := range okBodies {
		tests = append(tests,
			test{name: path + " json", path: path, contentType: "application/json", want: 200},
			test{name: path + " none", path: path, want: 415},
			test{name: path + " text/plain", path: path, contentType: "text/plain", want: 415},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, fake := serve(t, Config{Keys: tt.keys})
			method := tt.method
			if method == "" {
				method = "POST"
			}
			resp := do(t, ts, method, tt.path, okBodies[tt.path], "Content-Type", tt.contentType)
			if tt.want != http.StatusUnsupportedMediaType {
				if resp.status != tt.want {
					t.Errorf("status %d, want %d: %s", resp.status, tt.want, resp.body)
				}
				return
			}
			e := checkError(t, resp, tt.want, "", "unsupported_media_type")
			if !strings.Contains(e.Error.Message, "application/json") {
				t.Errorf("message %q does not say what to send", e.Error.Message)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if len(fake.reqs) != 0 {
				t.Error("the request reached the API")
			}
		})
	}
}

// TestHostCheck: a server without a key answers only to Hosts DNS
// rebinding cannot forge, unless told otherwise.
func TestHostCheck(t *testing.T) {
	const key = "s3cret"
	tests := []struct {
		name    string
		keys    auth.Keys
		allowed []string
		listen  string
		method  string // default POST /generate
		path    string
		host    string
		want    int
	}{
		{name: "foreign name", host: "evil.example", want: 403},
		{name: "foreign name with port", host: "evil.example:8080", want: 403},
		{name: "foreign name on a GET", method: "GET", path: "/v1/models", host: "evil.example", want: 403},
		{name: "localhost is not a suffix of a name", host: "localhost.evil.example", want: 403},
		{name: "nor a prefix", host: "evil-localhost:8080", want: 403},
		{name: "localhost", host: "localhost:8080", want: 200},
		{name: "localhost bare, upper case, root dot", host: "LOCALHOST.", want: 200},
		{name: "sub.localhost", host: "app.localhost:8080", want: 200},
		{name: "IPv4 loopback", host: "127.0.0.1:8080", want: 200},
		{name: "other loopback", host: "127.0.0.2", want: 200},
		{name: "IPv6 loopback", host: "[::1]:8080", want: 200},
		{name: "IPv6 without port", host: "[::1]", want: 200},
		{name: "LAN IP literal", host: "192.168.1.20:8080", want: 200},
		{name: "health is exempt", method: "GET", path: "/healthz", host: "evil.example", want: 200},
		{name: "readyz is exempt", method: "GET", path: "/readyz", host: "evil.example", want: 200},
		{name: "a key turns the check off", keys: auth.NewKeys(key), host: "evil.example", want: 200},
		{name: "unless hosts are listed", keys: auth.NewKeys(key), allowed: []string{"api.example.com"}, host: "evil.example", want: 403},
		{name: "listed with a key", keys: auth.NewKeys(key), allowed: []string{"api.example.com"}, host: "api.example.com", want: 200},
		{name: "exact name", allowed: []string{"gpu.lan"}, host: "gpu.lan:8080", want: 200},
		{name: "exact name, any case", allowed: []string{"GPU.lan"}, host: "gpu.LAN", want: 200},
		{name: "exact name has no subdomains", allowed: []string{"gpu.lan"}, host: "x.gpu.lan", want: 403},
		{name: "entry with port", allowed: []string{"gpu.lan:9999"}, host: "gpu.lan:8080", want: 200},
		{name: "dot suffix: subdomain", allowed: []string{".example.com"}, host: "a.b.example.com", want: 200},
		{name: "dot suffix: the domain", allowed: []string{".example.com"}, host: "example.com", want: 200},
		{name: "dot suffix: not a label boundary", allowed: []string{".example.com"}, host: "badexample.com", want: 403},
		{name: "star suffix", allowed: []string{"*.example.com"}, host: "api.example.com:443", want: 200},
		{name: "star suffix: the domain", allowed: []string{"*.example.com"}, host: "example.com", want: 200},
		{name: "star suffix: other domain", allowed: []string{"*.example.com"}, host: "example.org", want: 403},
		{name: "star", allowed: []string{"*"}, host: "evil.example", want: 200},
		{name: "listed hosts keep the defaults", allowed: []string{"gpu.lan"}, host: "localhost:8080", want: 200},
		{name: "listen name", listen: "gpu-box:8080", host: "gpu-box:8080", want: 200},
		{name: "listen name does not list others", listen: "gpu-box:8080", host: "evil.example", want: 403},
		{name: "listen address without host", listen: ":8080", host: "evil.example", want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, _ := serve(t, Config{Keys: tt.keys, AllowedHosts: tt.allowed, ListenAddr: tt.listen})
			method, path := tt.method, tt.path
			if method == "" {
				method, path = "POST", "/generate"
			}
			resp := do(t, ts, method, path, okBodies[path], "Host", tt.host, "Authorization", "Bearer "+key)
			if tt.want != http.StatusForbidden {
				if resp.status != tt.want {
					t.Errorf("status %d, want %d: %s", resp.status, tt.want, resp.body)
				}
				return
			}
			e := checkError(t, resp, tt.want, "", "host_not_allowed")
			for _, s := range []string{tt.host, "--allowed-hosts"} {
				if !strings.Contains(e.Error.Message, s) {
					t.Errorf("message %q does not name %q", e.Error.Message, s)
				}
			}
		})
	}
}

// TestHostCheckBeforeAuth: a refused Host is refused before the key is
// looked at, and before the body's type.
func TestHostCheckBeforeAuth(t *testing.T) {
	ts, _ := serve(t, Config{Keys: auth.NewKeys("k"), AllowedHosts: []string{"api.example.com"}})
	resp := do(t, ts, "POST", "/generate", "x", "Host", "evil.example", "Content-Type", "text/plain")
	checkError(t, resp, http.StatusForbidden, "", "host_not_allowed")
}

// corsHeaders returns resp's Access-Control-* headers.
func corsHeaders(resp response) http.Header {
	h := http.Header{}
	for k, v := range resp.header {
		if strings.HasPrefix(k, "Access-Control-") {
			h[k] = v
		}
	}
	return h
}

// TestCORS: off by default; when origins are set, preflights and
// responses for those origins carry CORS headers and nothing else does.
func TestCORS(t *testing.T) {
	const app, evil = "https://app.example.com", "https://evil.example"
	preflight := func(origin, method string) []string {
		return []string{"Origin", origin, "Access-Control-Request-Method", method,
			"Access-Control-Request-Headers", "authorization,content-type,traceparent"}
	}
	tests := []struct {
		name    string
		origins []string
		keys    auth.Keys
		method  string
		path    string
		header  []string
		want    int
		// wantCORS: the Access-Control-* headers, exactly (nil: none).
		wantCORS map[string]string
	}{
		{
			name: "off: preflight is the route's 405", method: "OPTIONS", path: "/v1/chat/completions",
			header: preflight(app, "POST"), want: 405,
		},
		{
			name: "off: no headers on a response", method: "POST", path: "/v1/chat/completions",
			header: []string{"Origin", app}, want: 200,
		},
		{
			name: "preflight from a listed origin", origins: []string{app}, method: "OPTIONS", path: "/v1/chat/completions",
			header: preflight(app, "POST"), want: 204,
			wantCORS: map[string]string{
				"Access-Control-Allow-Origin":  app,
				"Access-Control-Allow-Methods": "POST",
				"Access-Control-Allow-Headers": "Authorization, Content-Type, traceparent, tracestate, baggage, X-Tenant-ID",
				"Access-Control-Max-Age":       "7200",
			},
		},
		{
			name: "preflight on a GET route", origins: []string{app}, method: "OPTIONS", path: "/v1/models/org/name",
			header: preflight(app, "GET"), want: 204,
			wantCORS: map[string]string{
				"Access-Control-Allow-Origin":  app,
				"Access-Control-Allow-Methods": "GET, HEAD",
				"Access-Control-Allow-Headers": "Authorization, Content-Type, traceparent, tracestate, baggage, X-Tenant-ID",
				"Access-Control-Max-Age":       "7200",
			},
		},
		{
			name: "preflight needs no key", origins: []string{app}, keys: auth.NewKeys("k"), method: "OPTIONS", path: "/generate",
			header: preflight(app, "POST"), want: 204,
			wantCORS: map[string]string{
				"Access-Control-Allow-Origin":  app,
				"Access-Control-Allow-Methods": "POST",
				"Access-Control-Allow-Headers": "Authorization, Content-Type, traceparent, tracestate, baggage, X-Tenant-ID",
				"Access-Control-Max-Age":       "7200",
			},
		},
		{
			name: "configured origin with a slash", origins: []string{app + "/"}, method: "OPTIONS", path: "/tokenize",
			header: preflight(app, "POST"), want: 204,
			wantCORS: map[string]string{
				"Access-Control-Allow-Origin":  app,
				"Access-Control-Allow-Methods": "POST",
				"Access-Control-Allow-Headers": "Authorization, Content-Type, traceparent, tracestate, baggage, X-Tenant-ID",
				"Access-Control-Max-Age":       "7200",
			},
		},
		{
			name: "star echoes the origin", origins: []string{"*"}, method: "OPTIONS", path: "/v1/completions",
			header: preflight(evil, "POST"), want: 204,
			wantCORS: map[string]string{
				"Access-Control-Allow-Origin":  evil,
				"Access-Control-Allow-Methods": "POST",
				"Access-Control-Allow-Headers": "Authorization, Content-Type, traceparent, tracestate, baggage, X-Tenant-ID",
				"Access-Control-Max-Age":       "7200",
			},
		},
		{
			name: "preflight from another origin", origins: []string{app}, method: "OPTIONS", path: "/v1/chat/completions",
			header: preflight(evil, "POST"), want: 403,
		},
		{
			name: "preflight with a foreign Host", origins: []string{app}, method: "OPTIONS", path: "/v1/chat/completions",
			header: append(preflight(app, "POST"), "Host", "evil.example"), want: 403,
		},
		{
			name: "plain OPTIONS", origins: []string{app}, method: "OPTIONS", path: "/v1/chat/completions",
			header: []string{"Origin", app}, want: 405,
		},
		{
			name: "preflight on an unknown route", origins: []string{app}, method: "OPTIONS", path: "/v1/audio/speech",
			header: preflight(app, "POST"), want: 404,
		},
		{
			name: "response to a listed origin", origins: []string{app}, method: "POST", path: "/v1/chat/completions",
			header: []string{"Origin", app}, want: 200,
			wantCORS: map[string]string{
				"Access-Control-Allow-Origin":   app,
				"Access-Control-Expose-Headers": "X-Request-Id, traceparent, Server-Timing, Retry-After, WWW-Authenticate",
			},
		},
		{
			name: "an error is readable too", origins: []string{app}, method: "POST", path: "/generate",
			header: []string{"Origin", app, "Content-Type", "text/plain"}, want: 415,
			wantCORS: map[string]string{
				"Access-Control-Allow-Origin":   app,
				"Access-Control-Expose-Headers": "X-Request-Id, traceparent, Server-Timing, Retry-After, WWW-Authenticate",
			},
		},
		{
			name: "response to another origin", origins: []string{app}, method: "POST", path: "/v1/chat/completions",
			header: []string{"Origin", evil}, want: 200,
		},
		{
			name: "response without Origin", origins: []string{app}, method: "GET", path: "/v1/models", want: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, _ := serve(t, Config{CORSOrigins: tt.origins, Keys: tt.keys})
			resp := do(t, ts, tt.method, tt.path, okBodies[tt.path], tt.header...)
			if resp.status != tt.want {
				t.Errorf("status %d, want %d: %s", resp.status, tt.want, resp.body)
			}
			got := corsHeaders(resp)
			if len(got) != len(tt.wantCORS) {
				t.Errorf("CORS headers %v, want %v", got, tt.wantCORS)
			}
			for k, v := range tt.wantCORS {
				if got.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, got.Get(k), v)
				}
			}
			// Caches must keep answers to different origins apart.
			vary := strings.Join(resp.header.Values("Vary"), ",")
			if tt.wantCORS != nil && !strings.Contains(vary, "Origin") || len(tt.origins) == 0 && vary != "" {
				t.Errorf("Vary = %q", vary)
			}
			if resp.status == 403 {
				checkError(t, resp, 403, "", "")
			}
		})
	}
}

// TestCORSOriginWarning: an entry that is not an origin can never match,
// and the operator is told.
func TestCORSOriginWarning(t *testing.T) {
	tests := []struct {
		have string
		warn bool
	}{
		{"https://app.example.com", false},
		{"http://localhost:3000", false},
		{"https://app.example.com/", false},
		{"null", false},
		{"*", false},
		{"app.example.com", true},
		{"https://app.example.com/path", true},
	}
	for _, tt := range tests {
		var logs bytes.Buffer
		newCORSPolicy([]string{tt.have}, slog.New(slog.NewTextHandler(&logs, nil)))
		if got := logs.Len() > 0; got != tt.warn {
			t.Errorf("%q: warned %v, want %v (%s)", tt.have, got, tt.warn, logs.String())
		}
	}
}

// TestGuard: other handlers on the listener get the same Host check.
func TestGuard(t *testing.T) {
	srv := New(Config{API: newFake()})
	h := srv.Guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	tests := []struct {
		host string
		want int
	}{
		{"localhost:8080", http.StatusTeapot},
		{"10.0.0.1:8080", http.StatusTeapot},
		{"evil.example", http.StatusForbidden},
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	for _, tt := range tests {
		if resp := do(t, ts, "GET", "/metrics", "", "Host", tt.host); resp.status != tt.want {
			t.Errorf("Host %q: status %d, want %d", tt.host, resp.status, tt.want)
		}
	}
}
