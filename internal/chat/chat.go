// Package chat owns turning chat messages into a model prompt: it renders
// the model's own Jinja chat template (the GGUF key
// tokenizer.chat_template, as Hugging Face ships it) with the pure-Go
// gonja engine, in the environment Hugging Face's transformers gives
// templates:
//
//   - variables messages (a list of {"role", "content"} dicts),
//     add_generation_prompt, bos_token and eos_token;
//   - raise_exception(message), which fails the render with message;
//   - trim_blocks and lstrip_blocks on, as in transformers.
//
// When a request offers tools they are the variable tools, a list of
// {"type": "function", "function": {"name", "description", "parameters"}}
// dicts, and messages carry tool_calls (each {"id", "type": "function",
// "function": {"name", "arguments"}}, arguments decoded to a dict as
// transformers' templates expect), tool_call_id and name, each only when
// set. Templates see no other variables: documents and the like are
// undefined, so the usual "is defined" guards skip them. strftime_now is
// not provided either, which keeps a render a pure function of its input
// (templates that use it guard it with "is defined" too).
//
// A model without a template renders with FallbackTemplate, plain ChatML:
//
//	<|im_start|>system
//	You are helpful.<|im_end|>
//	<|im_start|>user
//	Hi<|im_end|>
//	<|im_start|>assistant
//
// (the last line only when a generation prompt is asked for). ChatML is
// the format most instruction-tuned models without a template of their
// own were trained on; for others it is at least a readable transcript.
//
// The package only renders; the inference package validates messages and
// tokenizes the result.
package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"

	"github.com/lumenllm/lumen/internal/toolcall"
)

// Message is one chat message, as a request gives it.
type Message struct {
	Role    string
	Content string
	// ToolCalls are the calls an assistant message made.
	ToolCalls []ToolCall
	// ToolCallID is the call a tool message answers; Name its function.
	ToolCallID string
	Name       string
}

// ToolCall is a call of a tool: one the model made (in a reply) or one
// from the conversation's history (on an assistant message).
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // a JSON object as text, as OpenAI sends it
}

// messageDict is a message as templates see it: a dict, so that both
// message['role'] and message.role work; optional keys only when set, so
// "is defined" tests mean what they say.
func messageDict(m Message) map[string]any {
	d := map[string]any{"role": m.Role, "content": m.Content}
	if len(m.ToolCalls) > 0 {
		calls := make([]any, len(m.ToolCalls))
		for i, c := range m.ToolCalls {
			calls[i] = map[string]any{
				"id":       c.ID,
				"type":     "function",
				"function": map[string]any{"name": c.Name, "arguments": jsonValue(c.Arguments)},
			}
		}
		d["tool_calls"] = calls
	}
	if m.ToolCallID != "" {
		d["tool_call_id"] = m.ToolCallID
	}
	if m.Name != "" {
		d["name"] = m.Name
	}
	return d
}

func toolDicts(tools []toolcall.Tool) []any {
	out := make([]any, len(tools))
	for i, t := range tools {
		fn := map[string]any{"name": t.Name}
		if t.Description != "" {
			fn["description"] = t.Description
		}
		params := any(map[string]any{"type": "object", "properties": map[string]any{}})
		if len(t.Parameters) > 0 {
			params = jsonValue(string(t.Parameters))
		}
		fn["parameters"] = params
		out[i] = map[string]any{"type": "function", "function": fn}
	}
	return out
}

// jsonValue decodes JSON text for a template, or keeps the text when it is
// not JSON (a template then prints it as it came).
func jsonValue(text string) any {
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return text
	}
	return v
}

// FallbackTemplate is the template used when a model has none: ChatML.
const FallbackTemplate = "{% for message in messages %}" +
	"{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
	"{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// Options are the special-token strings a template may print. They come
// from the model's vocabulary (the text of its BOS and EOS tokens).
type Options struct {
	BOSToken string // bos_token
	EOSToken string // eos_token
}

// ExceptionError is a failure the template itself raised with
// raise_exception, typically a conversation shape the model does not
// support (roles not alternating, a system message where none is
// allowed). Its message is the template's, fit to show a client.
type ExceptionError struct {
	Message string
}

func (e *ExceptionError) Error() string { return e.Message }

// Template is a parsed chat template. It is safe for concurrent use.
type Template struct {
	tpl      *exec.Template
	opts     Options
	fallback bool
	source   string
}

