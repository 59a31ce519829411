package grammar

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// schemaCase is a hand-written schema with JSON texts its grammar must
// accept and reject.
type schemaCase struct {
	name           string
	schema         string
	valid, invalid []string
}

var schemaCases = []schemaCase{
	{
		name:    "required property missing",
		schema:  `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name"]}`,
		valid:   []string{`{"name": "x"}`, `{"name": "x", "age": 3}`, "{\n  \"name\": \"x\",\n  \"age\": -3\n}"},
		invalid: []string{`{}`, `{"age": 3}`, `{"name": 1}`, `{"name": "x", "age": "3"}`, `{"name": "x", "extra": 1}`, `{"name": "x",}`},
	},
	{
		name:    "wrong types",
		schema:  `{"type":"object","properties":{"b":{"type":"boolean"},"n":{"type":"null"},"f":{"type":"number"}},"required":["b","n","f"]}`,
		valid:   []string{`{"b": true, "n": null, "f": -0.5e3}`},
		invalid: []string{`{"b": "true", "n": null, "f": 1}`, `{"b": true, "n": 0, "f": 1}`, `{"b": true, "n": null, "f": "1"}`},
	},
	{
		name:    "string lengths count JSON characters",
		schema:  `{"type":"string","minLength":2,"maxLength":3}`,
		valid:   []string{`"ab"`, `"abc"`, `"\n\""`, `"\u00e9x"`, `"éé"`},
		invalid: []string{`"a"`, `"abcd"`, `""`},
	},
	{
		name:    "maxLength 0",
		schema:  `{"type":"string","maxLength":0}`,
		valid:   []string{`""`},
		invalid: []string{`"a"`},
	},
	{
		name:    "array bounds",
		schema:  `{"type":"array","items":{"type":"integer","minimum":0,"maximum":9},"minItems":1,"maxItems":3}`,
		valid:   []string{`[0]`, `[1, 2, 3]`, `[ 9 ]`},
		invalid: []string{`[]`, `[1, 2, 3, 4]`, `[10]`, `[-1]`, `["1"]`},
	},
	{
		name:    "prefixItems then items",
		schema:  `{"type":"array","prefixItems":[{"type":"string"},{"type":"boolean"}],"items":{"type":"null"},"maxItems":4}`,
		valid:   []string{`["a", true]`, `["a", false, null]`, `["a", false, null, null]`},
		invalid: []string{`["a"]`, `[true, "a"]`, `["a", true, 1]`, `["a", true, null, null, null]`},
	},
	{
		name:    "minItems with prefixItems and items",
		schema:  `{"type":"array","prefixItems":[{"const":1}],"items":{"const":2},"minItems":3}`,
		valid:   []string{`[1, 2, 2]`, `[1, 2, 2, 2]`},
		invalid: []string{`[1]`, `[1, 2]`, `[2, 2, 2]`},
	},
	{
		name:    "items false",
		schema:  `{"type":"array","items":false}`,
		valid:   []string{`[]`},
		invalid: []string{`[1]`},
	},
	{
		name:    "enum of mixed values",
		schema:  `{"enum":["a b", 1.50, {"k":[true]}, false]}`,
		valid:   []string{`"a b"`, `1.50`, `{"k":[true]}`, `false`},
		invalid: []string{`"a"`, `1.5`, `{"k": [true]}`, `true`},
	},
	{
		name:    "const with special characters",
		schema:  `{"const":"quote\" backslash\\ tab\t é"}`,
		valid:   []string{`"quote\" backslash\\ tab\t é"`},
		invalid: []string{"\"quote\\\" backslash\\\\ tab\t é\""},
	},
	{
		name:    "nested objects",
		schema:  `{"type":"object","properties":{"user":{"type":"object","properties":{"id":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}}},"required":["id","tags"]}},"required":["user"]}`,
		valid:   []string{`{"user": {"id": 1, "tags": []}}`, `{"user": {"id": 1, "tags": ["a", "b"]}}`},
		invalid: []string{`{"user": {"id": 1}}`, `{"user": {"tags": []}}`, `{"user": {"id": 1, "tags": [1]}}`},
	},
	{
		name:    "additionalProperties schema",
		schema:  `{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":{"type":"boolean"}}`,
		valid:   []string{`{"a": 1}`, `{"a": 1, "b": true, "c": false}`, `{"a": 1, "aa": true}`},
		invalid: []string{`{"a": 1, "b": 2}`, `{"a": 1, "a": true}`, `{"b": true}`},
	},
	{
		name:    "additionalProperties empty schema",
		schema:  `{"type":"object","additionalProperties":{}}`,
		valid:   []string{`{}`, `{"x": [1, {"y": null}]}`},
		invalid: []string{`[]`, `{"x"}`},
	},
	{
		name:    "additional keys next to names needing escapes",
		schema:  `{"type":"object","properties":{"a\"b":{"const":1},"c\\d":{"const":2}},"additionalProperties":{"const":3}}`,
		valid:   []string{`{"a\"b": 1}`, `{"c\\d": 2}`, `{"a\"b": 1, "x": 3}`, `{"ab": 3}`, `{"a\"bc": 3}`},
		invalid: []string{`{"a\"b": 3}`, `{"c\\d": 3}`, `{"a\u0022b": 3}`},
	},
	{
		name:    "forbidden property",
		schema:  `{"type":"object","properties":{"a":false,"b":{"type":"integer"}},"additionalProperties":true}`,
		valid:   []string{`{}`, `{"b": 1}`, `{"c": 1}`},
		invalid: []string{`{"a": 1}`, `{"b": 1, "a": 1}`},
	},
	{
		name:    "annotations and no-op keywords pass",
		schema:  `{"type":"integer","format":"int32","title":"n","description":"d","examples":[1],"default":0}`,
		valid:   []string{`1`, `-7`},
		invalid: []string{`1.5`, `"1"`},
	},
	{
		name:    "dates know month lengths and leap years",
		schema:  `{"type":"string","format":"date"}`,
		valid:   []string{`"2024-02-29"`, `"2000-02-29"`, `"2023-01-31"`, `"2023-04-30"`, `"2023-02-28"`, `"0004-02-29"`},
		invalid: []string{`"2023-02-29"`, `"1900-02-29"`, `"2023-06-31"`, `"2023-02-30"`, `"2023-13-01"`, `"2023-00-10"`, `"2023-01-00"`},
	},
	{
		name:    "uniqueItems false",
		schema:  `{"type":"array","items":{"type":"boolean"},"uniqueItems":false,"maxItems":2}`,
		valid:   []string{`[]`, `[true,true]`},
		invalid: []string{`[true,true,false]`},
	},
	{
		name:    "nullable via type list",
		schema:  `{"type":["integer","null"],"minimum":1}`,
		valid:   []string{`1`, `null`, `99`},
		invalid: []string{`0`, `"null"`, `1.5`},
	},
	{
		name:    "anyOf",
		schema:  `{"anyOf":[{"type":"string","maxLength":1},{"type":"array","items":{"type":"integer"},"maxItems":1}]}`,
		valid:   []string{`"a"`, `[]`, `[5]`},
		invalid: []string{`"ab"`, `[1, 2]`, `5`},
	},
	{
		name:    "oneOf",
		schema:  `{"oneOf":[{"const":"x"},{"type":"boolean"}]}`,
		valid:   []string{`"x"`, `true`},
		invalid: []string{`"y"`, `null`},
	},
	{
		name:    "$defs and recursion",
		schema:  `{"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["value","next"]}},"$ref":"#/$defs/node"}`,
		valid:   []string{`{"value": 1, "next": null}`, `{"value": 1, "next": {"value": 2, "next": null}}`},
		invalid: []string{`{"value": 1}`, `{"value": 1, "next": {"value": 2}}`, `null`},
	},
	{
		name:    "recursion through the root",
		schema:  `{"type":"object","properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#"}}},"required":["name"]}`,
		valid:   []string{`{"name": "a"}`, `{"name": "a", "children": [{"name": "b", "children": []}]}`},
		invalid: []string{`{"name": "a", "children": [{}]}`, `{"children": []}`},
	},
	{
		name:    "definitions and pointer escapes",
		schema:  `{"definitions":{"a/b":{"type":"integer"},"c~d":{"type":"boolean"}},"type":"array","prefixItems":[{"$ref":"#/definitions/a~1b"},{"$ref":"#/definitions/c~0d"}]}`,
		valid:   []string{`[1, true]`},
		invalid: []string{`[true, 1]`},
	},
	{
		name:    "allOf of type and bounds",
		schema:  `{"allOf":[{"type":"string"},{"minLength":2},{"maxLength":2}]}`,
		valid:   []string{`"ab"`},
		invalid: []string{`"a"`, `"abc"`, `{}`},
	},
	{
		name:    "allOf extending a base",
		schema:  `{"$defs":{"base":{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}},"allOf":[{"$ref":"#/$defs/base"},{"properties":{"note":{"type":"string"}},"required":[]}]}`,
		valid:   []string{`{"id": 1}`, `{"id": 1, "note": "x"}`},
		invalid: []string{`{"note": "x"}`, `{"id": "1"}`},
	},
	{
		name:    "allOf of integer bounds",
		schema:  `{"allOf":[{"type":"integer","minimum":3},{"maximum":5}]}`,
		valid:   []string{`3`, `5`},
		invalid: []string{`2`, `6`},
	},
	{
		name:    "pattern in JSON string",
		schema:  `{"type":"string","pattern":"^[a-z]+-\\d{2}$"}`,
		valid:   []string{`"ab-12"`, `"z-00"`},
		invalid: []string{`"-12"`, `"ab-1"`, `"AB-12"`, `"ab-123"`},
	},
	{
		name:    "pattern with characters JSON escapes",
		schema:  `{"type":"string","pattern":"^a\"b\\\\c\\n$"}`,
		valid:   []string{`"a\"b\\c\n"`},
		invalid: []string{`"a"b\c\n"`, "\"a\\\"b\\\\c\n\""},
	},
	{
		name:    "pattern classes in JSON string",
		schema:  `{"type":"string","pattern":"^[^a][\\s][\\w\"]$"}`,
		valid:   []string{`"\" x"`, `"\\\t\""`, `"b\n_"`, `"\u0001 z"`},
		invalid: []string{`"a x"`, `""" x"`, "\"b\tx\"", `"bx x"`},
	},
	{
		name:    "pattern dot",
		schema:  `{"type":"string","pattern":"^.{2}$"}`,
		valid:   []string{`"ab"`, `"\"\\"`, `"é\t"`},
		invalid: []string{`"a"`, `"a\n"`, `"\r\r"`, `"abc"`},
	},
	{
		name:    "unanchored pattern is whole-string",
		schema:  `{"type":"string","pattern":"ab|cd"}`,
		valid:   []string{`"ab"`, `"cd"`},
		invalid: []string{`"xab"`, `"abcd"`},
	},
	{
		name:    "uuid and date-time formats",
		schema:  `{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"at":{"type":"string","format":"date-time"},"t":{"format":"time"}},"required":["id","at","t"]}`,
		valid:   []string{`{"id": "00000000-0000-0000-0000-000000000000", "at": "2024-05-06T07:08:09Z", "t": "23:59:59.999-01:00"}`},
		invalid: []string{`{"id": "0000", "at": "2024-05-06T07:08:09Z", "t": "23:59:59Z"}`, `{"id": "00000000-0000-0000-0000-000000000000", "at": "2024-05-06", "t": "23:59:59Z"}`},
	},
	{
		name:    "schema true",
		schema:  `true`,
		valid:   []string{`1`, `{}`, `"x"`},
		invalid: []string{`x`},
	},
	{
		name:    "exclusive bounds",
		schema:  `{"type":"integer","exclusiveMinimum":-3,"exclusiveMaximum":3}`,
		valid:   []string{`-2`, `0`, `2`},
		invalid: []string{`-3`, `3`},
	},
	{
		name:    "draft-04 boolean exclusive bounds and fractional bounds",
		schema:  `{"type":"integer","minimum":1.5,"maximum":4,"exclusiveMaximum":true}`,
		valid:   []string{`2`, `3`},
		invalid: []string{`1`, `4`},
	},
	{
		name:    "huge bounds are no bounds",
		schema:  `{"type":"integer","minimum":-1e300,"maximum":1e300}`,
		valid:   []string{`0`, `-1234567890123456`, `1234567890123456`},
		invalid: []string{`12345678901234567`},
	},
	{
		name:    "whitespace is bounded",
		schema:  `{"type":"boolean"}`,
		valid:   []string{"true", "true ", "true\n\n" + strings.Repeat(" ", 20)},
		invalid: []string{"true  ", "true\n\n\n", "true\n" + strings.Repeat(" ", 21), " true"},
	},
}

