// Package grammar builds llama.cpp GBNF grammars: from JSON Schema, regular
// expressions and lists of choices. Pure Go; knows nothing of llama.cpp's C API.
//
// The output follows llama.cpp's own converter
// (common/json-schema-to-grammar.cpp) closely, rule names included, because
// users compare what our server constrains with what llama.cpp would; it
// departs from it where llama.cpp's output could let a model emit invalid
// JSON or text the schema forbids (see the notes on Builder.Schema).
//
// Everything emitted is bounded wherever the schema bounds it (whitespace,
// number digits, repetition counts), so that even a model with random weights
// sampling under the grammar terminates.
package grammar

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits that keep hostile input from exhausting memory. llama.cpp's GBNF
// parser itself refuses repetition counts above 2000, so nothing larger is
// ever emitted.
const (
	maxRepetition   = 2000    // largest m or n in an emitted {m,n}
	maxSchemaDepth  = 100     // nesting of sub-schemas visited
	maxSchemaWork   = 100000  // sub-schemas visited for one document
	maxRegexDepth   = 64      // nesting of groups in a regular expression
	maxRegexNodes   = 20000   // size of a regular expression's syntax tree
	maxRules        = 20000   // rules in one Builder
	maxGrammarBytes = 4 << 20 // total text of one Builder's rules
)

// Builder collects named GBNF rules.
//
// A Builder is not safe for concurrent use.
type Builder struct {
	rules map[string]string
	size  int
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{rules: map[string]string{}}
}

// Rule adds `name ::= body` and returns the name used: name itself, or name
// with a numeric suffix ("name-1") when name is already taken by a different
// body; the same body under the same name returns name again. Names are
// sanitized to [a-zA-Z0-9-] (each run of other runes becomes one '-', as
// llama.cpp does; an empty name becomes "rule").
//
// body must be valid GBNF; Rule does not check it.
func (b *Builder) Rule(name, body string) string {
	body = emptyLiteral(body)
	n := sanitizeName(name)
	if n == "" {
		n = "rule"
	}
	if old, ok := b.rules[n]; !ok || old == body {
		b.put(n, body)
		return n
	}
	for i := 1; ; i++ {
		k := n + "-" + strconv.Itoa(i)
		if old, ok := b.rules[k]; !ok || old == body {
			b.put(k, body)
			return k
		}
	}
}

// addRule is llama.cpp's _add_rule: on a clash the suffix is a bare number
// starting at 0 ("root0"), so that generated grammars match llama.cpp's.
func (b *Builder) addRule(name, body string) string {
	body = emptyLiteral(body)
	n := sanitizeName(name)
	if old, ok := b.rules[n]; !ok || old == body {
		b.put(n, body)
		return n
	}
	for i := 0; ; i++ {
		k := n + strconv.Itoa(i)
		if old, ok := b.rules[k]; !ok || old == body {
			b.put(k, body)
			return k
		}
	}
}

func (b *Builder) put(name, body string) {
	if old, ok := b.rules[name]; ok {
		b.size -= len(name) + len(old)
	}
	b.rules[name] = body
	b.size += len(name) + len(body)
}

// tooBig reports whether the Builder has grown past the limits; the
// converters check it so that a hostile schema fails instead of growing
// without bound.
func (b *Builder) tooBig() bool {
	return len(b.rules) > maxRules || b.size > maxGrammarBytes
}

// snapshot and restore make Schema and Regex all-or-nothing: a failed call
// leaves the Builder as it was.
func (b *Builder) snapshot() (map[string]string, int) {
	m := make(map[string]string, len(b.rules))
	for k, v := range b.rules {
		m[k] = v
	}
	return m, b.size
}

func (b *Builder) restore(m map[string]string, size int) {
	b.rules, b.size = m, size
}

