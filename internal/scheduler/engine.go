package scheduler

import "github.com/lumenllm/lumen/internal/prefixcache"

// Engine is what the batch loop needs from a model runtime. All methods
// are called from the scheduler's goroutine only.
type Engine interface {
	// Slots is the number of sequences decoded together.
	Slots() int
	// ContextSize is the KV cache size in tokens, shared by all slots.
	ContextSize() int
	// BatchSize is the most tokens one Decode accepts.
	BatchSize() int
	// Add appends a token of slot at position pos to the pending batch and
	// returns its index in the batch (where its logits are when asked).
	Add(tok int32, pos, slot int, logits bool) (int, error)
	// Decode runs the pending batch and empties it.
	Decode() error
	// NewSampler creates per-sequence sampling state.
	NewSampler(p SamplingParams) (Sampler, error)
	// RemoveSeq frees slot's cells at positions [from, to); to < 0 means
	// to the end.
	RemoveSeq(slot, from, to int) error
	// CopySeq makes slot dst share src's cells at positions [from, to).
	CopySeq(src, dst, from, to int) error
	// SaveSeq copies out slot's cells, for LoadSeq; the caller owns the
	// state and frees it.
	SaveSeq(slot int) (prefixcache.State, error)
	// LoadSeq replaces slot's cells with saved ones; on failure the slot
	// is left empty.
	LoadSeq(slot int, state prefixcache.State) error
	// Logprobs returns tok's log-probability under the logits at batch
	// index idx of the last Decode (the model's distribution, before any
	// sampler) and the top (≤ MaxTopLogprobs) most likely tokens, most
	// likely first; their Bytes are left empty.
	Logprobs(idx int, tok int32, top int) (float32, []TokenLogprob, error)
	// KVUsed is the number of cache cells in use.
	KVUsed() int
	// IsEOG reports whether tok ends generation.
	IsEOG(tok int32) bool
	// Piece returns the bytes of a token; special renders control tokens
	// as their text (otherwise they are empty).
	Piece(tok int32, special bool) ([]byte, error)
	// Device names where the model runs ("cpu", "gpu:0").
	Device() string
}

// Sampler picks tokens for one sequence.
type Sampler interface {
	// Sample picks the next token from the logits at batch index idx of
	// the last Decode and records it in the sampler's history. It fails
	// when a grammar allows no token.
	Sample(idx int) (int32, error)
	// Rejected counts the tokens a grammar overruled (0 without one).
	Rejected() int
	Close() error
}

// MaxTopLogprobs bounds Request.TopLogprobs.
const MaxTopLogprobs = 20

// SamplingParams choose how a sequence's tokens are picked. The zero
// value is greedy decoding.
type SamplingParams struct {
	Temperature      float32
	TopK             int
	TopP, MinP       float32
	RepeatPenalty    float32
	FrequencyPenalty float32
	PresencePenalty  float32
	Seed             uint32
	// LogitBias adds to token logits before sampling; -Inf bans.
	LogitBias map[int32]float32
	// IgnoreEOS bans the end-of-generation tokens, so output runs to
	// MaxTokens.
	IgnoreEOS bool
	// MinTokens bans the end-of-generation tokens for the first MinTokens
	// sampled tokens.
	MinTokens int
	// Grammar (GBNF, root rule "root") constrains the output; Triggers
	// make it lazy (see llama.SamplerParams).
	Grammar  string
	Triggers []string
}
