#include <stdio.h>
#include "bridge.h"
#include "_cgo_export.h"

static int lumen_min_log_level = GGML_LOG_LEVEL_ERROR;
static int lumen_last_log_level = GGML_LOG_LEVEL_INFO;

void lumen_log_cb(enum ggml_log_level level, const char * text, void * user_data) {
	(void)user_data;
	// CONT continues the previous message and inherits its level.
	if (level == GGML_LOG_LEVEL_CONT) {
		level = lumen_last_log_level;
	} else {
		lumen_last_log_level = level;
	}
	if ((int)level >= lumen_min_log_level) {
		fputs(text, stderr);
	}
}

void lumen_log_init(int min_level) {
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
