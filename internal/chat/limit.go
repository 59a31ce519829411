package chat

import (
	"context"
	"fmt"
	"strings"
)

// Limits bound one in-process render. They stop a template that prints
// too much or keeps printing after its request is gone; they cannot stop
// one that recurses without bound, allocates a huge value in a single
// expression, or loops without printing (Go can interrupt none of those):
// for untrusted templates render in the sandbox package's worker
// processes, which apply these limits too.
type Limits struct {
	// MaxOutputBytes caps the rendered prompt; 0 means no cap.
	MaxOutputBytes int
}

// OutputLimitError is a render stopped because its output would have
// passed Limit bytes.
type OutputLimitError struct {
	Limit int
}

func (e *OutputLimitError) Error() string {
	return fmt.Sprintf("rendered prompt exceeds %d bytes", e.Limit)
}

// boundedWriter is the output a render writes to. gonja's Data and Output
// nodes write here one piece at a time, so checking the bound and the
// context on each write stops a render between pieces; the first failure
// sticks, because gonja does not always pass a write error up (a macro's
// caller, for one, only sees the macro's text).
type boundedWriter struct {
	ctx context.Context
	max int // 0: none
	buf strings.Builder
	err error
}

func (w *boundedWriter) WriteString(s string) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = fmt.Errorf("rendering stopped: %w", err)
		return 0, w.err
	}
	if w.max > 0 && w.buf.Len()+len(s) > w.max {
		w.err = &OutputLimitError{Limit: w.max}
		return 0, w.err
	}
	return w.buf.WriteString(s)
}

func (w *boundedWriter) Write(p []byte) (int, error) { return w.WriteString(string(p)) }
