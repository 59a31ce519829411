package inference

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lumenllm/lumen/internal/grammar"
	"github.com/lumenllm/lumen/internal/reqerr"
)

// ConstraintKind says what a Constraint holds.
type ConstraintKind int

// Kinds of output constraint.
const (
	// ConstraintGrammar is a GBNF grammar as is (llama.cpp's "grammar",
	// vLLM's guided_grammar).
	ConstraintGrammar ConstraintKind = iota + 1
	// ConstraintJSONSchema is output that validates against a JSON Schema
	// (response_format json_schema, json_schema, guided_json).
	ConstraintJSONSchema
	// ConstraintJSONObject is any JSON object (response_format json_object).
	ConstraintJSONObject
	// ConstraintRegex is output matching a regular expression (guided_regex).
	ConstraintRegex
	// ConstraintChoice is exactly one of a list of strings (guided_choice).
	ConstraintChoice
)

// Constraint restricts what the model may output, by way of a grammar.
type Constraint struct {
	Kind ConstraintKind
	// Field is the request field it came from, named in errors.
	Field   string
	Grammar string
	Schema  json.RawMessage
	Regex   string
	Choices []string
}

// OneConstraint returns the one constraint a request gave (nil for none),
// or an error naming the second when it gave more than one.
func OneConstraint(found ...*Constraint) (*Constraint, error) {
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	return nil, reqerr.Invalid(found[1].Field, "cannot be combined with %s: give one output constraint", found[0].Field)
}

// GrammarChecker asks the engine whether it takes a grammar (llama.cpp's
// own parser is the judge); the error carries its reason.
type GrammarChecker interface {
	CheckGrammar(gbnf string, triggers []string) error
}

// OutputType is the gen_ai.output.type of a constraint: "json" for JSON
// output, "text" otherwise.
func (c *Constraint) OutputType() string {
	if c != nil && (c.Kind == ConstraintJSONSchema || c.Kind == ConstraintJSONObject) {
		return "json"
	}
	return "text"
}

// gbnf compiles the constraint to a grammar.
func (c *Constraint) gbnf() (string, error) {
	var (
		g   string
		err error
	)
	switch c.Kind {
	case ConstraintGrammar:
		if c.Grammar == "" {
			return "", reqerr.Invalid(c.Field, "is empty")
		}
		return c.Grammar, nil
	case ConstraintJSONSchema:
		g, err = grammar.FromJSONSchema(c.Schema)
	case ConstraintJSONObject:
		return grammar.JSONObject(), nil
	case ConstraintRegex:
		g, err = grammar.FromRegex(c.Regex)
	case ConstraintChoice:
		g, err = grammar.FromChoices(c.Choices)
	default:
		return "", fmt.Errorf("inference: constraint kind %d", c.Kind)
	}
	if err != nil {
		var se *grammar.SchemaError
		if errors.As(err, &se) && se.Path != "" {
			return "", reqerr.Invalid(c.Field, "schema at %s: %s", se.Path, se.Reason)
		}
		return "", reqerr.Invalid(c.Field, "%v", err)
	}
	return g, nil
}

// checkGrammar has the engine parse a grammar built for field.
func (s *Service) checkGrammar(field, gbnf string, triggers []string) error {
	if s.cfg.Grammars == nil {
		return nil
	}
	if err := s.cfg.Grammars.CheckGrammar(gbnf, triggers); err != nil {
		return reqerr.Invalid(field, "grammar rejected by llama.cpp: %v", err)
	}
	return nil
}
