// Package toolcall knows how the common chat-template families write tool
// (function) calls, so that an OpenAI-style tools request can be served by
// a model that was trained on one of them:
//
//   - Detect picks the family from the model's Jinja chat template, and
//     RendersTools tells whether the template prints the tools itself;
//   - Format.Instructions describes the tools and the call syntax in a
//     system message, for templates that do not;
//   - Format.Constraint builds the GBNF grammar (llama.cpp's format) that
//     keeps generation to well-formed calls of the offered tools;
//   - Format.Parse and Stream split the generated text into content and
//     calls, whole or as it streams.
//
// Parsing is lenient where being strict would lose a reply: text that
// looks like a call but is not a well-formed one stays content, and is
// never an error. The bare-JSON formats (Llama3 without <|python_tag|>,
// Generic) have no marker to tell a call from a JSON answer, so they only
// take a call at the very start of the output (after whitespace); a JSON
// object later in the text is content. That also lets a stream release
// text at once as soon as the output does not start with '{'.
package toolcall

import (
	"encoding/json"
	"regexp"
	"strings"
)

// Tool is one function the client offers.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage // a JSON Schema of the arguments object; empty means any object
}

// Call is one tool call parsed from the output.
type Call struct {
	Name      string
	Arguments string // the arguments object as compact JSON text ("{}" when none)
}

// Format is a chat-template family's way of writing tool calls. Any value
// other than the constants below is treated as Generic.
type Format string

// The formats.
const (
	// Hermes is Hermes 2 Pro's, also Qwen 2.5 and 3's: one block per call,
	//	<tool_call>
	//	{"name": "f", "arguments": {...}}
	//	</tool_call>
	Hermes Format = "hermes"
	// Llama3 is Llama 3.1-3.3's JSON tool calling: {"name": "f",
	// "parameters": {...}}, optionally after <|python_tag|>, several
	// separated by ";".
	Llama3 Format = "llama3"
	// Mistral is [TOOL_CALLS][{"name": "f", "arguments": {...}}, ...];
	// the newer [TOOL_CALLS]f[ARGS]{...} form is parsed too.
	Mistral Format = "mistral"
	// Generic is for templates with no format of their own:
	// {"tool_calls": [{"name": "f", "arguments": {...}}]}.
	Generic Format = "generic"
)

// Markers that only a template of that family contains.
const (
	hermesOpen   = "<tool_call>"
	hermesClose  = "</tool_call>"
	pythonTag    = "<|python_tag|>"
	llamaHeader  = "<|start_header_id|>"
	mistralCalls = "[TOOL_CALLS]"
	mistralArgs  = "[ARGS]"
	mistralID    = "[CALL_ID]"
)

// Detect picks the family from the template source: "<tool_call>" is
// Hermes (checked first: Hermes fine-tunes of Llama 3 keep the Llama
// header tokens), "[TOOL_CALLS]" Mistral, "<|python_tag|>" or the Llama 3
// header tokens with a "parameters" key Llama3, anything else Generic.
func Detect(template string) Format {
	switch {
	case strings.Contains(template, hermesOpen):
		return Hermes
	case strings.Contains(template, mistralCalls):
		return Mistral
	case strings.Contains(template, pythonTag),
		strings.Contains(template, llamaHeader) && strings.Contains(template, "parameters"):
		return Llama3
	}
	return Generic
}

var (
	jinjaComment = regexp.MustCompile(`(?s)\{#.*?#\}`)
	jinjaTag     = regexp.MustCompile(`(?s)\{\{.*?\}\}|\{%.*?%\}`)
	jinjaString  = regexp.MustCompile(`'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"`)
	toolsVar     = regexp.MustCompile(`(?:^|[^.\w])tools(?:$|\W)`)
)

// RendersTools reports whether the template itself uses the tools
// variable, in which case the caller passes the tools to the template;
// otherwise it adds Instructions as a system message. Only code inside
// {{ }} and {% %} counts, outside string literals: a template that merely
// says "tools" in its text, or reads message.tools or tool_calls, does not
// render the offer.
func RendersTools(template string) bool {
	template = jinjaComment.ReplaceAllString(template, "")
	for _, tag := range jinjaTag.FindAllString(template, -1) {
		code := jinjaString.ReplaceAllString(tag[2:len(tag)-2], "''")
		if toolsVar.MatchString(code) {
			return true
		}
	}
	return false
}

// Mode says how the model must use tools (OpenAI's tool_choice).
type Mode int

// The modes.
const (
	Auto     Mode = iota // the model chooses between content and calls
	Required             // one or more calls, nothing else
	Named                // calls of Choice.Name only
	None                 // no calls
)

// Choice is a request's tool_choice.
type Choice struct {
	Mode Mode
	Name string // the tool, for Named
}
