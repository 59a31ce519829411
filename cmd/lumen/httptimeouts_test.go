package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Slow or idle HTTP clients cannot hold connections forever: headers,
// bodies and idle keep-alives each have a deadline, while a response
// stream that outlasts them all still runs to its end.
func TestHTTPTimeouts(t *testing.T) {
	httpAddr, _ := startServe(t, "--model", synthWithTemplate(t, ""), "--ctx-size", fmt.Sprint(structuredCtx),
		"--http-header-timeout", "300ms", "--http-body-timeout", "300ms", "--http-idle-timeout", "300ms")
	dial := func(t *testing.T) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second)) // the test's own bound
		return c
	}
	// closedWithin reads until the server closes the connection.
	closedWithin := func(t *testing.T, c net.Conn, limit time.Duration) string {
		t.Helper()
		start := time.Now()
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("connection not closed by the server: %v after %v", err, time.Since(start))
		}
		if d := time.Since(start); d > limit {
			t.Errorf("closed after %v, want within %v", d, limit)
		}
		return string(b)
	}

	t.Run("slow headers", func(t *testing.T) {
		c := dial(t)
		fmt.Fprintf(c, "POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\n")
		closedWithin(t, c, 3*time.Second)
	})
	t.Run("slow body gets 408", func(t *testing.T) {
		c := dial(t)
		fmt.Fprintf(c, "POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
		out := closedWithin(t, c, 3*time.Second)
		if !strings.HasPrefix(out, "HTTP/1.1 408") || !strings.Contains(out, "request_timeout") {
			t.Errorf("reply %q, want 408 request_timeout", out)
		}
	})
	t.Run("idle keep-alive is closed", func(t *testing.T) {
		c := dial(t)
		body := `{"prompt":"hi","max_tokens":2}`
		fmt.Fprintf(c, "POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("first request: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		closedWithin(t, c, 3*time.Second)
	})
	t.Run("a long stream is not cut", func(t *testing.T) {
		start := time.Now()
		resp, err := http.Post("http://"+httpAddr+"/v1/completions", "application/json",
			strings.NewReader(`{"prompt":"go","max_tokens":1500,"stream":true,"ignore_eos":true,"temperature":1}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `"finish_reason":"length"`) || !strings.HasSuffix(strings.TrimSpace(string(b)), "data: [DONE]") {
			t.Errorf("stream did not end normally: %.300s", b)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Logf("the stream took only %v; it shows nothing about the deadlines", d)
		}
	})
}
