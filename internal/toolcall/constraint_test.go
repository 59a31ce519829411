package toolcall

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/grammar"
)

var testTools = []Tool{
	{
		Name:        "get_weather",
		Description: "Weather for a city.",
		Parameters: json.RawMessage(`{"type": "object", "properties": {
			"city": {"type": "string", "enum": ["Paris", "Tokyo"]},
			"unit": {"type": "string", "enum": ["c", "f"]}
		}, "required": ["city"], "additionalProperties": false}`),
	},
	{Name: "now", Description: "The time."}, // no schema: any object
	{
		Name:       "set_mode",
		Parameters: json.RawMessage(`{"type": "object", "properties": {"on": {"type": "boolean"}}, "required": ["on"], "additionalProperties": false}`),
	},
}

// writeCalls writes calls (name and arguments JSON) the way format f does.
func writeCalls(f Format, calls ...[2]string) string {
	key := "arguments"
	if f == Llama3 {
		key = "parameters"
	}
	objs := make([]string, len(calls))
	for i, c := range calls {
		objs[i] = `{"name": "` + c[0] + `", "` + key + `": ` + c[1] + `}`
	}
	switch f {
	case Hermes:
		blocks := make([]string, len(objs))
		for i, o := range objs {
			blocks[i] = "<tool_call>\n" + o + "\n</tool_call>"
		}
		return strings.Join(blocks, "\n")
	case Llama3:
		return strings.Join(objs, "; ")
	case Mistral:
		return "[TOOL_CALLS][" + strings.Join(objs, ", ") + "]"
	}
	return `{"tool_calls": [` + strings.Join(objs, ", ") + `]}`
}

var (
	weatherParis = [2]string{"get_weather", `{"city": "Paris"}`}
	weatherTokyo = [2]string{"get_weather", `{"city": "Tokyo", "unit": "f"}`}
	nowCall      = [2]string{"now", `{}`}
	nowAnyArgs   = [2]string{"now", `{"tz": "UTC", "n": [1, {"x": null}]}`}
	modeOn       = [2]string{"set_mode", `{"on": true}`}
)

func mustGrammar(t *testing.T, c Constraint) *gbnf {
	t.Helper()
	g, err := parseGBNF(c.Grammar)
	if err != nil {
		t.Fatalf("grammar does not parse: %v\n%s", err, c.Grammar)
	}
	return g
}

func TestConstraintGrammar(t *testing.T) {
	type sample struct {
		text string
		want bool
	}
	for _, f := range []Format{Hermes, Llama3, Mistral, Generic} {
		w := func(calls ...[2]string) string { return writeCalls(f, calls...) }
		tests := []struct {
			name     string
			choice   Choice
			parallel bool
			samples  []sample
		}{
			{
				name:   "required, one call",
				choice: Choice{Mode: Required},
				samples: []sample{
					{w(weatherParis), true},
					{w(weatherTokyo), true},
					{w(nowCall), true},
					{w(nowAnyArgs), true},
					{w(modeOn), true},
					{w([2]string{"get_time", `{}`}), false},
					{w([2]string{"get_weathe", `{"city": "Paris"}`}), false},
					{w([2]string{"get_weather", `{"city": "Berlin"}`}), false},
					{w([2]string{"get_weather", `{"unit": "c"}`}), false},
					{w([2]string{"get_weather", `{"city": "Paris", "x": 1}`}), false},
					{w([2]string{"set_mode", `{"on": "yes"}`}), false},
					{w([2]string{"now", `[]`}), false},
					{"Sure. " + w(weatherParis), false},
					{w(weatherParis) + " Done.", false},
					{"", false},
					{"The weather is fine.", false},
					{w(weatherParis, nowCall), false},
				},
			},
			{
				name:     "required, parallel",
				choice:   Choice{Mode: Required},
				parallel: true,
				samples: []sample{
					{w(weatherParis), true},
					{w(weatherParis, nowCall), true},
					{w(modeOn, weatherTokyo, nowAnyArgs), true},
					{w(weatherParis, [2]string{"get_time", `{}`}), false},
					{w(weatherParis, nowCall) + "\nok", false},
				},
			},
			{
				name:   "named",
				choice: Choice{Mode: Named, Name: "get_weather"},
				samples: []sample{
					{w(weatherParis), true},
					{w(nowCall), false},
					{w(modeOn), false},
					{w(weatherParis, weatherTokyo), false},
				},
			},
			{
				name:     "named, parallel",
				choice:   Choice{Mode: Named, Name: "get_weather"},
				parallel: true,
				samples: []sample{
					{w(weatherParis, weatherTokyo), true},
					{w(weatherParis, nowCall), false},
				},
			},
		}
		for _, tt := range tests {
			t.Run(string(f)+"/"+tt.name, func(t *testing.T) {
				c, err := f.Constraint(testTools, tt.choice, tt.parallel)
				if err != nil {
					t.Fatal(err)
				}
				if c.Triggers != nil {
					t.Errorf("Triggers = %q, want none (not lazy)", c.Triggers)
				}
				g := mustGrammar(t, c)
				for _, s := range tt.samples {
					if got := g.match(s.text); got != s.want {
						t.Errorf("grammar accepts %q: %v, want %v", s.text, got, s.want)
					}
					if s.want {
						// What the grammar lets through parses as calls.
						content, calls := f.Parse(s.text)
						if content != "" || len(calls) == 0 {
							t.Errorf("Parse(%q) = %q, %q; want calls only", s.text, content, calls)
						}
					}
				}
			})
		}
	}
}

