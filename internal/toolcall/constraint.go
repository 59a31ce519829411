package toolcall

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lumenllm/lumen/internal/grammar"
)

// Constraint is how to constrain generation.
type Constraint struct {
	// Grammar is GBNF with a rule root; "" means unconstrained.
	Grammar string
	// Triggers, when not empty, make the grammar lazy: generation is free
	// until the output so far matches one of these regular expressions
	// whole (llama.cpp's std::regex_match, ECMAScript syntax); from then on
	// the grammar holds, fed from the start of the first non-empty capture
	// group. E.g. `[\s\S]*?(<tool_call>)[\s\S]*`.
	Triggers []string
}

// anyObject is the schema of a tool that gives none.
var anyObject = json.RawMessage(`{"type":"object"}`)

// spaceRe matches what the grammar package's space rule does (one space,
// or one or two newlines and an indent), so that a trigger never fires on
// text the grammar then refuses.
const spaceRe = `(?: |\n{1,2}[ \t]{0,20})?`

// Constraint builds the grammar for tools under choice:
//
//   - Required: one or more calls of any offered tool (exactly one when
//     !parallel) and nothing else;
//   - Named: the same, of choice.Name only (an error if not offered);
//   - Auto: a lazy grammar that holds from the family's opening marker on
//     (free text before it), and then asks for calls as Required does;
//   - None: an empty Constraint, as is Auto with no tools.
//
// Each call's arguments follow its tool's Parameters schema; a schema the
// grammar package cannot convert is an error naming the tool's index.
// Calls are JSON written the way the family's templates write them, with
// the grammar package's bounded space between tokens, so a call is of
// bounded length when its schema is. With parallel the number of calls is
// not limited: the caller bounds the output (max_tokens) if it must.
func (f Format) Constraint(tools []Tool, choice Choice, parallel bool) (Constraint, error) {
	switch choice.Mode {
	case None:
		return Constraint{}, nil
	case Auto:
		if len(tools) == 0 {
			return Constraint{}, nil
		}
	case Required, Named:
		if len(tools) == 0 {
			return Constraint{}, errors.New("toolcall: a tool call is required but no tools are offered")
		}
	default:
		return Constraint{}, fmt.Errorf("toolcall: unknown tool choice mode %d", choice.Mode)
	}

	argsKey := "arguments"
	if f == Llama3 {
		argsKey = "parameters"
	}
	b := grammar.NewBuilder()
	var alts []string
	for i, t := range tools {
		if choice.Mode == Named && t.Name != choice.Name {
			continue
		}
		params := t.Parameters
		if len(strings.TrimSpace(string(params))) == 0 {
			params = anyObject
		}
		args, err := b.Schema(fmt.Sprintf("tool-%d-args", i), params)
		if err != nil {
			return Constraint{}, fmt.Errorf("tools[%d].function.parameters: %w", i, err)
		}
		name, err := json.Marshal(t.Name)
		if err != nil {
			return Constraint{}, fmt.Errorf("tools[%d].function.name: %w", i, err)
		}
		// The schema's rules end in space, as every JSON value rule does,
		// hence no space before the closing brace.
		body := `"{" space "\"name\"" space ":" space ` + grammar.Literal(string(name)) +
			` space "," space ` + grammar.Literal(`"`+argsKey+`"`) + ` space ":" space ` + args + ` "}" space`
		alts = append(alts, b.Rule(fmt.Sprintf("tool-%d-call", i), body))
	}
	if len(alts) == 0 {
		return Constraint{}, fmt.Errorf("toolcall: tool_choice names %q, which is not among the tools", choice.Name)
	}
	call := b.Rule("tool-call", strings.Join(alts, " | "))

	// many is one call or, with parallel, a list of them; calls end in
	// space already, so sep need not allow any.
	many := func(sep string) string {
		if !parallel {
			return call
		}
		return call + " (" + sep + call + ")*"
	}
	var root string
	var triggers []string
	switch f {
	case Hermes:
		block := b.Rule("tool-call-block", grammar.Literal(hermesOpen)+" space "+call+" "+grammar.Literal(hermesClose))
		root = block
		if parallel {
			root = block + " (space " + block + ")*"
		}
		triggers = []string{`[\s\S]*?(` + hermesOpen + `)[\s\S]*`}
	case Llama3:
		root = `(` + grammar.Literal(pythonTag) + ` space)? ` + many(`";" space `)
		triggers = []string{
			`\s*(\{` + spaceRe + `"name"` + spaceRe + `:)[\s\S]*`,
			`[\s\S]*?(<\|python_tag\|>)[\s\S]*`,
		}
	case Mistral:
		root = grammar.Literal(mistralCalls) + ` space "[" space ` + many(`"," space `) + ` "]"`
		triggers = []string{`[\s\S]*?(\[TOOL_CALLS\])[\s\S]*`}
	default:
		root = `"{" space "\"tool_calls\"" space ":" space "[" space ` + many(`"," space `) + ` "]" space "}"`
		triggers = []string{`\s*(\{` + spaceRe + `"tool_calls"` + spaceRe + `:)[\s\S]*`}
	}
	if got := b.Rule("root", root); got != "root" {
		return Constraint{}, errors.New("toolcall: internal error: rule root taken")
	}
	c := Constraint{Grammar: b.String()}
	if choice.Mode == Auto {
		c.Triggers = triggers
	}
	return c, nil
}
