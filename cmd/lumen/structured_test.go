package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/lumenllm/lumen/internal/synth"
)

// Structured output and tool calls through the real server and llama.cpp.
// Random weights write anything; the grammar must make every run valid.

// sharedModelPath is the committed Llama-2 test model (real tokenizer).
func sharedModelPath(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LUMEN_TEST_MODELS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "testdata", "models")
	}
	p := filepath.Join(dir, "llama-2-tiny-random.gguf")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test model missing (it is committed in testdata/models): %v", err)
	}
	return p
}

// synthWithTemplate generates the tiny model with a chat template of
// another family ("" for the default ChatML), for the tool-call formats,
// with room for structuredCtx tokens.
func synthWithTemplate(t *testing.T, template string) string {
	t.Helper()
	cfg, err := synth.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ChatTemplate = template
	cfg.Context = structuredCtx
	p := filepath.Join(t.TempDir(), "tiny-tools.gguf")
	if err := synth.WriteFile(p, cfg, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

func compileSchema(t *testing.T, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatalf("schema %s: %v", schema, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("compile %s: %v", schema, err)
	}
	return s
}

func validates(s *jsonschema.Schema, text string) error {
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(inst)
}

// structuredCtx is the context of the structured-output servers: room
// for 4 requests of a tool-laden prompt (~900 tokens of the tiny model's
// byte vocabulary) and their output.
const structuredCtx = 8192

// startStructured serves model ("" for the tiny model with ChatML) with
// room for long tool prompts.
func startStructured(t *testing.T, model string, extra ...string) string {
	t.Helper()
	if model == "" {
		model = synthWithTemplate(t, "")
	}
	httpAddr, _ := startServe(t, append([]string{"--model", model, "--ctx-size", fmt.Sprint(structuredCtx), "--parallel", "4"}, extra...)...)
	return "http://" + httpAddr
}

// postJSON posts body and decodes a 200 reply into out. Safe to call from
// any goroutine: failures are returned.
func postJSON(url, body string, out any) error {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST %s: status %d: %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decoding %s: %v", b, err)
	}
	return nil
}

// mustPost is postJSON for the test's own goroutine.
func mustPost(t *testing.T, url, body string, out any) {
	t.Helper()
	if err := postJSON(url, body, out); err != nil {
		t.Fatal(err)
	}
}

// report fails t with the count of errors and the first few.
func report(t *testing.T, errs <-chan error, runs int) {
	t.Helper()
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		t.Errorf("%d of %d runs failed; first: %v", len(all), runs, errors.Join(all[:min(3, len(all))]...))
	}
}