// The JSON in calls uses the bounded space: whitespace variants within it
// are accepted, unbounded runs are not.
func TestConstraintWhitespace(t *testing.T) {
	c, err := Hermes.Constraint(testTools, Choice{Mode: Required}, true)
	if err != nil {
		t.Fatal(err)
	}
	g := mustGrammar(t, c)
	tests := []struct {
		text string
		want bool
	}{
		{"<tool_call>{\"name\":\"now\",\"arguments\":{}}</tool_call>", true},
		{"<tool_call>\n{ \"name\": \"now\", \"arguments\": {} }\n</tool_call>\n\n<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>", true},
		{"<tool_call>\n{\n  \"name\": \"now\",\n  \"arguments\": {}\n}\n</tool_call>", true},
		{"<tool_call>{" + strings.Repeat(" ", 30) + "\"name\": \"now\", \"arguments\": {}}</tool_call>", false},
		{"<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>" + strings.Repeat("\n", 5) + "<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>", false},
	}
	for _, tt := range tests {
		if got := g.match(tt.text); got != tt.want {
			t.Errorf("grammar accepts %q: %v, want %v", tt.text, got, tt.want)
		}
	}
}

// triggered emulates llama.cpp's lazy grammar: the first trigger that
// matches the whole output, and where its first non-empty group starts.
func triggered(t *testing.T, triggers []string, out string) (int, bool) {
	t.Helper()
	for _, tr := range triggers {
		re, err := regexp.Compile(`^(?:` + tr + `)$`)
		if err != nil {
			t.Fatalf("trigger %q: %v", tr, err)
		}
		m := re.FindStringSubmatchIndex(out)
		if m == nil {
			continue
		}
		for g := 1; 2*g < len(m); g++ {
			if m[2*g] >= 0 && m[2*g+1] > m[2*g] {
				return m[2*g], true
			}
		}
		t.Fatalf("trigger %q matched %q with no non-empty group", tr, out)
	}
	return 0, false
}

