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

// utf8 tracks the bytes a constrained sequence has produced, so that its
// output stays valid UTF-8. llama.cpp's grammar decodes UTF-8 leniently
// (continuation bytes are not checked), so a random-weights model can
// pass it with byte tokens that decode to garbage the grammar counts as
// one character and a detokenizer as several (breaking maxLength).
struct utf8 {
	int need = 0;          // continuation bytes still expected
	uint8_t lo = 0x80, hi = 0xBF; // range of the next continuation byte
};

// utf8_feed advances st over bytes p[0..n) and reports whether they keep
// the output valid UTF-8 (an incomplete sequence at the end is fine).
bool utf8_feed(utf8 & st, const char * p, size_t n) {
	for (size_t i = 0; i < n; i++) {
		uint8_t b = (uint8_t)p[i];
		if (st.need > 0) {
			if (b < st.lo || b > st.hi) {
				return false;
			}
			st.need--;
			st.lo = 0x80;
			st.hi = 0xBF;
			continue;
		}
		if (b < 0x80) {
			continue;
		} else if (b >= 0xC2 && b <= 0xDF) {
			st.need = 1;
		} else if (b == 0xE0) {
			st.need = 2;
			st.lo = 0xA0;
		} else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
			st.need = 2;
		} else if (b == 0xED) {
			st.need = 2;
			st.hi = 0x9F;
		} else if (b == 0xF0) {
			st.need = 3;
			st.lo = 0x90;
		} else if (b >= 0xF1 && b <= 0xF3) {
			st.need = 3;
		} else if (b == 0xF4) {
			st.need = 3;
			st.hi = 0x8F;
		} else {
			return false;
		}
	}
	return true;
}

