// bridge.h: small C helpers for the Go side of the llama.cpp boundary.
// Callbacks from C into Go go through these trampolines, carrying a
// runtime/cgo.Handle as an integer so no Go pointer is ever stored in C.
#pragma once

#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include "llama.h"
#include "ggml-backend.h"

// lumen_log_init routes llama.cpp and ggml logging to stderr, dropping
// messages below min_level (a ggml_log_level).
void lumen_log_init(int min_level);

// lumen_model_load loads a model; when handle is non-zero the load progress is
// reported to the Go function registered under that cgo.Handle.
struct llama_model * lumen_model_load(const char * path, struct llama_model_params params, uintptr_t handle);

// lumen_batch_set writes one token into a batch allocated by llama_batch_init.
void lumen_batch_set(struct llama_batch * b, int32_t i, llama_token tok, llama_pos pos, llama_seq_id seq, bool logits);
