package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/synth"
)

type wireTokenLogprob struct {
	Token       string  `json:"token"`
	Logprob     float64 `json:"logprob"`
	Bytes       []int   `json:"bytes"`
	TopLogprobs []struct {
		Token   string  `json:"token"`
		Logprob float64 `json:"logprob"`
		Bytes   []int   `json:"bytes"`
	} `json:"top_logprobs"`
}

type wireChatLogprobs struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		Logprobs *struct {
			Content []wireTokenLogprob `json:"content"`
		} `json:"logprobs"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Timings *struct {
		TTFTMS float64 `json:"ttft_ms"`
	} `json:"timings"`
}

// textCompletion is the part of a /v1/completions reply these tests read.
type textCompletion struct {
	Choices []struct {
		Text string `json:"text"`
	} `json:"choices"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
	} `json:"usage"`
}

// sseData posts body and returns the data of each server-sent event
// before [DONE].
func sseData(t *testing.T, url, body string) []string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: status %d", url, resp.StatusCode)
	}
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		d, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if d == "[DONE]" {
			return out
		}
		out = append(out, d)
	}
	t.Fatalf("stream ended without [DONE]")
	return nil
}

// TestLogprobsEndToEnd: greedy decoding picks the most likely token, so
// every token is the first of its own top_logprobs, with the same value;
// the tokens spell the reply, streamed or whole, and an echoed prompt
// brings one entry per prompt token (the first without a logprob).
func TestLogprobsEndToEnd(t *testing.T) {
	base := startStructured(t, sharedModelPath(t))
	const req = `"messages":[{"role":"user","content":"Say something"}],"temperature":0,"max_tokens":8,"ignore_eos":true,"logprobs":true,"top_logprobs":5`
	var whole wireChatLogprobs
	if err := postJSON(base+"/v1/chat/completions", "{"+req+"}", &whole); err != nil {
		t.Fatal(err)
	}
	lp := whole.Choices[0].Logprobs
	if lp == nil || len(lp.Content) != whole.Usage.CompletionTokens || len(lp.Content) != 8 {
		t.Fatalf("logprobs %+v for %d tokens, want 8 entries", lp, whole.Usage.CompletionTokens)
	}
	var spelled strings.Builder
	for i, e := range lp.Content {
		spelled.WriteString(e.Token)
		b := make([]byte, len(e.Bytes))
		for k, c := range e.Bytes {
			b[k] = byte(c)
		}
		if string(b) != e.Token || len(e.TopLogprobs) != 5 || e.Logprob > 0 {
			t.Errorf("entry %d: %+v (bytes must spell the token; 5 alternatives; logprob ≤ 0)", i, e)
			continue
		}
		if e.TopLogprobs[0].Token != e.Token || e.TopLogprobs[0].Logprob != e.Logprob {
			t.Errorf("entry %d: greedy picked %q (%v) but the most likely is %q (%v)", i, e.Token, e.Logprob, e.TopLogprobs[0].Token, e.TopLogprobs[0].Logprob)
		}
		for k := 1; k < len(e.TopLogprobs); k++ {
			if e.TopLogprobs[k].Logprob > e.TopLogprobs[k-1].Logprob {
				t.Errorf("entry %d: alternatives out of order: %+v", i, e.TopLogprobs)
			}
		}
	}
	if spelled.String() != whole.Choices[0].Message.Content {
		t.Errorf("tokens spell %q, content is %q", spelled.String(), whole.Choices[0].Message.Content)
	}

	var streamed []wireTokenLogprob
	var text strings.Builder
	var last wireChatLogprobs
	for _, d := range sseData(t, base+"/v1/chat/completions", `{"stream":true,`+req+`}`) {
		var c wireChatLogprobs
		if err := json.Unmarshal([]byte(d), &c); err != nil {
			t.Fatalf("chunk %s: %v", d, err)
		}
		if len(c.Choices) == 1 && c.Choices[0].Logprobs != nil {
			streamed = append(streamed, c.Choices[0].Logprobs.Content...)
		}
		if len(c.Choices) == 1 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
		last = c
	}
	if fmt.Sprint(streamed) != fmt.Sprint(lp.Content) || text.String() != whole.Choices[0].Message.Content {
		t.Errorf("streamed logprobs differ from the whole reply's:\n%v\n%v", streamed, lp.Content)
	}
	if last.Timings == nil || last.Timings.TTFTMS <= 0 || last.Choices[0].FinishReason == nil {
		t.Errorf("last chunk %+v, want the finish reason and timings", last)
	}

	var cmpl struct {
		Choices []struct {
			Text     string `json:"text"`
			Logprobs struct {
				Tokens        []string             `json:"tokens"`
				TokenLogprobs []*float64           `json:"token_logprobs"`
				TopLogprobs   []map[string]float64 `json:"top_logprobs"`
				TextOffset    []int                `json:"text_offset"`
			} `json:"logprobs"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	const prompt = "The quick brown fox"
	if err := postJSON(base+"/v1/completions", `{"prompt":"`+prompt+`","temperature":0,"max_tokens":4,"ignore_eos":true,"logprobs":2,"echo":true}`, &cmpl); err != nil {
		t.Fatal(err)
	}
	c := cmpl.Choices[0]
	n := cmpl.Usage.PromptTokens + cmpl.Usage.CompletionTokens
	if !strings.HasPrefix(c.Text, prompt) || len(c.Logprobs.Tokens) != n || len(c.Logprobs.TokenLogprobs) != n ||
		len(c.Logprobs.TopLogprobs) != n || len(c.Logprobs.TextOffset) != n {
		t.Fatalf("echo: text %q, %d/%d/%d/%d entries, want %d (prompt and completion)", c.Text, len(c.Logprobs.Tokens),
			len(c.Logprobs.TokenLogprobs), len(c.Logprobs.TopLogprobs), len(c.Logprobs.TextOffset), n)
	}
	for i, v := range c.Logprobs.TokenLogprobs {
		if (v == nil) != (i == 0) || (c.Logprobs.TopLogprobs[i] == nil) != (i == 0) {
			t.Errorf("entry %d: logprob %v, top %v; only the first prompt token has none", i, v, c.Logprobs.TopLogprobs[i])
		}
		if v != nil && (*v > 0 || len(c.Logprobs.TopLogprobs[i]) == 0 || len(c.Logprobs.TopLogprobs[i]) > 2) {
			t.Errorf("entry %d: logprob %v, top %v", i, *v, c.Logprobs.TopLogprobs[i])
		}
		if i > 0 && c.Logprobs.TextOffset[i] < c.Logprobs.TextOffset[i-1] {
			t.Errorf("text offsets go back: %v", c.Logprobs.TextOffset)
		}
	}
	completion := strings.Join(c.Logprobs.Tokens[cmpl.Usage.PromptTokens:], "")
	if c.Text != prompt+completion || c.Logprobs.TextOffset[cmpl.Usage.PromptTokens] != len(prompt) {
		t.Errorf("echoed text %q, want the prompt and then the tokens %q at offset %d (%v)", c.Text, completion, len(prompt), c.Logprobs.TextOffset)
	}
}

// TestMinTokensEndToEnd: with end-of-sequence made all but certain, a
// reply ends at once — unless min_tokens holds it back for that many
// tokens, after which it ends at once again.
func TestMinTokensEndToEnd(t *testing.T) {
	base := startStructured(t, sharedModelPath(t))
	for _, tt := range []struct{ min, want int }{{0, 0}, {5, 5}} {
		var out struct {
			Choices []struct {
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		// Token 2 is </s> in the Llama-2 vocabulary.
		body := fmt.Sprintf(`{"prompt":"Hello","temperature":0,"max_tokens":20,"logit_bias":{"2":100},"min_tokens":%d}`, tt.min)
		if err := postJSON(base+"/v1/completions", body, &out); err != nil {
			t.Fatal(err)
		}
		if out.Usage.CompletionTokens != tt.want || out.Choices[0].FinishReason != "stop" {
			t.Errorf("min_tokens %d: %d tokens, finish %s; want %d and stop", tt.min, out.Usage.CompletionTokens, out.Choices[0].FinishReason, tt.want)
		}
	}
}

// TestTokenizerRoutesEndToEnd: text survives tokenize then detokenize;
// a chat's tokenize and apply-template agree on the rendered prompt, which
// holds the messages.
func TestTokenizerRoutesEndToEnd(t *testing.T) {
	base := startStructured(t, sharedModelPath(t))
	const text = "The quick brown fox jumps over the lazy dog"
	var tok struct {
		Tokens      []int32 `json:"tokens"`
		Count       int     `json:"count"`
		MaxModelLen int     `json:"max_model_len"`
		Prompt      string  `json:"prompt"`
	}
	if err := postJSON(base+"/tokenize", `{"prompt":"`+text+`"}`, &tok); err != nil {
		t.Fatal(err)
	}
	if tok.Count != len(tok.Tokens) || tok.Count < 5 || tok.MaxModelLen <= 0 {
		t.Fatalf("tokenize: %+v", tok)
	}
	ids, _ := json.Marshal(tok.Tokens)
	var detok struct {
		Prompt  string `json:"prompt"`
		Content string `json:"content"`
	}
	if err := postJSON(base+"/detokenize", `{"tokens":`+string(ids)+`}`, &detok); err != nil {
		t.Fatal(err)
	}
	if detok.Prompt != text || detok.Content != text {
		t.Errorf("detokenize(tokenize(%q)) = %+v", text, detok)
	}
	const chat = `{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Name a colour."}]}`
	var chatTok struct {
		Tokens []int32 `json:"tokens"`
		Prompt string  `json:"prompt"`
	}
	var applied struct {
		Prompt string `json:"prompt"`
	}
	if err := postJSON(base+"/tokenize", chat, &chatTok); err != nil {
		t.Fatal(err)
	}
	if err := postJSON(base+"/apply-template", chat, &applied); err != nil {
		t.Fatal(err)
	}
	if applied.Prompt == "" || applied.Prompt != chatTok.Prompt || !strings.Contains(applied.Prompt, "Be brief.") ||
		!strings.Contains(applied.Prompt, "Name a colour.") || len(chatTok.Tokens) <= tok.Count/2 {
		t.Errorf("apply-template %q, tokenize %q (%d tokens)", applied.Prompt, chatTok.Prompt, len(chatTok.Tokens))
	}
}

// TestChoicesEndToEnd: n choices with seed s are the n requests with seeds
// s, s+1, … made one by one, and the prompt is computed once: the other
// choices share its cells (two "shared" prefix-cache hits for n=3).
func TestChoicesEndToEnd(t *testing.T) {
	httpAddr, _ := startServe(t, "--model", sharedModelPath(t), "--cache-ram", "0")
	base := "http://" + httpAddr
	const prompt = `"prompt":"A long prompt that all three choices share, so that it is worth computing only once","max_tokens":12,"temperature":1,"ignore_eos":true`
	var many struct {
		Choices []struct {
			Index int    `json:"index"`
			Text  string `json:"text"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := postJSON(base+"/v1/completions", `{`+prompt+`,"n":3,"seed":40}`, &many); err != nil {
		t.Fatal(err)
	}
	shared := sharedHits(t, base)
	if len(many.Choices) != 3 || many.Usage.CompletionTokens != 36 {
		t.Fatalf("%d choices, %d completion tokens; want 3 and 36", len(many.Choices), many.Usage.CompletionTokens)
	}
	if shared != 2 {
		t.Errorf("%v shared prefix-cache hits, want 2: the prompt computed once", shared)
	}
	for i, c := range many.Choices {
		var one textCompletion
		if err := postJSON(base+"/v1/completions", fmt.Sprintf(`{%s,"seed":%d,"cache_prompt":false}`, prompt, 40+i), &one); err != nil {
			t.Fatal(err)
		}
		if c.Index != i || c.Text != one.Choices[0].Text {
			t.Errorf("choice %d (index %d) %q, alone with seed %d %q", i, c.Index, c.Text, 40+i, one.Choices[0].Text)
		}
		if one.Usage.PromptTokens != many.Usage.PromptTokens {
			t.Errorf("usage counts the prompt %d times over", many.Usage.PromptTokens/max(one.Usage.PromptTokens, 1))
		}
	}
}

// sharedHits reads lumen_prefix_cache_hits_total{source="shared"}.
func sharedHits(t *testing.T, base string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `lumen_prefix_cache_hits_total{source="shared"} `); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatal("no shared prefix-cache hits metric")
	return 0
}

// TestFillInTheMiddleEndToEnd: suffix on /v1/completions prompts a model
// with FIM tokens as [BOS] <fim_prefix> prefix <fim_suffix> suffix
// <fim_middle> (three tokens more than prefix and suffix), and is a 400
// naming suffix for a model without them.
func TestFillInTheMiddleEndToEnd(t *testing.T) {
	cfg, err := synth.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.FIM = true
	model := filepath.Join(t.TempDir(), "fim.gguf")
	if err := synth.WriteFile(model, cfg, nil); err != nil {
		t.Fatal(err)
	}
	httpAddr, _ := startServe(t, "--model", model)
	base := "http://" + httpAddr
	count := func(text string) int {
		var tok struct {
			Count int `json:"count"`
		}
		if err := postJSON(base+"/tokenize", fmt.Sprintf(`{"text":%q}`, text), &tok); err != nil {
			t.Fatal(err)
		}
		return tok.Count - 1 // without its BOS
	}
	const prefix, suffix = "def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"
	var out textCompletion
	body, _ := json.Marshal(map[string]any{"prompt": prefix, "suffix": suffix, "max_tokens": 6, "temperature": 0})
	if err := postJSON(base+"/v1/completions", string(body), &out); err != nil {
		t.Fatal(err)
	}
	if want := 1 + 3 + count(prefix) + count(suffix); out.Usage.PromptTokens != want || len(out.Choices) != 1 {
		t.Errorf("FIM prompt of %d tokens, want %d (BOS, three FIM tokens, prefix and suffix)", out.Usage.PromptTokens, want)
	}

	plain := startStructured(t, sharedModelPath(t))
	err = postJSON(plain+"/v1/completions", string(body), &out)
	if err == nil || !strings.Contains(err.Error(), "status 400") || !strings.Contains(err.Error(), `"param":"suffix"`) {
		t.Errorf("suffix on a model without FIM tokens: %v, want a 400 naming suffix", err)
	}
}
