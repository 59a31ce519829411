// Package sandbox owns rendering untrusted chat templates out of the
// server's process: a Renderer keeps a small pool of worker processes
// (the lumen binary's hidden internal-chat-render command, which runs
// ServeWorker), sends each render to one, and kills a worker that runs
// past its time, and the worker itself is bounded in stack and memory.
//
// A chat template is code from a model file, run by gonja, a recursive
// interpreter in Go. Go cannot recover from a stack overflow or an
// out-of-memory failure, nor interrupt a goroutine stuck in a loop, so in
// process one template could exit the server or pin a core for ever.
// Here the worst a template can do is lose its worker, which costs that
// request a *LimitError and the next render a fresh worker.
//
// The package must not parse or render templates in the calling process:
// gonja's parser recurses too, so even parsing happens in a worker.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// Config configures a Renderer. Zero fields take the defaults below.
type Config struct {
	// Command is the worker's argv; required. For lumen:
	// {os.Executable(), "internal-chat-render"}.
	Command []string
	// Env is the worker's environment; nil inherits the server's.
	Env []string
	// Workers is the pool size: renders at once. Workers start on first
	// use and are reused.
	Workers int
	// Timeout bounds one render, from the request reaching its worker to
	// the answer; a render also stops when its ctx is done.
	Timeout time.Duration
	// StartTimeout bounds starting a worker, which is not counted in
	// Timeout (a cold start is not the template's fault).
	StartTimeout time.Duration
	// MaxOutputBytes caps a rendered prompt. A prompt longer than the
	// model's context is useless, so context size × 16 bytes is ample.
	MaxOutputBytes int
	// MemoryLimit is the address space a worker may map beyond what it
	// had mapped when it started (on Linux, as RLIMIT_AS; elsewhere only
	// as the Go runtime's soft limit). Beyond, not in all: the Go runtime
	// and a cgo binary's libraries reserve more than a GiB of address
	// space they never use.
	MemoryLimit uint64
	// MaxStack is the largest goroutine stack a worker allows.
	MaxStack int
}

// Defaults for Config's zero fields.
const (
	DefaultWorkers        = 2
	DefaultTimeout        = 5 * time.Second
	DefaultStartTimeout   = 10 * time.Second
	DefaultMaxOutputBytes = 8 << 20
	DefaultMemoryLimit    = 2 << 30
	DefaultMaxStack       = 64 << 20
)

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.MaxOutputBytes <= 0 {
		c.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	if c.MaxStack <= 0 {
		c.MaxStack = DefaultMaxStack
	}
	return c
}

// Renderer renders one chat template in worker processes. It is safe for
// concurrent use; Close it to stop the workers.
type Renderer struct {
	source string
	opts   chat.Options
	cfg    Config
	spawn  *spawner

	// slots holds one entry per pool place: an idle worker, or nil for a
	// place whose worker is not started (or died). A render owns the
	// entry it takes until it puts one back.
	slots   chan *worker
	closing chan struct{}

	mu     sync.Mutex
	closed bool
	live   map[*worker]struct{} // started and not yet reaped, for Close to kill

	// Hooks for tests, set before the first render: onSent is called
	// once a render's request is on its way to the worker, onReap with
	// each worker's PID once it has been reaped.
	onSent func()
	onReap func(pid int)
}

var _ inference.ChatRenderer = (*Renderer)(nil)

// New returns a Renderer for source (chat.FallbackTemplate when empty)
// with the special tokens in opts. It starts nothing and does not parse
// source: the first render, or Check, does that in a worker.
func New(source string, opts chat.Options, cfg Config) (*Renderer, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("chat template sandbox: Config.Command is required")
	}
	cfg = cfg.withDefaults()
	cfg.Command = append([]string(nil), cfg.Command...)
	r := &Renderer{
		source:  source,
		opts:    opts,
		cfg:     cfg,
		spawn:   newSpawner(),
		slots:   make(chan *worker, cfg.Workers),
		closing: make(chan struct{}),
		live:    make(map[*worker]struct{}),
	}
	for range cfg.Workers {
		r.slots <- nil
	}
	return r, nil
}

// Source is the template's text (chat.FallbackTemplate for none).
func (r *Renderer) Source() string {
	if r.source == "" {
		return chat.FallbackTemplate
	}
	return r.source
}

// IsFallback reports whether the Renderer renders chat.FallbackTemplate
// because New was given no template.
func (r *Renderer) IsFallback() bool { return r.source == "" }

// Render renders messages in a worker, as chat.Template.Render would in
// process. Errors: *chat.ExceptionError for the template's
// raise_exception; *LimitError when the template overran a limit or
// killed its worker; an error wrapping ctx.Err() when ctx ended first;
// ErrClosed after Close; otherwise the render's own error (a template
// that does not parse, an undefined filter).
func (r *Renderer) Render(ctx context.Context, messages []chat.Message, tools []toolcall.Tool, addGenerationPrompt bool) (string, error) {
	return r.render(ctx, &request{
		Source:              r.source,
		Options:             r.opts,
		Messages:            messages,
		Tools:               tools,
		AddGenerationPrompt: addGenerationPrompt,
		MaxOutputBytes:      r.cfg.MaxOutputBytes,
	})
}

// checkConversation is what Check renders: the commonest request shape.
func checkConversation() []chat.Message {
	return []chat.Message{
		{Role: "system", Content: "You are a helpful assistant."},
		{Role: "user", Content: "Hello!"},
	}
}

