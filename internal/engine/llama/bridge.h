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

// lumen_log_cb is the ggml log callback installed by lumen_log_init; it is
// also handed to the separate ggml copy of loadable backends.
void lumen_log_cb(enum ggml_log_level level, const char * text, void * user_data);

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
