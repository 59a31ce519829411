// sample.cpp: constrained sampling for the Go side. C++ because llama.cpp's
// grammar code reports failures by throwing, and an exception must never
// cross into Go (it would abort the process): every entry point here
// catches and turns it into an error message.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <vector>

#include "bridge.h"

namespace {

void copy_err(char * err, size_t n, const char * msg) {
	if (n == 0) {
		return;
	}
	std::snprintf(err, n, "%s", msg);
}

// llama.cpp's GBNF parser prints its reason to stderr with fprintf, and
// left recursion is reported through the log callback. The parse runs with
// glibc's stderr pointed at a memory stream (under a lock, so parses do
// not interleave) and the log captured, so the reason can go back to the
// client. lumen_log_cb writes to the real stderr, so other threads' log
// lines are not swallowed meanwhile.
std::mutex parse_mu;

// The parser's message looks like "parse: error parsing grammar: REASON\n\nSOURCE";
// keep REASON.
void grammar_reason(const char * out, char * err, size_t n) {
	const char * marker = "error parsing grammar: ";
	const char * p = std::strstr(out, marker);
	if (p == nullptr) {
		copy_err(err, n, out[0] ? out : "llama.cpp rejected the grammar");
		return;
	}
	p += std::strlen(marker);
	const char * end = std::strstr(p, "\n\n");
	size_t len = end ? (size_t)(end - p) : std::strlen(p);
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == ' ')) {
		len--;
	}
	if (n > 0) {
		size_t k = len < n - 1 ? len : n - 1;
		std::memcpy(err, p, k);
		err[k] = 0;
	}
}

// allowed reports whether the grammar accepts tok next.
bool allowed(struct llama_sampler * grammar, llama_token tok) {
	llama_token_data one = {tok, 1.0f, 0.0f};
	llama_token_data_array arr = {&one, 1, -1, false};
	llama_sampler_apply(grammar, &arr);
	return std::isfinite(one.logit);
}

void fill(llama_token_data * buf, const float * logits, int32_t n_vocab) {
	for (llama_token t = 0; t < n_vocab; t++) {
		buf[t] = llama_token_data{t, logits[t], 0.0f};
	}
}

} // namespace

extern "C" struct llama_sampler * lumen_grammar_new(const struct llama_vocab * vocab, const char * gbnf,
		const char * root, const char ** patterns, size_t n_patterns, char * err, size_t n) {
	std::lock_guard<std::mutex> lock(parse_mu);
	char * out = nullptr;
	size_t out_len = 0;
	FILE * mem = open_memstream(&out, &out_len);
	FILE * saved = stderr;
	if (mem != nullptr) {
		stderr = mem;
	}
	lumen_log_capture(true);
	struct llama_sampler * s = nullptr;
	try {
		if (n_patterns > 0) {
			s = llama_sampler_init_grammar_lazy_patterns(vocab, gbnf, root, patterns, n_patterns, nullptr, 0);
		} else {
			s = llama_sampler_init_grammar(vocab, gbnf, root);
		}
	} catch (const std::exception & e) {
		s = nullptr;
		copy_err(err, n, e.what());
		n = 0; // keep this message
	} catch (...) {
		s = nullptr;
		copy_err(err, n, "llama.cpp failed to build the grammar");
		n = 0;
	}
	const char * logged = lumen_log_capture(false);
	stderr = saved;
	if (mem != nullptr) {
		std::fclose(mem);
	}
	if (s == nullptr && n > 0) {
		if (out != nullptr && out[0] != 0) {
			grammar_reason(out, err, n);
		} else if (logged != nullptr && logged[0] != 0) {
			copy_err(err, n, logged);
		} else {
			copy_err(err, n, "llama.cpp rejected the grammar");
		}
	}
	std::free(out);
	return s;
}

extern "C" int32_t lumen_sample(struct llama_sampler * chain, struct llama_sampler * grammar,
		struct llama_context * ctx, int32_t idx, llama_token_data * buf, int32_t n_vocab,
		int32_t * rejected, char * err, size_t n) {
	try {
		const float * logits = llama_get_logits_ith(ctx, idx);
		if (logits == nullptr) {
			copy_err(err, n, "no logits at this batch index");
			return -1;
		}
		fill(buf, logits, n_vocab);
		llama_token_data_array cur = {buf, (size_t)n_vocab, -1, false};
		llama_sampler_apply(chain, &cur);
		if (cur.selected < 0 || cur.selected >= (int64_t)cur.size) {
			copy_err(err, n, "the sampler selected no token");
			return -1;
		}
		llama_token tok = cur.data[cur.selected].id;
		if (grammar != nullptr && !allowed(grammar, tok)) {
			// The model's pick breaks the grammar: mask the whole
			// vocabulary and sample again. Checking the pick first makes
			// the common case cost one grammar step, not one per token.
			*rejected += 1;
			fill(buf, logits, n_vocab);
			cur = {buf, (size_t)n_vocab, -1, false};
			llama_sampler_apply(grammar, &cur);
			bool any = false;
			for (size_t i = 0; i < cur.size && !any; i++) {
				any = std::isfinite(cur.data[i].logit);
			}
			if (!any) {
				copy_err(err, n, "the grammar allows no token of the vocabulary here");
				return -1;
			}
			llama_sampler_apply(chain, &cur);
			if (cur.selected < 0 || cur.selected >= (int64_t)cur.size) {
				copy_err(err, n, "the sampler selected no token");
				return -1;
			}
			tok = cur.data[cur.selected].id;
			if (!allowed(grammar, tok)) {
				copy_err(err, n, "every token the grammar allows is banned (logit_bias or penalties)");
				return -1;
			}
		}
		if (grammar != nullptr) {
			llama_sampler_accept(grammar, tok);
		}
		llama_sampler_accept(chain, tok);
		return tok;
	} catch (const std::exception & e) {
		copy_err(err, n, e.what());
		return -1;
	} catch (...) {
		copy_err(err, n, "llama.cpp failed while sampling");
		return -1;
	}
}

extern "C" bool lumen_sampler_accept(struct llama_sampler * s, llama_token tok, char * err, size_t n) {
	try {
		llama_sampler_accept(s, tok);
		return true;
	} catch (const std::exception & e) {
		copy_err(err, n, e.what());
		return false;
	} catch (...) {
		copy_err(err, n, "llama.cpp failed to accept the token");
		return false;
	}
}
