package llama

/*
#include <string.h>
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// SeqID identifies a sequence (a slot) inside a Context.
type SeqID int32

// ContextParams configure NewContext. Zero fields take the defaults noted.
type ContextParams struct {
	// Size is the KV cache size in tokens, shared by all sequences
	// (default: the model's training context).
	Size int
	// BatchSize is the most tokens one Decode may carry (default 512).
	BatchSize int
	// UBatchSize is the physical micro-batch (default BatchSize).
	UBatchSize int
	// MaxSeqs is the number of sequences decoded together (default 1).
	MaxSeqs int
	// Threads used for decode and prompt processing (default: CPUs).
	Threads int
	// NoFlashAttention turns flash attention off. It is on by default:
	// besides being faster it makes a sequence's results independent of
	// where its cells sit in the shared cache, so a sequence decodes to
	// the same tokens alone or batched with others.
	NoFlashAttention bool
	// NoThreadpool leaves thread management to ggml, which then starts
	// its worker threads afresh on every Decode from whichever OS thread
	// calls it. By default a persistent pool of Threads workers is
	// attached to the context instead (and freed with it): fresh workers
	// often land on the CPU of the calling thread, and the two then take
	// turns on one CPU while another idles.
	NoThreadpool bool
	// Poll is how long idle pool workers spin before they sleep, as
	// ggml's polling level 1-100; 0 takes DefaultPoll, negative means no
	// spinning.
	Poll int
	// CacheTypeK and CacheTypeV are the KV cache's element types:
	// CacheF16 (the default), CacheQ8_0 or CacheQ4_0. Quantized V needs
	// flash attention.
	CacheTypeK, CacheTypeV CacheType
	// Embeddings, when set, makes an embeddings context pooling this way
	// (Embed, not Decode for sampling); BatchSize is then also the most
	// tokens one input may have, and each pass holds the whole of every
	// input (the micro-batch is the batch).
	Embeddings Pooling
}

// CacheType is a KV cache element type.
type CacheType string

// The KV cache types: f16 halves f32's memory; q8_0 takes ~53% of f16's
// and q4_0 ~28%, at some cost in accuracy.
const (
	CacheF16  CacheType = "f16"
	CacheQ8_0 CacheType = "q8_0"
	CacheQ4_0 CacheType = "q4_0"
)

// ParseCacheType reads a CacheType ("" is CacheF16).
func ParseCacheType(s string) (CacheType, error) {
	t := CacheType(s)
	if t == "" {
		t = CacheF16
	}
	if _, err := t.ggml(); err != nil {
		return "", err
	}
	return t, nil
}

// ggml is t's ggml element type; the one list of supported types.
func (t CacheType) ggml() (C.enum_ggml_type, error) {
	switch t {
	case "", CacheF16:
		return C.GGML_TYPE_F16, nil
	case CacheQ8_0:
		return C.GGML_TYPE_Q8_0, nil
	case CacheQ4_0:
		return C.GGML_TYPE_Q4_0, nil
	}
	return 0, fmt.Errorf("llama: KV cache type %q: want f16, q8_0 or q4_0: %w", string(t), ErrContext)
}

// DefaultPoll is ContextParams.Poll's default (see docs/benchmarks.md).
const DefaultPoll = 50

// Context is an inference context: a KV cache holding up to MaxSeqs
// sequences, decoded together in batches. It must be used from one
// goroutine at a time (the scheduler's), and closed before its Model.
type Context struct {
	c       *C.struct_llama_context
	mem     C.llama_memory_t
	model   *Model
	size    int
	batch   int
	maxSeqs int
	// pool is the attached threadpool (C memory, owned; nil without one).
	pool unsafe.Pointer
	// outputs[i] says the last Decode computed logits at batch index i.
	outputs []bool
	// pooling is set on an embeddings context.
	pooling Pooling
}

// NewContext creates a context for m.
func NewContext(m *Model, p ContextParams) (*Context, error) {
	if m.c == nil {
		return nil, ErrClosed
	}
	cp := C.llama_context_default_params()
	if p.Size <= 0 {
		p.Size = m.meta.ContextTrain
	}
	if p.BatchSize <= 0 {
		p.BatchSize = 512
	}
	if p.UBatchSize <= 0 || p.UBatchSize > p.BatchSize || p.Embeddings != "" {
		p.UBatchSize = p.BatchSize
	}
	if p.MaxSeqs <= 0 {
		p.MaxSeqs = 1
	}
	if max := int(C.llama_max_parallel_sequences()); p.MaxSeqs > max {
		return nil, fmt.Errorf("llama: %d sequences requested, llama.cpp supports %d: %w", p.MaxSeqs, max, ErrContext)
	}
	if p.Threads <= 0 {
		p.Threads = runtime.NumCPU()
	}
	cp.n_ctx = C.uint32_t(p.Size)
	cp.n_batch = C.uint32_t(p.BatchSize)
	cp.n_ubatch = C.uint32_t(p.UBatchSize)
	cp.n_seq_max = C.uint32_t(p.MaxSeqs)
	cp.n_threads = C.int32_t(p.Threads)
	cp.n_threads_batch = C.int32_t(p.Threads)
	// One cache shared by all sequences: a batch may then mix any
	// sequences with any token counts (prefill chunks beside decode
	// tokens), and prefixes can be shared between sequences.
	cp.kv_unified = true
	cp.no_perf = true
	if p.NoFlashAttention {
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
	} else {
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
	}
	tk, err := p.CacheTypeK.ggml()
	if err != nil {
		return nil, err
	}
	tv, err := p.CacheTypeV.ggml()
	if err != nil {
		return nil, err
	}
	if tv != C.GGML_TYPE_F16 && p.NoFlashAttention {
		return nil, fmt.Errorf("llama: a quantized V cache (%s) needs flash attention: %w", p.CacheTypeV, ErrContext)
	}
	if tk != C.GGML_TYPE_F16 || tv != C.GGML_TYPE_F16 {
		// ggml quantizes a head's keys and values in blocks of 32 and
		// asserts (aborting the process) when a head does not divide.
		hk, hv := m.headDims()
		if hk%32 != 0 || hv%32 != 0 {
			return nil, fmt.Errorf("llama: a quantized KV cache needs head sizes that are multiples of 32; this model's are %d (keys) and %d (values): %w", hk, hv, ErrContext)
		}
	}
	cp.type_k, cp.type_v = tk, tv
	if p.Embeddings != "" {
		pool, err := p.Embeddings.llama()
		if err != nil {
			return nil, err
		}
		cp.embeddings = true
		cp.pooling_type = pool
	}
	cc := C.llama_init_from_model(m.c, cp)
	if cc == nil {
		return nil, fmt.Errorf("llama: context of %d tokens, %d sequences: %w", p.Size, p.MaxSeqs, ErrContext)
	}
	ctx := &Context{
		c:       cc,
		mem:     C.llama_get_memory(cc),
		model:   m,
		size:    int(C.llama_n_ctx(cc)),
		batch:   int(C.llama_n_batch(cc)),
		maxSeqs: int(C.llama_n_seq_max(cc)),
		pooling: p.Embeddings,
	}
	if !p.NoThreadpool && p.Threads > 1 {
		poll := p.Poll
		switch {
		case poll == 0:
			poll = DefaultPoll
		case poll < 0:
			poll = 0
		case poll > 100:
			poll = 100
		}
		ctx.pool = C.lumen_threadpool_new(C.int(p.Threads), C.uint32_t(poll), 0)
		if ctx.pool == nil {
			C.llama_free(cc)
			return nil, fmt.Errorf("llama: threadpool of %d threads: %w", p.Threads, ErrContext)
		}
		C.llama_attach_threadpool(cc, (*C.struct_ggml_threadpool)(ctx.pool), (*C.struct_ggml_threadpool)(ctx.pool))
	}
	return ctx, nil
}

// Threadpool reports whether a threadpool of the context's own is
// attached.
func (c *Context) Threadpool() bool { return c.pool != nil }

// Size is the KV cache size in tokens.
func (c *Context) Size() int { return c.size }

// BatchSize is the most tokens one Decode accepts.
func (c *Context) BatchSize() int { return c.batch }

// MaxSeqs is the number of sequences the context holds.
func (c *Context) MaxSeqs() int { return c.maxSeqs }

// Model is the model this context runs.
func (c *Context) Model() *Model { return c.model }

// Device is where the model's layers run (CPU or a GPU index).
func (c *Context) Device() Device { return c.model.device }

// Decode runs the model over every token in b. Afterwards, logits are
// available for the batch positions added with logits requested.
func (c *Context) Decode(b *Batch) error {
	if c.c == nil {
		return ErrClosed
	}
	if b.n == 0 {
		return nil
	}
	// Which positions have logits, kept for Logits and Logprobs:
	// llama.cpp aborts the process when asked for logits it has not.
	c.outputs = c.outputs[:0]
	flags := unsafe.Slice(b.c.logits, b.n)
	for _, f := range flags {
		c.outputs = append(c.outputs, f != 0)
	}
	rc := C.llama_decode(c.c, b.c)
	if rc != 0 {
		c.outputs = c.outputs[:0]
	}
	switch {
	case rc == 0:
		return nil
	case rc == 1:
		return fmt.Errorf("llama: decode %d tokens: %w", b.n, ErrNoKVSlot)
	case rc == 2:
		return fmt.Errorf("llama: decode %d tokens: %w", b.n, ErrDecodeAborted)
	default:
		return fmt.Errorf("llama: decode %d tokens: code %d: %w", b.n, int(rc), ErrDecode)
	}
}

// Logits copies out the logits for batch position i of the last Decode.
func (c *Context) Logits(i int) []float32 {
	if !c.hasLogits(i) {
		return nil
	}
	p := C.llama_get_logits_ith(c.c, C.int32_t(i))
	if p == nil {
		return nil
	}
	return append([]float32(nil), unsafe.Slice((*float32)(unsafe.Pointer(p)), c.model.nVocab)...)
}

// MaxTopLogprobs bounds Logprobs' top list (OpenAI's top_logprobs limit).
const MaxTopLogprobs = 20

// TokenLogprob is a token and its log-probability.
type TokenLogprob struct {
	Token   Token
	Logprob float32
}

// Logprobs returns the log-probability of tok under the logits at batch
// position i of the last Decode — the model's own distribution, before
// any sampler (bias, penalties, temperature, grammar) — and the top most
// likely tokens (at most MaxTopLogprobs), most likely first.
func (c *Context) Logprobs(i int, tok Token, top int) (float32, []TokenLogprob, error) {
	if top < 0 || top > MaxTopLogprobs {
		return 0, nil, fmt.Errorf("llama: %d top logprobs; at most %d", top, MaxTopLogprobs)
	}
	if !c.hasLogits(i) || tok < 0 || int(tok) >= c.model.nVocab {
		return 0, nil, fmt.Errorf("llama: logprobs of token %d at batch index %d: no logits there or no such token: %w", tok, i, ErrBadToken)
	}
	var ids [MaxTopLogprobs]C.llama_token
	var lps [MaxTopLogprobs]C.float
	var lp C.float
	n := C.lumen_logprobs(c.c, C.int32_t(i), C.int32_t(c.model.nVocab), C.llama_token(tok), C.int32_t(top), &ids[0], &lps[0], &lp)
	if n < 0 {
		return 0, nil, fmt.Errorf("llama: logprobs of token %d at batch index %d: no logits there or no such token: %w", tok, i, ErrBadToken)
	}
	out := make([]TokenLogprob, n)
	for k := range out {
		out[k] = TokenLogprob{Token: Token(ids[k]), Logprob: float32(lps[k])}
	}
	return float32(lp), out, nil
}

// hasLogits reports whether the last Decode computed logits at batch
// index i.
func (c *Context) hasLogits(i int) bool { return i >= 0 && i < len(c.outputs) && c.outputs[i] }

func (c *Context) checkSeq(seq SeqID) error {
	if seq < 0 || int(seq) >= c.maxSeqs {
		return fmt.Errorf("llama: sequence %d of %d: %w", seq, c.maxSeqs, ErrSeq)
	}
	return nil
}

// RemoveSeq drops the cells of seq at positions [from, to); to < 0 means
// to the end. RemoveSeq(seq, 0, -1) frees the whole sequence.
func (c *Context) RemoveSeq(seq SeqID, from, to int) error {
	if err := c.checkSeq(seq); err != nil {
		return err
	}
	if !C.llama_memory_seq_rm(c.mem, C.llama_seq_id(seq), C.llama_pos(from), C.llama_pos(to)) {
		return fmt.Errorf("llama: remove sequence %d [%d,%d): %w", seq, from, to, ErrSeq)
	}
	return nil
}

// CopySeq makes dst share src's cells at positions [from, to) (to < 0:
// to the end), so a common prompt prefix is computed once.
func (c *Context) CopySeq(src, dst SeqID, from, to int) error {
	if err := c.checkSeq(src); err != nil {
		return err
	}
	if err := c.checkSeq(dst); err != nil {
		return err
	}
	C.llama_memory_seq_cp(c.mem, C.llama_seq_id(src), C.llama_seq_id(dst), C.llama_pos(from), C.llama_pos(to))
	return nil
}

// SeqLen is the number of positions seq holds (max position + 1), 0 when
// empty.
func (c *Context) SeqLen(seq SeqID) int {
	if c.checkSeq(seq) != nil {
		return 0
	}
	maxPos := int(C.llama_memory_seq_pos_max(c.mem, C.llama_seq_id(seq)))
	return maxPos + 1
}

// KVUsed is the number of cache cells in use, summed over sequences
// (cells shared through CopySeq count once per sequence).
func (c *Context) KVUsed() int {
	used := 0
	for s := range c.maxSeqs {
		lo := int(C.llama_memory_seq_pos_min(c.mem, C.llama_seq_id(s)))
		hi := int(C.llama_memory_seq_pos_max(c.mem, C.llama_seq_id(s)))
		if lo >= 0 && hi >= lo {
			used += hi - lo + 1
		}
	}
	return used
}

// SeqStateSize is the size in bytes of seq's saved state: its KV cells in
// the cache's element types, and a small header.
func (c *Context) SeqStateSize(seq SeqID) (int, error) {
	if err := c.checkSeq(seq); err != nil {
		return 0, err
	}
	return int(C.llama_state_seq_get_size(c.c, C.llama_seq_id(seq))), nil
}

// SeqState is a sequence's saved cells in C memory, outside the Go heap
// (so a large prefix cache neither grows the heap nor waits for the
// collector to be returned); Free releases it.
type SeqState struct {
	p unsafe.Pointer
	n int
}

// Size is the state's length in bytes.
func (s *SeqState) Size() int { return s.n }

// Free releases the memory; the state must not be used afterwards.
func (s *SeqState) Free() {
	if s.p != nil {
		C.free(s.p)
		s.p, s.n = nil, 0
	}
}

// SaveSeq copies out seq's cells (positions, and keys and values in the
// cache's element types) for LoadSeq.
func (c *Context) SaveSeq(seq SeqID) (*SeqState, error) {
	if c.c == nil {
		return nil, ErrClosed
	}
	if err := c.checkSeq(seq); err != nil {
		return nil, err
	}
	n := C.llama_state_seq_get_size(c.c, C.llama_seq_id(seq))
	if n == 0 {
		return nil, fmt.Errorf("llama: save sequence %d: no state: %w", seq, ErrState)
	}
	p := C.malloc(n)
	if p == nil {
		return nil, fmt.Errorf("llama: save sequence %d: %d bytes: out of memory: %w", seq, uint64(n), ErrState)
	}
	got := C.llama_state_seq_get_data(c.c, (*C.uint8_t)(p), n, C.llama_seq_id(seq))
	if got == 0 || got > n {
		C.free(p)
		return nil, fmt.Errorf("llama: save sequence %d: wrote %d of %d bytes: %w", seq, uint64(got), uint64(n), ErrState)
	}
	return &SeqState{p: p, n: int(got)}, nil
}

// LoadSeq replaces seq's cells with a state SaveSeq returned (from this
// context or one of the same model and cache types). On failure seq is
// left empty.
func (c *Context) LoadSeq(seq SeqID, state *SeqState) error {
	if c.c == nil {
		return ErrClosed
	}
	if err := c.checkSeq(seq); err != nil {
		return err
	}
	if state == nil || state.p == nil || state.n == 0 {
		return fmt.Errorf("llama: load sequence %d: empty state: %w", seq, ErrState)
	}
	if C.llama_state_seq_set_data(c.c, (*C.uint8_t)(state.p), C.size_t(state.n), C.llama_seq_id(seq)) == 0 {
		// llama.cpp may have placed some cells before it failed.
		C.llama_memory_seq_rm(c.mem, C.llama_seq_id(seq), -1, -1)
		return fmt.Errorf("llama: load sequence %d (%d bytes): %w", seq, state.n, ErrState)
	}
	return nil
}

// stateBytes copies a state into Go memory (for tests).
func stateBytes(s *SeqState) []byte { return C.GoBytes(s.p, C.int(s.n)) }

// stateFromBytes copies b into a SeqState (for tests of bad states).
func stateFromBytes(b []byte) *SeqState {
	p := C.malloc(C.size_t(len(b)))
	C.memcpy(p, unsafe.Pointer(&b[0]), C.size_t(len(b)))
	return &SeqState{p: p, n: len(b)}
}

// ClearKV empties the whole cache.
func (c *Context) ClearKV() { C.llama_memory_clear(c.mem, C.bool(true)) }

// Close frees the context.
func (c *Context) Close() error {
	if c.c == nil {
		return ErrClosed
	}
	C.llama_free(c.c)
	c.c = nil
	// After the context: it computes with the pool until freed.
	if c.pool != nil {
		C.lumen_threadpool_free(c.pool)
		c.pool = nil
	}
	return nil
}

// Batch is a reusable buffer of tokens for Decode, each tagged with its
// sequence, position and whether its logits are wanted.
type Batch struct {
	c   C.struct_llama_batch
	cap int
	n   int
}

// NewBatch allocates a batch for up to capacity tokens.
func NewBatch(capacity int) *Batch {
	if capacity < 1 {
		capacity = 1
	}
	return &Batch{c: C.llama_batch_init(C.int32_t(capacity), 0, 1), cap: capacity}
}

// Add appends a token of seq at position pos, returning its index in the
// batch (the index to sample from when logits is true).
func (b *Batch) Add(tok Token, pos int, seq SeqID, logits bool) (int, error) {
	if b.n >= b.cap {
		return -1, fmt.Errorf("llama: batch of %d: %w", b.cap, ErrBatchFull)
	}
	i := b.n
	C.lumen_batch_set(&b.c, C.int32_t(i), C.llama_token(tok), C.llama_pos(pos), C.llama_seq_id(seq), C.bool(logits))
	b.n++
	b.c.n_tokens = C.int32_t(b.n)
	return i, nil
}

// Clear empties the batch for reuse.
func (b *Batch) Clear() {
	b.n = 0
	b.c.n_tokens = 0
}

// Close frees the batch.
func (b *Batch) Close() error {
	if b.cap == 0 {
		return ErrClosed
	}
	C.llama_batch_free(b.c)
	b.cap, b.n = 0, 0
	return nil
}