func TestSchemaSamples(t *testing.T) {
	for _, c := range schemaCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := FromJSONSchema(json.RawMessage(c.schema))
			if err != nil {
				t.Fatalf("FromJSONSchema: %v", err)
			}
			checkSamples(t, compile(t, got), got, c.valid, c.invalid)
		})
	}
}

// TestIntegerRanges checks the digit-by-digit range rules against
// arithmetic, for many bounds: every number near the bounds and in a window
// around zero is accepted exactly when it is in range.
func TestIntegerRanges(t *testing.T) {
	const open = "open"
	bounds := []string{open, "-1000", "-123", "-100", "-10", "-9", "-1", "0", "1", "5", "9", "10", "19", "20", "25", "99", "100", "101", "300", "999", "1000"}
	for _, lo := range bounds {
		for _, hi := range bounds {
			if lo == open && hi == open {
				continue
			}
			loN, _ := strconv.Atoi(lo)
			hiN, _ := strconv.Atoi(hi)
			if lo != open && hi != open && loN > hiN {
				continue
			}
			schema := `{"type":"integer"`
			if lo != open {
				schema += `,"minimum":` + lo
			}
			if hi != open {
				schema += `,"maximum":` + hi
			}
			schema += "}"
			got, err := FromJSONSchema(json.RawMessage(schema))
			if err != nil {
				t.Fatalf("%s: %v", schema, err)
			}
			g := compile(t, got)
			probe := map[int]bool{}
			for n := -130; n <= 130; n += 3 {
				probe[n] = true
			}
			for _, b := range []int{loN, hiN, -1000, 1000, 1234, -1234, 123456} {
				for d := -2; d <= 2; d++ {
					probe[b+d] = true
				}
			}
			for n := range probe {
				want := (lo == open || n >= loN) && (hi == open || n <= hiN)
				if g.accepts("root", strconv.Itoa(n)) != want {
					t.Errorf("%s: accepts(%d) = %v\n%s", schema, n, !want, got)
				}
			}
			for _, bad := range []string{"01", "-01", "00", "1.0", "+1"} {
				if g.accepts("root", bad) {
					t.Errorf("%s: accepts %q", schema, bad)
				}
			}
		}
	}
}

