// Package bintest holds what the tests of the built binary (test/soak,
// test/scale) share: a hermetic environment for the lumen processes they
// start, a bounded buffer for those processes' logs, and a strict reader
// of the servers' SSE streams.
package bintest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// HermeticEnv is this process's environment without the variables that
// would configure the server behind the test's back (LUMEN_*, OTEL_*),
// and with HOME set to home.
func HermeticEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LUMEN_") && !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home)
}

// TailBuffer keeps the last Max bytes written to it (about), for failure
// messages; it is safe for concurrent use.
type TailBuffer struct {
	Max int

	mu  sync.Mutex
	buf []byte
}

func (b *TailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*b.Max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.Max:]...)
	}
	return len(p), nil
}

func (b *TailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) > b.Max {
		return string(b.buf[len(b.buf)-b.Max:])
	}
	return string(b.buf)
}

// ReadSSE reads a stream of "data: " events ending with "data: [DONE]",
// handing each JSON event to onEvent and calling atDone at [DONE]; any
// other line, anything after [DONE], or an end without [DONE] is
// malformed.
func ReadSSE(r io.Reader, onEvent func([]byte) error, atDone func() error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4<<10), 1<<20)
	done := false
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		switch {
		case done:
			return fmt.Errorf("malformed stream: %q after [DONE]", line)
		case !ok:
			return fmt.Errorf("malformed stream: line %q is not a data field", line)
		case string(data) == "[DONE]":
			done = true
			if err := atDone(); err != nil {
				return err
			}
		default:
			if err := onEvent(data); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if !done {
		return errors.New("malformed stream: ended without [DONE]")
	}
	return nil
}
