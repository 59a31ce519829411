package toolcall

import (
	"reflect"
	"testing"
)

type parseCase struct {
	name    string
	text    string
	content string
	calls   []Call
}

func call(name, args string) Call { return Call{Name: name, Arguments: args} }

var hermesCases = []parseCase{
	{name: "plain text", text: "Paris is the capital of France.", content: "Paris is the capital of France."},
	{name: "empty", text: "", content: ""},
	{name: "whitespace only", text: " \n\t ", content: ""},
	{
		name:  "one call",
		text:  "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
		calls: []Call{call("get_weather", `{"city":"Paris"}`)},
	},
	{
		name:    "text before and after",
		text:    "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\nDone.",
		content: "Let me check.\n\nDone.",
		calls:   []Call{call("get_weather", `{"city":"Paris"}`)},
	},
	{
		name: "two calls",
		text: "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {\"x\": 1}}\n</tool_call>",
		calls: []Call{
			call("a", `{}`),
			call("b", `{"x":1}`),
		},
	},
	{
		name:    "text between calls",
		text:    "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call> and <tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>",
		content: "and",
		calls:   []Call{call("a", `{}`), call("b", `{}`)},
	},
	{
		name:    "no whitespace, CRLF and tabs",
		text:    "<tool_call>{\"name\":\"f\",\"arguments\":{\"a\":true}}</tool_call>\r\n<tool_call>\r\n\t{ \"name\" : \"g\" ,\n \"arguments\" : { \"b\" : null } }\r\n</tool_call>",
		calls:   []Call{call("f", `{"a":true}`), call("g", `{"b":null}`)},
		content: "",
	},
	{
		name:    "malformed JSON stays content",
		text:    "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }}\n</tool_call>",
		content: "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }}\n</tool_call>",
	},
	{
		name:    "unterminated block stays content",
		text:    "Calling.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}",
		content: "Calling.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}",
	},
	{
		name:    "unterminated JSON stays content",
		text:    "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1, 2",
		content: "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1, 2",
	},
	{
		name:    "text where the close tag belongs",
		text:    "<tool_call>{\"name\": \"f\", \"arguments\": {}} oops</tool_call>",
		content: "<tool_call>{\"name\": \"f\", \"arguments\": {}} oops</tool_call>",
	},
	{
		name:    "no name",
		text:    "<tool_call>{\"arguments\": {}}</tool_call>",
		content: "<tool_call>{\"arguments\": {}}</tool_call>",
	},
	{
		name:    "name not a string",
		text:    "<tool_call>{\"name\": 7, \"arguments\": {}}</tool_call>",
		content: "<tool_call>{\"name\": 7, \"arguments\": {}}</tool_call>",
	},
	{
		name:    "empty name",
		text:    "<tool_call>{\"name\": \"\", \"arguments\": {}}</tool_call>",
		content: "<tool_call>{\"name\": \"\", \"arguments\": {}}</tool_call>",
	},
	{
		name:    "arguments an array",
		text:    "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>",
		content: "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>",
	},
	{
		name:    "arguments a number",
		text:    "<tool_call>{\"name\": \"f\", \"arguments\": 1}</tool_call>",
		content: "<tool_call>{\"name\": \"f\", \"arguments\": 1}</tool_call>",
	},
	{
		name:    "unknown key",
		text:    "<tool_call>{\"name\": \"f\", \"arguments\": {}, \"extra\": 1}</tool_call>",
		content: "<tool_call>{\"name\": \"f\", \"arguments\": {}, \"extra\": 1}</tool_call>",
	},
	{
		name:    "both arguments and parameters",
		text:    "<tool_call>{\"name\": \"f\", \"arguments\": {}, \"parameters\": {}}</tool_call>",
		content: "<tool_call>{\"name\": \"f\", \"arguments\": {}, \"parameters\": {}}</tool_call>",
	},
	{
		name:    "a JSON array in the block",
		text:    "<tool_call>[{\"name\": \"f\", \"arguments\": {}}]</tool_call>",
		content: "<tool_call>[{\"name\": \"f\", \"arguments\": {}}]</tool_call>",
	},
	{
		name:  "parameters for arguments",
		text:  "<tool_call>{\"name\": \"f\", \"parameters\": {\"a\": 1}}</tool_call>",
		calls: []Call{call("f", `{"a":1}`)},
	},
	{
		name:  "no arguments",
		text:  "<tool_call>{\"name\": \"now\"}</tool_call>",
		calls: []Call{call("now", `{}`)},
	},
	{
		name:  "null arguments",
		text:  "<tool_call>{\"name\": \"now\", \"arguments\": null}</tool_call>",
		calls: []Call{call("now", `{}`)},
	},
	{
		name:  "arguments as a JSON string",
		text:  "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call>",
		calls: []Call{call("f", `{"a":1}`)},
	},
	{
		name:    "arguments a string that is no object",
		text:    "<tool_call>{\"name\": \"f\", \"arguments\": \"a=1\"}</tool_call>",
		content: "<tool_call>{\"name\": \"f\", \"arguments\": \"a=1\"}</tool_call>",
	},
	{
		name:  "type and id are ignored",
		text:  "<tool_call>{\"type\": \"function\", \"id\": \"call_1\", \"name\": \"f\", \"arguments\": {}}</tool_call>",
		calls: []Call{call("f", `{}`)},
	},
	{
		name:  "unicode in arguments",
		text:  "<tool_call>\n{\"name\": \"translate\", \"arguments\": {\"text\": \"Zürich – 東京 🚀\", \"esc\": \"\\u00e9\"}}\n</tool_call>",
		calls: []Call{call("translate", `{"text":"Zürich – 東京 🚀","esc":"\u00e9"}`)},
	},
	{
		name:  "nested arguments",
		text:  "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"filter\": {\"range\": {\"min\": -1.5e3, \"max\": [1, {\"deep\": true}]}}, \"q\": \"x\"}}\n</tool_call>",
		calls: []Call{call("search", `{"filter":{"range":{"min":-1.5e3,"max":[1,{"deep":true}]}},"q":"x"}`)},
	},
	{
		name:  "close tag inside a string",
		text:  "<tool_call>{\"name\": \"echo\", \"arguments\": {\"s\": \"</tool_call>\"}}</tool_call>",
		calls: []Call{call("echo", `{"s":"</tool_call>"}`)},
	},
	{
		name:    "marker mentioned in prose",
		text:    "Wrap calls in <tool_call> tags.",
		content: "Wrap calls in <tool_call> tags.",
	},
	{
		name:    "malformed block then a call",
		text:    "<tool_call>oops</tool_call>\n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>",
		content: "<tool_call>oops</tool_call>",
		calls:   []Call{call("f", `{}`)},
	},
	{
		name:    "marker repeated",
		text:    "<tool_call>\n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>",
		content: "<tool_call>",
		calls:   []Call{call("f", `{}`)},
	},
	{
		name:    "partial marker at the end",
		text:    "See you <tool_ca",
		content: "See you <tool_ca",
	},
}