// templateName is the template's name in its private loader.
const templateName = "/chat_template"

// New parses source, or FallbackTemplate when source is empty. A template
// that does not parse is an error naming the problem; the caller decides
// whether to fall back (New("", opts) never fails).
func New(source string, opts Options) (t *Template, err error) {
	fallback := source == ""
	if fallback {
		source = FallbackTemplate
	}
	// gonja's parser is run on text that comes from a model file; a panic
	// in it must become an error, not take the server down.
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("chat template: parser failed: %v", p)
		}
	}()
	cfg := config.New()
	// transformers renders with trim_blocks and lstrip_blocks; templates
	// are written for that whitespace handling.
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	// The loader holds only this template, so {% include %} or
	// {% extends %} in a model's template cannot read local files.
	loader, err := loaders.NewMemoryLoader(map[string]string{templateName: source})
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	// A fresh environment per template: gonja's default one is a shared
	// package variable, and globals set on it would leak between
	// templates.
	env := &exec.Environment{
		Context:           exec.EmptyContext().Update(builtins.GlobalFunctions),
		Filters:           builtins.Filters,
		Tests:             builtins.Tests,
		ControlStructures: builtins.ControlStructures,
		Methods:           builtins.Methods,
	}
	tpl, err := exec.NewTemplate(templateName, cfg, loader, env)
	if err != nil {
		// gonja wraps the parse error in a message that repeats the whole
		// template source; the inner error has the line and column.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return nil, fmt.Errorf("chat template does not parse: %w", err)
	}
	return &Template{tpl: tpl, opts: opts, fallback: fallback, source: source}, nil
}

// Source is the template's text (FallbackTemplate for a model without one).
func (t *Template) Source() string { return t.source }

// IsFallback reports whether t is FallbackTemplate because New was given
// no template.
func (t *Template) IsFallback() bool { return t.fallback }

// Render renders messages, ending with the start of an assistant turn when
// addGenerationPrompt is set. A raise_exception in the template returns an
// *ExceptionError; a render stopped because ctx is done returns an error
// wrapping ctx.Err(); other failures (a template error such as an
// undefined method) return an error describing it. Render does not bound
// the output; see RenderLimited.
func (t *Template) Render(ctx context.Context, messages []Message, tools []toolcall.Tool, addGenerationPrompt bool) (string, error) {
	return t.RenderLimited(ctx, messages, tools, addGenerationPrompt, Limits{})
}

// RenderLimited is Render within lim: output past lim.MaxOutputBytes stops
// the render with an *OutputLimitError.
func (t *Template) RenderLimited(ctx context.Context, messages []Message, tools []toolcall.Tool, addGenerationPrompt bool, lim Limits) (out string, err error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("rendering stopped: %w", err)
	}
	// raised records the message of a raise_exception call. It lives in
	// this call's data, not in the template's environment, so concurrent
	// renders do not see each other's exceptions. gonja reports the
	// function's error only as text, so the message is kept here to
	// return it cleanly.
	var raised *ExceptionError
	raise := func(args *exec.VarArgs) (string, error) {
		parts := make([]string, 0, len(args.Args))
		for _, a := range args.Args {
			parts = append(parts, a.String())
		}
		if raised == nil {
			raised = &ExceptionError{Message: strings.Join(parts, " ")}
		}
		return "", raised
	}
	msgs := make([]any, len(messages))
	for i, m := range messages {
		msgs[i] = messageDict(m)
	}
	vars := map[string]any{
		"messages":              msgs,
		"add_generation_prompt": addGenerationPrompt,
		"bos_token":             t.opts.BOSToken,
		"eos_token":             t.opts.EOSToken,
		"raise_exception":       raise,
	}
	if len(tools) > 0 {
		vars["tools"] = toolDicts(tools)
	}
	data := exec.NewContext(vars)
	// The template is code from a model file run by a third-party
	// interpreter; a panic there must fail this request only.
	defer func() {
		if p := recover(); p != nil {
			out, err = "", fmt.Errorf("rendering panicked: %v", p)
		}
	}()
	w := &boundedWriter{ctx: ctx, max: lim.MaxOutputBytes}
	err = t.tpl.Execute(w, data)
	switch {
	case raised != nil:
		return "", raised
	case w.err != nil:
		return "", w.err
	case err != nil:
		// No "chat template" prefix: callers add their own context.
		return "", fmt.Errorf("rendering failed: %w", err)
	}
	return w.buf.String(), nil
}