func TestSchemaErrors(t *testing.T) {
	deep := strings.Repeat(`{"type":"array","items":`, 100) + `{}` + strings.Repeat(`}`, 100)
	cases := []struct {
		schema, path string
	}{
		{`{"type":"kaboom"}`, "/type"},
		{`{"type":123}`, "/type"},
		{`{"type":[]}`, "/type"},
		{`{"type":["string",1]}`, "/type/1"},
		{`{`, ""},
		{`{} {}`, ""},
		{``, ""},
		{`[1]`, ""},
		{`false`, ""},
		{`{"properties":{"a":{"type":"string","pattern":"^(a$"}}}`, "/properties/a/pattern"},
		{`{"type":"string","pattern":"^(?=a)$"}`, "/pattern"},
		{`{"type":"string","pattern":"a{2001}"}`, "/pattern"},
		{`{"type":"array","minItems":3,"maxItems":2}`, ""},
		{`{"type":"array","items":{},"minItems":3,"maxItems":2}`, ""},
		{`{"type":"array","items":{},"minItems":1e9}`, "/minItems"},
		{`{"type":"array","items":{},"maxItems":2001}`, "/maxItems"},
		{`{"type":"array","items":{},"minItems":-1}`, "/minItems"},
		{`{"type":"array","items":{},"minItems":1.5}`, "/minItems"},
		{`{"type":"string","maxLength":1000000}`, "/maxLength"},
		{`{"type":"string","minLength":"3"}`, "/minLength"},
		{`{"type":"string","minLength":4,"maxLength":3}`, ""},
		{`{"type":"integer","minimum":5,"maximum":4}`, ""},
		{`{"type":"integer","minimum":"5"}`, "/minimum"},
		{`{"type":"integer","minimum":1e20}`, ""},
		{`{"type":"integer","minimum":1e15}`, ""},
		{`{"$ref":"#/definitions/missing"}`, "/$ref"},
		{`{"$ref":"https://example.com/schema.json"}`, "/$ref"},
		{`{"$ref":"other.json#/a"}`, "/$ref"},
		{`{"$ref":5}`, "/$ref"},
		{`{"$ref":"#"}`, "/$ref"},
		{`{"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"null"}]}},"$ref":"#/$defs/a"}`, "/$defs/a/anyOf/0/$ref"},
		{`{"allOf":[{"$ref":"#"}]}`, "/allOf/0"},
		{`{"allOf":[{"enum":[1,2]},{"enum":[3]}]}`, "/allOf"},
		{`{"allOf":[]}`, "/allOf"},
		{`{"anyOf":[]}`, "/anyOf"},
		{`{"anyOf":[{"type":"string"},false]}`, "/anyOf/1"},
		{`{"enum":[]}`, "/enum"},
		{`{"enum":"a"}`, "/enum"},
		{`{"properties":5}`, "/properties"},
		{`{"properties":{"a":7}}`, "/properties/a"},
		{`{"type":"object","properties":{},"additionalProperties":5}`, "/additionalProperties"},
		{`{"format":5}`, "/format"},
		{`{"type":"string","pattern":5}`, "/pattern"},
		{`{"type":"string","pattern":"[]"}`, "/pattern"},
		{deep, ""},
		// Asked for, but not enforceable in a grammar: refused, not ignored.
		{`{"type":"number","minimum":0}`, "/minimum"},
		{`{"maximum":3}`, "/maximum"},
		{`{"type":"integer","multipleOf":2}`, "/multipleOf"},
		{`{"type":"array","items":{"type":"integer"},"uniqueItems":true}`, "/uniqueItems"},
		{`{"not":{"type":"null"}}`, "/not"},
		{`{"type":"object","minProperties":1}`, "/minProperties"},
		{`{"type":"object","patternProperties":{"^a":{}}}`, "/patternProperties"},
		{`{"type":"string","format":"email"}`, "/format"},
		{`{"type":"string","pattern":"^a+$","maxLength":3}`, "/maxLength"},
		{`{"type":"string","format":"date","pattern":"^2"}`, "/format"},
		{`{"maxLength":3}`, "/maxLength"},
		{`{"properties":{"a":{"type":"number","exclusiveMaximum":1}}}`, "/properties/a/exclusiveMaximum"},
	}
	for _, c := range cases {
		got, err := FromJSONSchema(json.RawMessage(c.schema))
		var se *SchemaError
		if !errors.As(err, &se) {
			t.Errorf("%.80s: want *SchemaError, got %v (grammar %q)", c.schema, err, got)
			continue
		}
		if c.path != "" && se.Path != c.path {
			t.Errorf("%.80s: path %q, want %q (%v)", c.schema, se.Path, c.path, err)
		}
		if se.Reason == "" || !strings.HasPrefix(se.Error(), "grammar: schema") {
			t.Errorf("%.80s: poor message %q", c.schema, se.Error())
		}
	}
}