var llama3Cases = []parseCase{
	{name: "plain text", text: "The answer is 42.", content: "The answer is 42."},
	{
		name:  "bare call",
		text:  `{"name": "get_weather", "parameters": {"city": "Paris"}}`,
		calls: []Call{call("get_weather", `{"city":"Paris"}`)},
	},
	{
		name:  "bare call after whitespace",
		text:  "\n\n  {\"name\": \"f\", \"parameters\": {}}\n",
		calls: []Call{call("f", `{}`)},
	},
	{
		name:  "python tag",
		text:  `<|python_tag|>{"name": "f", "parameters": {"a": "b"}}`,
		calls: []Call{call("f", `{"a":"b"}`)},
	},
	{
		name:    "python tag after text",
		text:    "Let me look that up.<|python_tag|>{\"name\": \"f\", \"parameters\": {}}",
		content: "Let me look that up.",
		calls:   []Call{call("f", `{}`)},
	},
	{
		name:  "semicolon separated",
		text:  `{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": 1}}`,
		calls: []Call{call("a", `{}`), call("b", `{"x":1}`)},
	},
	{
		name:  "python tag, three calls, no spaces",
		text:  `<|python_tag|>{"name":"a","parameters":{}};{"name":"b","parameters":{}};{"name":"c","parameters":{"k":[true]}}`,
		calls: []Call{call("a", `{}`), call("b", `{}`), call("c", `{"k":[true]}`)},
	},
	{
		name:  "trailing semicolon",
		text:  "{\"name\": \"a\", \"parameters\": {}};\n",
		calls: []Call{call("a", `{}`)},
	},
	{
		name:    "text after the call",
		text:    "{\"name\": \"a\", \"parameters\": {}}\nThis looks up a.",
		content: "This looks up a.",
		calls:   []Call{call("a", `{}`)},
	},
	{
		name:    "semicolon and text after the call",
		text:    `{"name": "a", "parameters": {}}; that is all`,
		content: "; that is all",
		calls:   []Call{call("a", `{}`)},
	},
	{
		name:    "second call malformed",
		text:    `{"name": "a", "parameters": {}}; {"name": }`,
		content: `; {"name": }`,
		calls:   []Call{call("a", `{}`)},
	},
	{
		name:  "arguments for parameters",
		text:  `{"name": "f", "arguments": {"a": 1}}`,
		calls: []Call{call("f", `{"a":1}`)},
	},
	{
		name:  "type function",
		text:  `{"type": "function", "name": "f", "parameters": {}}`,
		calls: []Call{call("f", `{}`)},
	},
	{
		name:    "JSON answer is content",
		text:    `{"answer": 42}`,
		content: `{"answer": 42}`,
	},
	{
		name:    "JSON answer with a name is content",
		text:    `{"name": "Bob", "age": 3}`,
		content: `{"name": "Bob", "age": 3}`,
	},
	{
		name:    "bare name without parameters is content",
		text:    `{"name": "Bob"}`,
		content: `{"name": "Bob"}`,
	},
	{
		name:    "call not at the start is content",
		text:    `Sure: {"name": "f", "parameters": {}}`,
		content: `Sure: {"name": "f", "parameters": {}}`,
	},
	{
		name:    "second bare object after text is content",
		text:    "{\"name\": \"a\", \"parameters\": {}}\nthen {\"name\": \"b\", \"parameters\": {}}",
		content: "then {\"name\": \"b\", \"parameters\": {}}",
		calls:   []Call{call("a", `{}`)},
	},
	{
		name:    "malformed JSON",
		text:    `{"name": "f", "parameters": {"a": tru}}`,
		content: `{"name": "f", "parameters": {"a": tru}}`,
	},
	{
		name:    "unterminated JSON",
		text:    `{"name": "f", "parameters": {`,
		content: `{"name": "f", "parameters": {`,
	},
	{
		name:    "python tag with a built-in tool call",
		text:    `<|python_tag|>brave_search.call(query="weather")`,
		content: `<|python_tag|>brave_search.call(query="weather")`,
	},
	{
		name:    "python tag, then text",
		text:    "<|python_tag|>\nprint(1)",
		content: "<|python_tag|>\nprint(1)",
	},
	{
		name:  "python tag without parameters",
		text:  `<|python_tag|>{"name": "now"}`,
		calls: []Call{call("now", `{}`)},
	},
	{
		name:  "unicode and nesting",
		text:  `{"name": "f", "parameters": {"q": "naïve café ☕", "opts": {"deep": {"er": [null, 1e-2]}}}}`,
		calls: []Call{call("f", `{"q":"naïve café ☕","opts":{"deep":{"er":[null,1e-2]}}}`)},
	},
}