// Check renders a system and user message with a generation prompt, so a
// template that does not parse or overruns a limit on an ordinary request
// is found when the model loads rather than on its first request. A
// template that refuses the system message with raise_exception (Gemma's
// do) passes if it renders the user message alone.
func (r *Renderer) Check(ctx context.Context) error {
	msgs := checkConversation()
	_, err := r.Render(ctx, msgs, nil, true)
	var ex *chat.ExceptionError
	if errors.As(err, &ex) {
		_, err = r.Render(ctx, msgs[1:], nil, true)
	}
	if err != nil {
		return fmt.Errorf("chat template check: %w", err)
	}
	return nil
}

// Close kills every worker, stops renders in flight (they return
// ErrClosed) and returns once each worker is reaped.
func (r *Renderer) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.closing)
	for w := range r.live {
		w.kill()
	}
	r.mu.Unlock()
	// Every slot comes back: idle ones at once, those in flight when
	// their render has reaped its killed worker.
	for range r.cfg.Workers {
		if w := <-r.slots; w != nil {
			r.reap(w)
		}
	}
	r.spawn.stop()
	return nil
}

func (r *Renderer) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

func (r *Renderer) render(ctx context.Context, req *request) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", stopped(err)
	}
	var w *worker
	select {
	case w = <-r.slots:
	case <-r.closing:
		return "", ErrClosed
	case <-ctx.Done():
		return "", stopped(ctx.Err())
	}
	out, w, err := r.renderOn(ctx, w, req)
	r.slots <- w
	return out, err
}

// renderOn renders req on w, starting a worker when w is nil. It returns
// the worker to put back in the pool: nil when it died or was retired.
func (r *Renderer) renderOn(ctx context.Context, w *worker, req *request) (string, *worker, error) {
	if w == nil {
		var err error
		if w, err = r.start(ctx); err != nil {
			return "", nil, err
		}
	}
	var resp response
	if err := r.exchange(ctx, w, r.cfg.Timeout, req, &resp); err != nil {
		return "", nil, err
	}
	if resp.Retire {
		w.kill()
		r.reap(w)
		w = nil
	}
	switch resp.Failure {
	case failNone:
		if len(resp.Output) > r.cfg.MaxOutputBytes {
			// The worker bounds this itself; this keeps the promise even
			// if a worker of another build did not.
			return "", w, &LimitError{Limit: LimitOutput, Bytes: uint64(r.cfg.MaxOutputBytes)}
		}
		return resp.Output, w, nil
	case failException:
		return "", w, &chat.ExceptionError{Message: resp.Message}
	case failOutput:
		return "", w, &LimitError{Limit: LimitOutput, Bytes: uint64(r.cfg.MaxOutputBytes)}
	default:
		// The worker's error as text, as chat.Template would have put it.
		return "", w, errors.New(resp.Message)
	}
}

// start starts a worker and has it apply its limits.
func (r *Renderer) start(ctx context.Context) (*worker, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	// Under mu so that Close, which kills what is in live, cannot miss a
	// worker being started.
	w, err := startProcess(r.spawn, r.cfg)
	if err == nil {
		r.live[w] = struct{}{}
	}
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var rd ready
	err = r.exchange(ctx, w, r.cfg.StartTimeout, hello{MaxStack: r.cfg.MaxStack, MemoryLimit: r.cfg.MemoryLimit}, &rd)
	var le *LimitError
	if errors.As(err, &le) {
		// Not the template's doing: a wrong Command, or a worker that
		// cannot start under its limits. Not a LimitError either, so
		// that a client is not told its request was at fault.
		if le.Limit == LimitTime {
			return nil, fmt.Errorf("chat render worker %q did not start within %v", r.cfg.Command[0], r.cfg.StartTimeout)
		}
		return nil, fmt.Errorf("chat render worker %q failed to start: %s", r.cfg.Command[0], le.Detail)
	}
	if err != nil {
		return nil, err
	}
	return w, nil
}

// exchange sends msg to w and decodes its answer into reply, waiting at
// most limit and no longer than ctx lasts. When it returns an error the
// worker is dead and reaped, so no process or goroutine outlives it.
func (r *Renderer) exchange(ctx context.Context, w *worker, limit time.Duration, msg, reply any) error {
	var sent func()
	if _, ok := msg.(*request); ok {
		sent = r.onSent
	}
	done := make(chan error, 1)
	go func() { done <- w.roundTrip(msg, reply, sent) }()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var err error
	select {
	case ioErr := <-done:
		if ioErr == nil {
			return nil
		}
		if streamEnded(ioErr) {
			// The worker died (stack, memory, crash) or Close killed it;
			// the kill is only in case it somehow lives on, and leaves a
			// dead worker's exit status as it was.
			_ = w.cmd.Process.Kill()
		} else {
			w.kill() // alive but talking nonsense
		}
		r.reap(w)
		if r.isClosed() {
			return ErrClosed
		}
		return deathError(w, r.cfg)
	case <-timer.C:
		err = &LimitError{Limit: LimitTime, Timeout: limit}
	case <-ctx.Done():
		err = stopped(ctx.Err())
	}
	w.kill()
	// The kill closes the worker's ends of its pipes, which ends the
	// round trip; wait for it so nothing still uses w.
	<-done
	r.reap(w)
	if r.isClosed() {
		return ErrClosed
	}
	return err
}

// streamEnded reports whether err is the worker's end of the pipes
// closing, which is what its death looks like from here.
func streamEnded(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE)
}

// reap waits for a worker that has exited or been killed.
func (r *Renderer) reap(w *worker) {
	// Wait's error is the exit status, which deathError reads from
	// ProcessState, or a failure to copy stderr, which only loses the
	// crash report.
	_ = w.cmd.Wait()
	r.mu.Lock()
	delete(r.live, w)
	r.mu.Unlock()
	if r.onReap != nil {
		r.onReap(w.cmd.Process.Pid)
	}
}
