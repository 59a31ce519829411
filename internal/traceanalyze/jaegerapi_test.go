package traceanalyze

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
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

// A --service search counts request traces against the limit: batch
// traces, five for every request here, do not use it up; Jaeger is paged
// back in time until enough requests are found, and the newest are kept.
func TestSearchRequestsPagesPastBatchTraces(t *testing.T) {
	base := time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)
	type trace struct {
		id    string
		start time.Time
		batch bool
	}
	var timeline []trace // one trace a second, every sixth a request
	for i := range 600 {
		timeline = append(timeline, trace{id: fmt.Sprintf("%032x", i+1), start: base.Add(time.Duration(i) * time.Second), batch: i%6 != 0})
	}
	queries := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries++
		q := r.URL.Query()
		start, _ := strconv.ParseInt(q.Get("start"), 10, 64)
		end, _ := strconv.ParseInt(q.Get("end"), 10, 64)
		limit, _ := strconv.Atoi(q.Get("limit"))
		var data []string
		for i := len(timeline) - 1; i >= 0 && len(data) < limit; i-- { // newest first, as Jaeger
			tr := timeline[i]
			if us := tr.start.UnixMicro(); us < start || us > end {
				continue
			}
			name := "chat tiny"
			if tr.batch {
				name = "batch"
			}
			data = append(data, fmt.Sprintf(`{"traceID":%q,"spans":[{"traceID":%q,"spanID":"00000000000000aa","operationName":%q,"startTime":%d,"duration":1000,"tags":[],"processID":"p1"}],"processes":{"p1":{"serviceName":"lumen"}}}`,
				tr.id, tr.id, name, tr.start.UnixMicro()))
		}
		fmt.Fprintf(w, `{"data":[%s]}`, strings.Join(data, ","))
	}))
	defer srv.Close()
	c := &JaegerClient{BaseURL: srv.URL}
	spans, err := c.SearchRequests(context.Background(), JaegerQuery{Service: "lumen", Start: base, End: base.Add(time.Hour), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var requests []string
	for _, s := range spans {
		if s.Name == "chat tiny" {
			requests = append(requests, s.TraceID)
		}
	}
	if len(requests) != 10 {
		t.Fatalf("%d request traces, want the limit of 10 (%d spans in all)", len(requests), len(spans))
	}
	// The newest ten requests are the last ten of the timeline's.
	for k, id := range requests {
		if want := fmt.Sprintf("%032x", 600-6*k-5); id != want {
			t.Errorf("request %d: trace %s, want %s (the newest first)", k, id, want)
		}
	}
	if queries < 2 {
		t.Errorf("%d queries: the first page of 20 traces holds only 3 or 4 requests, so it must page", queries)
	}
	if _, err := c.SearchRequests(context.Background(), JaegerQuery{Service: "lumen", Start: base.Add(-2 * time.Hour), End: base.Add(-time.Hour), Limit: 10}); !errors.Is(err, ErrNoSpans) {
		t.Errorf("empty window: %v, want ErrNoSpans", err)
	}
}
