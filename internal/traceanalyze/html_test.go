package traceanalyze

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// parseHTML parses a report and returns its root.
func parseHTML(t *testing.T, b []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

// byID finds the element with an id.
func byID(doc *html.Node, id string) *html.Node {
	var found *html.Node
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && attr(n, "id") == id {
			found = n
		}
	})
	return found
}

// CheckSelfContained fails on anything a browser would fetch: scripts,
// stylesheets, images, frames, or any src/href/xlink:href attribute that
// points outside the document.
func CheckSelfContained(t *testing.T, doc *html.Node) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script", "link", "img", "iframe", "object", "embed", "image", "use":
			t.Errorf("report has a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			k := strings.ToLower(a.Key)
			v := strings.ToLower(a.Val)
			if (k == "src" || k == "href" || strings.HasSuffix(k, ":href")) && !strings.HasPrefix(v, "#") {
				t.Errorf("<%s %s=%q> points outside the report", n.Data, a.Key, a.Val)
			}
			if strings.Contains(v, "http://") || strings.Contains(v, "https://") || strings.Contains(v, "url(") {
				t.Errorf("<%s %s=%q> names a URL", n.Data, a.Key, a.Val)
			}
		}
	})
}

func TestHTMLWaterfall(t *testing.T) {
	r, err := Analyze(twoRequests(), Options{TraceID: "t1", Prices: testPrices()})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	doc := parseHTML(t, buf.Bytes())
	CheckSelfContained(t, doc)
	wf := byID(doc, "waterfall")
	if wf == nil {
		t.Fatal("no waterfall")
	}
	classes := map[string]int{}
	var bars, links int
	walk(wf, func(n *html.Node) {
		switch {
		case hasClass(n, "bar"):
			bars++
			for _, c := range strings.Fields(attr(n, "class")) {
				classes[c]++
			}
		case hasClass(n, "batch-link"):
			links++
		}
	})
	// t1 has five spans; its request span was in batch steps b1, b2, b3.
	if bars != 5 || links != 3 {
		t.Errorf("%d bars and %d batch marks, want 5 and 3", bars, links)
	}
	for _, c := range []string{"queue", "prefill", "decode", "request"} {
		if classes[c] != 1 {
			t.Errorf("%d bars of class %s, want 1 (classes %v)", classes[c], c, classes)
		}
	}
	for _, want := range []string{"Request latency", "Tokens over time", "Request rate", "cost (EUR)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestHTMLEscapesSpanText(t *testing.T) {
	const evil = `<script>alert(1)</script>`
	spans := []Span{
		span("t", "r", "", evil, 0, 10, "gen_ai.operation.name", "chat", "tenant.id", `"><img src=x onerror=alert(1)>`,
			"gen_ai.request.model", `</title><iframe src="https://evil.example/">`),
		span("t", "q", "r", "queue", 0, 10),
	}
	buf := reportHTML(t, spans)
	doc := parseHTML(t, buf.Bytes())
	CheckSelfContained(t, doc) // no <script>, <img>, <iframe> made it in
	var texts []string
	walk(doc, func(n *html.Node) {
		if n.Type == html.TextNode {
			texts = append(texts, n.Data)
		}
	})
	all := strings.Join(texts, "\n")
	for _, want := range []string{evil, `"><img src=x onerror=alert(1)>`} {
		if !strings.Contains(all, want) {
			t.Errorf("the text %q is not shown as text", want)
		}
	}
}

func TestHTMLWithoutRequests(t *testing.T) {
	buf := reportHTML(t, []Span{batch("b", 0, 1, 1)})
	if !strings.Contains(buf.String(), "no request spans") {
		t.Error("empty charts are not explained")
	}
}

// The prepare phase has its bar colour and its row in the phase table.
func TestHTMLShowsPrepare(t *testing.T) {
	spans := []Span{
		span("t", "r", "", "chat m", 0, 10, "gen_ai.operation.name", "chat"),
		span("t", "x", "r", "prepare", 0, 2),
		span("t", "q", "r", "queue", 2, 10),
	}
	buf := reportHTML(t, spans)
	prepareBars, prepareRow := 0, false
	walk(parseHTML(t, buf.Bytes()), func(n *html.Node) {
		if hasClass(n, "bar") && hasClass(n, "prepare") {
			prepareBars++
		}
		if n.Type == html.TextNode && n.Data == "prepare" && n.Parent != nil && n.Parent.Data == "td" {
			prepareRow = true
		}
	})
	if prepareBars != 1 || !prepareRow {
		t.Errorf("%d prepare bars (want 1), phase row %v", prepareBars, prepareRow)
	}
}

// reportHTML is the HTML report of spans.
func reportHTML(t *testing.T, spans []Span) *bytes.Buffer {
	t.Helper()
	r, err := Analyze(spans, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	return &buf
}
