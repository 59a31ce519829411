package llama_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/lumenllm/lumen/internal/engine/llama"
	"github.com/lumenllm/lumen/internal/grammar"
)

// Every grammar Lumen's JSON Schema converter makes for the schema cases
// of llama.cpp's own converter tests parses in llama.cpp's grammar parser
// (the one that will run it), and so does the grammar llama.cpp's
// converter makes for each case.
func TestSchemaGrammarsParseInLlamaCpp(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "grammar", "testdata", "llamacpp_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name    string          `json:"name"`
		Schema  json.RawMessage `json:"schema"`
		OK      bool            `json:"ok"`
		Grammar string          `json:"grammar"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 50 {
		t.Fatalf("%d cases, want llama.cpp's whole suite", len(cases))
	}
	m := load(t, sharedModel(t))
	ours := 0
	for _, tc := range cases {
		if !tc.OK {
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			g, err := grammar.FromJSONSchema(tc.Schema)
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			if err := llama.CheckGrammar(m, g, nil); err != nil {
				t.Errorf("llama.cpp refuses our grammar: %v\n%s", err, g)
			}
			if tc.Grammar != "" {
				if err := llama.CheckGrammar(m, tc.Grammar, nil); err != nil {
					t.Errorf("llama.cpp refuses its own expected grammar: %v", err)
				}
			}
		})
		ours++
	}
	if ours == 0 {
		t.Fatal("no convertible case")
	}
}

// Regexes whose grammars have empty alternatives or bodies load too (an
// empty one at a rule's end once swallowed the next rule's name).
func TestEmptyRegexAlternativesParseInLlamaCpp(t *testing.T) {
	m := load(t, sharedModel(t))
	for _, re := range []string{`\d{0}|`, `a|`, `|b`, `(|)x`, `x{0}`} {
		g, err := grammar.FromRegex(re)
		if err != nil {
			t.Errorf("FromRegex(%q): %v", re, err)
			continue
		}
		if err := llama.CheckGrammar(m, g, nil); err != nil {
			t.Errorf("%q: llama.cpp refuses %q: %v", re, g, err)
		}
	}
}
