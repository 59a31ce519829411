package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

type wireEmbeddings struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float64 `json:"embedding"`
	} `json:"data"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
	} `json:"usage"`
}

// TestEmbeddingsEndToEnd: with --embeddings, a text's vector is the same
// batched with others or alone, unit length and finite, so its cosine
// with itself is 1; and it differs from another text's. Without the flag
// a generative model's server refuses embeddings with a 400.
func TestEmbeddingsEndToEnd(t *testing.T) {
	log := newSpanLog()
	httpAddr, _ := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log}}, nil,
		"--model", sharedModelPath(t), "--embeddings", "--embed-seqs", "2")
	base := "http://" + httpAddr
	var batched wireEmbeddings
	texts := `["The quick brown fox","jumps over the lazy dog","and is gone"]`
	if err := postJSON(base+"/v1/embeddings", `{"input":`+texts+`}`, &batched); err != nil {
		t.Fatal(err)
	}
	if len(batched.Data) != 3 || batched.Usage.PromptTokens < 3 {
		t.Fatalf("%d vectors, %d tokens", len(batched.Data), batched.Usage.PromptTokens)
	}
	cos := func(a, b []float64) float64 {
		var dot, na, nb float64
		for i := range a {
			dot, na, nb = dot+a[i]*b[i], na+a[i]*a[i], nb+b[i]*b[i]
		}
		return dot / math.Sqrt(na*nb)
	}
	for i, d := range batched.Data {
		var norm float64
		for _, x := range d.Embedding {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("vector %d holds %v", i, x)
			}
			norm += x * x
		}
		if d.Index != i || math.Abs(norm-1) > 1e-4 || math.Abs(cos(d.Embedding, d.Embedding)-1) > 1e-9 {
			t.Errorf("vector %d: index %d, norm² %v", i, d.Index, norm)
		}
	}
	var alone wireEmbeddings
	if err := postJSON(base+"/v1/embeddings", `{"input":"jumps over the lazy dog"}`, &alone); err != nil {
		t.Fatal(err)
	}
	if c := cos(alone.Data[0].Embedding, batched.Data[1].Embedding); c < 1-1e-6 {
		t.Errorf("the same text alone and batched: cosine %v, want 1", c)
	}
	if c := cos(batched.Data[0].Embedding, batched.Data[1].Embedding); c > 1-1e-6 {
		t.Errorf("different texts: cosine %v, want below 1", c)
	}

	// Traced like generation: a request span per call, its operation
	// embeddings, with preparing (tokenization), the queue and the
	// computing pass as children.
	spans := log.waitFor(t, "two embeddings spans", func(spans []sdktrace.ReadOnlySpan) bool {
		n := 0
		for _, s := range spans {
			if strings.HasPrefix(s.Name(), semconv.OperationEmbeddings+" ") {
				n++
			}
		}
		return n == 2
	})
	for _, s := range spans {
		if !strings.HasPrefix(s.Name(), semconv.OperationEmbeddings+" ") {
			continue
		}
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.String()
		}
		if attrs["gen_ai.operation.name"] != "embeddings" || attrs["gen_ai.usage.input_tokens"] == "" || attrs["gen_ai.usage.input_tokens"] == "0" {
			t.Errorf("span %s: %v", s.Name(), attrs)
		}
		var children []string
		for _, c := range spans {
			if c.Parent().SpanID() == s.SpanContext().SpanID() {
				children = append(children, c.Name())
			}
		}
		slices.Sort(children)
		if fmt.Sprint(children) != "[embed prepare queue]" {
			t.Errorf("span %s has children %v, want embed, prepare and queue", s.Name(), children)
		}
	}

	plain, _ := startServe(t, "--model", sharedModelPath(t))
	err := postJSON("http://"+plain+"/v1/embeddings", `{"input":"hi"}`, &alone)
	if err == nil || !strings.Contains(err.Error(), "status 400") || !strings.Contains(err.Error(), "--embeddings") {
		t.Errorf("embeddings without --embeddings: %v, want a 400 that names the flag", err)
	}
}
