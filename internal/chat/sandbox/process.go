package sandbox

import (
	"bufio"
	"encoding/gob"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
)

// stderrKeep is how much of a worker's stderr is kept: enough for the Go
// runtime's fatal error line, which comes before its goroutine dump.
const stderrKeep = 8 << 10

// worker is one worker process. Its streams belong to whoever holds its
// pool slot; kill may be called from any goroutine.
type worker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	bw     *bufio.Writer
	enc    *gob.Encoder
	dec    *gob.Decoder
	stderr *headWriter
	// killed is set when this package killed the worker (time limit, ctx,
	// Close, retirement), so a SIGKILL from elsewhere reads as the
	// kernel's OOM killer.
	killed atomic.Bool
}

// kill stops the worker at once. SIGKILL, because a runaway template
// cannot be asked to stop: the Go code running it never checks.
func (w *worker) kill() {
	w.killed.Store(true)
	_ = w.cmd.Process.Kill() // fails only if it is already dead
}

// roundTrip sends msg and decodes the answer into reply, calling sent
// (when not nil) in between.
func (w *worker) roundTrip(msg, reply any, sent func()) error {
	if err := w.enc.Encode(msg); err != nil {
		return fmt.Errorf("writing to worker: %w", err)
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("writing to worker: %w", err)
	}
	if sent != nil {
		sent()
	}
	if err := w.dec.Decode(reply); err != nil {
		return fmt.Errorf("reading from worker: %w", err)
	}
	return nil
}

// spawner starts worker processes from one goroutine locked to its OS
// thread for the Renderer's life. Linux delivers Pdeathsig when the
// thread that forked a child exits, not the process; Go ends a thread
// when a goroutine locked to it exits, so without this a worker could be
// killed because some unrelated goroutine had borrowed and locked the
// thread that once started it.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		runtime.LockOSThread()
		// No UnlockOSThread: the thread exits with this goroutine, which
		// is at Close, after every worker is gone.
		for r := range s.reqs {
			r.reply <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	reply := make(chan error, 1)
	s.reqs <- spawnReq{cmd, reply}
	return <-reply
}

func (s *spawner) stop() {
	close(s.reqs)
	<-s.done
}

// startProcess starts a worker process (no handshake yet).
func startProcess(s *spawner, cfg Config) (*worker, error) {
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	cmd.Env = cfg.Env
	cmd.SysProcAttr = sysProcAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("chat render worker: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("chat render worker: %w", err)
	}
	w := &worker{cmd: cmd, stdin: stdin, stderr: &headWriter{max: stderrKeep}}
	cmd.Stderr = w.stderr
	if err := s.start(cmd); err != nil {
		return nil, fmt.Errorf("starting chat render worker %q: %w", cfg.Command[0], err)
	}
	w.bw = bufio.NewWriter(stdin)
	w.enc = gob.NewEncoder(w.bw)
	w.dec = gob.NewDecoder(bufio.NewReader(stdout))
	return w, nil
}

// deathError says why a reaped worker died, from its exit status and the
// Go runtime's fatal error on its stderr. The text is all a dead process
// leaves behind, so it is read here, in this one place.
func deathError(w *worker, cfg Config) *LimitError {
	log := string(w.stderr.buf)
	detail := w.cmd.ProcessState.String()
	if line := fatalLine(log); line != "" {
		detail += ": " + line
	}
	e := &LimitError{Limit: LimitCrash, Detail: detail}
	status, _ := w.cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case strings.Contains(log, "stack overflow") || strings.Contains(log, "stack exceeds"):
		e.Limit = LimitStack
	case strings.Contains(log, "out of memory"),
		strings.Contains(log, "cannot allocate memory"),
		strings.Contains(log, "address space collisions"), // -race builds
		strings.Contains(log, "ThreadSanitizer failed to allocate"),
		strings.Contains(log, "pthread_create failed"):
		e.Limit, e.Bytes = LimitMemory, cfg.MemoryLimit
	case status.Signaled() && status.Signal() == syscall.SIGKILL && !w.killed.Load():
		// Nobody here killed it: most likely the kernel's OOM killer.
		e.Limit, e.Bytes = LimitMemory, cfg.MemoryLimit
	}
	return e
}

// fatalLine is the first line of a crash report that says what happened.
func fatalLine(log string) string {
	var first string
	for line := range strings.Lines(log) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "fatal error:") || strings.HasPrefix(line, "panic:") {
			return line
		}
		if first == "" && line != "" {
			first = line
		}
	}
	return first
}

// headWriter keeps the first max bytes written to it and drops the rest,
// so a worker's goroutine dump cannot fill the server's memory.
type headWriter struct {
	max int
	buf []byte
}

func (h *headWriter) Write(p []byte) (int, error) {
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

var _ io.Writer = (*headWriter)(nil)
