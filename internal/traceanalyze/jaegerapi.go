package traceanalyze

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrTraceNotFound is Jaeger's 404 for a trace id it does not hold.
var ErrTraceNotFound = errors.New("trace not found")

// JaegerStatusError is any other failed reply from Jaeger's query API.
type JaegerStatusError struct {
	URL    string
	Status int
	Detail string // Jaeger's error message or the start of the body
}

func (e *JaegerStatusError) Error() string {
	return fmt.Sprintf("jaeger %s: HTTP %d: %s", e.URL, e.Status, e.Detail)
}

// maxJaegerReply bounds how much of a reply is read.
const maxJaegerReply = 512 << 20

// JaegerClient reads traces from Jaeger's HTTP query API (the UI port,
// 16686 by default). Only BaseURL is required.
type JaegerClient struct {
	// BaseURL is where the query service listens, e.g.
	// http://localhost:16686 (a path prefix, for a UI behind a proxy, is
	// kept).
	BaseURL string
	// HTTP is the client to use; nil means http.DefaultClient. Bound
	// calls with the context or the client's Timeout.
	HTTP *http.Client
}

// JaegerQuery selects traces: those of Service with spans in [Start, End],
// at most Limit of them, optionally only with an Operation.
type JaegerQuery struct {
	Service   string
	Operation string
	Start     time.Time
	End       time.Time
	Limit     int
}

// Trace fetches one trace; ErrTraceNotFound when Jaeger has no such trace.
func (c *JaegerClient) Trace(ctx context.Context, traceID string) ([]Span, error) {
	id, err := NormalizeTraceID(traceID)
	if err != nil {
		return nil, err
	}
	u, err := c.endpoint("/api/traces/"+id, nil)
	if err != nil {
		return nil, err
	}
	spans, err := c.get(ctx, u)
	if errors.Is(err, ErrNoSpans) {
		return nil, fmt.Errorf("trace %s: %w", id, ErrTraceNotFound)
	}
	if errors.Is(err, ErrTraceNotFound) {
		return nil, fmt.Errorf("trace %s: %w", id, err)
	}
	return spans, err
}

// Search fetches the traces a query selects; no match is ErrNoSpans.
func (c *JaegerClient) Search(ctx context.Context, q JaegerQuery) ([]Span, error) {
	if q.Service == "" {
		return nil, errors.New("jaeger search: no service")
	}
	if q.Limit <= 0 {
		return nil, errors.New("jaeger search: limit must be positive")
	}
	if !q.End.After(q.Start) {
		return nil, errors.New("jaeger search: end must be after start")
	}
	v := url.Values{}
	v.Set("service", q.Service)
	if q.Operation != "" {
		v.Set("operation", q.Operation)
	}
	v.Set("start", strconv.FormatInt(q.Start.UnixMicro(), 10))
	v.Set("end", strconv.FormatInt(q.End.UnixMicro(), 10))
	v.Set("limit", strconv.Itoa(q.Limit))
	u, err := c.endpoint("/api/traces", v)
	if err != nil {
		return nil, err
	}
	spans, err := c.get(ctx, u)
	if errors.Is(err, ErrTraceNotFound) {
		return nil, ErrNoSpans // some versions answer an empty search with 404
	}
	return spans, err
}

// maxSearchPages bounds SearchRequests' queries.
const maxSearchPages = 8

// SearchRequests is Search with q.Limit counting request traces only:
// batch (engine step) traces, which outnumber requests under load, would
// otherwise use up the limit. It asks Jaeger for pages of newest traces,
// each page ending before the oldest trace of the last, until Limit
// request traces are found or the window is exhausted; the batch traces
// of those pages are kept too (the report links them to requests).
func (c *JaegerClient) SearchRequests(ctx context.Context, q JaegerQuery) ([]Span, error) {
	want := q.Limit
	page := q
	page.Limit = max(2*want, 20)
	var all []Span
	requests := 0
	for range maxSearchPages {
		spans, err := c.Search(ctx, page)
		if errors.Is(err, ErrNoSpans) {
			break
		}
		if err != nil {
			return nil, err
		}
		traces := groupTraces(spans) // oldest first
		oldest := page.End
		for k := len(traces) - 1; k >= 0; k-- {
			t := traces[k]
			batch := isBatch(root(t))
			if requests >= want && !batch {
				continue // past the limit: only the newest count
			}
			if !batch {
				requests++
			}
			for _, sp := range t.Spans {
				all = append(all, *sp)
			}
		}
		if len(traces) > 0 {
			oldest = traces[0].Start()
		}
		if requests >= want || len(traces) < page.Limit || !oldest.After(page.Start) {
			break
		}
		page.End = oldest.Add(-time.Microsecond)
	}
	if len(all) == 0 {
		return nil, ErrNoSpans
	}
	return all, nil
}

func (c *JaegerClient) endpoint(path string, query url.Values) (string, error) {
	base, err := url.Parse(strings.TrimSpace(c.BaseURL))
	if err != nil {
		return "", fmt.Errorf("jaeger URL %q: %w", c.BaseURL, err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return "", fmt.Errorf("jaeger URL %q: want http://host:port", c.BaseURL)
	}
	base.Path = strings.TrimSuffix(base.Path, "/") + path
	base.RawPath = ""
	base.RawQuery = query.Encode()
	return base.String(), nil
}

func (c *JaegerClient) get(ctx context.Context, u string) ([]Span, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("jaeger: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jaeger unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJaegerReply+1))
	if err != nil {
		return nil, fmt.Errorf("jaeger %s: reading reply: %w", u, err)
	}
	if len(body) > maxJaegerReply {
		return nil, fmt.Errorf("jaeger %s: reply larger than %d MiB", u, maxJaegerReply>>20)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, ErrTraceNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &JaegerStatusError{URL: u, Status: resp.StatusCode, Detail: errorDetail(body)}
	}
	parsed, err := decodeJaegerObject(body)
	if err != nil {
		return nil, fmt.Errorf("jaeger %s: malformed reply: %w", u, err)
	}
	if len(parsed.Errors) > 0 {
		for _, e := range parsed.Errors {
			if e.Code == http.StatusNotFound {
				return nil, ErrTraceNotFound
			}
		}
		return nil, &JaegerStatusError{URL: u, Status: resp.StatusCode, Detail: jaegerErrors(parsed.Errors)}
	}
	spans, err := spansFromJaeger(parsed.Data)
	if err != nil {
		return nil, fmt.Errorf("jaeger %s: %w", u, err)
	}
	spans, _ = dedupe(spans)
	if len(spans) == 0 {
		return nil, ErrNoSpans
	}
	return spans, nil
}

// errorDetail is Jaeger's own message from an error body, else the start
// of the body.
func errorDetail(body []byte) string {
	if r, err := decodeJaegerObject(body); err == nil && len(r.Errors) > 0 {
		return jaegerErrors(r.Errors)
	}
	s := strings.TrimSpace(string(body))
	if s == "" {
		return "empty reply"
	}
	return truncateForError(s)
}
