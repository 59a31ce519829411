package sandbox

import (
	"errors"
	"fmt"
	"time"

	"github.com/lumenllm/lumen/internal/inference"
)

// ErrClosed is a render asked of a Renderer after Close.
var ErrClosed = errors.New("chat template renderer closed")

// Limit names the limit a render ran into.
type Limit int

const (
	// LimitTime: the render ran past Config.Timeout; its worker was killed.
	LimitTime Limit = iota + 1
	// LimitOutput: the prompt would have passed Config.MaxOutputBytes.
	LimitOutput
	// LimitStack: the worker ran out of stack (Config.MaxStack), almost
	// always recursion without end in the template.
	LimitStack
	// LimitMemory: the worker ran out of memory (Config.MemoryLimit).
	LimitMemory
	// LimitCrash: the worker died some other way.
	LimitCrash
)

func (l Limit) String() string {
	switch l {
	case LimitTime:
		return "time"
	case LimitOutput:
		return "output size"
	case LimitStack:
		return "stack"
	case LimitMemory:
		return "memory"
	case LimitCrash:
		return "crash"
	}
	return fmt.Sprintf("Limit(%d)", int(l))
}

// LimitError is a render the sandbox stopped: the template, run on this
// request, overran a limit or killed its worker. Error() is fit to show a
// client (it names the limit, not internals); Detail is for operators.
type LimitError struct {
	Limit Limit
	// Timeout is the time limit, for LimitTime.
	Timeout time.Duration
	// Bytes is the output limit for LimitOutput, the memory limit for
	// LimitMemory.
	Bytes uint64
	// Detail is what is known of a worker's death: its exit status and
	// the runtime's fatal error line.
	Detail string
}

func (e *LimitError) Error() string {
	switch e.Limit {
	case LimitTime:
		return fmt.Sprintf("rendering took longer than its limit of %v", e.Timeout)
	case LimitOutput:
		return fmt.Sprintf("rendered prompt exceeds %d bytes", e.Bytes)
	case LimitStack:
		return "rendering ran out of stack (runaway recursion in the template?)"
	case LimitMemory:
		return fmt.Sprintf("rendering ran past its memory limit of %d MiB", e.Bytes>>20)
	}
	return "the template renderer crashed"
}

// stopped is the error for a render given up because ctx is done.
func stopped(err error) error { return fmt.Errorf("rendering stopped: %w", err) }

// Is makes every limit but the output size an inference.ErrRenderFailed:
// the template's fault, not the request's (a prompt too large for the
// context is the client's).
func (e *LimitError) Is(target error) bool {
	return target == inference.ErrRenderFailed && e.Limit != LimitOutput
}
