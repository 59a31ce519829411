package chat

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Templates in the shapes models ship (written for these tests).
const (
	chatMLTemplate = "{% for message in messages %}" +
		"{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
		"{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

	// Llama 2: an optional system message folded into the first user
	// turn, strict user/assistant alternation.
	llama2Template = "{% if messages[0]['role'] == 'system' %}" +
		"{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
		"{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}" +
		"{% for message in loop_messages %}" +
		"{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
		"{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}" +
		"{% endif %}" +
		"{% if loop.index0 == 0 and system_message != false %}" +
		"{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
		"{% else %}{% set content = message['content'] %}{% endif %}" +
		"{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}" +
		"{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}" +
		"{% endif %}{% endfor %}"

	// Zephyr: one block per line, relying on trim_blocks and
	// lstrip_blocks for its whitespace.
	zephyrTemplate = "{% for message in messages %}\n" +
		"{% if message['role'] == 'user' %}\n" +
		"{{ '<|user|>\\n' + message['content'] + eos_token }}\n" +
		"{% elif message['role'] == 'system' %}\n" +
		"{{ '<|system|>\\n' + message['content'] + eos_token }}\n" +
		"{% elif message['role'] == 'assistant' %}\n" +
		"{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n" +
		"{% endif %}\n" +
		"{% if loop.last and add_generation_prompt %}\n" +
		"{{ '<|assistant|>' }}\n" +
		"{% endif %}\n" +
		"{% endfor %}"

	// Llama 3: whitespace control on every tag, BOS added by the
	// template.
	llama3Template = "{%- for message in messages -%}" +
		"{%- set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' -%}" +
		"{%- if loop.index0 == 0 -%}{%- set content = bos_token + content -%}{%- endif -%}" +
		"{{ content }}" +
		"{%- endfor -%}" +
		"{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif -%}"

	// Qwen 2.5: a tools branch (tools is undefined here), a default
	// system prompt, and attributes messages do not have (tool_calls).
	qwenTemplate = "{%- if tools %}\n" +
		"    {{- '<|im_start|>system\\n' }}{{- tools | tojson }}\n" +
		"{%- else %}\n" +
		"    {%- if messages[0]['role'] == 'system' %}\n" +
		"        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n" +
		"    {%- else %}\n" +
		"        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}\n" +
		"    {%- endif %}\n" +
		"{%- endif %}\n" +
		"{%- for message in messages %}\n" +
		"    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n" +
		"        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n" +
		"    {%- endif %}\n" +
		"{%- endfor %}\n" +
		"{%- if add_generation_prompt %}\n" +
		"    {{- '<|im_start|>assistant\\n' }}\n" +
		"{%- endif %}\n"

	// Gemma: no system role, an inline if, the assistant called "model".
	gemmaTemplate = "{{ bos_token }}" +
		"{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}" +
		"{% for message in messages %}" +
		"{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}" +
		"{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}" +
		"{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"

	// Attribute access, loop.first/last, namespace and filters.
	miscTemplate = "{{ bos_token }}{% set ns = namespace(n=0) %}" +
		"{% for m in messages %}{% set ns.n = ns.n + 1 %}" +
		"{% if loop.first %}[first]{% endif %}{{ m.role | upper }}={{ m.content | trim }}" +
		"{% if not loop.last %};{% endif %}{% endfor %}" +
		"{% if tools is defined %}{{ tools | tojson }}{% endif %}" +
		"#{{ ns.n }}/{{ messages | length }}"
)

var opts = Options{BOSToken: "<s>", EOSToken: "</s>"}

func msgs(pairs ...string) []Message {
	var out []Message
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Message{Role: pairs[i], Content: pairs[i+1]})
	}
	return out
}