type chatReply struct {
	Choices []struct {
		Message struct {
			Content   *string `json:"content"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

type completionReply struct {
	Choices []struct {
		Text         string `json:"text"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
}

// boundedSchemas bound every string, array and number, so a grammar run
// always ends by itself well within max_tokens.
var boundedSchemas = []struct{ name, schema string }{
	{"flat object", `{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":150},"ok":{"type":"boolean"},"kind":{"enum":["cat","dog",3,null]}},"required":["name","age","ok","kind"],"additionalProperties":false}`},
	{"nested and arrays", `{"type":"object","properties":{"user":{"type":"object","properties":{"id":{"type":"integer","minimum":1,"maximum":99},"tags":{"type":"array","items":{"type":"string","maxLength":6},"minItems":1,"maxItems":3}},"required":["id","tags"]}},"required":["user"]}`},
	{"optional properties", `{"type":"object","properties":{"a":{"type":"string","maxLength":4},"b":{"type":"integer","minimum":-10,"maximum":10},"f":{"type":"number"},"c":{"const":"fixed"}}}`},
	{"anyOf", `{"anyOf":[{"type":"string","maxLength":5},{"type":"integer","minimum":0,"maximum":9},{"type":"null"}]}`},
	{"refs", `{"$defs":{"point":{"type":"object","properties":{"x":{"type":"integer","minimum":-9,"maximum":9},"y":{"type":"integer","minimum":-9,"maximum":9}},"required":["x","y"],"additionalProperties":false}},"type":"array","items":{"$ref":"#/$defs/point"},"maxItems":3}`},
	{"pattern and formats", `{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{2}-[0-9]{3}$"},"day":{"type":"string","format":"date"},"id":{"type":"string","format":"uuid"}},"required":["code","day","id"]}`},
	{"tuple", `{"type":"array","prefixItems":[{"type":"boolean"},{"type":"string","maxLength":3}],"items":false}`},
}

func TestStructuredOutputAlwaysValid(t *testing.T) {
	runs := 50
	if testing.Short() {
		runs = 5
	}
	for _, m := range []struct{ name, path string }{{"synth", ""}, {"shared", sharedModelPath(t)}} {
		t.Run(m.name, func(t *testing.T) {
			base := startStructured(t, m.path)
			for _, sc := range boundedSchemas {
				t.Run(sc.name, func(t *testing.T) {
					schema := compileSchema(t, sc.schema)
					var wg sync.WaitGroup
					errs := make(chan error, runs)
					for seed := 1; seed <= runs; seed++ {
						wg.Go(func() {
							var r chatReply
							body := fmt.Sprintf(`{"messages":[{"role":"user","content":"Give me JSON."}],"temperature":1,"seed":%d,"max_tokens":400,`+
								`"response_format":{"type":"json_schema","json_schema":{"name":"t","schema":%s,"strict":true}}}`, seed, sc.schema)
							if err := postJSON(base+"/v1/chat/completions", body, &r); err != nil {
								errs <- err
								return
							}
							c := r.Choices[0]
							if c.FinishReason != "stop" || c.Message.Content == nil {
								errs <- fmt.Errorf("seed %d: finish %q (a bounded grammar must end by itself): %v", seed, c.FinishReason, c.Message.Content)
								return
							}
							if err := validates(schema, *c.Message.Content); err != nil {
								errs <- fmt.Errorf("seed %d: %q does not validate: %v", seed, *c.Message.Content, err)
							}
						})
					}
					wg.Wait()
					close(errs)
					report(t, errs, runs)
				})
			}
		})
	}
}

// jsonPrefix reports whether text is a prefix of some JSON document.
func jsonPrefix(text string) error {
	dec := json.NewDecoder(strings.NewReader(text))
	for {
		_, err := dec.Token()
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		}
		return err
	}
}

// Unbounded strings and arrays rarely end under random weights: a run
// cut by max_tokens says "length" and is a valid prefix; one that ended
// by itself validates.
func TestStructuredOutputUnboundedIsAPrefix(t *testing.T) {
	base := startStructured(t, "")
	const schemaText = `{"type":"object","properties":{"story":{"type":"string"},"words":{"type":"array","items":{"type":"string"}}},"required":["story","words"]}`
	schema := compileSchema(t, schemaText)
	for seed := 1; seed <= 20; seed++ {
		var r completionReply
		mustPost(t, base+"/v1/completions", fmt.Sprintf(`{"prompt":"JSON:","temperature":1,"seed":%d,"max_tokens":24,"json_schema":%s}`, seed, schemaText), &r)
		c := r.Choices[0]
		switch c.FinishReason {
		case "length":
			if err := jsonPrefix(c.Text); err != nil {
				t.Errorf("seed %d: cut output %q is not a JSON prefix: %v", seed, c.Text, err)
			}
		case "stop":
			if err := validates(schema, c.Text); err != nil {
				t.Errorf("seed %d: %q does not validate: %v", seed, c.Text, err)
			}
		default:
			t.Errorf("seed %d: finish %q", seed, c.FinishReason)
		}
	}
}

// Other constraints: json_object, guided_choice, guided_regex, grammar.
func TestOtherConstraints(t *testing.T) {
	url := startStructured(t, "") + "/v1/completions"
	for seed := 1; seed <= 10; seed++ {
		var r completionReply
		mustPost(t, url, fmt.Sprintf(`{"prompt":"Pick:","temperature":1,"seed":%d,"max_tokens":20,"guided_choice":["red","green","blue \"sky\""]}`, seed), &r)
		if got := r.Choices[0].Text; got != "red" && got != "green" && got != `blue "sky"` {
			t.Errorf("guided_choice: %q", got)
		}
		mustPost(t, url, fmt.Sprintf(`{"prompt":"Code:","temperature":1,"seed":%d,"max_tokens":20,"guided_regex":"[A-F]{2}[0-9]{1,3}"}`, seed), &r)
		if got := r.Choices[0].Text; !regexpMatch(`^[A-F]{2}[0-9]{1,3}$`, got) || r.Choices[0].FinishReason != "stop" {
			t.Errorf("guided_regex: %q (%s)", got, r.Choices[0].FinishReason)
		}
		mustPost(t, url, fmt.Sprintf(`{"prompt":"Say:","temperature":1,"seed":%d,"max_tokens":20,"grammar":"root ::= (\"yes\" | \"no\") \"!\""}`, seed), &r)
		if got := r.Choices[0].Text; got != "yes!" && got != "no!" {
			t.Errorf("grammar: %q", got)
		}
		mustPost(t, url, fmt.Sprintf(`{"prompt":"JSON:","temperature":1,"seed":%d,"max_tokens":40,"response_format":{"type":"json_object"}}`, seed), &r)
		if c := r.Choices[0]; c.FinishReason == "stop" {
			var obj map[string]any
			if err := json.Unmarshal([]byte(c.Text), &obj); err != nil {
				t.Errorf("json_object: %q: %v", c.Text, err)
			}
		} else if err := jsonPrefix(c.Text); err != nil || !strings.HasPrefix(strings.TrimSpace(c.Text), "{") {
			t.Errorf("json_object cut: %q is not the start of an object (%v)", c.Text, err)
		}
	}
}

// Bad grammars and schemas are 400s naming the field, with llama.cpp's
// reason for grammars.
func TestConstraintErrors(t *testing.T) {
	base := startStructured(t, "")
	for _, tc := range []struct{ path, body, param, reason string }{
		{"/v1/completions", `{"prompt":"a","grammar":"root ::= foo"}`, "grammar", "Undefined rule identifier 'foo'"},
		{"/generate", `{"prompt":"a","grammar":"root ::= \"x"}`, "grammar", "unexpected end of input"},
		{"/v1/completions", `{"prompt":"a","guided_regex":"(unclosed"}`, "guided_regex", ""},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"$ref":"#/$defs/missing"}}}}`, "response_format.json_schema.schema", ""},
		{"/v1/completions", `{"prompt":"a","grammar":"root ::= \"a\"","guided_json":{}}`, "guided_json", ""},
		{"/v1/completions", `{"prompt":"a","json_schema":{"type":"number","maximum":3}}`, "json_schema", "only supported on integers"},
		{"/v1/completions", `{"prompt":"a","logit_bias":{"99999999":5}}`, "logit_bias", ""},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, "tool_choice", ""},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"bad name!"}}]}`, "tools[0].function.name", ""},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"tool_choice":"required"}`, "tool_choice", ""},
	} {
		resp, err := http.Post(base+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Param   *string `json:"param"`
			} `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 400 || e.Error.Param == nil || *e.Error.Param != tc.param || !strings.Contains(e.Error.Message, tc.reason) {
			t.Errorf("%s %s: status %d, param %v, message %q; want 400, %s, %q", tc.path, tc.body, resp.StatusCode, e.Error.Param, e.Error.Message, tc.param, tc.reason)
		}
	}
}

