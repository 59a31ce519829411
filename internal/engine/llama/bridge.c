#include <stdio.h>
#include <string.h>
#include "bridge.h"
#include "_cgo_export.h"

static int lumen_min_log_level = GGML_LOG_LEVEL_ERROR;
static int lumen_last_log_level = GGML_LOG_LEVEL_INFO;
// The process's stderr as it was at start-up: lumen_grammar_new points
// glibc's stderr elsewhere for a moment, and log lines must not follow.
static FILE * lumen_stderr = NULL;

// Per-thread capture of error log lines (lumen_log_capture).
static _Thread_local bool lumen_capturing = false;
static _Thread_local char lumen_captured[512];

void lumen_log_cb(enum ggml_log_level level, const char * text, void * user_data) {
	(void)user_data;
	// CONT continues the previous message and inherits its level.
	if (level == GGML_LOG_LEVEL_CONT) {
		level = lumen_last_log_level;
	} else {
		lumen_last_log_level = level;
	}
	if (lumen_capturing && level >= GGML_LOG_LEVEL_ERROR) {
		size_t used = strlen(lumen_captured);
		snprintf(lumen_captured + used, sizeof lumen_captured - used, "%s", text);
		return; // the caller reports it; a client's bad input is no server error
	}
	if ((int)level >= lumen_min_log_level) {
		fputs(text, lumen_stderr != NULL ? lumen_stderr : stderr);
	}
}

const char * lumen_log_capture(bool on) {
	if (on) {
		lumen_captured[0] = 0;
	}
	lumen_capturing = on;
	size_t n = strlen(lumen_captured);
	while (n > 0 && (lumen_captured[n - 1] == '\n' || lumen_captured[n - 1] == ' ')) {
		lumen_captured[--n] = 0;
	}
	return lumen_captured;
}

void lumen_log_init(int min_level) {
	if (lumen_stderr == NULL) {
		lumen_stderr = stderr;
	}
	lumen_min_log_level = min_level;
	llama_log_set(lumen_log_cb, NULL);
}

static bool lumen_progress_cb(float progress, void * user_data) {
	return lumenLoadProgress(progress, (uintptr_t)user_data);
}

struct llama_model * lumen_model_load(const char * path, struct llama_model_params params, uintptr_t handle) {
	if (handle != 0) {
		params.progress_callback = lumen_progress_cb;
		params.progress_callback_user_data = (void *)handle;
	}
	return llama_model_load_from_file(path, params);
}

void lumen_batch_set(struct llama_batch * b, int32_t i, llama_token tok, llama_pos pos, llama_seq_id seq, bool logits) {
	b->token[i] = tok;
	b->pos[i] = pos;
	b->n_seq_id[i] = 1;
	b->seq_id[i][0] = seq;
	b->logits[i] = logits ? 1 : 0;
}

// The pool's functions are looked up in the CPU backend that ggml loaded,
// so that the pool and the kernels that use it are the same ggml copy
// (a dynamically loaded CPU backend has its own).
static void * cpu_proc(const char * name) {
	ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
	if (dev == NULL) {
		return NULL;
	}
	ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
	return reg == NULL ? NULL : ggml_backend_reg_get_proc_address(reg, name);
}

void * lumen_threadpool_new(int n_threads, uint32_t poll, int prio) {
	typedef struct ggml_threadpool * (*new_fn)(struct ggml_threadpool_params *);
	new_fn fn = (new_fn)cpu_proc("ggml_threadpool_new");
	if (fn == NULL) {
		return NULL;
	}
	struct ggml_threadpool_params p = ggml_threadpool_params_default(n_threads);
	p.poll = poll;
	p.prio = (enum ggml_sched_priority)prio;
	return fn(&p);
}

void lumen_threadpool_free(void * pool) {
	typedef void (*free_fn)(struct ggml_threadpool *);
	free_fn fn = (free_fn)cpu_proc("ggml_threadpool_free");
	if (fn != NULL && pool != NULL) {
		fn((struct ggml_threadpool *)pool);
	}
}
