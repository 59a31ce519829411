package traceanalyze

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fakeJaeger answers like Jaeger's query API under /prefix.
func fakeJaeger(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(handle))
	t.Cleanup(srv.Close)
	return srv
}

const notFoundBody = `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}`

func TestJaegerClientTrace(t *testing.T) {
	var gotPath string
	srv := fakeJaeger(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		switch r.URL.Path {
		case "/jaeger/api/traces/0000000000000000a3ce929d0e0e4736":
			w.Write([]byte(jaegerDoc))
		case "/jaeger/api/traces/00000000000000000000000000000500":
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"data":null,"errors":[{"code":500,"msg":"cassandra: timeout"}]}`))
		case "/jaeger/api/traces/00000000000000000000000000000bad":
			w.Write([]byte(`<html>not json`))
		case "/jaeger/api/traces/00000000000000000000000000000e00":
			w.Write([]byte(`{"data":[]}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(notFoundBody))
		}
	})
	c := &JaegerClient{BaseURL: srv.URL + "/jaeger/"}
	ctx := context.Background()

	spans, err := c.Trace(ctx, "A3CE929D0E0E4736")
	if err != nil || len(spans) != 2 || gotPath != "/jaeger/api/traces/0000000000000000a3ce929d0e0e4736" {
		t.Fatalf("Trace: %d spans, %v, path %s", len(spans), err, gotPath)
	}

	_, err = c.Trace(ctx, "4bf92f3577b34da6a3ce929d0e0e4736")
	if !errors.Is(err, ErrTraceNotFound) || !strings.Contains(err.Error(), "4bf92f3577b34da6a3ce929d0e0e4736") {
		t.Errorf("404: %v, want ErrTraceNotFound naming the trace", err)
	}
	_, err = c.Trace(ctx, "e00")
	if !errors.Is(err, ErrTraceNotFound) {
		t.Errorf("empty data: %v, want ErrTraceNotFound", err)
	}
	_, err = c.Trace(ctx, "500")
	var se *JaegerStatusError
	if !errors.As(err, &se) || se.Status != 500 || !strings.Contains(se.Detail, "cassandra: timeout") {
		t.Errorf("500: %v, want a JaegerStatusError with Jaeger's message", err)
	}
	_, err = c.Trace(ctx, "bad")
	if err == nil || !strings.Contains(err.Error(), "malformed reply") {
		t.Errorf("HTML reply: %v", err)
	}
	if _, err := c.Trace(ctx, "not-hex"); err == nil || !strings.Contains(err.Error(), "not hex") {
		t.Errorf("bad id: %v", err)
	}
}

func TestJaegerClientSearch(t *testing.T) {
	var got url.Values
	srv := fakeJaeger(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Query()
		if r.URL.Path != "/api/traces" {
			http.NotFound(w, r)
			return
		}
		if got.Get("service") == "nothing" {
			w.Write([]byte(`{"data":[],"total":0}`))
			return
		}
		w.Write([]byte(jaegerDoc))
	})
	c := &JaegerClient{BaseURL: srv.URL}
	end := time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)
	q := JaegerQuery{Service: "lumen", Operation: "chat tiny", Start: end.Add(-time.Hour), End: end, Limit: 20}
	spans, err := c.Search(context.Background(), q)
	if err != nil || len(spans) != 2 {
		t.Fatalf("Search: %d spans, %v", len(spans), err)
	}
	want := url.Values{"service": {"lumen"}, "operation": {"chat tiny"}, "limit": {"20"},
		"start": {"1735783200000000"}, "end": {"1735786800000000"}}
	if got.Encode() != want.Encode() {
		t.Errorf("query %s, want %s", got.Encode(), want.Encode())
	}
	q.Service = "nothing"
	if _, err := c.Search(context.Background(), q); !errors.Is(err, ErrNoSpans) {
		t.Errorf("no match: %v, want ErrNoSpans", err)
	}
	for _, bad := range []JaegerQuery{{Limit: 1, Start: q.Start, End: end}, {Service: "s", Start: q.Start, End: end}, {Service: "s", Limit: 1, Start: end, End: end}} {
		if _, err := c.Search(context.Background(), bad); err == nil {
			t.Errorf("query %+v accepted", bad)
		}
	}
}

func TestJaegerClientUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	c := &JaegerClient{BaseURL: "http://" + addr}
	if _, err := c.Trace(context.Background(), "1"); err == nil || !strings.Contains(err.Error(), "jaeger unreachable") {
		t.Errorf("err = %v, want jaeger unreachable", err)
	}
	for _, base := range []string{"", "localhost:16686", "ftp://host", "http://"} {
		c := &JaegerClient{BaseURL: base}
		if _, err := c.Trace(context.Background(), "1"); err == nil || !strings.Contains(err.Error(), "jaeger URL") {
			t.Errorf("base %q: %v", base, err)
		}
	}
}