// Templates of the tool-call families, small but real in what matters:
// they render tools and tool calls the way the family's models expect.
var toolTemplates = map[string]string{
	// ChatML without tool support: Lumen describes the tools in a system
	// message and uses the generic JSON format.
	"generic": "",
	"hermes": `{%- if tools %}{{ '<|im_start|>system\n# Tools\n<tools>' }}{% for tool in tools %}{{ tool | tojson }}{% endfor %}` +
		`{{ '</tools>\nCall a function with <tool_call>\n{"name": <name>, "arguments": <args>}\n</tool_call><|im_end|>\n' }}{%- endif %}` +
		`{%- for message in messages %}{%- if message.role == "tool" %}{{ '<|im_start|>user\n<tool_response>\n' + message.content + '\n</tool_response><|im_end|>\n' }}` +
		`{%- else %}{{ '<|im_start|>' + message.role + '\n' + message.content }}{%- if message.tool_calls is defined %}{%- for tc in message.tool_calls %}` +
		`{{ '<tool_call>\n{"name": "' + tc.function.name + '", "arguments": ' + (tc.function.arguments | tojson) + '}\n</tool_call>' }}{%- endfor %}{%- endif %}{{ '<|im_end|>\n' }}{%- endif %}{%- endfor %}` +
		`{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{%- endif %}`,
	"mistral": `{%- for message in messages %}{%- if message.role == "user" %}{%- if tools and loop.last %}{{ '[AVAILABLE_TOOLS]' + (tools | tojson) + '[/AVAILABLE_TOOLS]' }}{%- endif %}` +
		`{{ '[INST]' + message.content + '[/INST]' }}{%- elif message.role == "assistant" %}{%- if message.tool_calls is defined %}{{ '[TOOL_CALLS][' }}` +
		`{%- for tc in message.tool_calls %}{{ '{"name": "' + tc.function.name + '", "arguments": ' + (tc.function.arguments | tojson) + '}' }}{%- endfor %}{{ ']' }}` +
		`{%- else %}{{ message.content }}{%- endif %}{%- elif message.role == "tool" %}{{ '[TOOL_RESULTS]' + message.content + '[/TOOL_RESULTS]' }}{%- endif %}{%- endfor %}`,
	"llama3": `{{- bos_token }}{%- if tools %}{{ '<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nRespond with {"name": function name, "parameters": dict}.' }}` +
		`{%- for t in tools %}{{ t | tojson }}{%- endfor %}{{ '<|eot_id|>' }}{%- endif %}{%- for message in messages %}{%- if message.role == "tool" %}` +
		`{{ '<|start_header_id|>ipython<|end_header_id|>\n\n' + message.content + '<|eot_id|>' }}{%- else %}{{ '<|start_header_id|>' + message.role + '<|end_header_id|>\n\n' + message.content }}` +
		`{%- if message.tool_calls is defined %}{%- for tc in message.tool_calls %}{{ '{"name": "' + tc.function.name + '", "parameters": ' + (tc.function.arguments | tojson) + '}' }}{%- endfor %}{%- endif %}` +
		`{{ '<|eot_id|>' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}`,
}

