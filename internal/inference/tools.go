package inference

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// Tools is a request's tool offer.
type Tools struct {
	// Tools are the functions offered; empty: no tool use.
	Tools []toolcall.Tool
	// Choice is tool_choice (default Auto when tools are given).
	Choice toolcall.Choice
	// Parallel allows more than one call in a reply.
	Parallel bool
}

// ToolFormat says how the served model's chat template writes tool calls.
type ToolFormat struct {
	// Format is the template family's call syntax.
	Format toolcall.Format
	// RendersTools: the template prints the tools itself; otherwise they
	// are described in a system message.
	RendersTools bool
}

var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// validateTools checks the offer (names, choice) before any work.
func validateTools(t Tools) error {
	seen := map[string]bool{}
	for i, tool := range t.Tools {
		if !toolName.MatchString(tool.Name) {
			return reqerr.Invalid(fmt.Sprintf("tools[%d].function.name", i), "%q must be 1-64 of a-z, A-Z, 0-9, _ and -", tool.Name)
		}
		if seen[tool.Name] {
			return reqerr.Invalid(fmt.Sprintf("tools[%d].function.name", i), "%q is offered twice", tool.Name)
		}
		seen[tool.Name] = true
		if len(tool.Parameters) > 0 {
			var obj map[string]any
			if json.Unmarshal(tool.Parameters, &obj) != nil {
				return reqerr.Invalid(fmt.Sprintf("tools[%d].function.parameters", i), "must be a JSON Schema object")
			}
		}
	}
	switch t.Choice.Mode {
	case toolcall.Required, toolcall.Named:
		if len(t.Tools) == 0 {
			return reqerr.Invalid("tool_choice", "asks for a tool call but no tools are given")
		}
	}
	if t.Choice.Mode == toolcall.Named && !seen[t.Choice.Name] {
		return reqerr.Invalid("tool_choice", "names %q, which is not among the tools", t.Choice.Name)
	}
	return nil
}

// uses reports whether the model may call tools in this request.
func (t Tools) uses() bool { return len(t.Tools) > 0 && t.Choice.Mode != toolcall.None }

// withInstructions adds a system message describing the tools, for a
// template that does not render them: to the first system message, or as
// a new first message.
func withInstructions(msgs []chat.Message, text string) []chat.Message {
	out := make([]chat.Message, 0, len(msgs)+1)
	if len(msgs) > 0 && (msgs[0].Role == "system" || msgs[0].Role == "developer") {
		first := msgs[0]
		first.Content = strings.TrimSpace(first.Content + "\n\n" + text)
		return append(append(out, first), msgs[1:]...)
	}
	return append(append(out, chat.Message{Role: "system", Content: text}), msgs...)
}

// Reply is a tool request's output split into content and calls.
type Reply struct {
	Content   string
	ToolCalls []chat.ToolCall
}

// ParseReply splits a whole output. Calls get fresh ids.
func (st *Stream) ParseReply(text string) Reply {
	if st.ToolFormat == "" {
		return Reply{Content: text}
	}
	content, calls := st.ToolFormat.Parse(text)
	return Reply{Content: content, ToolCalls: withIDs(calls)}
}

// ReplyStream splits streamed output as it comes: Push returns content
// safe to send now; Finish the rest and the calls.
type ReplyStream struct {
	s *toolcall.Stream
}

// ReplyStream starts splitting a streamed reply; nil when the request
// offers no tools (its text is all content).
func (st *Stream) ReplyStream() *ReplyStream {
	if st.ToolFormat == "" {
		return nil
	}
	return &ReplyStream{s: toolcall.NewStream(st.ToolFormat)}
}

// Push takes new text and returns the content that can be sent.
func (r *ReplyStream) Push(text string) string { return r.s.Push(text) }

// Finish returns the remaining content and the calls.
func (r *ReplyStream) Finish() Reply {
	content, calls := r.s.Finish()
	return Reply{Content: content, ToolCalls: withIDs(calls)}
}

func withIDs(calls []toolcall.Call) []chat.ToolCall {
	if len(calls) == 0 {
		return nil
	}
	out := make([]chat.ToolCall, len(calls))
	for i, c := range calls {
		out[i] = chat.ToolCall{ID: NewCallID(), Name: c.Name, Arguments: c.Arguments}
	}
	return out
}

// NewCallID makes a tool call id in OpenAI's shape ("call_" + 24 hex).
func NewCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "call_" + hex.EncodeToString(b[:])
}