// TestSchemaLimits checks that oversized schemas fail quickly instead of
// producing huge grammars.
func TestSchemaLimits(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"enum":[`)
	for i := range 100000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"%050d"`, i)
	}
	sb.WriteString(`]}`)
	// allOf members referring twice to the next definition: exponential
	// work from a linear schema, without a bound.
	blowup := `{"$ref":"#/$defs/d0","$defs":{`
	for i := range 40 {
		blowup += fmt.Sprintf(`"d%d":{"allOf":[{"$ref":"#/$defs/d%d"},{"$ref":"#/$defs/d%d"}]},`, i, i+1, i+1)
	}
	blowup += `"d40":{"type":"string"}}}`
	for name, schema := range map[string]string{"huge enum": sb.String(), "exponential": blowup} {
		_, err := FromJSONSchema(json.RawMessage(schema))
		var se *SchemaError
		if !errors.As(err, &se) {
			t.Errorf("%s: want *SchemaError, got %v", name, err)
		}
	}
}

func TestBuilderRule(t *testing.T) {
	b := NewBuilder()
	if got := b.Rule("x", `"a"`); got != "x" {
		t.Errorf("first rule named %q", got)
	}
	if got := b.Rule("x", `"a"`); got != "x" {
		t.Errorf("same body named %q", got)
	}
	if got := b.Rule("x", `"b"`); got != "x-1" {
		t.Errorf("clash named %q, want x-1", got)
	}
	if got := b.Rule("x", `"c"`); got != "x-2" {
		t.Errorf("second clash named %q, want x-2", got)
	}
	if got := b.Rule("x", `"b"`); got != "x-1" {
		t.Errorf("repeated clash named %q, want x-1", got)
	}
	if got := b.Rule("get_weather args!", `"d"`); got != "get-weather-args-" {
		t.Errorf("sanitized to %q", got)
	}
	if got := b.Rule("", `"e"`); got != "rule" {
		t.Errorf("empty name became %q", got)
	}
	want := "get-weather-args- ::= \"d\"\nrule ::= \"e\"\nx ::= \"a\"\nx-1 ::= \"b\"\nx-2 ::= \"c\"\n"
	if got := b.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
}