const weatherParams = `{"type":"object","properties":{"city":{"type":"string","maxLength":10},"unit":{"enum":["c","f"]},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","unit"],"additionalProperties":false}`
const timeParams = `{"type":"object","properties":{"zone":{"type":"string","maxLength":6}},"required":["zone"],"additionalProperties":false}`

func toolsJSON() string {
	return `[{"type":"function","function":{"name":"get_weather","description":"Weather for a city","parameters":` + weatherParams + `}},` +
		`{"type":"function","function":{"name":"get_time","description":"Time in a zone","parameters":` + timeParams + `}}]`
}

// A history with an earlier call and its result, so templates render
// tool_calls and tool messages too.
const toolHistory = `[{"role":"user","content":"Weather in Oslo?"},` +
	`{"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\",\"unit\":\"c\"}"}}]},` +
	`{"role":"tool","tool_call_id":"call_1","content":"{\"temp\":3}"},{"role":"user","content":"And the time there?"}]`

func TestRequiredToolCallAlwaysParses(t *testing.T) {
	runs := 50
	if testing.Short() {
		runs = 5
	}
	params := map[string]*jsonschema.Schema{"get_weather": compileSchema(t, weatherParams), "get_time": compileSchema(t, timeParams)}
	for family, tmpl := range toolTemplates {
		t.Run(family, func(t *testing.T) {
			base := startStructured(t, synthWithTemplate(t, tmpl))
			for _, choice := range []string{`"required"`, `{"type":"function","function":{"name":"get_time"}}`} {
				var wg sync.WaitGroup
				errs := make(chan error, runs)
				for seed := 1; seed <= runs; seed++ {
					wg.Go(func() {
						var r chatReply
						body := fmt.Sprintf(`{"messages":%s,"tools":%s,"tool_choice":%s,"parallel_tool_calls":false,"temperature":1,"seed":%d,"max_tokens":300}`,
							toolHistory, toolsJSON(), choice, seed)
						if err := postJSON(base+"/v1/chat/completions", body, &r); err != nil {
							errs <- err
							return
						}
						c := r.Choices[0]
						if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 {
							errs <- fmt.Errorf("seed %d %s: finish %q, %d calls, content %v", seed, choice, c.FinishReason, len(c.Message.ToolCalls), c.Message.Content)
							return
						}
						call := c.Message.ToolCalls[0]
						schema, ok := params[call.Function.Name]
						switch {
						case !ok:
							errs <- fmt.Errorf("seed %d: call of undeclared %q", seed, call.Function.Name)
						case strings.Contains(choice, "get_time") && call.Function.Name != "get_time":
							errs <- fmt.Errorf("seed %d: named choice get_time, called %q", seed, call.Function.Name)
						case !strings.HasPrefix(call.ID, "call_") || call.Type != "function":
							errs <- fmt.Errorf("seed %d: call id %q type %q", seed, call.ID, call.Type)
						default:
							if err := validates(schema, call.Function.Arguments); err != nil {
								errs <- fmt.Errorf("seed %d: arguments %q: %v", seed, call.Function.Arguments, err)
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				report(t, errs, runs)
			}
		})
	}
}

// Streaming sends the call as delta.tool_calls with an index, then
// finish_reason tool_calls.
func TestToolCallStreaming(t *testing.T) {
	base := startStructured(t, synthWithTemplate(t, toolTemplates["hermes"]))
	body := fmt.Sprintf(`{"messages":[{"role":"user","content":"time?"}],"tools":%s,"tool_choice":"required","parallel_tool_calls":false,"temperature":1,"seed":7,"max_tokens":300,"stream":true}`, toolsJSON())
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var calls []map[string]any
	var finish, content string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		data := strings.TrimPrefix(line, "data: ")
		if data == "[DONE]" {
			done = true
			break
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content   *string          `json:"content"`
					ToolCalls []map[string]any `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatalf("chunk %s: %v", data, err)
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != nil {
				content += *c.Delta.Content
			}
			calls = append(calls, c.Delta.ToolCalls...)
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
	}
	if !done || finish != "tool_calls" || len(calls) != 1 || content != "" {
		t.Fatalf("stream: done %v, finish %q, calls %v, content %q", done, finish, calls, content)
	}
	fn, _ := calls[0]["function"].(map[string]any)
	if idx, _ := calls[0]["index"].(float64); idx != 0 || fn == nil || fn["name"] == nil || !json.Valid([]byte(fmt.Sprint(fn["arguments"]))) {
		t.Errorf("delta.tool_calls[0] = %v", calls[0])
	}
}

// Constrained and free requests batched together give what each gives
// alone.
func TestConstrainedBatchInvariance(t *testing.T) {
	url := startStructured(t, "", "--parallel", "8") + "/v1/completions"
	bodies := make([]string, 8)
	for i := range bodies {
		constraint := ""
		if i%2 == 0 {
			constraint = `,"json_schema":` + boundedSchemas[i/2%len(boundedSchemas)].schema
		}
		bodies[i] = fmt.Sprintf(`{"prompt":"Request %d says","temperature":1,"seed":%d,"max_tokens":48%s}`, i, i+1, constraint)
	}
	alone := make([]string, len(bodies))
	for i, b := range bodies {
		var r completionReply
		mustPost(t, url, b, &r)
		alone[i] = r.Choices[0].Text
	}
	together := make([]string, len(bodies))
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Go(func() {
			var r completionReply
			mustPost(t, url, b, &r)
			together[i] = r.Choices[0].Text
		})
	}
	wg.Wait()
	for i := range bodies {
		if alone[i] != together[i] {
			t.Errorf("request %d: alone %q, batched %q", i, alone[i], together[i])
		}
	}
}

func regexpMatch(pattern, s string) bool {
	return regexp.MustCompile(pattern).MatchString(s)
}