// String renders every rule, one "name ::= body" line each, sorted by name
// (as llama.cpp does).
func (b *Builder) String() string {
	names := make([]string, 0, len(b.rules))
	for n := range b.rules {
		names = append(names, n)
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, n := range names {
		sb.WriteString(n)
		sb.WriteString(" ::= ")
		sb.WriteString(b.rules[n])
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Schema adds the rules that match the JSON Schema document schema (raw JSON)
// and returns the name of the rule to reference; $ref "#/$defs/..." and
// "#/definitions/..." (any JSON pointer, and "#" itself) resolve within that
// document. Common helper rules (space, string, number, ...) are shared
// across calls. The name "root" (or "") makes the document's rule "root";
// rules for a document's $refs are named "ref-..." for the root document and
// "<name>-ref-..." otherwise, so documents never share each other's
// definitions. On error the Builder is left unchanged; the error is a
// *SchemaError.
//
// Where this departs from llama.cpp, on purpose: {}, true and schemas with
// only annotations accept any JSON value (llama.cpp: only objects for {});
// a pattern is a real regular expression (\d, \w, classes, nesting), matched
// whole-string with or without ^...$, and characters JSON must escape are
// matched in their escaped spelling (llama.cpp copies the pattern through
// and can emit a bare quote); integer bounds never admit leading zeros
// ("-05") and are exact for minimums such as 100 (llama.cpp admits 11);
// keys of additional properties never start with a raw backslash or control
// character; allOf merges all keywords of its members; prefixItems may be
// followed by items; minItems/maxItems apply without items; and impossible
// or oversized constraints are errors. Ignored, as by llama.cpp: bounds on
// non-integer numbers, multipleOf, uniqueItems, not, if/then/else,
// patternProperties, propertyNames, min/maxProperties, contains, and formats
// other than date, time, date-time and uuid. Refused: $ref outside the
// document (URLs, other files, $anchor names).
func (b *Builder) Schema(name string, schema json.RawMessage) (string, error) {
	doc, err := parseJSON(schema)
	if err != nil {
		return "", &SchemaError{Path: "", Reason: "invalid JSON: " + err.Error()}
	}
	saved, size := b.snapshot()
	c := &converter{b: b, doc: doc, refs: map[string]*refState{}}
	visitName := name
	if name == "root" || name == "" {
		visitName = ""
		c.refPrefix = "ref"
	} else {
		c.refPrefix = name + "-ref"
	}
	if _, ok := b.rules["space"]; !ok {
		b.put("space", spaceRule)
	} else if b.rules["space"] != spaceRule {
		b.restore(saved, size)
		return "", &SchemaError{Reason: `rule "space" is already defined with another body`}
	}
	// "#" refers to the document itself: let it resolve to the rule being
	// built, if that name is free, instead of building the document twice.
	rootRule := visitName
	if reservedNames[visitName] {
		rootRule += "-"
	} else if visitName == "" {
		rootRule = "root"
	}
	var self *refState
	if _, taken := b.rules[sanitizeName(rootRule)]; !taken {
		self = &refState{name: sanitizeName(rootRule), resolving: true}
		c.refs["#"] = self
	}
	out, err := c.visit(doc, visitName, "")
	if err == nil && self != nil && self.recursed && out != self.name {
		if b.addRule(self.name, out) != self.name {
			err = &SchemaError{Reason: "cannot name the rule for $ref \"#\""}
		}
		out = self.name
	}
	if err == nil && b.tooBig() {
		err = &SchemaError{Reason: "grammar too large"}
	}
	if err != nil {
		b.restore(saved, size)
		return "", err
	}
	return out, nil
}

// Regex adds a rule matching exactly the strings the (ECMAScript-style
// subset) regular expression matches, whole-string (as if anchored), and
// returns its name. A leading ^ and a trailing $ are accepted and ignored.
// Unsupported: lookaround, backreferences, word boundaries, \p{...} and
// flags. On error the Builder is left unchanged.
func (b *Builder) Regex(name, pattern string) (string, error) {
	saved, size := b.snapshot()
	ruleName := name
	if sanitizeName(ruleName) == "" {
		ruleName = "root"
	}
	body, err := b.regexBody(pattern, ruleName, false)
	if err == nil && b.tooBig() {
		err = errors.New("grammar too large")
	}
	if err != nil {
		b.restore(saved, size)
		return "", fmt.Errorf("grammar: regex %q: %w", pattern, err)
	}
	if body == "" {
		body = `""`
	}
	return b.addRule(ruleName, body), nil
}

// Literal quotes s as a GBNF string literal, escaping \, ", newline, CR, tab
// and other control characters (\xNN). Bytes that are not valid UTF-8 become
// U+FFFD, since a GBNF literal holds code points, not bytes.
func Literal(s string) string {
	var sb strings.Builder
	sb.Grow(len(s) + 2)
	sb.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '\\':
			sb.WriteString(`\\`)
		case r == '"':
			sb.WriteString(`\"`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			fmt.Fprintf(&sb, `\x%02X`, r)
		case r == utf8.RuneError || !unicode.IsPrint(r) && r > 0x9f:
			writeHexEscape(&sb, r)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// writeHexEscape writes r as a GBNF \u or \U escape.
func writeHexEscape(sb *strings.Builder, r rune) {
	if r <= 0xffff {
		fmt.Fprintf(sb, `\u%04X`, r)
	} else {
		fmt.Fprintf(sb, `\U%08X`, r)
	}
}

// FromJSONSchema returns a grammar whose root matches schema.
func FromJSONSchema(schema json.RawMessage) (string, error) {
	b := NewBuilder()
	name, err := b.Schema("root", schema)
	if err != nil {
		return "", err
	}
	if name != "root" {
		// Cannot happen with a fresh Builder (only the document itself is
		// visited under "root"), but keep the root rule honest regardless.
		if got := b.addRule("root", name); got != "root" {
			return "", &SchemaError{Reason: "internal error: root rule taken"}
		}
	}
	return b.String(), nil
}

// FromRegex returns a grammar whose root matches pattern (whole string).
func FromRegex(pattern string) (string, error) {
	b := NewBuilder()
	if _, err := b.Regex("root", pattern); err != nil {
		return "", err
	}
	return b.String(), nil
}

// FromChoices returns a grammar whose root is exactly one of choices
// (non-empty list, each non-empty). Duplicates are dropped.
func FromChoices(choices []string) (string, error) {
	if len(choices) == 0 {
		return "", errors.New("grammar: no choices")
	}
	seen := map[string]bool{}
	alts := make([]string, 0, len(choices))
	for i, c := range choices {
		if c == "" {
			return "", fmt.Errorf("grammar: choice %d is empty", i)
		}
		if seen[c] {
			continue
		}
		seen[c] = true
		alts = append(alts, Literal(c))
	}
	body := strings.Join(alts, " | ")
	if len(body) > maxGrammarBytes {
		return "", errors.New("grammar: choices too large")
	}
	b := NewBuilder()
	b.addRule("root", body)
	return b.String(), nil
}

// JSONObject returns a grammar whose root is any JSON object (response_format
// json_object). It is what llama.cpp's server uses: the grammar of
// {"type":"object"}.
func JSONObject() string {
	g, err := FromJSONSchema(json.RawMessage(`{"type":"object"}`))
	if err != nil {
		panic("grammar: JSONObject: " + err.Error()) // fixed input; cannot happen
	}
	return g
}

// SchemaError says which part of a schema cannot be converted.
type SchemaError struct {
	Path   string // JSON pointer into the schema document, e.g. "/properties/a/pattern"
	Reason string
}

func (e *SchemaError) Error() string {
	if e.Path == "" {
		return "grammar: schema: " + e.Reason
	}
	return "grammar: schema at " + e.Path + ": " + e.Reason
}

// sanitizeName replaces each run of characters outside [a-zA-Z0-9-] by '-',
// like llama.cpp, because GBNF names allow nothing else.
func sanitizeName(name string) string {
	var sb strings.Builder
	inRun := false
	for _, r := range name {
		if r < utf8.RuneSelf && (r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			sb.WriteRune(r)
			inRun = false
			continue
		}
		if !inRun {
			sb.WriteByte('-')
			inRun = true
		}
	}
	return sb.String()
}

// emptyLiteral writes an empty body or alternative as the empty literal: GBNF
// skips newlines after "::=" and "|", so an empty one at the end of a rule
// would swallow the next rule's name.
func emptyLiteral(body string) string {
	if strings.TrimSpace(body) == "" {
		return `""`
	}
	return body
}
