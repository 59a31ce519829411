package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// With one slot, a prompt evicted by another is saved to host memory and
// restored when it comes back: the restored cells are exactly the
// computed ones (the output matches the run that reused them from the
// slot), and usage, metrics and the prefill span say where they came from.
func TestHostPrefixCacheEndToEnd(t *testing.T) {
	log := newSpanLog()
	httpAddr, _ := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log}}, nil,
		"--parallel", "1", "--cache-ram", "16")
	type usage struct {
		PromptTokens        int `json:"prompt_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	}
	complete := func(prompt string) (string, usage) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"prompt": prompt, "max_tokens": 8, "temperature": 0})
		resp := post(t, "http://"+httpAddr+"/v1/completions", "", string(body))
		defer resp.Body.Close()
		var out struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Usage usage `json:"usage"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || len(out.Choices) != 1 {
			t.Fatalf("status %d, %v, %+v", resp.StatusCode, err, out)
		}
		return out.Choices[0].Text, out.Usage
	}
	a := "The lighthouse keeper counted the ships that passed every night"
	b := "A completely different prompt about gardens, rain and old stone walls"
	if _, u := complete(a); u.PromptTokensDetails.CachedTokens != 0 {
		t.Fatalf("first request reused %d tokens of an empty cache", u.PromptTokensDetails.CachedTokens)
	}
	fromSlot, u := complete(a)
	if u.PromptTokensDetails.CachedTokens != u.PromptTokens-1 {
		t.Fatalf("repeat in the same slot: %d of %d tokens cached, want all but one", u.PromptTokensDetails.CachedTokens, u.PromptTokens)
	}
	complete(b) // takes the only slot: a's cells go to host memory
	fromHost, u := complete(a)
	if u.PromptTokensDetails.CachedTokens != u.PromptTokens-1 {
		t.Errorf("after eviction: %d of %d tokens cached, want all but one from host memory", u.PromptTokensDetails.CachedTokens, u.PromptTokens)
	}
	if fromHost != fromSlot {
		t.Errorf("output after restoring from host memory %q differs from the slot-cached run %q", fromHost, fromSlot)
	}

	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metric := func(name string) float64 {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				return f
			}
		}
		t.Errorf("no %s in /metrics", name)
		return -1
	}
	for name, want := range map[string]float64{
		`lumen_prefix_cache_hits_total{source="slot"}`: 1,
		`lumen_prefix_cache_hits_total{source="host"}`: 1,
		`lumen_prefix_cache_misses_total`:              2,
		`lumen_prefix_cache_host_entries`:              2, // a, then b when a came back
	} {
		if got := metric(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if metric("lumen_prefix_cache_host_bytes") <= 0 {
		t.Error("host cache holds entries but no bytes")
	}

	spans := log.waitFor(t, "four prefill spans", func(spans []sdktrace.ReadOnlySpan) bool {
		n := 0
		for _, s := range spans {
			if s.Name() == semconv.SpanPrefill {
				n++
			}
		}
		return n == 4
	})
	var sources []string
	for _, s := range spans {
		if s.Name() != semconv.SpanPrefill {
			continue
		}
		src := "none"
		restore := -1.0
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case semconv.AttrCacheSource:
				src = kv.Value.AsString()
			case semconv.AttrCacheRestoreMs:
				restore = kv.Value.AsFloat64()
			}
		}
		if restore < 0 {
			t.Errorf("prefill span without %s", semconv.AttrCacheRestoreMs)
		}
		sources = append(sources, src)
	}
	if got := strings.Join(sources, ","); got != "none,slot,none,host" {
		t.Errorf("prefill spans' cache sources %s, want none,slot,none,host", got)
	}
}
