// bridge.h: small C helpers for the Go side of the llama.cpp boundary.
// Callbacks from C into Go go through these trampolines, carrying a
// runtime/cgo.Handle as an integer so no Go pointer is ever stored in C.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include "llama.h"
#include "ggml-backend.h"

// lumen_log_init routes llama.cpp and ggml logging to stderr, dropping
// messages below min_level (a ggml_log_level).
void lumen_log_init(int min_level);

// lumen_log_cb is the ggml log callback installed by lumen_log_init; it is
// also handed to the separate ggml copy of loadable backends.
void lumen_log_cb(enum ggml_log_level level, const char * text, void * user_data);

// lumen_log_capture(true) starts collecting this thread's error log lines;
// lumen_log_capture(false) stops and returns them (valid until the next
// call on this thread).
const char * lumen_log_capture(bool on);

// Constrained sampling (sample.cpp). None of these lets a C++ exception
// out: failures come back as NULL / -1 / false with a message in err.

// lumen_grammar_new builds a GBNF grammar sampler rooted at root; with
// n_patterns > 0 it is lazy and starts at the first match of a trigger
// pattern. On failure it returns NULL with llama.cpp's reason in err.
struct llama_sampler * lumen_grammar_new(const struct llama_vocab * vocab, const char * gbnf,
	const char * root, const char ** patterns, size_t n_patterns, char * err, size_t n);

struct lumen_utf8;

// lumen_sample picks the token for the logits at batch index idx: the chain
// samples, and when grammar is set and rejects that pick, the grammar masks
// the vocabulary and the chain samples again (counted in *rejected). The
// pick is accepted by both. buf holds n_vocab candidates; the n_ban tokens
// of ban are excluded. Returns the token, or -1 with the reason in err.
int32_t lumen_sample(struct llama_sampler * chain, struct llama_sampler * grammar,
	struct lumen_utf8 * u8, const uint8_t * ascii, struct llama_context * ctx, int32_t idx, llama_token_data * buf, int32_t n_vocab,
	const llama_token * ban, int32_t n_ban, int32_t * rejected, char * err, size_t n);

// lumen_logprobs computes, from the raw logits at batch index idx (the
// model's distribution, before any sampler), the log-probability of tok
// into *tok_lp and the top most likely tokens with theirs into top_ids and
// top_lps (most likely first). Returns how many top entries it wrote, or -1
// when there are no logits at idx or tok is out of range.
int32_t lumen_logprobs(struct llama_context * ctx, int32_t idx, int32_t n_vocab, llama_token tok,
	int32_t top, llama_token * top_ids, float * top_lps, float * tok_lp);

// lumen_utf8 tracks a constrained sequence's output bytes, so that under a
// grammar only tokens keeping it valid UTF-8 are picked (llama.cpp's
// grammar decodes UTF-8 without checking continuation bytes).
struct lumen_utf8 * lumen_utf8_new(void);
void lumen_utf8_free(struct lumen_utf8 * u);
void lumen_utf8_reset(struct lumen_utf8 * u);

// lumen_vocab_ascii returns a malloc'd table, one byte per token: 1 when
// the token's text is plain ASCII (so it cannot break UTF-8 between
// characters). The caller frees it.
uint8_t * lumen_vocab_ascii(const struct llama_vocab * vocab);

// lumen_sampler_accept records tok in s's history; false with the reason
// in err when s (a grammar) cannot take it.
bool lumen_sampler_accept(struct llama_sampler * s, llama_token tok, char * err, size_t n);

// Loadable backends (dynload.c).

// lumen_backend_base_open loads a backend directory's libggml-base.so, which
// every backend library there links, before any backend is loaded, and
// routes that ggml copy's logging through lumen_log_cb. On failure it
// returns false with the loader's message in err.
bool lumen_backend_base_open(const char * path, char * err, size_t n);

// lumen_backend_open loads a backend library ahead of ggml (which then
// finds it loaded), binding it to its own libggml-base.so. On failure it
// returns false with the loader's message in err.
bool lumen_backend_open(const char * path, char * err, size_t n);

// lumen_object_path copies the file name of the shared library that holds
// addr into out; it returns false when addr is in the executable itself.
bool lumen_object_path(const void * addr, char * out, size_t n);

// lumen_model_load loads a model; when handle is non-zero the load progress is
// reported to the Go function registered under that cgo.Handle.
struct llama_model * lumen_model_load(const char * path, struct llama_model_params params, uintptr_t handle);

// lumen_batch_set writes one token into a batch allocated by llama_batch_init.
void lumen_batch_set(struct llama_batch * b, int32_t i, llama_token tok, llama_pos pos, llama_seq_id seq, bool logits);

// lumen_threadpool_new starts a persistent pool of n_threads ggml CPU
// workers (the caller's thread is one of them while computing), from the
// CPU backend that is loaded, static or dynamic; poll is ggml's polling
// level (0-100). NULL when the CPU backend offers no pool.
void * lumen_threadpool_new(int n_threads, uint32_t poll, int prio);
// lumen_threadpool_free stops and frees a pool of lumen_threadpool_new.
void lumen_threadpool_free(void * pool);

#ifdef __cplusplus
}
#endif
