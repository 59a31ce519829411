package sandbox

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/lumenllm/lumen/internal/chat"
)

// retireGoroutines is the goroutine count past which a worker asks to be
// replaced (see response.Retire). A worker between renders runs one.
const retireGoroutines = 1000

// cacheSize bounds the parsed templates a worker keeps. A Renderer sends
// one template, so more than one entry only matters to a worker driven by
// hand; the bound keeps such a worker's memory flat.
const cacheSize = 8

// ServeWorker is a render worker's main loop: the hidden command that
// Config.Command names calls it with its stdin and stdout. It reads the
// limits the parent sends and applies them to this process before it
// parses any template, then answers render requests one at a time until
// in ends (nil) or the stream breaks. Templates are parsed and rendered
// here, never in the parent; when one overruns, this process dies or is
// killed, which is the point.
func ServeWorker(in io.Reader, out io.Writer) error {
	dec := gob.NewDecoder(bufio.NewReader(in))
	bw := bufio.NewWriter(out)
	enc := gob.NewEncoder(bw)
	var h hello
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("chat render worker: reading limits: %w", err)
	}
	if err := applyLimits(h); err != nil {
		return fmt.Errorf("chat render worker: applying limits: %w", err)
	}
	if err := send(enc, bw, ready{PID: os.Getpid()}); err != nil {
		return fmt.Errorf("chat render worker: %w", err)
	}
	cache := make(map[cacheKey]parsed)
	for {
		var req request // fresh each time: gob leaves unsent (zero) fields as they were
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the parent closed our stdin: done
			}
			return fmt.Errorf("chat render worker: reading request: %w", err)
		}
		if err := send(enc, bw, render(cache, &req)); err != nil {
			return fmt.Errorf("chat render worker: %w", err)
		}
	}
}

func send(enc *gob.Encoder, bw *bufio.Writer, msg any) error {
	if err := enc.Encode(msg); err != nil {
		return fmt.Errorf("writing %T: %w", msg, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %T: %w", msg, err)
	}
	return nil
}

type cacheKey struct {
	source string
	opts   chat.Options
}

// parsed is a cached parse: the template, or why it does not parse (so a
// template that does not parse is not parsed again for every request).
type parsed struct {
	tpl *chat.Template
	err error
}

func render(cache map[cacheKey]parsed, req *request) response {
	key := cacheKey{req.Source, req.Options}
	p, ok := cache[key]
	if !ok {
		if len(cache) >= cacheSize {
			clear(cache)
		}
		p.tpl, p.err = chat.New(req.Source, req.Options)
		cache[key] = p
	}
	if p.err != nil {
		return response{Failure: failParse, Message: p.err.Error()}
	}
	// No deadline here: time is the parent's to enforce, by killing this
	// process, which also stops what checks between writes cannot (a loop
	// that prints nothing).
	out, err := p.tpl.RenderLimited(context.Background(), req.Messages, req.Tools, req.AddGenerationPrompt,
		chat.Limits{MaxOutputBytes: req.MaxOutputBytes})
	resp := response{Output: out, Retire: runtime.NumGoroutine() > retireGoroutines}
	var ex *chat.ExceptionError
	var ol *chat.OutputLimitError
	switch {
	case err == nil:
	case errors.As(err, &ex):
		resp.Failure, resp.Message = failException, ex.Message
	case errors.As(err, &ol):
		resp.Failure = failOutput
	default:
		resp.Failure, resp.Message = failRender, err.Error()
	}
	return resp
}

// setGoLimits applies the limits the Go runtime enforces itself.
func setGoLimits(h hello) {
	// A render is sequential; one P keeps a runaway worker (and its
	// garbage collector) to about one core.
	runtime.GOMAXPROCS(1)
	if h.MaxStack > 0 {
		// Go's default is 1 GB a goroutine; runaway template recursion
		// should die long before it has used that much.
		debug.SetMaxStack(h.MaxStack)
	}
	if h.MemoryLimit > 0 {
		// A soft limit under the hard one makes the collector work harder
		// before an allocation fails, so a template that is merely
		// wasteful still renders.
		debug.SetMemoryLimit(int64(h.MemoryLimit / 4 * 3))
	}
}
