package inference

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// ControlToken is a token that tokenizing with special parsing makes of
// its text: "</s>", "<|im_end|>".
type ControlToken struct {
	Text string
	ID   int32
}

// A chat prompt is the template's markup around the clients' message
// texts. The markup writes control tokens as text, so a prompt is
// tokenized with special parsing — which would also turn a "</s>" or
// "<|im_end|>" that a user typed into the real token, letting users forge
// turn boundaries. So message texts are tokenized as plain text and only
// the markup with special parsing.
//
// When no message text contains a control token's text (nearly every
// request), that is the same as tokenizing the rendered prompt whole,
// and that is what happens. Otherwise the template is rendered a second
// time with each text replaced by a unique sentinel, which shows where
// the markup ends and the texts begin; the prompt is then tokenized in
// runs between the markup's control tokens, texts included as plain
// text. Templates that only trim a text are followed; one that rewrites a
// text otherwise gets it verbatim in that request.

// controlSet is the tokenizer's control tokens, read once per Service.
type controlSet struct {
	tokens []ControlToken
	// starts holds every control text's first byte: a message with none
	// of them mentions no control token (nearly every message).
	starts string
}

func newControlSet(tokens []ControlToken) controlSet {
	var first strings.Builder
	for _, c := range tokens {
		first.WriteByte(c.Text[0])
	}
	return controlSet{tokens: tokens, starts: first.String()}
}

// mentionedIn reports whether any message text contains a control
// token's text.
func (cs controlSet) mentionedIn(msgs []chat.Message) bool {
	for _, m := range msgs {
		if !strings.ContainsAny(m.Content, cs.starts) {
			continue
		}
		for _, c := range cs.tokens {
			if strings.Contains(m.Content, c.Text) {
				return true
			}
		}
	}
	return false
}

// fragment is a piece of a prompt: text, plain or markup, or a control
// token found in markup.
type fragment struct {
	text    string
	markup  bool
	control bool
	id      int32
}

// protectedTokens tokenizes the chat prompt rendered (from msgs and tools)
// with the message texts as plain text. It returns the tokens and the
// prompt they stand for.
func (s *Service) protectedTokens(ctx context.Context, msgs []chat.Message, tools []toolcall.Tool, rendered string, control []ControlToken) ([]int32, string, error) {
	var nonce [6]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, "", fmt.Errorf("sentinel: %w", err)
	}
	tag := "\ue000" + hex.EncodeToString(nonce[:]) + ":"
	marked := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		m.Content = tag + strconv.Itoa(i) + "\ue001"
		marked[i] = m
	}
	skeleton, err := s.cfg.Chat.Render(ctx, marked, tools, true)
	if err != nil {
		return nil, "", renderError(ctx, err)
	}
	frags := fill(skeleton, tag, msgs, func(c string) string { return c })
	if join(frags) != rendered {
		if trimmed := fill(skeleton, tag, msgs, strings.TrimSpace); join(trimmed) == rendered {
			frags = trimmed
		}
	}
	for _, c := range control {
		frags = splitControl(frags, c)
	}
	toks, err := s.cfg.Tokenizer.Tokenize("", true, false)
	if err != nil {
		return nil, "", reqerr.Invalid("prompt", "cannot be tokenized: %v", err)
	}
	if len(toks) > 1 {
		toks = toks[:1] // BOS only; an end-of-text token belongs at the end of nothing here
	}
	var run strings.Builder
	flush := func() error {
		if run.Len() == 0 {
			return nil
		}
		t, err := s.cfg.Tokenizer.Tokenize(run.String(), false, false)
		if err != nil {
			return reqerr.Invalid("prompt", "cannot be tokenized: %v", err)
		}
		toks = append(toks, t...)
		run.Reset()
		return nil
	}
	for _, f := range frags {
		if !f.control {
			run.WriteString(f.text)
			continue
		}
		if err := flush(); err != nil {
			return nil, "", err
		}
		toks = append(toks, f.id)
	}
	if err := flush(); err != nil {
		return nil, "", err
	}
	return toks, join(frags), nil
}

// fill turns a skeleton (markup with sentinels) into fragments, each
// sentinel replaced by its message's text as shape gives it.
func fill(skeleton, tag string, msgs []chat.Message, shape func(string) string) []fragment {
	var out []fragment
	rest := skeleton
	for {
		i := strings.Index(rest, tag)
		if i < 0 {
			break
		}
		end := strings.Index(rest[i+len(tag):], "\ue001")
		if end < 0 {
			break
		}
		n, err := strconv.Atoi(rest[i+len(tag) : i+len(tag)+end])
		if err != nil || n < 0 || n >= len(msgs) {
			break
		}
		if i > 0 {
			out = append(out, fragment{text: rest[:i], markup: true})
		}
		out = append(out, fragment{text: shape(msgs[n].Content)})
		rest = rest[i+len(tag)+end+len("\ue001"):]
	}
	if rest != "" {
		out = append(out, fragment{text: rest, markup: true})
	}
	return out
}

// splitControl splits the markup fragments at each occurrence of c.
func splitControl(frags []fragment, c ControlToken) []fragment {
	var out []fragment
	for _, f := range frags {
		if !f.markup || !strings.Contains(f.text, c.Text) {
			out = append(out, f)
			continue
		}
		rest := f.text
		for {
			i := strings.Index(rest, c.Text)
			if i < 0 {
				break
			}
			if i > 0 {
				out = append(out, fragment{text: rest[:i], markup: true})
			}
			out = append(out, fragment{text: c.Text, control: true, id: c.ID})
			rest = rest[i+len(c.Text):]
		}
		if rest != "" {
			out = append(out, fragment{text: rest, markup: true})
		}
	}
	return out
}

func join(frags []fragment) string {
	var b strings.Builder
	for _, f := range frags {
		b.WriteString(f.text)
	}
	return b.String()
}
