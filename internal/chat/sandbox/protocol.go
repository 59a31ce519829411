package sandbox

import (
	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// The protocol is a gob stream each way over the worker's stdin and
// stdout: first a hello and its ready, then one request and one response
// at a time. gob rather than JSON because strings travel byte for byte
// (JSON would replace invalid UTF-8 in message content and in the
// rendered prompt, so a sandboxed render could differ from an in-process
// one) and because type descriptions are sent once per stream, which keeps
// a render's round trip cheap. Both ends are this package: the stream is
// trusted; only the template is hostile.

// hello is the first message to a worker: the limits it puts on itself
// before it parses any template.
type hello struct {
	MaxStack    int
	MemoryLimit uint64
}

// ready answers hello once the limits are in place.
type ready struct {
	PID int
}

// request is one render.
type request struct {
	// Source is the template ("" for chat.FallbackTemplate); the worker
	// keeps parsed templates by source and options.
	Source              string
	Options             chat.Options
	Messages            []chat.Message
	Tools               []toolcall.Tool
	AddGenerationPrompt bool
	MaxOutputBytes      int
}

// failure says how a render failed, so the parent can rebuild the error
// type the in-process renderer would have returned.
type failure int

const (
	failNone      failure = iota
	failException         // raise_exception; Message is the template's
	failOutput            // output passed MaxOutputBytes
	failParse             // the template does not parse; Message says why
	failRender            // any other render error; Message says what
)

// response answers a request.
type response struct {
	Output  string
	Failure failure
	Message string
	// Retire asks the parent to replace this worker after this render:
	// gonja leaks a goroutine for every range() not iterated to its end,
	// so a long-lived worker rendering such a template grows without
	// bound.
	Retire bool
}
