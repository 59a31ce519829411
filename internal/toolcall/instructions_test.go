package toolcall

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestInstructions(t *testing.T) {
	tools := []Tool{
		{
			Name:        "get_weather",
			Description: "Weather for a city, in <units>.",
			Parameters:  json.RawMessage("{\n  \"type\": \"object\",\n  \"properties\": {\"city\": {\"type\": \"string\"}}\n}"),
		},
		{Name: "now"},
	}
	common := []string{
		"get_weather",
		"Weather for a city, in <units>.", // not HTML-escaped
		`"parameters":{"type":"object","properties":{"city":{"type":"string"}}}`,
		`"name":"now","parameters":{"type":"object"}`, // no schema: any object
	}
	tests := []struct {
		f    Format
		want []string // the format, as the model must write it
	}{
		{Hermes, []string{"<tools>\n{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"", "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"}},
		{Llama3, []string{`{"name": function name, "parameters": dictionary of argument name and its value}`, `";"`}},
		{Mistral, []string{`[TOOL_CALLS][{"name": <function-name>, "arguments": <args-json-object>}]`}},
		{Generic, []string{`{"tool_calls": [{"name": <function-name>, "arguments": <args-json-object>}]}`, "nothing before it"}},
	}
	for _, tt := range tests {
		got := tt.f.Instructions(tools)
		for _, w := range append(common, tt.want...) {
			if !strings.Contains(got, w) {
				t.Errorf("%s: Instructions lack %q:\n%s", tt.f, w, got)
			}
		}
		if got != strings.TrimSpace(got) {
			t.Errorf("%s: Instructions not trimmed: %q", tt.f, got)
		}
		// Each tool's JSON line is valid JSON.
		for _, line := range strings.Split(got, "\n") {
			if strings.HasPrefix(line, `{"type":"function"`) || strings.HasPrefix(line, `{"name":"`) {
				if !json.Valid([]byte(line)) {
					t.Errorf("%s: tool line is not JSON: %s", tt.f, line)
				}
			}
		}
	}
}
