package httpserver

import (
	"bytes"
	"encoding/json"
	"sort"
)

// Every request field Lumen knows of is either honoured (decoded into the
// route's structs) or refused with a 400 naming it — never accepted and
// ignored. The fields below are the known ones Lumen does not honour: the
// rest of the OpenAI completions and chat APIs, and the extensions of
// llama.cpp's server and vLLM. Each is refused only when it asks for
// something: its absence, null, or the value that means "off" passes.
// Fields nobody defines are ignored, as llama-server and vLLM do.

// route names a group of endpoints sharing a field policy.
type route int

const (
	routeCompletions route = iota // POST /v1/completions
	routeChat                     // POST /v1/chat/completions
	routeGenerate                 // POST /generate
	routeResponses                // POST /v1/responses
)

// offValue reports whether raw asks for nothing (so it may pass).
type offValue func(raw json.RawMessage) bool

func isFalse(raw json.RawMessage) bool {
	return isNull(raw) || bytes.Equal(bytes.TrimSpace(raw), []byte("false"))
}
func isTrue(raw json.RawMessage) bool {
	return isNull(raw) || bytes.Equal(bytes.TrimSpace(raw), []byte("true"))
}
func isZero(raw json.RawMessage) bool {
	var f float64
	return isNull(raw) || (json.Unmarshal(raw, &f) == nil && f == 0)
}
func isOne(raw json.RawMessage) bool {
	var f float64
	return isNull(raw) || (json.Unmarshal(raw, &f) == nil && f == 1)
}
func isEmpty(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return isNull(raw) || bytes.Equal(t, []byte("[]")) || bytes.Equal(t, []byte("{}")) || bytes.Equal(t, []byte(`""`))
}

// never refuses every value but absence and null.
func never(json.RawMessage) bool { return false }

func oneOfStrings(allowed ...string) offValue {
	return func(raw json.RawMessage) bool {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
		for _, a := range allowed {
			if s == a {
				return true
			}
		}
		return false
	}
}

func textOnlyModalities(raw json.RawMessage) bool {
	var m []string
	return json.Unmarshal(raw, &m) == nil && len(m) == 1 && m[0] == "text"
}

// refusal is a known field Lumen does not honour, and why.
type refusal struct {
	off    offValue
	reason string
}

var (
	notYet        = "is not supported yet"
	noSampler     = "is not supported: Lumen has no such sampler"
	noLogprobs    = "is not supported: use logprobs (and top_logprobs on chat)"
	noMultimodal  = "is not supported: Lumen serves text-only models"
	noPersistence = "is not supported: Lumen does not store requests"
)

// refusedCommon are refused on every generation route.
var refusedCommon = map[string]refusal{
	// OpenAI
	// llama.cpp server
	"n_probs":               {isZero, noLogprobs},
	"post_sampling_probs":   {isFalse, noLogprobs},
	"mirostat":              {isZero, noSampler},
	"mirostat_tau":          {never, noSampler},
	"mirostat_eta":          {never, noSampler},
	"typical_p":             {isOne, noSampler},
	"tfs_z":                 {isOne, noSampler},
	"dynatemp_range":        {isZero, noSampler},
	"dynatemp_exponent":     {isOne, noSampler},
	"xtc_probability":       {isZero, noSampler},
	"xtc_threshold":         {never, noSampler},
	"dry_multiplier":        {isZero, noSampler},
	"dry_base":              {never, noSampler},
	"dry_allowed_length":    {never, noSampler},
	"dry_penalty_last_n":    {never, noSampler},
	"dry_sequence_breakers": {never, noSampler},
	"repeat_last_n":         {never, notYet},
	"penalize_nl":           {isFalse, noSampler},
	"samplers":              {never, "is not supported: the sampler order is fixed"},
	"n_keep":                {isZero, notYet},
	"n_discard":             {isZero, notYet},
	"n_indent":              {isZero, notYet},
	"id_slot":               {never, "is not supported: the scheduler assigns slots"},
	"t_max_predict_ms":      {isZero, notYet},
	"t_max_prompt_ms":       {isZero, notYet},
	"return_tokens":         {isFalse, notYet},
	"timings_per_token":     {isFalse, notYet},
	"lora":                  {isEmpty, "is not supported: Lumen loads no adapters"},
	"image_data":            {isEmpty, noMultimodal},
	"multimodal_data":       {isEmpty, noMultimodal},
	"response_fields":       {isEmpty, notYet},
	"stop_token_ids":        {isEmpty, notYet},
	"n_predict":             {never, "is not supported: use max_tokens"},
	// vLLM
	"guided_decoding_backend":       {never, "is not supported: Lumen has one grammar engine (llama.cpp's)"},
	"guided_whitespace_pattern":     {never, notYet},
	"structural_tag":                {never, notYet},
	"use_beam_search":               {isFalse, "is not supported: no beam search"},
	"length_penalty":                {isOne, "is not supported: no beam search"},
	"include_stop_str_in_output":    {isFalse, notYet},
	"spaces_between_special_tokens": {isTrue, notYet},
	"skip_special_tokens":           {isTrue, notYet},
	"prompt_logprobs":               {isZero, noLogprobs},
	"truncate_prompt_tokens":        {never, notYet},
	"allowed_token_ids":             {isEmpty, notYet},
	"bad_words":                     {isEmpty, notYet},
	"logits_processors":             {isEmpty, "is not supported: no custom logits processors"},
	"priority":                      {isZero, notYet},
	"return_tokens_as_token_ids":    {isFalse, notYet},
}

