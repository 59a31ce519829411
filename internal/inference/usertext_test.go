package inference

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// trimTemplate is bosTemplate that trims each message's text, as many
// real templates do (| trim).
type trimTemplate struct{}

func (trimTemplate) Render(_ context.Context, msgs []chat.Message, _ []toolcall.Tool, _ bool) (string, error) {
	var sb strings.Builder
	sb.WriteString("<s>")
	for _, m := range msgs {
		sb.WriteString(m.Role + ":" + strings.TrimSpace(m.Content) + "\n")
	}
	return sb.String(), nil
}

// A "<s>" a user types stays text; the template's own "<s>" is the token.
func TestUserTextIsNotParsedForControlTokens(t *testing.T) {
	plain := func(s string) []int32 {
		toks, _ := byteTokenizer{}.Tokenize(s, false, false)
		return toks
	}
	tests := []struct {
		name    string
		chat    ChatRenderer
		content string
		want    []int32 // after the BOS
	}{
		{"forged BOS", bosTemplate{}, "a<s>b", plain("user:a<s>b\n")},
		{"only a forged BOS", bosTemplate{}, "<s>", plain("user:<s>\n")},
		{"trimmed by the template", trimTemplate{}, "  <s>x  ", plain("user:<s>x\n")},
		{"no control text", bosTemplate{}, "hello", plain("user:hello\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := &captureSubmitter{}
			s := New(Config{Model: Model{ID: "m"}, Tokenizer: byteTokenizer{}, Chat: tt.chat, Scheduler: sub})
			if _, err := s.Generate(context.Background(), GenerateRequest{Messages: []chat.Message{{Role: "user", Content: tt.content}}}); err != nil {
				t.Fatal(err)
			}
			want := append([]int32{1}, tt.want...)
			if !slices.Equal(sub.got.Prompt, want) {
				t.Errorf("prompt %v, want %v", sub.got.Prompt, want)
			}
		})
	}
}

func TestSplitControlOnlyInMarkup(t *testing.T) {
	frags := []fragment{{text: "<s>a<s>", markup: true}, {text: "<s>"}, {text: "b<s>", markup: true}}
	got := splitControl(frags, ControlToken{Text: "<s>", ID: 1})
	var kinds []string
	for _, f := range got {
		switch {
		case f.control:
			kinds = append(kinds, "C")
		case f.markup:
			kinds = append(kinds, "m:"+f.text)
		default:
			kinds = append(kinds, "t:"+f.text)
		}
	}
	want := []string{"C", "m:a", "C", "t:<s>", "m:b", "C"}
	if !slices.Equal(kinds, want) {
		t.Errorf("fragments %v, want %v", kinds, want)
	}
}
