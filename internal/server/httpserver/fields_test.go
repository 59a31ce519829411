package httpserver

import (
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// fieldCase sends one known field to one route and says what must come
// of it: honoured (200, and check sees it in the request the API got) or
// refused (400 naming the field).
type fieldCase struct {
	field string
	path  string
	value string // the field's JSON value
	// refused: 400 with param = field (or param, when set).
	refused bool
	param   string
	check   func(t *testing.T, req inference.GenerateRequest)
}

const (
	chatPath = "/v1/chat/completions"
	cmplPath = "/v1/completions"
	genPath  = "/generate"
)

// fieldCases is the specification: every field Lumen knows, on each route
// where it means something, and its outcome.
func fieldCases() []fieldCase {
	sampling := func(get func(inference.GenerateRequest) float64, want float64) func(*testing.T, inference.GenerateRequest) {
		return func(t *testing.T, req inference.GenerateRequest) {
			if got := get(req); math.Abs(got-want) > 1e-6 {
				t.Errorf("got %v, want %v", got, want)
			}
		}
	}
	constraint := func(kind inference.ConstraintKind, field string) func(*testing.T, inference.GenerateRequest) {
		return func(t *testing.T, req inference.GenerateRequest) {
			if c := req.Constraint; c == nil || c.Kind != kind || c.Field != field {
				t.Errorf("constraint = %+v, want kind %d from %s", c, kind, field)
			}
		}
	}
	none := func(t *testing.T, req inference.GenerateRequest) {
		if req.Constraint != nil {
			t.Errorf("constraint = %+v, want none", req.Constraint)
		}
	}
	ok := func(*testing.T, inference.GenerateRequest) {}
	var cases []fieldCase
	all := func(c fieldCase) {
		for _, p := range []string{chatPath, cmplPath, genPath} {
			c.path = p
			cases = append(cases, c)
		}
	}
	openai := func(c fieldCase) {
		for _, p := range []string{chatPath, cmplPath} {
			c.path = p
			cases = append(cases, c)
		}
	}
	on := func(path string, c fieldCase) { c.path = path; cases = append(cases, c) }

	// Honoured everywhere.
	all(fieldCase{field: "model", value: `"test-model"`, check: func(t *testing.T, r inference.GenerateRequest) {
		if r.Model != "test-model" {
			t.Errorf("model %q", r.Model)
		}
	}})
	all(fieldCase{field: "max_tokens", value: `7`, check: func(t *testing.T, r inference.GenerateRequest) {
		if r.MaxTokens != 7 {
			t.Errorf("max tokens %d", r.MaxTokens)
		}
	}})
	all(fieldCase{field: "max_completion_tokens", value: `9`, check: func(t *testing.T, r inference.GenerateRequest) {
		if r.MaxTokens != 9 {
			t.Errorf("max tokens %d", r.MaxTokens)
		}
	}})
	all(fieldCase{field: "temperature", value: `0.5`, check: sampling(func(r inference.GenerateRequest) float64 { return float64(r.Sampling.Temperature) }, 0.5)})
	all(fieldCase{field: "top_p", value: `0.25`, check: sampling(func(r inference.GenerateRequest) float64 { return float64(r.Sampling.TopP) }, 0.25)})
	all(fieldCase{field: "top_k", value: `5`, check: sampling(func(r inference.GenerateRequest) float64 { return float64(r.Sampling.TopK) }, 5)})
	all(fieldCase{field: "min_p", value: `0.125`, check: sampling(func(r inference.GenerateRequest) float64 { return float64(r.Sampling.MinP) }, 0.125)})
	all(fieldCase{field: "repetition_penalty", value: `1.5`, check: sampling(func(r inference.GenerateRequest) float64 { return float64(r.Sampling.RepeatPenalty) }, 1.5)})
	all(fieldCase{field: "frequency_penalty", value: `0.75`, check: sampling(func(r inference.GenerateRequest) float64 { return float64(r.Sampling.FrequencyPenalty) }, 0.75)})
	all(fieldCase{field: "presence_penalty", value: `-0.5`, check: sampling(func(r inference.GenerateRequest) float64 { return float64(r.Sampling.PresencePenalty) }, -0.5)})
	all(fieldCase{field: "seed", value: `42`, check: sampling(func(r inference.GenerateRequest) float64 { return float64(r.Sampling.Seed) }, 42)})
	all(fieldCase{field: "stop", value: `["x"]`, check: func(t *testing.T, r inference.GenerateRequest) {
		if len(r.Stop) != 1 || r.Stop[0] != "x" {
			t.Errorf("stop %q", r.Stop)
		}
	}})
	all(fieldCase{field: "stream", value: `false`, check: ok})
	all(fieldCase{field: "stream_options", value: `{"include_usage":true}`, check: ok})
	all(fieldCase{field: "user", value: `"u-1"`, check: func(t *testing.T, r inference.GenerateRequest) {
		if r.User != "u-1" {
			t.Errorf("user %q", r.User)
		}
	}})
	all(fieldCase{field: "logit_bias", value: `{"5":2.5,"9":-100}`, check: func(t *testing.T, r inference.GenerateRequest) {
		b := r.Sampling.LogitBias
		if len(b) != 2 || b[5] != 2.5 || !math.IsInf(float64(b[9]), -1) {
			t.Errorf("logit bias %v, want 5:+2.5 and 9 banned", b)
		}
	}})
	all(fieldCase{field: "logit_bias", value: `{"a":1}`, refused: true})
	all(fieldCase{field: "logit_bias", value: `{"3":101}`, refused: true})
	all(fieldCase{field: "ignore_eos", value: `true`, check: func(t *testing.T, r inference.GenerateRequest) {
		if !r.Sampling.IgnoreEOS {
			t.Error("ignore_eos not set")
		}
	}})
	for _, p := range []string{chatPath, cmplPath} {
		on(p, fieldCase{field: "n", value: `3`, check: ok}) // the choices' requests: TestChoices
		on(p, fieldCase{field: "n", value: `0`, refused: true})
	}
	all(fieldCase{field: "min_tokens", value: `5`, check: func(t *testing.T, r inference.GenerateRequest) {
		if r.Sampling.MinTokens != 5 {
			t.Errorf("min_tokens %d, want 5", r.Sampling.MinTokens)
		}
	}})
	all(fieldCase{field: "min_tokens", value: `-1`, refused: true})
	on(chatPath, fieldCase{field: "logprobs", value: `true`, check: func(t *testing.T, r inference.GenerateRequest) {
		if !r.Logprobs || r.TopLogprobs != 0 || r.PromptLogprobs {
			t.Errorf("logprobs %v top %d prompt %v, want true 0 false", r.Logprobs, r.TopLogprobs, r.PromptLogprobs)
		}
	}})
	on(chatPath, fieldCase{field: "logprobs", value: `false`, check: func(t *testing.T, r inference.GenerateRequest) {
		if r.Logprobs {
			t.Error("logprobs false turned logprobs on")
		}
	}})
	on(chatPath, fieldCase{field: "top_logprobs", value: `0`, check: ok})
	on(chatPath, fieldCase{field: "top_logprobs", value: `3`, refused: true}) // without logprobs: true
	on(cmplPath, fieldCase{field: "logprobs", value: `3`, check: func(t *testing.T, r inference.GenerateRequest) {
		if !r.Logprobs || r.TopLogprobs != 3 || r.PromptLogprobs {
			t.Errorf("logprobs %v top %d prompt %v, want true 3 false", r.Logprobs, r.TopLogprobs, r.PromptLogprobs)
		}
	}})
	on(cmplPath, fieldCase{field: "logprobs", value: `0`, check: func(t *testing.T, r inference.GenerateRequest) {
		if !r.Logprobs || r.TopLogprobs != 0 {
			t.Errorf("logprobs %v top %d, want the tokens' own logprobs only", r.Logprobs, r.TopLogprobs)
		}
	}})
	on(cmplPath, fieldCase{field: "logprobs", value: `6`, refused: true})
	on(cmplPath, fieldCase{field: "logprobs", value: `true`, refused: true})
	on(cmplPath, fieldCase{field: "echo", value: `true`, check: ok})
	on(cmplPath, fieldCase{field: "top_logprobs", value: `2`, refused: true})
	all(fieldCase{field: "cache_prompt", value: `false`, check: func(t *testing.T, r inference.GenerateRequest) {
		if !r.NoCache {
			t.Error("cache_prompt false did not disable the prefix cache")
		}
	}})
	all(fieldCase{field: "grammar", value: `"root ::= \"a\""`, check: constraint(inference.ConstraintGrammar, "grammar")})
	all(fieldCase{field: "guided_grammar", value: `"root ::= \"a\""`, check: constraint(inference.ConstraintGrammar, "guided_grammar")})
	all(fieldCase{field: "json_schema", value: `{"type":"object"}`, check: constraint(inference.ConstraintJSONSchema, "json_schema")})
	all(fieldCase{field: "json_schema", value: `"{\"type\":\"string\"}"`, check: constraint(inference.ConstraintJSONSchema, "json_schema")})
	all(fieldCase{field: "json_schema", value: `3`, refused: true})
	all(fieldCase{field: "guided_json", value: `{"type":"object"}`, check: constraint(inference.ConstraintJSONSchema, "guided_json")})
	all(fieldCase{field: "guided_regex", value: `"[a-z]+"`, check: constraint(inference.ConstraintRegex, "guided_regex")})
	all(fieldCase{field: "guided_choice", value: `["yes","no"]`, check: constraint(inference.ConstraintChoice, "guided_choice")})
	all(fieldCase{field: "guided_choice", value: `[]`, refused: true})

	// response_format: OpenAI routes.
	openai(fieldCase{field: "response_format", value: `{"type":"text"}`, check: none})
	openai(fieldCase{field: "response_format", value: `{"type":"json_object"}`, check: constraint(inference.ConstraintJSONObject, "response_format")})
	openai(fieldCase{field: "response_format", value: `{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"},"strict":true}}`,
		check: constraint(inference.ConstraintJSONSchema, "response_format.json_schema.schema")})
	openai(fieldCase{field: "response_format", value: `{"type":"json_schema"}`, refused: true, param: "response_format.json_schema"})
	openai(fieldCase{field: "response_format", value: `{"type":"json_schema","json_schema":{"schema":{}}}`, refused: true, param: "response_format.json_schema.name"})
	openai(fieldCase{field: "response_format", value: `{"type":"yaml"}`, refused: true, param: "response_format.type"})
	on(genPath, fieldCase{field: "response_format", value: `{"type":"json_object"}`, refused: true})

	// Tools: chat only.
	tool := `[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`
	on(chatPath, fieldCase{field: "tools", value: tool, check: func(t *testing.T, r inference.GenerateRequest) {
		if len(r.Tools.Tools) != 1 || r.Tools.Tools[0].Name != "get_weather" || r.Tools.Choice.Mode != toolcall.Auto || !r.Tools.Parallel {
			t.Errorf("tools = %+v", r.Tools)
		}
	}})
	on(chatPath, fieldCase{field: "tools", value: `[{"type":"retrieval"}]`, refused: true, param: "tools[0].type"})
	on(chatPath, fieldCase{field: "tool_choice", value: `"required"`, check: func(t *testing.T, r inference.GenerateRequest) {
		if r.Tools.Choice.Mode != toolcall.Required {
			t.Errorf("choice %+v", r.Tools.Choice)
		}
	}})
	on(chatPath, fieldCase{field: "tool_choice", value: `{"type":"function","function":{"name":"f"}}`, check: func(t *testing.T, r inference.GenerateRequest) {
		if r.Tools.Choice != (toolcall.Choice{Mode: toolcall.Named, Name: "f"}) {
			t.Errorf("choice %+v", r.Tools.Choice)
		}
	}})
	on(chatPath, fieldCase{field: "tool_choice", value: `"sometimes"`, refused: true})
	on(chatPath, fieldCase{field: "parallel_tool_calls", value: `false`, check: func(t *testing.T, r inference.GenerateRequest) {
		if r.Tools.Parallel {
			t.Error("parallel_tool_calls false not honoured")
		}
	}})
	for _, p := range []string{cmplPath, genPath} {
		on(p, fieldCase{field: "tools", value: tool, refused: true})
		on(p, fieldCase{field: "tool_choice", value: `"required"`, refused: true})
	}
	on(chatPath, fieldCase{field: "messages", value: `[{"role":"user","content":"a"}]`, check: ok})
	on(cmplPath, fieldCase{field: "prompt", value: `"p"`, check: ok})
	on(genPath, fieldCase{field: "prompt", value: `"p"`, check: ok})

	// Refused unless off.
	refuse := func(paths []string, field, value, off string) {
		for _, p := range paths {
			on(p, fieldCase{field: field, value: value, refused: true})
			if off != "" {
				on(p, fieldCase{field: field, value: off, check: ok})
			}
		}
	}
	every := []string{chatPath, cmplPath, genPath}
	refuse([]string{genPath}, "n", `2`, `1`)
	refuse([]string{genPath}, "logprobs", `3`, `0`)
	refuse([]string{genPath}, "top_logprobs", `3`, `0`)
	refuse([]string{chatPath, genPath}, "suffix", `"end"`, `""`)
	on(cmplPath, fieldCase{field: "suffix", value: `"end"`, check: func(t *testing.T, r inference.GenerateRequest) {
		if r.Suffix != "end" {
			t.Errorf("suffix %q", r.Suffix)
		}
	}})
	for field, value := range map[string]string{
		"n_probs": `3`, "post_sampling_probs": `true`, "mirostat": `2`, "mirostat_tau": `5`,
		"mirostat_eta": `0.1`, "typical_p": `0.5`, "tfs_z": `0.5`, "dynatemp_range": `0.5`, "dynatemp_exponent": `2`,
		"xtc_probability": `0.5`, "xtc_threshold": `0.1`, "dry_multiplier": `0.8`, "dry_base": `1.75`,
		"dry_allowed_length": `2`, "dry_penalty_last_n": `64`, "dry_sequence_breakers": `["\n"]`, "repeat_last_n": `64`,
		"penalize_nl": `true`, "samplers": `["top_k"]`, "n_keep": `4`, "n_discard": `4`, "n_indent": `2`, "id_slot": `0`,
		"t_max_predict_ms": `100`, "t_max_prompt_ms": `100`, "return_tokens": `true`, "timings_per_token": `true`,
		"lora": `[{"id":0,"scale":1}]`, "image_data": `[{"data":"x","id":1}]`, "multimodal_data": `["x"]`,
		"response_fields": `["content"]`, "stop_token_ids": `[2]`, "n_predict": `5`, "guided_decoding_backend": `"xgrammar"`,
		"guided_whitespace_pattern": `" "`, "structural_tag": `"{}"`, "use_beam_search": `true`, "length_penalty": `0.5`,
		"include_stop_str_in_output": `true`, "spaces_between_special_tokens": `false`, "skip_special_tokens": `false`,
		"prompt_logprobs": `2`, "truncate_prompt_tokens": `10`, "allowed_token_ids": `[1]`, "bad_words": `["x"]`,
		"logits_processors": `["x"]`, "priority": `1`, "return_tokens_as_token_ids": `true`,
	} {
		refuse(every, field, value, "")
	}
	for field, values := range map[string][2]string{
		"functions": {`[{"name":"f"}]`, `[]`}, "function_call": {`"auto"`, `"none"`},
		"audio": {`{"voice":"alloy","format":"wav"}`, ``}, "modalities": {`["text","audio"]`, `["text"]`},
		"prediction": {`{"type":"content","content":"x"}`, ``}, "store": {`true`, `false`}, "metadata": {`{"a":"b"}`, `{}`},
		"service_tier": {`"flex"`, `"auto"`}, "reasoning_effort": {`"low"`, ``}, "web_search_options": {`{"search_context_size":"low"}`, ``},
		"echo": {`true`, `false`}, "add_generation_prompt": {`false`, `true`}, "continue_final_message": {`true`, `false`},
		"chat_template": {`"{{ x }}"`, ``}, "chat_template_kwargs": {`{"enable_thinking":false}`, `{}`}, "documents": {`[{"text":"x"}]`, `[]`},
	} {
		refuse([]string{chatPath}, field, values[0], values[1])
	}
	on(cmplPath, fieldCase{field: "best_of", value: `2`, check: func(t *testing.T, r inference.GenerateRequest) {
		if !r.Logprobs {
			t.Error("best_of candidates are ranked without logprobs")
		}
	}})
	on(cmplPath, fieldCase{field: "best_of", value: `1`, check: ok})
	on(cmplPath, fieldCase{field: "best_of", value: `0`, refused: true})
	return cases
}

// body is a minimal valid request for path with field set to value.
func fieldBody(path, field, value string) string {
	base := map[string]string{
		chatPath: `"messages":[{"role":"user","content":"hi"}]`,
		cmplPath: `"prompt":"hi"`,
		genPath:  `"prompt":"hi"`,
	}[path]
	if field == "messages" || field == "prompt" {
		return "{" + `"` + field + `":` + value + "}"
	}
	return "{" + base + `,"` + field + `":` + value + "}"
}

func TestKnownFields(t *testing.T) {
	for _, tc := range fieldCases() {
		name := strings.TrimPrefix(tc.path, "/") + " " + tc.field + "=" + tc.value
		t.Run(name, func(t *testing.T) {
			ts, fake := serve(t, Config{})
			resp := do(t, ts, "POST", tc.path, fieldBody(tc.path, tc.field, tc.value))
			if tc.refused {
				param := tc.param
				if param == "" {
					param = tc.field
				}
				e := checkError(t, resp, 400, param, "")
				if e.Error.Message == "" {
					t.Error("refusal without a message")
				}
				return
			}
			if resp.status != 200 {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			tc.check(t, fake.lastRequest(t))
		})
	}
}

// Every field the decoders know and every refused field has a case in
// fieldCases, so a field added to either without a decision fails here.
func TestKnownFieldsAreAllSpecified(t *testing.T) {
	specified := map[string]bool{}
	for _, c := range fieldCases() {
		specified[c.path+" "+c.field] = true
	}
	known := map[string][]string{} // path → fields
	tags := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			if tag := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]; tag != "" {
				out = append(out, tag)
			}
		}
		return out
	}
	common := tags(options{})
	known[chatPath] = append(append([]string{}, common...), tags(chatRequest{})...)
	known[cmplPath] = append(append([]string{}, common...), tags(completionRequest{})...)
	known[genPath] = append(append([]string{}, common...), tags(generateRequest{})...)
	for path, rt := range map[string]route{chatPath: routeChat, cmplPath: routeCompletions, genPath: routeGenerate} {
		for _, table := range refusals(rt) {
			for f := range table {
				known[path] = append(known[path], f)
			}
		}
	}
	var missing []string
	for path, fields := range known {
		for _, f := range fields {
			if !specified[path+" "+f] {
				missing = append(missing, path+" "+f)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("known fields without a case in fieldCases:\n%s", strings.Join(missing, "\n"))
	}
	// The spec's own cases must name real fields of their route.
	for key := range specified {
		path, field, _ := strings.Cut(key, " ")
		found := false
		for _, f := range known[path] {
			found = found || f == field
		}
		if !found {
			t.Errorf("case %s names a field the route does not know", key)
		}
	}
}

// A key given twice is refused wherever it is; encoding/json would keep
// the last one silently.
func TestDuplicateKeys(t *testing.T) {
	for _, tc := range []struct{ path, body, param string }{
		{genPath, `{"prompt":"a","prompt":"b"}`, "prompt"},
		{cmplPath, `{"prompt":"a","max_tokens":3,"max_tokens":900}`, "max_tokens"},
		{chatPath, `{"messages":[{"role":"user","content":"a","role":"system"}]}`, "messages.role"},
		{chatPath, `{"messages":[{"role":"user","content":"a"}],"response_format":{"type":"json_object","type":"text"}}`, "response_format.type"},
		{"/tokenize", `{"text":"a","text":"b"}`, "text"},
	} {
		ts, _ := serve(t, Config{})
		checkError(t, do(t, ts, "POST", tc.path, tc.body), 400, tc.param, "")
	}
	// The same key in two different objects is fine.
	ts, _ := serve(t, Config{})
	if resp := do(t, ts, "POST", chatPath, `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`); resp.status != 200 {
		t.Errorf("distinct objects with the same keys: %d %s", resp.status, resp.body)
	}
}
