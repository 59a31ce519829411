package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// do sends one request with the given headers ("Host" sets the Host).
func do(t *testing.T, method, url, body string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// A keyless server on localhost is reachable by any web page the
// operator opens: serve refuses what a page can send without a CORS
// preflight (a text/plain POST) and Hosts a DNS-rebound name would carry,
// on the API and on /metrics and the live view alike, and answers CORS
// only for the origins it is given.
func TestServeRefusesBrowserOriginAttacks(t *testing.T) {
	httpAddr, _ := startServe(t, "--cors-origins", "https://app.example", "--allowed-hosts", "lumen.internal")
	base := "http://" + httpAddr
	json := map[string]string{"Content-Type": "application/json"}
	body := `{"prompt":"Hi","max_tokens":2}`
	tests := []struct {
		name, method, path string
		headers            map[string]string
		want               int
	}{
		{"json", "POST", "/generate", json, 200},
		{"text/plain", "POST", "/generate", map[string]string{"Content-Type": "text/plain"}, 415},
		{"form", "POST", "/v1/completions", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"rebound host", "POST", "/generate", map[string]string{"Content-Type": "application/json", "Host": "evil.example:8080"}, 403},
		{"rebound host reads metrics", "GET", "/metrics", map[string]string{"Host": "evil.example"}, 403},
		{"rebound host reads live view", "GET", "/live/api/traces", map[string]string{"Host": "evil.example"}, 403},
		{"allowed host", "POST", "/generate", map[string]string{"Content-Type": "application/json", "Host": "lumen.internal:8080"}, 200},
		{"localhost", "GET", "/metrics", map[string]string{"Host": "localhost:8080"}, 200},
		{"preflight from an allowed origin", "OPTIONS", "/v1/chat/completions", map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}, 204},
		{"preflight from another origin", "OPTIONS", "/v1/chat/completions", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ""
			if tt.method == "POST" {
				b = body
			}
			resp := do(t, tt.method, base+tt.path, b, tt.headers)
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
			if strings.Contains(tt.name, "allowed origin") && resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
				t.Errorf("Access-Control-Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
			}
		})
	}
}

// /metrics is open by default (scrapers carry no key) and behind the key
// with --metrics-auth; an --api-key argument is warned about.
func TestServeMetricsAuthAndKeyWarning(t *testing.T) {
	var stderr syncBuffer
	httpAddr, _ := startServeEnv(t, serveHooks{}, env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }},
		"--api-key", "k1", "--metrics-auth")
	if got := do(t, "GET", "http://"+httpAddr+"/metrics", "", nil).StatusCode; got != 401 {
		t.Errorf("GET /metrics without key: %d, want 401", got)
	}
	if got := do(t, "GET", "http://"+httpAddr+"/metrics", "", map[string]string{"Authorization": "Bearer k1"}).StatusCode; got != 200 {
		t.Errorf("GET /metrics with key: %d, want 200", got)
	}
	if !strings.Contains(stderr.String(), "prefer LUMEN_API_KEY") {
		t.Errorf("no warning about --api-key on the command line in:\n%s", stderr.String())
	}

	open, _ := startServeHooked(t, serveHooks{}, map[string]string{"LUMEN_API_KEY": "k2"})
	if got := do(t, "GET", "http://"+open+"/metrics", "", nil).StatusCode; got != 200 {
		t.Errorf("GET /metrics without --metrics-auth: %d, want 200", got)
	}
}
