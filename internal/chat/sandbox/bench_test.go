package sandbox

import (
	"testing"

	"github.com/lumenllm/lumen/internal/chat"
)

// benchTemplate is a template of the usual shape and size (Qwen 2.5's
// without tools).
const benchTemplate = "{%- if messages[0]['role'] == 'system' %}\n" +
	"    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n" +
	"{%- else %}\n" +
	"    {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}\n" +
	"{%- endif %}\n" +
	"{%- for message in messages %}\n" +
	"    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n" +
	"        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n" +
	"    {%- endif %}\n" +
	"{%- endfor %}\n" +
	"{%- if add_generation_prompt %}\n" +
	"    {{- '<|im_start|>assistant\\n' }}\n" +
	"{%- endif %}\n"

func benchConversation() []chat.Message {
	return []chat.Message{
		{Role: "system", Content: "You are a helpful assistant who answers briefly."},
		{Role: "user", Content: "What is the capital of France?"},
		{Role: "assistant", Content: "Paris."},
		{Role: "user", Content: "And of Italy? Explain how you know, in two or three sentences."},
	}
}

// BenchmarkRender: the sandbox's cost is the difference between
// in-process and sandboxed, the round trip to a warm worker (pipes, gob
// coding, two context switches). The trivial template does next to no
// rendering, so its sandboxed figure is almost all round trip.
func BenchmarkRender(b *testing.B) {
	msgs := benchConversation()
	for _, tc := range []struct{ name, src string }{
		{"qwen", benchTemplate},
		{"trivial", "{{ messages | length }}"},
	} {
		b.Run(tc.name+"/in-process", func(b *testing.B) {
			tpl, err := chat.New(tc.src, opts)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := tpl.Render(b.Context(), msgs, nil, true); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/sandboxed", func(b *testing.B) {
			r, _ := newRenderer(b, tc.src, testConfig(b))
			if _, err := r.Render(b.Context(), msgs, nil, true); err != nil { // start the worker
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := r.Render(b.Context(), msgs, nil, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
