package httpserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestChoices: n and several prompts make one request per choice — n per
// prompt, consecutive, seeds seed, seed+1, …, sharing the prompt's
// prefill — and one choice each in the reply, indexed in that order;
// usage counts each prompt once.
func TestChoices(t *testing.T) {
	ts, fake := serve(t, Config{})
	resp := do(t, ts, "POST", "/v1/completions", `{"prompt":["a","b"],"n":2,"seed":7,"max_tokens":4}`)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	var got wireCompletion
	decodeStrict(t, resp.body, &got)
	fake.mu.Lock()
	reqs := slices.Clone(fake.reqs)
	fake.mu.Unlock()
	var shape []string
	for _, r := range reqs {
		shape = append(shape, fmt.Sprintf("%s/%d/%v", r.Prompt, r.Sampling.Seed, r.SharePrefill))
	}
	if want := "[a/7/true a/8/true b/7/true b/8/true]"; fmt.Sprint(shape) != want {
		t.Errorf("requests %v, want %s", shape, want)
	}
	if len(got.Choices) != 4 {
		t.Fatalf("%d choices, want 4", len(got.Choices))
	}
	for i, c := range got.Choices {
		if c.Index != i || c.Text != wantText || c.FinishReason == nil {
			t.Errorf("choice %d: %+v", i, c)
		}
	}
	// The fake's result: 7 prompt tokens (2 cached), 3 generated.
	if u := got.Usage; u.PromptTokens != 14 || u.CompletionTokens != 12 || u.TotalTokens != 26 {
		t.Errorf("usage %+v, want prompts counted once (14) and every choice's tokens (12)", u)
	}

	resp = do(t, ts, "POST", "/v1/completions", `{"prompt":[[1,2],[3]],"max_tokens":4}`)
	if resp.status != http.StatusOK {
		t.Fatalf("token prompts: status %d: %s", resp.status, resp.body)
	}
	fake.mu.Lock()
	last := fake.reqs[len(fake.reqs)-2:]
	fake.mu.Unlock()
	if fmt.Sprint(last[0].PromptTokens, last[1].PromptTokens) != "[1 2] [3]" || last[0].Prompt != "" || last[0].SharePrefill {
		t.Errorf("token prompts became %+v", last)
	}

	// Streamed: every choice's text, each ended by its own finish chunk
	// with timings, then the usage of all.
	resp = do(t, ts, "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"n":3,"stream":true,"stream_options":{"include_usage":true}}`)
	if resp.status != http.StatusOK {
		t.Fatalf("chat stream: status %d: %s", resp.status, resp.body)
	}
	events := sseEvents(t, resp)
	texts, finished := make([]strings.Builder, 3), make([]int, 3)
	for _, e := range events[:len(events)-1] {
		var c wireChatChunk
		decodeStrict(t, []byte(e), &c)
		if len(c.Choices) != 1 || c.Choices[0].Index < 0 || c.Choices[0].Index > 2 {
			t.Fatalf("chunk %s", e)
		}
		ch := c.Choices[0]
		if finished[ch.Index] > 0 {
			t.Errorf("chunk after choice %d finished: %s", ch.Index, e)
		}
		if ch.Delta.Content != nil {
			texts[ch.Index].WriteString(*ch.Delta.Content)
		}
		if ch.FinishReason != nil {
			finished[ch.Index]++
			if c.Timings == nil {
				t.Errorf("finish chunk without timings: %s", e)
			}
		}
	}
	for i := range texts {
		if texts[i].String() != wantText || finished[i] != 1 {
			t.Errorf("choice %d: text %q, %d finish chunks", i, texts[i].String(), finished[i])
		}
	}
	var usageChunk wireChatChunk
	if err := json.Unmarshal([]byte(events[len(events)-1]), &usageChunk); err != nil || usageChunk.Usage == nil ||
		usageChunk.Usage.CompletionTokens != 9 || usageChunk.Usage.PromptTokens != 7 {
		t.Errorf("usage chunk %s (%v), want 7 prompt and 9 completion tokens", events[len(events)-1], err)
	}
}

// TestBestOf: best_of candidates per prompt, the n with the highest mean
// token logprob returned, likeliest first; usage counts every candidate;
// streaming it is refused.
func TestBestOf(t *testing.T) {
	ts, fake := serve(t, Config{})
	// Seeds 5..8 give the fake's tokens logprobs -5, -6, 0, -1.
	resp := do(t, ts, "POST", "/v1/completions", `{"prompt":"p","n":2,"best_of":4,"seed":5,"logprobs":0}`)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	var got struct {
		Choices []struct {
			Index    int `json:"index"`
			Logprobs struct {
				TokenLogprobs []float64 `json:"token_logprobs"`
			} `json:"logprobs"`
		} `json:"choices"`
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(resp.body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Choices) != 2 || got.Choices[0].Index != 0 || got.Choices[1].Index != 1 ||
		got.Choices[0].Logprobs.TokenLogprobs[0] != 0 || got.Choices[1].Logprobs.TokenLogprobs[0] != -1 {
		t.Errorf("choices %s, want the candidates of seeds 7 and 8, in that order", resp.body)
	}
	if got.Usage.CompletionTokens != 12 {
		t.Errorf("completion tokens %d, want all four candidates' 12", got.Usage.CompletionTokens)
	}
	fake.mu.Lock()
	n := len(fake.reqs)
	fake.mu.Unlock()
	if n != 4 {
		t.Errorf("%d requests, want 4 candidates", n)
	}
	resp = do(t, ts, "POST", "/v1/completions", `{"prompt":"p","best_of":2}`)
	if !strings.Contains(string(resp.body), `"logprobs":null`) {
		t.Errorf("best_of without logprobs returned them: %s", resp.body)
	}
	checkError(t, do(t, ts, "POST", "/v1/completions", `{"prompt":"p","n":3,"best_of":2}`), http.StatusBadRequest, "best_of", "")
	checkError(t, do(t, ts, "POST", "/v1/completions", `{"prompt":"p","best_of":2,"stream":true}`), http.StatusBadRequest, "best_of", "")
}
