package inference

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// refuseGrammar is a GrammarChecker that refuses grammars containing
// "bad", as llama.cpp would with its reason.
type refuseGrammar struct{ checked []string }

func (r *refuseGrammar) CheckGrammar(gbnf string, _ []string) error {
	r.checked = append(r.checked, gbnf)
	if strings.Contains(gbnf, "bad") {
		return errors.New("Undefined rule identifier 'bad'")
	}
	return nil
}

// recordingTemplate keeps what it was asked to render.
type recordingTemplate struct {
	msgs  []chat.Message
	tools []toolcall.Tool
}

func (r *recordingTemplate) Render(ctx context.Context, msgs []chat.Message, tools []toolcall.Tool, _ bool) (string, error) {
	r.msgs, r.tools = msgs, tools
	return bosTemplate{}.Render(ctx, msgs, tools, true)
}

func structuredService(sub *captureSubmitter, tmpl *recordingTemplate, g GrammarChecker, tf ToolFormat) *Service {
	return New(Config{Model: Model{ID: "m"}, Tokenizer: byteTokenizer{}, Chat: tmpl, Scheduler: sub, Grammars: g, ToolFormat: tf, VocabSize: 300})
}

var weather = toolcall.Tool{Name: "get_weather", Description: "d", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string","maxLength":8}},"required":["city"]}`)}

func TestConstraintsBecomeGrammars(t *testing.T) {
	tests := []struct {
		name string
		c    Constraint
	}{
		{"grammar as is", Constraint{Kind: ConstraintGrammar, Field: "grammar", Grammar: `root ::= "a"`}},
		{"schema", Constraint{Kind: ConstraintJSONSchema, Field: "json_schema", Schema: json.RawMessage(`{"type":"integer"}`)}},
		{"object", Constraint{Kind: ConstraintJSONObject, Field: "response_format"}},
		{"regex", Constraint{Kind: ConstraintRegex, Field: "guided_regex", Regex: "[a-c]+"}},
		{"choice", Constraint{Kind: ConstraintChoice, Field: "guided_choice", Choices: []string{"x", "y"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, g := &captureSubmitter{}, &refuseGrammar{}
			s := structuredService(sub, &recordingTemplate{}, g, ToolFormat{})
			c := tt.c
			if _, err := s.Generate(context.Background(), GenerateRequest{Prompt: "p", Constraint: &c}); err != nil {
				t.Fatal(err)
			}
			gr := sub.got.Sampling.Grammar
			if !strings.Contains(gr, "root ::=") || len(g.checked) != 1 || g.checked[0] != gr {
				t.Errorf("grammar %q (checked %q)", gr, g.checked)
			}
			if sub.got.Special || sub.got.ToolCalls != nil {
				t.Error("a plain constraint asked for tool parsing")
			}
		})
	}
}

func TestConstraintErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, field, reason string
		req                 GenerateRequest
	}{
		{"llama.cpp refuses", "grammar", "Undefined rule identifier 'bad'", GenerateRequest{Prompt: "p", Constraint: &Constraint{Kind: ConstraintGrammar, Field: "grammar", Grammar: "root ::= bad"}}},
		{"empty grammar", "guided_grammar", "empty", GenerateRequest{Prompt: "p", Constraint: &Constraint{Kind: ConstraintGrammar, Field: "guided_grammar"}}},
		{"bad schema", "response_format.json_schema.schema", "", GenerateRequest{Prompt: "p", Constraint: &Constraint{Kind: ConstraintJSONSchema, Field: "response_format.json_schema.schema", Schema: json.RawMessage(`{"$ref":"#/nowhere"}`)}}},
		{"bad regex", "guided_regex", "", GenerateRequest{Prompt: "p", Constraint: &Constraint{Kind: ConstraintRegex, Field: "guided_regex", Regex: "(a"}}},
		{"constraint with tools", "json_schema", "tools", GenerateRequest{Messages: []chat.Message{{Role: "user", Content: "a"}}, Tools: Tools{Tools: []toolcall.Tool{weather}}, Constraint: &Constraint{Kind: ConstraintJSONSchema, Field: "json_schema", Schema: json.RawMessage(`{}`)}}},
		{"tools without messages", "tools", "", GenerateRequest{Prompt: "p", Tools: Tools{Tools: []toolcall.Tool{weather}}}},
		{"bad tool name", "tools[0].function.name", "", GenerateRequest{Messages: []chat.Message{{Role: "user", Content: "a"}}, Tools: Tools{Tools: []toolcall.Tool{{Name: "a b"}}}}},
		{"duplicate tool", "tools[1].function.name", "twice", GenerateRequest{Messages: []chat.Message{{Role: "user", Content: "a"}}, Tools: Tools{Tools: []toolcall.Tool{weather, weather}}}},
		{"parameters not an object", "tools[0].function.parameters", "", GenerateRequest{Messages: []chat.Message{{Role: "user", Content: "a"}}, Tools: Tools{Tools: []toolcall.Tool{{Name: "f", Parameters: json.RawMessage(`[1]`)}}}}},
		{"named tool not offered", "tool_choice", "not among", GenerateRequest{Messages: []chat.Message{{Role: "user", Content: "a"}}, Tools: Tools{Tools: []toolcall.Tool{weather}, Choice: toolcall.Choice{Mode: toolcall.Named, Name: "g"}}}},
		{"required without tools", "tool_choice", "", GenerateRequest{Messages: []chat.Message{{Role: "user", Content: "a"}}, Tools: Tools{Choice: toolcall.Choice{Mode: toolcall.Required}}}},
		{"bias outside vocabulary", "logit_bias", "vocabulary", GenerateRequest{Prompt: "p", Sampling: scheduler.SamplingParams{LogitBias: map[int32]float32{300: 1}}}},
		{"bias too large", "logit_bias", "outside", GenerateRequest{Prompt: "p", Sampling: scheduler.SamplingParams{LogitBias: map[int32]float32{3: 500}}}},
		{"tool call on a user message", "messages[0].tool_calls", "", GenerateRequest{Messages: []chat.Message{{Role: "user", Content: "a", ToolCalls: []chat.ToolCall{{Name: "f"}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := structuredService(&captureSubmitter{}, &recordingTemplate{}, &refuseGrammar{}, ToolFormat{Format: toolcall.Hermes, RendersTools: true})
			_, err := s.Generate(context.Background(), tt.req)
			var ie *reqerr.InvalidError
			if !errors.As(err, &ie) || ie.Field != tt.field || !strings.Contains(ie.Reason, tt.reason) {
				t.Errorf("err = %v, want invalid %s mentioning %q", err, tt.field, tt.reason)
			}
		})
	}
}

func TestToolRequests(t *testing.T) {
	msgs := []chat.Message{{Role: "user", Content: "weather?"}}
	t.Run("template renders tools", func(t *testing.T) {
		sub, tmpl := &captureSubmitter{}, &recordingTemplate{}
		s := structuredService(sub, tmpl, &refuseGrammar{}, ToolFormat{Format: toolcall.Hermes, RendersTools: true})
		st, err := s.Generate(context.Background(), GenerateRequest{Messages: msgs, Tools: Tools{Tools: []toolcall.Tool{weather}, Choice: toolcall.Choice{Mode: toolcall.Required}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(tmpl.tools) != 1 || len(tmpl.msgs) != 1 {
			t.Errorf("template got %d tools and %d messages, want the tools and the messages as they came", len(tmpl.tools), len(tmpl.msgs))
		}
		if sub.got.Sampling.Grammar == "" || !sub.got.Special || sub.got.ToolCalls == nil || st.ToolFormat != toolcall.Hermes {
			t.Errorf("required tools: grammar %q special %v hook %v format %q", sub.got.Sampling.Grammar, sub.got.Special, sub.got.ToolCalls != nil, st.ToolFormat)
		}
		if n := sub.got.ToolCalls("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"); n != 1 {
			t.Errorf("the tool-call counter counted %d calls, want 1", n)
		}
	})
	t.Run("template without tools gets instructions", func(t *testing.T) {
		sub, tmpl := &captureSubmitter{}, &recordingTemplate{}
		s := structuredService(sub, tmpl, &refuseGrammar{}, ToolFormat{Format: toolcall.Generic})
		if _, err := s.Generate(context.Background(), GenerateRequest{Messages: msgs, Tools: Tools{Tools: []toolcall.Tool{weather}}}); err != nil {
			t.Fatal(err)
		}
		if tmpl.tools != nil || len(tmpl.msgs) != 2 || tmpl.msgs[0].Role != "system" || !strings.Contains(tmpl.msgs[0].Content, "get_weather") {
			t.Errorf("template got tools %v and messages %+v, want a system message describing get_weather", tmpl.tools, tmpl.msgs)
		}
		if len(sub.got.Sampling.Triggers) == 0 {
			t.Error("auto tool choice should be a lazy grammar")
		}
	})
	t.Run("tool_choice none", func(t *testing.T) {
		sub := &captureSubmitter{}
		s := structuredService(sub, &recordingTemplate{}, &refuseGrammar{}, ToolFormat{Format: toolcall.Hermes, RendersTools: true})
		st, err := s.Generate(context.Background(), GenerateRequest{Messages: msgs, Tools: Tools{Tools: []toolcall.Tool{weather}, Choice: toolcall.Choice{Mode: toolcall.None}}})
		if err != nil {
			t.Fatal(err)
		}
		if sub.got.Sampling.Grammar != "" || st.ToolFormat != "" || sub.got.ToolCalls != nil {
			t.Error("tool_choice none still constrains or parses calls")
		}
	})
	t.Run("system message gets the instructions appended", func(t *testing.T) {
		got := withInstructions([]chat.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "x"}}, "TOOLS")
		if len(got) != 2 || got[0].Content != "Be brief.\n\nTOOLS" {
			t.Errorf("withInstructions = %+v", got)
		}
	})
}

func TestParseReplyGivesCallIDs(t *testing.T) {
	st := &Stream{ToolFormat: toolcall.Hermes}
	r := st.ParseReply("<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>")
	if len(r.ToolCalls) != 2 || r.ToolCalls[0].ID == r.ToolCalls[1].ID || !strings.HasPrefix(r.ToolCalls[0].ID, "call_") || len(r.ToolCalls[0].ID) != len("call_")+24 {
		t.Errorf("calls %+v", r.ToolCalls)
	}
	plain := (&Stream{}).ParseReply("<tool_call>{\"name\": \"a\"}</tool_call>")
	if plain.Content == "" || plain.ToolCalls != nil {
		t.Errorf("a request without tools parsed calls: %+v", plain)
	}
}
