package httpserver

import (
	"math"
	"unicode/utf8"

	"github.com/lumenllm/lumen/internal/inference"
)

// Log-probabilities in OpenAI's two shapes. Every value is under the
// model's own distribution at the token's position (the raw logits,
// before logit_bias, penalties, temperature or grammar), as OpenAI
// reports them.

// Limits of the APIs: chat top_logprobs 0–20, completions logprobs 0–5.
const (
	maxChatTopLogprobs       = inference.MaxTopLogprobs
	maxCompletionTopLogprobs = 5
)

// impossible is what OpenAI reports for a log-probability of -Inf, which
// JSON cannot carry.
const impossible = -9999.0

func logprobValue(lp float32) float64 {
	if math.IsInf(float64(lp), -1) || math.IsNaN(float64(lp)) {
		return impossible
	}
	return float64(lp)
}

// chatLogprobs is a chat choice's logprobs: {"content": [...], "refusal": null}.
type chatLogprobs struct {
	Content []chatTokenLogprob `json:"content"`
	Refusal []chatTokenLogprob `json:"refusal"`
}

type chatTokenLogprob struct {
	Token       string           `json:"token"`
	Logprob     float64          `json:"logprob"`
	Bytes       []int            `json:"bytes"`
	TopLogprobs []chatTopLogprob `json:"top_logprobs"`
}

type chatTopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// byteList is a token's bytes as OpenAI writes them: integers, so a token
// holding part of a UTF-8 character is still exact.
func byteList(b []byte) []int {
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}

// chatLogprobsOf shapes tokens for a chat choice (nil: none asked).
func chatLogprobsOf(tokens []inference.TokenInfo) *chatLogprobs {
	out := &chatLogprobs{Content: make([]chatTokenLogprob, 0, len(tokens))}
	for _, t := range tokens {
		e := chatTokenLogprob{Token: string(t.Bytes), Logprob: logprobValue(t.Logprob), Bytes: byteList(t.Bytes),
			TopLogprobs: make([]chatTopLogprob, 0, len(t.Top))}
		for _, a := range t.Top {
			e.TopLogprobs = append(e.TopLogprobs, chatTopLogprob{Token: string(a.Bytes), Logprob: logprobValue(a.Logprob), Bytes: byteList(a.Bytes)})
		}
		out.Content = append(out.Content, e)
	}
	return out
}

// completionLogprobs is the legacy completions shape: parallel arrays.
type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []*float64           `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// completionLogprobsOf shapes tokens for a completions choice; offset is
// the text offset of the first (bytes of text before it). A token with no
// logprob (the first of an echoed prompt) has null for both. Two
// alternatives with the same text keep the likelier.
func completionLogprobsOf(tokens []inference.TokenInfo, offset int) *completionLogprobs {
	out := &completionLogprobs{
		Tokens: []string{}, TokenLogprobs: []*float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{},
	}
	for _, t := range tokens {
		out.Tokens = append(out.Tokens, string(t.Bytes))
		out.TextOffset = append(out.TextOffset, offset)
		offset += len(t.Bytes)
		if t.NoLogprob {
			out.TokenLogprobs = append(out.TokenLogprobs, nil)
			out.TopLogprobs = append(out.TopLogprobs, nil)
			continue
		}
		lp := logprobValue(t.Logprob)
		out.TokenLogprobs = append(out.TokenLogprobs, &lp)
		top := make(map[string]float64, len(t.Top))
		for _, a := range t.Top {
			k := string(a.Bytes)
			if !utf8.Valid(a.Bytes) {
				k = string([]rune(string(a.Bytes)))
			}
			if _, dup := top[k]; !dup {
				top[k] = logprobValue(a.Logprob)
			}
		}
		out.TopLogprobs = append(out.TopLogprobs, top)
	}
	return out
}