var mistralCases = []parseCase{
	{name: "plain text", text: "Bonjour !", content: "Bonjour !"},
	{
		name:  "one call",
		text:  `[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abc123def"}]`,
		calls: []Call{call("get_weather", `{"city":"Paris"}`)},
	},
	{
		name:  "two calls",
		text:  `[TOOL_CALLS] [{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": [1, 2]}}]`,
		calls: []Call{call("a", `{}`), call("b", `{"x":[1,2]}`)},
	},
	{
		name:    "text before and after",
		text:    "Checking.\n[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}]\nDone.",
		content: "Checking.\n\nDone.",
		calls:   []Call{call("a", `{}`)},
	},
	{
		name:  "single object",
		text:  `[TOOL_CALLS]{"name": "a", "arguments": {"k": "v"}}`,
		calls: []Call{call("a", `{"k":"v"}`)},
	},
	{
		name:  "ARGS form",
		text:  `[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}`,
		calls: []Call{call("get_weather", `{"city":"Paris"}`)},
	},
	{
		name:  "ARGS form, two calls",
		text:  `[TOOL_CALLS]a[ARGS]{}[TOOL_CALLS]b.c[ARGS]{"x": {"y": "ü"}}`,
		calls: []Call{call("a", `{}`), call("b.c", `{"x":{"y":"ü"}}`)},
	},
	{
		name:  "ARGS form with a call id",
		text:  `[TOOL_CALLS]f[CALL_ID]a1b2c3d4e[ARGS]{"n": 1}`,
		calls: []Call{call("f", `{"n":1}`)},
	},
	{
		name:    "ARGS form, text after",
		text:    "[TOOL_CALLS]f[ARGS]{} and more",
		content: "and more",
		calls:   []Call{call("f", `{}`)},
	},
	{
		name:    "ARGS form, arguments not an object",
		text:    `[TOOL_CALLS]f[ARGS][1]`,
		content: `[TOOL_CALLS]f[ARGS][1]`,
	},
	{
		name:    "ARGS form, no ARGS",
		text:    `[TOOL_CALLS]f {"a": 1}`,
		content: `[TOOL_CALLS]f {"a": 1}`,
	},
	{
		name:    "one bad call spoils the list",
		text:    `[TOOL_CALLS][{"name": "a", "arguments": {}}, {"oops": 1}]`,
		content: `[TOOL_CALLS][{"name": "a", "arguments": {}}, {"oops": 1}]`,
	},
	{
		name:    "empty list",
		text:    `[TOOL_CALLS][]`,
		content: `[TOOL_CALLS][]`,
	},
	{
		name:    "marker then prose",
		text:    `[TOOL_CALLS] none needed`,
		content: `[TOOL_CALLS] none needed`,
	},
	{
		name:    "unterminated",
		text:    `[TOOL_CALLS][{"name": "a", "arguments": {"q": "x`,
		content: `[TOOL_CALLS][{"name": "a", "arguments": {"q": "x`,
	},
	{
		name:    "bare marker at the end",
		text:    "Ok [TOOL_CALLS]",
		content: "Ok [TOOL_CALLS]",
	},
	{
		name:  "nested and unicode",
		text:  `[TOOL_CALLS][{"name": "f", "arguments": {"a": {"b": {"c": "日本語"}}, "n": -0.5}}]`,
		calls: []Call{call("f", `{"a":{"b":{"c":"日本語"}},"n":-0.5}`)},
	},
}

