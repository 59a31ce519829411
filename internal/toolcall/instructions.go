package toolcall

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Instructions is a system-prompt text for a template that cannot render
// tools: it lists the tools (name, description and parameters schema, as
// JSON) and tells the model the exact output format of f. The wording of
// each family follows what its own templates say, so the model sees the
// phrasing it was trained on.
func (f Format) Instructions(tools []Tool) string {
	var b strings.Builder
	switch f {
	case Hermes:
		b.WriteString("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n")
		b.WriteString("You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n")
		for _, t := range tools {
			b.WriteString(toolJSON(t, true))
			b.WriteByte('\n')
		}
		b.WriteString("</tools>\n\n")
		b.WriteString("For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n")
		b.WriteString("<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>")
	case Llama3:
		b.WriteString("Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n")
		b.WriteString("Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}. Do not use variables. ")
		b.WriteString("The JSON must be the whole reply, or its very start; to call several functions, separate the JSON objects with \";\". ")
		b.WriteString("If no function fits, answer in plain text.\n\n")
		for _, t := range tools {
			b.WriteString(toolJSON(t, true))
			b.WriteString("\n\n")
		}
	case Mistral:
		// Not [AVAILABLE_TOOLS]: in a system message's text that control
		// token would be out of place; the model knows [TOOL_CALLS].
		b.WriteString("You can call the following functions:\n\n")
		for _, t := range tools {
			b.WriteString(toolJSON(t, true))
			b.WriteByte('\n')
		}
		b.WriteString("\nTo call functions, write [TOOL_CALLS] followed by a JSON list of the calls, one entry per call:\n")
		b.WriteString("[TOOL_CALLS][{\"name\": <function-name>, \"arguments\": <args-json-object>}]")
	default:
		b.WriteString("You can call the following functions:\n\n")
		for _, t := range tools {
			b.WriteString(toolJSON(t, false))
			b.WriteByte('\n')
		}
		b.WriteString("\nTo call functions, reply with only a JSON object, and nothing before it, of the form\n")
		b.WriteString("{\"tool_calls\": [{\"name\": <function-name>, \"arguments\": <args-json-object>}]}\n")
		b.WriteString("with one entry per call. Otherwise, answer in plain text.")
	}
	return strings.TrimRight(b.String(), "\n")
}

// toolJSON writes a tool as JSON: in OpenAI's {"type": "function",
// "function": {...}} wrapping when wrapped (as the families' templates
// print it), else as the bare function.
func toolJSON(t Tool, wrapped bool) string {
	params := json.RawMessage(`{"type":"object"}`)
	var c bytes.Buffer
	if len(bytes.TrimSpace(t.Parameters)) > 0 && json.Compact(&c, t.Parameters) == nil {
		params = c.Bytes()
	}
	fn := struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters"`
	}{t.Name, t.Description, params}
	var v any = fn
	if wrapped {
		v = struct {
			Type     string `json:"type"`
			Function any    `json:"function"`
		}{"function", fn}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // descriptions often hold < and >
	if enc.Encode(v) != nil {
		return ""
	}
	return strings.TrimSpace(b.String())
}
