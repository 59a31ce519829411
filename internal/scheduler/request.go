package scheduler

import (
	"context"
	"math"
	"strings"
	"time"
)

// Request is one generation request, already tokenized by the caller
// (tokenization is thread-safe, so it happens on the caller's goroutine).
type Request struct {
	// ID identifies the request in results and telemetry.
	ID string
	// Prompt is the prompt's tokens (BOS included where the model wants it).
	Prompt []int32
	// MaxTokens caps the generated tokens; must be ≥ 1.
	MaxTokens int
	Sampling  SamplingParams
	// Stop strings end generation; they are not part of the output, even
	// when split across tokens.
	Stop []string
	// KeepText > 0 keeps the first KeepText bytes of the output text in
	// Result.Text (for recording content on spans); 0 keeps none.
	KeepText int
	// Special renders control tokens in the output as their text (tool
	// calls of some model families open with one).
	Special bool
	// NoCache computes the whole prompt even when a slot holds a prefix
	// of it (the client asked for no prompt caching).
	NoCache bool
	// Embed, when set, makes this an embeddings request: each input (a
	// token sequence) gets one vector, in Result.Embeddings; Prompt,
	// MaxTokens and the generation fields are unused. It takes no slot.
	Embed [][]int32
	// SharePrefill: requests with this same prompt are submitted together
	// (the choices of n > 1). While one of them computes the prompt the
	// others wait, then share its cells, so the prompt is computed once.
	SharePrefill bool
	// Logprobs attaches to every generated token its log-probability and
	// the TopLogprobs (0–20) most likely alternatives (Event.Tokens).
	Logprobs    bool
	TopLogprobs int
	// PromptLogprobs also reports the log-probability of every prompt
	// token after the first (Event.PromptTokens), computing the whole
	// prompt (no cached prefix can give them).
	PromptLogprobs bool
	// ToolCalls, when set, is given the whole output of a request that
	// ends normally and returns how many tool calls it holds, for
	// Result.ToolCalls. It runs on the scheduler goroutine and must be
	// quick.
	ToolCalls func(output string) int
}

// FinishReason says why a request stopped, named as in the OpenAI API.
type FinishReason string

// Finish reasons.
const (
	FinishStop      FinishReason = "stop"      // end-of-generation token or stop string
	FinishLength    FinishReason = "length"    // max tokens or the slot's context is full
	FinishCancelled FinishReason = "cancelled" // caller went away or shutdown
	FinishError     FinishReason = "error"     // engine failure
)

// Event is one message on a request's stream. Text events carry newly
// completed text; the last event has Done set and carries the Result (and
// Err when the request failed).
type Event struct {
	Text string
	// Tokens are the tokens sampled since the last event, with their log-
	// probabilities (Request.Logprobs only). A token's bytes may belong to
	// text not yet (or, past a stop string, never) in Text.
	Tokens []TokenInfo
	// PromptTokens are prompt tokens with their log-probabilities
	// (Request.PromptLogprobs only), in order; the first prompt token has
	// none (NoLogprob).
	PromptTokens []TokenInfo
	Done         bool
	Result       *Result
	Err          error
}

// TokenLogprob is a token, its bytes (control tokens as their text) and
// its log-probability under the model's distribution at that position —
// the raw logits, before logit bias, penalties, temperature or grammar.
type TokenLogprob struct {
	ID      int32
	Bytes   []byte
	Logprob float32
}

// TokenInfo is a token with the most likely alternatives at its position.
type TokenInfo struct {
	TokenLogprob
	Top []TokenLogprob
	// NoLogprob: nothing precedes the token (the first prompt token).
	NoLogprob bool
}

// Result summarises a finished request.
type Result struct {
	ID     string
	Finish FinishReason
	// PromptTokens counts the whole prompt; CachedTokens of them were
	// reused from a prefix cache rather than computed, found where
	// CacheSource says.
	PromptTokens, CompletionTokens, CachedTokens int
	CacheSource                                  CacheSource
	Slot                                         int
	Timings                                      Timings
	// Text is the start of the output, at most Request.KeepText bytes and
	// cut at a character boundary; TextTruncated says more was produced.
	Text          string
	TextTruncated bool
	// Constrained says a grammar constrained the output; GrammarRejected
	// counts the tokens where it overruled the model's first choice.
	Constrained     bool
	GrammarRejected int
	// ToolCalls is what Request.ToolCalls counted (0 without it).
	ToolCalls int
	// Embeddings are an embeddings request's vectors, one per input, in
	// order; PromptTokens then counts the inputs' tokens.
	Embeddings [][]float32
	// Err is why a cancelled or failed request ended (nil otherwise).
	Err error
}