var genericCases = []parseCase{
	{name: "plain text", text: "Hello!", content: "Hello!"},
	{
		name:  "one call",
		text:  `{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}`,
		calls: []Call{call("get_weather", `{"city":"Paris"}`)},
	},
	{
		name:  "two calls, whitespace",
		text:  "\n{\n  \"tool_calls\": [\n    {\"name\": \"a\", \"arguments\": {}},\n    {\"name\": \"b\", \"arguments\": {\"x\": \"日本\"}}\n  ]\n}\n",
		calls: []Call{call("a", `{}`), call("b", `{"x":"日本"}`)},
	},
	{
		name:  "single tool_call",
		text:  `{"tool_call": {"name": "f", "arguments": {"a": {"b": [1]}}}}`,
		calls: []Call{call("f", `{"a":{"b":[1]}}`)},
	},
	{
		name:    "text after",
		text:    `{"tool_calls": [{"name": "f", "arguments": {}}]} ok`,
		content: "ok",
		calls:   []Call{call("f", `{}`)},
	},
	{
		name:    "not at the start",
		text:    `Here: {"tool_calls": [{"name": "f", "arguments": {}}]}`,
		content: `Here: {"tool_calls": [{"name": "f", "arguments": {}}]}`,
	},
	{
		name:    "other JSON",
		text:    `{"response": "hi"}`,
		content: `{"response": "hi"}`,
	},
	{
		name:    "extra key",
		text:    `{"tool_calls": [{"name": "f", "arguments": {}}], "x": 1}`,
		content: `{"tool_calls": [{"name": "f", "arguments": {}}], "x": 1}`,
	},
	{
		name:    "empty list",
		text:    `{"tool_calls": []}`,
		content: `{"tool_calls": []}`,
	},
	{
		name:    "list not an array",
		text:    `{"tool_calls": {"name": "f", "arguments": {}}}`,
		content: `{"tool_calls": {"name": "f", "arguments": {}}}`,
	},
	{
		name:    "malformed",
		text:    `{"tool_calls": [{"name": "f", "arguments": {]}`,
		content: `{"tool_calls": [{"name": "f", "arguments": {]}`,
	},
	{
		name:    "unterminated",
		text:    `{"tool_calls": [{"name": "f"`,
		content: `{"tool_calls": [{"name": "f"`,
	},
}