// piece_ok reports whether tok's text keeps the output valid UTF-8 after
// st, and returns the state after it in next. ascii marks the tokens
// whose text is plain ASCII, which need no look at their text.
bool piece_ok(const struct llama_vocab * vocab, const uint8_t * ascii, const utf8 & st, llama_token tok, utf8 & next) {
	if (ascii[tok]) {
		next = st;
		return st.need == 0;
	}
	char buf[256];
	int32_t n = llama_token_to_piece(vocab, tok, buf, sizeof buf, 0, true);
	next = st;
	if (n < 0) {
		std::vector<char> big((size_t)-n);
		n = llama_token_to_piece(vocab, tok, big.data(), (int32_t)big.size(), 0, true);
		return n >= 0 && utf8_feed(next, big.data(), (size_t)n);
	}
	return utf8_feed(next, buf, (size_t)n);
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

// banned sets the logits of the ban list to -inf (min_tokens holds the
// end-of-generation tokens back this way, step by step).
void banned(llama_token_data * buf, int32_t n_vocab, const llama_token * ban, int32_t n_ban) {
	for (int32_t i = 0; i < n_ban; i++) {
		if (ban[i] >= 0 && ban[i] < n_vocab) {
			buf[ban[i]].logit = -INFINITY;
		}
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

// lumen_utf8 is a sequence's UTF-8 state, owned by its Go Sampler.
struct lumen_utf8 {
	utf8 st;
};

extern "C" struct lumen_utf8 * lumen_utf8_new(void) { return new lumen_utf8(); }

extern "C" uint8_t * lumen_vocab_ascii(const struct llama_vocab * vocab) {
	int32_t n = llama_vocab_n_tokens(vocab);
	uint8_t * ascii = (uint8_t *)std::calloc((size_t)n, 1);
	if (ascii == nullptr) {
		return nullptr;
	}
	char buf[256];
	for (llama_token t = 0; t < n; t++) {
		int32_t len = llama_token_to_piece(vocab, t, buf, sizeof buf, 0, true);
		bool plain = len >= 0;
		for (int32_t i = 0; plain && i < len; i++) {
			plain = (uint8_t)buf[i] < 0x80;
		}
		ascii[t] = plain ? 1 : 0;
	}
	return ascii;
}

extern "C" void lumen_utf8_free(struct lumen_utf8 * u) { delete u; }

extern "C" void lumen_utf8_reset(struct lumen_utf8 * u) { u->st = utf8(); }

extern "C" int32_t lumen_sample(struct llama_sampler * chain, struct llama_sampler * grammar,
		struct lumen_utf8 * u8, const uint8_t * ascii, struct llama_context * ctx, int32_t idx, llama_token_data * buf, int32_t n_vocab,
		const llama_token * ban, int32_t n_ban, int32_t * rejected, char * err, size_t n) {
	try {
		const struct llama_vocab * vocab = llama_model_get_vocab(llama_get_model(ctx));
		utf8 next;
		const float * logits = llama_get_logits_ith(ctx, idx);
		if (logits == nullptr) {
			copy_err(err, n, "no logits at this batch index");
			return -1;
		}
		fill(buf, logits, n_vocab);
		banned(buf, n_vocab, ban, n_ban);
		llama_token_data_array cur = {buf, (size_t)n_vocab, -1, false};
		llama_sampler_apply(chain, &cur);
		if (cur.selected < 0 || cur.selected >= (int64_t)cur.size) {
			copy_err(err, n, "the sampler selected no token");
			return -1;
		}
		llama_token tok = cur.data[cur.selected].id;
		if (grammar != nullptr && !(allowed(grammar, tok) && piece_ok(vocab, ascii, u8->st, tok, next))) {
			// The model's pick breaks the grammar: mask the whole
			// vocabulary and sample again. Checking the pick first makes
			// the common case cost one grammar step, not one per token.
			*rejected += 1;
			fill(buf, logits, n_vocab);
			banned(buf, n_vocab, ban, n_ban);
			cur = {buf, (size_t)n_vocab, -1, false};
			llama_sampler_apply(grammar, &cur);
			bool any = false;
			for (size_t i = 0; i < cur.size; i++) {
				if (!std::isfinite(cur.data[i].logit)) {
					continue;
				}
				utf8 after;
				if (piece_ok(vocab, ascii, u8->st, cur.data[i].id, after)) {
					any = true;
				} else {
					cur.data[i].logit = -INFINITY;
				}
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
			if (!allowed(grammar, tok) || !piece_ok(vocab, ascii, u8->st, tok, next)) {
				copy_err(err, n, "every token the grammar allows is banned (logit_bias or penalties)");
				return -1;
			}
		}
		if (grammar != nullptr) {
			llama_sampler_accept(grammar, tok);
			u8->st = next;
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

extern "C" int32_t lumen_logprobs(struct llama_context * ctx, int32_t idx, int32_t n_vocab, llama_token tok,
		int32_t top, llama_token * top_ids, float * top_lps, float * tok_lp) {
	const float * logits = llama_get_logits_ith(ctx, idx);
	if (logits == nullptr || tok < 0 || tok >= n_vocab) {
		return -1;
	}
	// log softmax: logit - (max + log sum exp(logit - max)), in double so
	// that a 150k vocabulary sums without losing the small terms.
	float mx = -INFINITY;
	for (int32_t t = 0; t < n_vocab; t++) {
		mx = std::fmax(mx, logits[t]);
	}
	double sum = 0;
	for (int32_t t = 0; t < n_vocab; t++) {
		sum += std::exp((double)logits[t] - mx);
	}
	const double norm = mx + std::log(sum);
	*tok_lp = (float)(logits[tok] - norm);
	// The top entries by insertion: top is at most 20, so one pass with a
	// short sorted list beats sorting the vocabulary.
	int32_t have = 0;
	for (int32_t t = 0; t < n_vocab && top > 0; t++) {
		const float l = logits[t];
		if (have == top && !(l > top_lps[have - 1])) {
			continue;
		}
		int32_t k = have < top ? have++ : top - 1;
		while (k > 0 && top_lps[k - 1] < l) {
			top_lps[k] = top_lps[k - 1];
			top_ids[k] = top_ids[k - 1];
			k--;
		}
		top_lps[k] = l;
		top_ids[k] = t;
	}
	for (int32_t k = 0; k < have; k++) {
		top_lps[k] = (float)(top_lps[k] - norm);
	}
	return have;
}
