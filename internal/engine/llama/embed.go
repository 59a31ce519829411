package llama

/*
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"
)

// Pooling is how an embeddings context makes one vector of a sequence's
// hidden states.
type Pooling string

// Poolings: the mean over its tokens, its first token's (BERT's CLS), or
// its last token's (what a causal model has seen all of the input at).
const (
	PoolingMean Pooling = "mean"
	PoolingCLS  Pooling = "cls"
	PoolingLast Pooling = "last"
)

// ParsePooling reads a Pooling.
func ParsePooling(s string) (Pooling, error) {
	p := Pooling(s)
	if _, err := p.llama(); err != nil {
		return "", err
	}
	return p, nil
}

func (p Pooling) llama() (C.enum_llama_pooling_type, error) {
	switch p {
	case PoolingMean:
		return C.LLAMA_POOLING_TYPE_MEAN, nil
	case PoolingCLS:
		return C.LLAMA_POOLING_TYPE_CLS, nil
	case PoolingLast:
		return C.LLAMA_POOLING_TYPE_LAST, nil
	}
	return 0, fmt.Errorf("llama: pooling %q: want mean, cls or last: %w", string(p), ErrContext)
}

// modelPooling reads the pooling an embedding model's GGUF declares
// ("<arch>.pooling_type"); "" when it declares none (a generative model).
func modelPooling(arch string, kv map[string]string) Pooling {
	switch kv[arch+".pooling_type"] {
	case "1":
		return PoolingMean
	case "2":
		return PoolingCLS
	case "3":
		return PoolingLast
	}
	return ""
}

// Pooling is the context's pooling; "" for a generation context.
func (c *Context) Pooling() Pooling { return c.pooling }

// EmbeddingSize is the length of the model's embedding vectors.
func (m *Model) EmbeddingSize() int { return m.meta.Embedding }

// Embed computes one L2-normalized vector per input (each a token
// sequence, at most BatchSize tokens), pooled as the context was made
// to; as many inputs run in one pass as the context's sequences and batch
// allow. Each input is computed on its own (its cells are cleared after
// use), so a vector does not depend on what it was batched with.
func (c *Context) Embed(inputs [][]Token) ([][]float32, error) {
	if c.c == nil {
		return nil, ErrClosed
	}
	if c.pooling == "" {
		return nil, fmt.Errorf("llama: embed: not an embeddings context: %w", ErrContext)
	}
	for i, in := range inputs {
		if len(in) == 0 || len(in) > c.batch {
			return nil, fmt.Errorf("llama: embed input %d has %d tokens; 1 to %d fit: %w", i, len(in), c.batch, ErrBatchFull)
		}
		for _, t := range in {
			if t < 0 || int(t) >= c.model.nVocab {
				return nil, fmt.Errorf("llama: embed input %d: token %d: %w", i, t, ErrBadToken)
			}
		}
	}
	dim := c.model.meta.Embedding
	encoder := bool(C.llama_model_has_encoder(c.model.c)) && !bool(C.llama_model_has_decoder(c.model.c))
	b := NewBatch(c.batch)
	defer b.Close()
	out := make([][]float32, 0, len(inputs))
	for start := 0; start < len(inputs); {
		C.llama_memory_clear(c.mem, C.bool(true))
		b.Clear()
		end, tokens := start, 0
		for end < len(inputs) && end-start < c.maxSeqs && tokens+len(inputs[end]) <= c.batch {
			for pos, t := range inputs[end] {
				if _, err := b.Add(t, pos, SeqID(end-start), true); err != nil {
					return nil, err
				}
			}
			tokens += len(inputs[end])
			end++
		}
		var rc C.int32_t
		if encoder {
			rc = C.llama_encode(c.c, b.c)
		} else {
			rc = C.llama_decode(c.c, b.c)
		}
		if rc != 0 {
			return nil, fmt.Errorf("llama: embed %d inputs (%d tokens): code %d: %w", end-start, tokens, int(rc), ErrDecode)
		}
		for k := start; k < end; k++ {
			p := C.llama_get_embeddings_seq(c.c, C.llama_seq_id(k-start))
			if p == nil {
				return nil, fmt.Errorf("llama: embed: no pooled embedding for input %d: %w", k, ErrDecode)
			}
			v := append([]float32(nil), unsafe.Slice((*float32)(unsafe.Pointer(p)), dim)...)
			out = append(out, normalize(v))
		}
		start = end
	}
	C.llama_memory_clear(c.mem, C.bool(true))
	return out, nil
}

// normalize scales v to unit length (a zero vector stays zero).
func normalize(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		return v
	}
	inv := 1 / math.Sqrt(sum)
	for i, x := range v {
		v[i] = float32(float64(x) * inv)
	}
	return v
}