var allCases = map[Format][]parseCase{
	Hermes:  hermesCases,
	Llama3:  llama3Cases,
	Mistral: mistralCases,
	Generic: genericCases,
}

func TestParse(t *testing.T) {
	for f, cases := range allCases {
		for _, tc := range cases {
			t.Run(string(f)+"/"+tc.name, func(t *testing.T) {
				content, calls := f.Parse(tc.text)
				if content != tc.content {
					t.Errorf("content = %q, want %q", content, tc.content)
				}
				if !reflect.DeepEqual(calls, tc.calls) {
					t.Errorf("calls = %q, want %q", calls, tc.calls)
				}
			})
		}
	}
}

// Each format's call syntax is its own: another family's call is text.
func TestParseOtherFamiliesAreContent(t *testing.T) {
	texts := map[Format]string{
		Hermes:  "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>",
		Llama3:  `<|python_tag|>{"name": "f", "parameters": {}}`,
		Mistral: `[TOOL_CALLS][{"name": "f", "arguments": {}}]`,
		Generic: `{"tool_calls": [{"name": "f", "arguments": {}}]}`,
	}
	for parser := range texts {
		for writer, text := range texts {
			if parser == writer {
				continue
			}
			content, calls := parser.Parse(text)
			if content != text || calls != nil {
				t.Errorf("%s.Parse(%s call) = %q, %q; want the text as content", parser, writer, content, calls)
			}
		}
	}
}

func TestParseUnknownFormatIsGeneric(t *testing.T) {
	text := `{"tool_calls": [{"name": "f", "arguments": {}}]}`
	content, calls := Format("").Parse(text)
	if content != "" || !reflect.DeepEqual(calls, []Call{call("f", "{}")}) {
		t.Errorf(`Format("").Parse = %q, %q; want the Generic call`, content, calls)
	}
}