// isFalseOrZero passes logprobs: false (chat) and logprobs: 0 (completions).
func isFalseOrZero(raw json.RawMessage) bool { return isFalse(raw) || isZero(raw) }

// refusedChat are refused on chat completions only.
var refusedChat = map[string]refusal{
	"suffix":                 {isEmpty, "is supported on /v1/completions (fill-in-the-middle), not in chats"},
	"functions":              {isEmpty, "is not supported: use tools"},
	"function_call":          {isNullOrNone, "is not supported: use tool_choice"},
	"audio":                  {isEmpty, noMultimodal},
	"modalities":             {textOnlyModalities, noMultimodal},
	"prediction":             {isEmpty, "is not supported (predicted outputs)"},
	"store":                  {isFalse, noPersistence},
	"metadata":               {isEmpty, noPersistence},
	"service_tier":           {oneOfStrings("auto", "default"), "is not supported: Lumen has one service tier"},
	"reasoning_effort":       {never, "is not supported: the model is not a reasoning model to Lumen"},
	"web_search_options":     {isEmpty, "is not supported: no web search"},
	"echo":                   {isFalse, notYet},
	"add_generation_prompt":  {isTrue, notYet},
	"continue_final_message": {isFalse, notYet},
	"chat_template":          {isEmpty, "is not supported: templates come from the model file"},
	"chat_template_kwargs":   {isEmpty, notYet},
	"documents":              {isEmpty, notYet},
}

func isNullOrNone(raw json.RawMessage) bool { return isNull(raw) || oneOfStrings("none")(raw) }

// refusedCompletions are refused on /v1/completions only.
var refusedCompletions = map[string]refusal{
	"top_logprobs": {isZero, "is a chat field; on /v1/completions logprobs is the number of alternatives (0-5)"},
	// Chat-only fields sent to completions ask for what a prompt cannot do.
	"tools":       {isEmpty, "is only supported on /v1/chat/completions"},
	"tool_choice": {isNullOrNone, "is only supported on /v1/chat/completions"},
}

// refusedGenerate are refused on /generate.
var refusedGenerate = map[string]refusal{
	"tools":           {isEmpty, "is only supported on /v1/chat/completions"},
	"tool_choice":     {isNullOrNone, "is only supported on /v1/chat/completions"},
	"response_format": {isNull, "is an OpenAI field; use json_schema or grammar on /generate"},
	"logprobs":        {isFalseOrZero, "is supported on /v1/completions and /v1/chat/completions, not /generate"},
	"n":               {isOne, "is supported on /v1/completions and /v1/chat/completions, not /generate"},
	"suffix":          {isEmpty, "is supported on /v1/completions (fill-in-the-middle), not /generate"},
	"top_logprobs":    {isZero, "is supported on /v1/chat/completions, not /generate"},
}

// refusals lists what route refuses.
func refusals(r route) []map[string]refusal {
	switch r {
	case routeChat:
		return []map[string]refusal{refusedCommon, refusedChat}
	case routeCompletions:
		return []map[string]refusal{refusedCommon, refusedCompletions}
	case routeResponses:
		return []map[string]refusal{refusedResponses}
	default:
		return []map[string]refusal{refusedCommon, refusedGenerate}
	}
}

// checkRefused returns a 400 for the first (by name, so the answer is
// stable) known field of fields that r does not honour and that asks for
// something.
func checkRefused(r route, fields map[string]json.RawMessage) error {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		raw := fields[name]
		for _, table := range refusals(r) {
			ref, ok := table[name]
			if !ok || isNull(raw) || ref.off(raw) {
				continue
			}
			return invalidField(name, "%s", ref.reason)
		}
	}
	return nil
}