// TestBuilderSchemas builds a tool-call style grammar out of several
// documents in one Builder.
func TestBuilderSchemas(t *testing.T) {
	b := NewBuilder()
	a, err := b.Schema("tool-a", json.RawMessage(`{"type":"object","properties":{"q":{"$ref":"#/$defs/s"}},"required":["q"],"$defs":{"s":{"type":"string","maxLength":2}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.Schema("tool-b", json.RawMessage(`{"type":"object","properties":{"q":{"$ref":"#/$defs/s"}},"required":["q"],"$defs":{"s":{"type":"integer"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a != "tool-a" || c != "tool-b" {
		t.Errorf("rule names %q, %q", a, c)
	}
	before := b.String()
	if _, err := b.Schema("tool-c", json.RawMessage(`{"type":"object","properties":{"x":{"$ref":"#/nope"}}}`)); err == nil {
		t.Fatal("bad schema accepted")
	}
	if b.String() != before {
		t.Error("failed Schema changed the Builder")
	}
	root := b.Rule("root", `"<a>" `+a+` | "<b>" `+c)
	if root != "root" {
		t.Fatalf("root named %q", root)
	}
	grammar := b.String()
	if strings.Count(grammar, "\nstring ::=")+strings.Count(grammar, "\nspace ::=") > 2 {
		t.Errorf("helpers duplicated:\n%s", grammar)
	}
	checkSamples(t, compile(t, grammar), grammar,
		[]string{`<a>{"q": "ab"}`, `<b>{"q": 12}`},
		[]string{`<a>{"q": 12}`, `<b>{"q": "ab"}`, `<a>{"q": "abc"}`})

	// A Regex rule next to schema rules.
	r, err := b.Regex("id", `[A-Z]{3}\d+`)
	if err != nil {
		t.Fatal(err)
	}
	b.Rule("root2", r)
	g := compile(t, b.String())
	if !g.accepts("root2", "ABC12") || g.accepts("root2", "AB12") {
		t.Errorf("regex rule wrong:\n%s", b.String())
	}
}

func TestJSONObject(t *testing.T) {
	got := JSONObject()
	checkSamples(t, compile(t, got), got,
		[]string{`{}`, `{"a": [1, {"b": null}], "c": "d"}`},
		[]string{`[]`, `1`, `"x"`, `{"a"}`})
}

func TestLiteral(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:           `"plain"`,
		`q"b\`:            `"q\"b\\"`,
		"nl\ncr\rt\t":     `"nl\ncr\rt\t"`,
		"nul\x00\x1f\x7f": `"nul\x00\x1F\x7F"`,
		"é→😀":             `"é→😀"`,
		"\u2028":          `"\u2028"`,
		"bad\xff":         `"bad\uFFFD"`,
	} {
		if got := Literal(in); got != want {
			t.Errorf("Literal(%q) = %s, want %s", in, got, want)
		}
	}
	// Every literal must load and match its (valid UTF-8) input exactly.
	for _, s := range []string{"a\"b\\c\nd\re\tf", "\x01\x7f", "é→😀\u2028"} {
		g := compile(t, "root ::= "+Literal(s)+"\n")
		if !g.accepts("root", s) || g.accepts("root", s+"x") {
			t.Errorf("Literal(%q) does not match its input", s)
		}
	}
}
