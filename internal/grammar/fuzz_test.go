package grammar

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzFromJSONSchema: no input may panic; failures are *SchemaError; every
// success is a non-empty grammar that llama.cpp would load.
func FuzzFromJSONSchema(f *testing.F) {
	if data, err := os.ReadFile("testdata/llamacpp_cases.json"); err == nil {
		var cases []llamaCase
		if json.Unmarshal(data, &cases) == nil {
			for _, c := range cases {
				f.Add([]byte(c.Schema))
			}
		}
	}
	for _, c := range schemaCases {
		f.Add([]byte(c.schema))
	}
	for _, s := range []string{
		``, `null`, `0`, `"x"`, `[]`, `{"type":null}`, `{"$ref":"#"}`, `{"$ref":"#/"}`,
		`{"items":{"$ref":"#"}}`, `{"anyOf":[{"$ref":"#/anyOf/1"},{"$ref":"#/anyOf/0"}]}`,
		`{"allOf":[{"allOf":[{"$ref":"#/allOf/0"}]}]}`,
		`{"type":"integer","minimum":-9223372036854775808,"maximum":9223372036854775807}`,
		`{"type":"integer","minimum":1e-400,"exclusiveMaximum":1e400}`,
		`{"type":"string","pattern":"^((((a)*)*)*)*$"}`,
		`{"type":"string","pattern":"[\\u0000-\\uFFFF]{5}"}`,
		`{"properties":{"\u0000\"\\":{"const":"\u0000"}},"additionalProperties":true}`,
		`{"type":["string","integer","object","array","null","boolean","number"],"minLength":1,"minimum":3,"items":{},"properties":{"a":{}}}`,
		strings.Repeat(`[`, 2000),
		strings.Repeat(`{"items":`, 70) + `true` + strings.Repeat(`}`, 70),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := FromJSONSchema(json.RawMessage(data))
		if err != nil {
			var se *SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("error is not a *SchemaError: %T %v", err, err)
			}
			return
		}
		if got == "" {
			t.Fatal("empty grammar")
		}
		if _, err := parseGBNF(got); err != nil {
			t.Fatalf("grammar does not load: %v\n%s", err, got)
		}
	})
}

// FuzzFromRegex: no pattern may panic, and every success loads.
func FuzzFromRegex(f *testing.F) {
	for _, c := range regexCases {
		f.Add(c.pattern)
	}
	for _, p := range []string{`[\d-z]`, `[a-\d]`, `(?<n>a)`, `\u{0}`, `[\b]`, `a{,3}`, `(|)*`, `[^\x00-\u{10FFFF}]`} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		got, err := FromRegex(pattern)
		if err != nil {
			return
		}
		if _, err := parseGBNF(got); err != nil {
			t.Fatalf("grammar for %q does not load: %v\n%s", pattern, err, got)
		}
	})
}