// CacheSource says where a request's reused prompt prefix came from.
type CacheSource string

// Cache sources.
const (
	CacheNone   CacheSource = ""       // nothing reused
	CacheSlot   CacheSource = "slot"   // the cells its slot still held
	CacheShared CacheSource = "shared" // another slot's cells, now shared
	CacheHost   CacheSource = "host"   // a state restored from host memory
)

// Timings are the wall-clock marks of a request's life, and per-phase
// detail. The phases add up: Queue + Prefill = TTFT.
type Timings struct {
	Enqueued time.Time // Submit accepted it
	Admitted time.Time // it got a slot
	// CacheRestored is when its slot's cells were ready (reused prefix
	// restored, the rest freed), before its first prefill chunk.
	CacheRestored time.Time
	FirstToken    time.Time // its first token was sampled (zero if none)
	Finished      time.Time
	// PrefillChunks are the prompt chunks in the order they ran.
	PrefillChunks []Chunk
	// DecodeSteps counts the steps that decoded a token of this request;
	// DecodeBatchSum sums the number of sequences in those steps, so
	// DecodeBatchSum/DecodeSteps is the mean batch size it shared.
	DecodeSteps, DecodeBatchSum int
}

// Chunk is one batch's share of a prompt.
type Chunk struct {
	Start, End time.Time
	Tokens     int
}

// Millis is a duration in milliseconds, rounded to the microsecond: the
// one conversion every report of Timings uses (HTTP and gRPC replies,
// spans, the live view), so one request's figures agree to the digit.
func Millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// Queue is the time spent waiting for a slot.
func (t Timings) Queue() time.Duration { return t.Admitted.Sub(t.Enqueued) }

// Prefill is the time from admission to the first token.
func (t Timings) Prefill() time.Duration {
	if t.FirstToken.IsZero() {
		return t.Finished.Sub(t.Admitted)
	}
	return t.FirstToken.Sub(t.Admitted)
}

// TTFT is the time to first token, from Submit.
func (t Timings) TTFT() time.Duration {
	if t.FirstToken.IsZero() {
		return 0
	}
	return t.FirstToken.Sub(t.Enqueued)
}

// Decode is the time from the first token to the end.
func (t Timings) Decode() time.Duration {
	if t.FirstToken.IsZero() {
		return 0
	}
	return t.Finished.Sub(t.FirstToken)
}

// MeanBatch is the mean number of sequences per decode step.
func (t Timings) MeanBatch() float64 {
	if t.DecodeSteps == 0 {
		return 0
	}
	return float64(t.DecodeBatchSum) / float64(t.DecodeSteps)
}

// request is the scheduler's record of a submitted request.
type request struct {
	ctx     context.Context
	r       Request
	events  chan Event
	timings Timings
}

// stopMatcher withholds text that could be the start of a stop string,
// so a stop string split across tokens is never emitted.
type stopMatcher struct {
	stops []string
	held  string
}

// push adds text and returns what may be emitted now, and whether a stop
// string was found (text from the stop string on is dropped).
func (m *stopMatcher) push(text string) (string, bool) {
	buf := m.held + text
	if len(m.stops) == 0 {
		m.held = ""
		return buf, false
	}
	cut := -1
	for _, s := range m.stops {
		if i := strings.Index(buf, s); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		m.held = ""
		return buf[:cut], true
	}
	keep := 0
	for _, s := range m.stops {
		for k := min(len(s)-1, len(buf)); k > keep; k-- {
			if strings.HasSuffix(buf, s[:k]) {
				keep = k
				break
			}
		}
	}
	m.held = buf[len(buf)-keep:]
	return buf[:len(buf)-keep], false
}

// flush releases held text at the end of generation.
func (m *stopMatcher) flush() string {
	h := m.held
	m.held = ""
	return h
}