func TestConstraintAuto(t *testing.T) {
	for _, f := range []Format{Hermes, Llama3, Mistral, Generic} {
		t.Run(string(f), func(t *testing.T) {
			c, err := f.Constraint(testTools, Choice{Mode: Auto}, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Triggers) == 0 {
				t.Fatal("no triggers: the grammar is not lazy")
			}
			g := mustGrammar(t, c)
			call := writeCalls(f, weatherParis, nowCall)
			outputs := []struct {
				text string
				from string // where the grammar takes over; "" = no trigger
			}{
				{call, call},
				{"\n" + call, call},
				{"The weather is fine.", ""},
				{"", ""},
				{"{\"answer\": 42}", ""},
			}
			switch f {
			case Hermes, Mistral:
				outputs = append(outputs, struct{ text, from string }{"Let me check.\n" + call, call})
			case Llama3:
				tagged := "<|python_tag|>" + call
				outputs = append(outputs, struct{ text, from string }{"Let me check." + tagged, tagged})
			}
			for _, o := range outputs {
				// The trigger fires as the output grows, at the latest once
				// it is whole: check it on the whole text.
				at, ok := triggered(t, c.Triggers, o.text)
				if ok != (o.from != "") {
					t.Errorf("trigger on %q: %v, want %v", o.text, ok, o.from != "")
					continue
				}
				if !ok {
					continue
				}
				if got := o.text[at:]; got != o.from {
					t.Errorf("grammar fed from %q, want %q", got, o.from)
				}
				if !g.match(o.text[at:]) {
					t.Errorf("grammar rejects %q", o.text[at:])
				}
			}
			// The trigger fires before the grammar has to hold, on a
			// prefix the grammar can still complete.
			for i := 0; i <= len(call); i++ {
				if at, ok := triggered(t, c.Triggers, call[:i]); ok {
					if !g.match(call[at:]) {
						t.Errorf("trigger fired at %q but the grammar rejects %q", call[:i], call[at:])
					}
					break
				}
				if i == len(call) {
					t.Errorf("no trigger fired on %q", call)
				}
			}
		})
	}
}

func TestConstraintNone(t *testing.T) {
	for _, f := range []Format{Hermes, Llama3, Mistral, Generic} {
		for _, tc := range []struct {
			tools  []Tool
			choice Choice
		}{
			{testTools, Choice{Mode: None}},
			{nil, Choice{Mode: None}},
			{nil, Choice{Mode: Auto}},
		} {
			c, err := f.Constraint(tc.tools, tc.choice, true)
			if err != nil || c.Grammar != "" || c.Triggers != nil {
				t.Errorf("%s: Constraint(%d tools, %+v) = %+v, %v; want an empty constraint", f, len(tc.tools), tc.choice, c, err)
			}
		}
	}
}

func TestConstraintErrors(t *testing.T) {
	bad := append([]Tool{}, testTools...)
	bad = append(bad, Tool{Name: "broken", Parameters: json.RawMessage(`{"type": `)})
	tests := []struct {
		name   string
		tools  []Tool
		choice Choice
		want   string
		schema bool
	}{
		{"named tool not offered", testTools, Choice{Mode: Named, Name: "nope"}, `"nope"`, false},
		{"required without tools", nil, Choice{Mode: Required}, "no tools", false},
		{"named without tools", nil, Choice{Mode: Named, Name: "now"}, "no tools", false},
		{"bad schema", bad, Choice{Mode: Required}, "tools[3].function.parameters: ", true},
		{"bad schema, auto", bad, Choice{Mode: Auto}, "tools[3].function.parameters: ", true},
	}
	for _, tt := range tests {
		_, err := Hermes.Constraint(tt.tools, tt.choice, false)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
			continue
		}
		var se *grammar.SchemaError
		if errors.As(err, &se) != tt.schema {
			t.Errorf("%s: err %v is a *grammar.SchemaError: %v, want %v", tt.name, err, !tt.schema, tt.schema)
		}
	}
	// A bad schema of a tool the choice leaves out does not matter.
	if _, err := Hermes.Constraint(bad, Choice{Mode: Named, Name: "now"}, false); err != nil {
		t.Errorf("named other tool: %v", err)
	}
}

// Tool names are literals, escaped: a name with GBNF's special characters
// matches itself only.
func TestConstraintNameIsLiteral(t *testing.T) {
	tools := []Tool{{Name: `a"b\c`}}
	c, err := Generic.Constraint(tools, Choice{Mode: Required}, false)
	if err != nil {
		t.Fatal(err)
	}
	g := mustGrammar(t, c)
	ok := `{"tool_calls": [{"name": "a\"b\\c", "arguments": {}}]}`
	if !g.match(ok) {
		t.Errorf("grammar rejects %s", ok)
	}
	if g.match(`{"tool_calls": [{"name": "a"b\c", "arguments": {}}]}`) {
		t.Error("grammar accepts the unescaped name")
	}
}