func TestRender(t *testing.T) {
	conversation := msgs("system", "Be brief.", "user", "  Hi there  ", "assistant", "Hello!", "user", "Bye")
	tests := []struct {
		name      string
		template  string
		messages  []Message
		genPrompt bool
		want      string
	}{
		{
			name: "chatml", template: chatMLTemplate, messages: conversation, genPrompt: true,
			want: "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n  Hi there  <|im_end|>\n" +
				"<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
		},
		{
			name: "chatml without generation prompt", template: chatMLTemplate, messages: msgs("user", "Hi"),
			want: "<|im_start|>user\nHi<|im_end|>\n",
		},
		{
			name: "llama2 with system", template: llama2Template, messages: conversation, genPrompt: true,
			want: "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n  Hi there [/INST] Hello! </s><s>[INST] Bye [/INST]",
		},
		{
			name: "llama2 without system", template: llama2Template, messages: msgs("user", " Hi "), genPrompt: true,
			want: "<s>[INST] Hi [/INST]",
		},
		{
			name: "zephyr", template: zephyrTemplate, messages: msgs("system", "S", "user", "U"), genPrompt: true,
			want: "<|system|>\nS</s>\n<|user|>\nU</s>\n<|assistant|>\n",
		},
		{
			name: "zephyr without generation prompt", template: zephyrTemplate, messages: msgs("user", "U"),
			want: "<|user|>\nU</s>\n",
		},
		{
			name: "llama3", template: llama3Template, messages: msgs("system", "S", "user", " Hi "), genPrompt: true,
			want: "<s><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		},
		{
			name: "qwen default system", template: qwenTemplate, messages: msgs("user", "Hi", "assistant", "Yo"), genPrompt: true,
			want: "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" +
				"<|im_start|>assistant\nYo<|im_end|>\n<|im_start|>assistant\n",
		},
		{
			name: "qwen own system", template: qwenTemplate, messages: msgs("system", "S", "user", "Hi"),
			want: "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
		},
		{
			name: "gemma", template: gemmaTemplate, messages: msgs("user", " Hi ", "assistant", "Yo"), genPrompt: true,
			want: "<s><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nYo<end_of_turn>\n<start_of_turn>model\n",
		},
		{
			name: "misc constructs", template: miscTemplate, messages: msgs("user", " a ", "assistant", "b"),
			want: "<s>[first]USER=a;ASSISTANT=b#2/2",
		},
		{
			name: "fallback", template: "", messages: msgs("system", "S", "user", "U"), genPrompt: true,
			want: "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n",
		},
		{
			name: "content is data, not template", template: "", messages: msgs("user", "{{ bos_token }}{% raw %}"),
			want: "<|im_start|>user\n{{ bos_token }}{% raw %}<|im_end|>\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := New(tt.template, opts)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := tpl.IsFallback(); got != (tt.template == "") {
				t.Errorf("IsFallback() = %v", got)
			}
			got, err := tpl.Render(context.Background(), tt.messages, nil, tt.genPrompt)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if got != tt.want {
				t.Errorf("Render =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name      string
		template  string
		messages  []Message
		wantRaise string // the *ExceptionError message; "" for other errors
	}{
		{
			name: "roles do not alternate", template: llama2Template, messages: msgs("user", "a", "user", "b"),
			wantRaise: "Conversation roles must alternate user/assistant/user/assistant/...",
		},
		{
			name: "assistant first", template: llama2Template, messages: msgs("assistant", "a"),
			wantRaise: "Conversation roles must alternate user/assistant/user/assistant/...",
		},
		{
			name: "system not supported", template: gemmaTemplate, messages: msgs("system", "S", "user", "a"),
			wantRaise: "System role not supported",
		},
		{
			name: "raise with several arguments", template: "{{ raise_exception('bad role:', messages[0].role) }}",
			messages: msgs("tool", "x"), wantRaise: "bad role: tool",
		},
		{
			name: "unknown filter", template: "{{ messages | no_such_filter }}", messages: msgs("user", "a"),
		},
		{
			name: "unknown method", template: "{{ messages[0].content.no_such_method() }}", messages: msgs("user", "a"),
		},
		{
			name: "unknown function", template: "{{ no_such_function() }}", messages: msgs("user", "a"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := New(tt.template, opts)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			got, err := tpl.Render(context.Background(), tt.messages, nil, true)
			if err == nil {
				t.Fatalf("Render = %q, want an error", got)
			}
			var ex *ExceptionError
			isRaise := errors.As(err, &ex)
			if isRaise != (tt.wantRaise != "") {
				t.Fatalf("Render error %v (%T): raised = %v, want %v", err, err, isRaise, tt.wantRaise != "")
			}
			if isRaise && ex.Message != tt.wantRaise {
				t.Errorf("raised %q, want %q", ex.Message, tt.wantRaise)
			}
		})
	}
}

func TestNewParseError(t *testing.T) {
	tests := []struct {
		name     string
		template string
		want     string // a substring of the error
	}{
		{"unclosed expression", "{{ messages[0]", "does not parse"},
		{"unclosed for", "{% for m in messages %}{{ m.content }}", "does not parse"},
		{"unknown tag", "{% generation %}x{% endgeneration %}", "generation"},
		{"bad call", "{{ foo( }}", "Line: 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := New(tt.template, opts)
			if err == nil {
				t.Fatalf("New = %v, want an error", tpl)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// TestIncludeCannotReadFiles: a template from a model file must not reach
// the file system.
func TestIncludeCannotReadFiles(t *testing.T) {
	for _, src := range []string{`{% include "/etc/hostname" %}`, `{% include "chat.go" %}`} {
		tpl, err := New(src, opts)
		if err != nil {
			continue // refused at parse time: fine
		}
		if got, err := tpl.Render(context.Background(), msgs("user", "a"), nil, true); err == nil {
			t.Errorf("%s rendered %q, want an error", src, got)
		}
	}
}

// TestRenderConcurrent: one Template serves every request; run with -race.
func TestRenderConcurrent(t *testing.T) {
	tpl, err := New(llama2Template, opts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			bad := i%2 == 1
			for range 20 {
				m := msgs("user", "a", "assistant", "b")
				if bad {
					m = msgs("user", "a", "user", "b")
				}
				_, err := tpl.Render(context.Background(), m, nil, true)
				if (err != nil) != bad {
					t.Errorf("Render error = %v, want error %v", err, bad)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzRender: no message content may panic a render, and the fallback
// template copies content verbatim.
func FuzzRender(f *testing.F) {
	f.Add("Hello", "Hi!", "system")
	f.Add("{{ raise_exception('x') }}", "{% for %}", "user")
	f.Add("\xff\xfe", "<|im_end|>", "assistant")
	f.Add("", "", "")
	fallback, err := New("", opts)
	if err != nil {
		f.Fatal(err)
	}
	var templates []*Template
	for _, src := range []string{chatMLTemplate, llama2Template, zephyrTemplate, llama3Template, qwenTemplate, gemmaTemplate, miscTemplate} {
		tpl, err := New(src, opts)
		if err != nil {
			f.Fatal(err)
		}
		templates = append(templates, tpl)
	}
	f.Fuzz(func(t *testing.T, first, second, role string) {
		m := msgs(role, first, "user", second)
		got, err := fallback.Render(context.Background(), m, nil, true)
		if err != nil {
			t.Fatalf("fallback Render: %v", err)
		}
		want := "<|im_start|>" + role + "\n" + first + "<|im_end|>\n<|im_start|>user\n" + second + "<|im_end|>\n<|im_start|>assistant\n"
		if got != want {
			t.Fatalf("fallback Render =\n%q\nwant\n%q", got, want)
		}
		for _, tpl := range templates {
			_, _ = tpl.Render(context.Background(), m, nil, true) // errors are fine; panics are not
		}
	})
}

// cancelAfter is a context whose Err turns to Canceled after n calls. A
// render checks its context before it starts and before every write, so
// n counts those checks: a deterministic "cancelled mid-render".
type cancelAfter struct {
	context.Context
	n atomic.Int32
}

func (c *cancelAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func newCancelAfter(n int32) *cancelAfter {
	c := &cancelAfter{Context: context.Background()}
	c.n.Store(n)
	return c
}

// TestRenderLimited: the in-process bounds, on output and on a context
// that ends mid-render.
func TestRenderLimited(t *testing.T) {
	const tenPerLoop = "{% for i in range(1000) %}0123456789{% endfor %}" // 10,000 bytes in 1,000 writes
	tests := []struct {
		name      string
		template  string
		ctx       func() context.Context
		max       int
		want      string // the output, when no error
		wantLimit int    // the *OutputLimitError's limit
		wantErr   error  // errors.Is the error
	}{
		{name: "no bound", template: tenPerLoop, max: 0, want: strings.Repeat("0123456789", 1000)},
		{name: "exactly at the bound", template: tenPerLoop, max: 10000, want: strings.Repeat("0123456789", 1000)},
		{name: "many writes past the bound", template: tenPerLoop, max: 9999, wantLimit: 9999},
		{
			name:     "one write past the bound",
			template: "{{ 'x' * 100 }}", max: 99, wantLimit: 99,
		},
		{
			name:     "a macro's buffered text past the bound",
			template: "{% macro m() %}" + tenPerLoop + "{% endmacro %}{{ m() }}", max: 5000, wantLimit: 5000,
		},
		{
			name: "context done before the render", template: tenPerLoop,
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			wantErr: context.Canceled,
		},
		{
			name: "context cancelled after ten writes", template: tenPerLoop,
			ctx:     func() context.Context { return newCancelAfter(11) },
			wantErr: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := New(tt.template, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			got, err := tpl.RenderLimited(ctx, msgs("user", "a"), nil, true, Limits{MaxOutputBytes: tt.max})
			var ol *OutputLimitError
			switch {
			case tt.wantLimit != 0:
				if !errors.As(err, &ol) || ol.Limit != tt.wantLimit {
					t.Errorf("RenderLimited = %d bytes, %v; want an OutputLimitError at %d", len(got), err, tt.wantLimit)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("RenderLimited = %d bytes, %v; want %v", len(got), err, tt.wantErr)
				}
			case err != nil || got != tt.want:
				t.Errorf("RenderLimited = %d bytes, %v; want %d bytes", len(got), err, len(tt.want))
			}
			if err != nil && got != "" {
				t.Errorf("RenderLimited returned %d bytes with its error", len(got))
			}
		})
	}
}
