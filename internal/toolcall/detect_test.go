package toolcall

import "testing"

// Short excerpts of real chat templates, down to the parts that tell the
// families apart.
const (
	qwen25Template = `{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == "assistant" and message.tool_calls %}
        {%- for tool_call in message.tool_calls %}
            {{- '\n<tool_call>\n{"name": "' }}{{- tool_call.name }}{{- '", "arguments": ' }}{{- tool_call.arguments | tojson }}{{- '}\n</tool_call>' }}
        {%- endfor %}
    {%- endif %}
{%- endfor %}`

	hermes2ProTemplate = `{%- macro json_to_python_type(json_spec) %}{%- endmacro %}
{{- bos_token }}
{%- if tools is iterable and tools | length > 0 %}
{{- '<|im_start|>system
You are a function calling AI model. You are provided with function signatures within <tools></tools> XML tags.' }}
{%- for tool in tools %}{{- tool.function.name }}{%- endfor %}
{{- 'For each function call return a json object with function name and arguments within <tool_call></tool_call> XML tags as follows:
<tool_call>
' }}
{%- endif %}`

	// A Hermes fine-tune of Llama 3 keeps Llama's header tokens.
	hermesOnLlamaTemplate = `{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}
{%- for tool in tools %}{{ tool | tojson }}{% endfor %}
{{- '<tool_call>\n{"name": <function-name>, "parameters": <args-json-object>}\n</tool_call>' }}`

	llama31Template = `{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
{%- for t in tools %}{{- t | tojson(indent=4) }}{%- endfor %}
{%- if builtin_tools is defined and tool_call.name in builtin_tools %}
    {{- "<|python_tag|>" + tool_call.name + ".call(" }}
{%- endif %}`

	// Llama 3.2's template writes JSON calls without <|python_tag|>.
	llama32Template = `{{- "<|start_header_id|>user<|end_header_id|>\n\n" -}}
{{- "Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n" }}
{%- for t in tools %}{{- t | tojson(indent=4) }}{%- endfor %}
{{- '{"name": "' + tool_call.name + '", ' }}
{{- '"parameters": ' }}
{{- tool_call.arguments | tojson }}`

	// Llama 3 (3.0) has no tool calling at all.
	llama30Template = `{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}`

	mistralV3Template = `{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}{{- tool|tojson }}{%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
        {%- endif %}
        {{- "[INST] " + message["content"] + "[/INST]" }}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
    {%- endif %}
{%- endfor %}`

	mistralSmall32Template = `{%- if tools is defined and tools %}{{- '[AVAILABLE_TOOLS]' + tools|tojson + '[/AVAILABLE_TOOLS]' }}{%- endif %}
{%- for tool in message['tool_calls'] %}
    {{- '[TOOL_CALLS]' + tool['function']['name'] + '[ARGS]' + tool['function']['arguments']|tojson }}
{%- endfor %}`

	chatMLTemplate = "{% for message in messages %}" +
		"{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
		"{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

	gemmaTemplate = `{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}`
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name     string
		template string
		want     Format
	}{
		{"qwen 2.5", qwen25Template, Hermes},
		{"hermes 2 pro", hermes2ProTemplate, Hermes},
		{"hermes on llama 3", hermesOnLlamaTemplate, Hermes},
		{"llama 3.1", llama31Template, Llama3},
		{"llama 3.2", llama32Template, Llama3},
		{"python tag alone", `{{- "<|python_tag|>" }}`, Llama3},
		{"llama 3.0", llama30Template, Generic},
		{"mistral v3", mistralV3Template, Mistral},
		{"mistral small 3.2", mistralSmall32Template, Mistral},
		{"chatml", chatMLTemplate, Generic},
		{"gemma", gemmaTemplate, Generic},
		{"empty", "", Generic},
	}
	for _, tt := range tests {
		if got := Detect(tt.template); got != tt.want {
			t.Errorf("%s: Detect = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestRendersTools(t *testing.T) {
	tests := []struct {
		name     string
		template string
		want     bool
	}{
		{"qwen 2.5", qwen25Template, true},
		{"hermes 2 pro", hermes2ProTemplate, true},
		{"llama 3.1", llama31Template, true},
		{"llama 3.2", llama32Template, true},
		{"mistral v3", mistralV3Template, true},
		{"mistral small 3.2", mistralSmall32Template, true},
		{"llama 3.0", llama30Template, false},
		{"chatml", chatMLTemplate, false},
		{"gemma", gemmaTemplate, false},
		{"set from custom_tools", `{%- set tools = custom_tools %}`, true},
		{"defined test", `{% if tools is defined %}x{% endif %}`, true},
		{"the word in the text", `You can use tools. {{ messages[0]['content'] }}`, false},
		{"the word in a string", `{{ 'Use tools wisely' }}{{ "tools" }}`, false},
		{"tool_calls only", `{% if message.tool_calls %}{% for tool_call in message.tool_calls %}{{ tool_call.name }}{% endfor %}{% endif %}`, false},
		{"an attribute", `{{ message.tools }}`, false},
		{"a longer name", `{% if builtin_tools %}{{ custom_tools }}{% endif %}`, false},
		{"in a comment", `{# render tools here #}{{ x }}`, false},
		{"a filter argument", `{{ tools|tojson }}`, true},
		{"no spaces", `{%if tools%}{%endif%}`, true},
	}
	for _, tt := range tests {
		if got := RendersTools(tt.template); got != tt.want {
			t.Errorf("%s: RendersTools = %v, want %v", tt.name, got, tt.want)
		}
	}
}
