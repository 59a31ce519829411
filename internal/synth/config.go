// Package synth owns Lumen's offline model generator: it writes
// random-weight models in llama.cpp's "llama" architecture as GGUF files, so
// tests, the default `make run` model and benchmark models need no download.
//
// A generated model has a SentencePiece-style vocabulary (specials, all 256
// byte tokens, printable ASCII and merge-reachable multi-character pieces),
// so llama.cpp's SPM tokenizer handles any text, and weights that are random
// (std 0.02, unit norm weights) but arranged so that greedy decoding walks a
// long cycle of printable tokens instead of collapsing onto one token (see
// weights.go). The file is a pure function of the Config, Seed included.
package synth

import (
	"errors"
	"fmt"
	"math"

	"github.com/lumenllm/lumen/internal/gguf"
)

// Sentinel errors.
var (
	// ErrInvalidConfig: a Config field is out of range; the error is a
	// *ConfigError naming it.
	ErrInvalidConfig = errors.New("invalid model config")
	// ErrUnknownPreset: Preset was given a name it does not know.
	ErrUnknownPreset = errors.New("unknown preset")
)

// ConfigError reports which Config field is wrong and why.
type ConfigError struct {
	Field  string
	Value  any
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("synth: config %s = %v: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// Config describes a llama-architecture model. Weight matrices (token
// embedding, attention, feed-forward, output) use Type; norm vectors are
// always F32.
type Config struct {
	Name     string // general.name; "lumen-synth" if empty
	Layers   int    // transformer blocks
	Embd     int    // hidden size
	Heads    int    // attention (query) heads
	KVHeads  int    // key/value heads (grouped-query attention when < Heads)
	FF       int    // feed-forward hidden size
	Context  int    // training context length advertised to llama.cpp
	Vocab    int    // tokens, at least MinVocab
	Type     gguf.GGMLType
	Seed     uint64
	RopeBase float32 // rope.freq_base, e.g. 10000
	NormEps  float32 // RMS norm epsilon, e.g. 1e-5
	// ChatTemplate is written as tokenizer.chat_template; empty writes
	// the default, ChatTemplate (tests give other families' templates).
	ChatTemplate string
	// FIM gives the vocabulary fill-in-the-middle control tokens
	// (FIMTokens, the last three ids), declared in the metadata.
	FIM bool
}

// FIMTokens are the texts of the fill-in-the-middle tokens Config.FIM adds:
// prefix, suffix, middle.
var FIMTokens = [3]string{"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"}

// Bounds on Config beyond "positive".
const (
	// MaxLayers is llama.cpp's LLAMA_MAX_LAYERS.
	MaxLayers = 512
	// MaxVocab bounds the generated vocabulary.
	MaxVocab = 1 << 18
	// maxDim keeps every dimension a valid uint32 metadata value and every
	// product far from overflow.
	maxDim = 1 << 20
)

// HeadDim is the per-head size, Embd/Heads (0 if Heads is not positive).
func (c Config) HeadDim() int {
	if c.Heads <= 0 {
		return 0
	}
	return c.Embd / c.Heads
}

// KVDim is the width of the K and V projections, HeadDim*KVHeads.
func (c Config) KVDim() int { return c.HeadDim() * c.KVHeads }

// Validate reports the first field that llama.cpp or the generator cannot
// use, as a *ConfigError.
func (c Config) Validate() error {
	bad := func(field string, v any, format string, args ...any) error {
		return &ConfigError{Field: field, Value: v, Reason: fmt.Sprintf(format, args...)}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"Layers", c.Layers}, {"Embd", c.Embd}, {"Heads", c.Heads}, {"KVHeads", c.KVHeads}, {"FF", c.FF}, {"Context", c.Context}} {
		if f.v < 1 || f.v > maxDim {
			return bad(f.name, f.v, "must be in 1..%d", maxDim)
		}
	}
	switch {
	case c.Layers > MaxLayers:
		return bad("Layers", c.Layers, "llama.cpp supports at most %d", MaxLayers)
	case c.Embd%c.Heads != 0:
		return bad("Embd", c.Embd, "must be divisible by Heads (%d)", c.Heads)
	case c.Heads%c.KVHeads != 0:
		return bad("KVHeads", c.KVHeads, "must divide Heads (%d)", c.Heads)
	case c.HeadDim()%2 != 0:
		// RoPE rotates pairs of dimensions.
		return bad("Heads", c.Heads, "head dimension Embd/Heads = %d must be even", c.HeadDim())
	case c.Vocab < MinVocab || c.Vocab > MaxVocab:
		return bad("Vocab", c.Vocab, "must be in %d..%d", MinVocab, MaxVocab)
	case !(c.RopeBase > 0) || math.IsInf(float64(c.RopeBase), 0):
		return bad("RopeBase", c.RopeBase, "must be positive and finite (10000 is usual)")
	case !(c.NormEps > 0) || math.IsInf(float64(c.NormEps), 0):
		return bad("NormEps", c.NormEps, "must be positive and finite (1e-5 is usual)")
	}
	switch c.Type {
	case gguf.TypeF32, gguf.TypeF16:
	case gguf.TypeQ8_0:
		// Every matrix row (ne0) is Embd or FF long; Q8_0 packs rows in
		// blocks of 32.
		if c.Embd%32 != 0 {
			return bad("Embd", c.Embd, "must be a multiple of 32 for Q8_0")
		}
		if c.FF%32 != 0 {
			return bad("FF", c.FF, "must be a multiple of 32 for Q8_0")
		}
	default:
		return bad("Type", c.Type, "must be F32, F16 or Q8_0")
	}
	return nil
}

// ParamCount is the number of weights the model file holds, or 0 for a
// Config that fails Validate.
func (c Config) ParamCount() uint64 {
	if c.Validate() != nil {
		return 0
	}
	var n uint64
	for _, t := range c.tensors() {
		n += t.elements()
	}
	return n
}

// FileType is the general.file_type (llama_ftype) matching c.Type.
func (c Config) FileType() uint32 {
	switch c.Type {
	case gguf.TypeF16:
		return 1 // LLAMA_FTYPE_MOSTLY_F16
	case gguf.TypeQ8_0:
		return 7 // LLAMA_FTYPE_MOSTLY_Q8_0
	}
	return 0 // LLAMA_FTYPE_ALL_F32
}

// Presets lists the names Preset accepts, smallest first.
func Presets() []string { return []string{"tiny", "small", "250m", "1b"} }

// Preset returns a named configuration (sizes as generated):
//
//   - "tiny": 2 layers, embd 64, 4 heads (head dim 16), 2 KV heads, ff 128,
//     ctx 512, vocab 512, F32: 139,584 params, 0.57 MB. For unit tests:
//     loads and decodes in milliseconds.
//   - "small": 4 layers, embd 256, 4 heads (head dim 64), 2 KV heads,
//     ff 768, ctx 2048, vocab 1024, F16: 3.67M params, 7.4 MB. The default
//     model of `make run`.
//   - "250m": 16 layers, embd 1024, 16 heads (head dim 64), 8 KV heads,
//     ff 2816, ctx 2048, vocab 32000, F16: 254M params, 509 MB.
//   - "1b": TinyLlama-1.1B shapes: 22 layers, embd 2048, 32 heads (head dim
//     64), 4 KV heads, ff 5632, ctx 2048, vocab 32000, F16: 1.10B params,
//     2.2 GB.
//
// All use rope base 10000, RMS eps 1e-5 and seed 1; callers may change any
// field (Type to Q8_0, say) and Validate again.
func Preset(name string) (Config, error) {
	c := Config{Name: "lumen-synth-" + name, Seed: 1, RopeBase: 10000, NormEps: 1e-5, Type: gguf.TypeF16}
	switch name {
	case "tiny":
		c.Layers, c.Embd, c.Heads, c.KVHeads, c.FF, c.Context, c.Vocab = 2, 64, 4, 2, 128, 512, 512
		c.Type = gguf.TypeF32
	case "small":
		c.Layers, c.Embd, c.Heads, c.KVHeads, c.FF, c.Context, c.Vocab = 4, 256, 4, 2, 768, 2048, 1024
	case "250m":
		c.Layers, c.Embd, c.Heads, c.KVHeads, c.FF, c.Context, c.Vocab = 16, 1024, 16, 8, 2816, 2048, 32000
	case "1b":
		c.Layers, c.Embd, c.Heads, c.KVHeads, c.FF, c.Context, c.Vocab = 22, 2048, 32, 4, 5632, 2048, 32000
	default:
		return Config{}, fmt.Errorf("synth: preset %q (have %v): %w", name, Presets(), ErrUnknownPreset)
	}
	return c, nil
}
