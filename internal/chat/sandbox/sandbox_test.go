package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// workerEnv makes the test binary a render worker: the tests' workers
// are this binary, as serve's are the lumen binary.
const workerEnv = "LUMEN_SANDBOX_TEST_WORKER"

func TestMain(m *testing.M) {
	switch os.Getenv(workerEnv) {
	case "exit": // a worker that dies before it speaks
		os.Exit(1)
	case "1":
		if err := ServeWorker(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func testConfig(t testing.TB) Config {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Config{Command: []string{exe}, Env: append(os.Environ(), workerEnv+"=1"), Workers: 1}
}

// reapLog records the PIDs a Renderer reaps.
type reapLog struct {
	mu   sync.Mutex
	pids []int
}

func (l *reapLog) add(pid int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pids = append(l.pids, pid)
}

func (l *reapLog) all() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.pids...)
}

func newRenderer(t testing.TB, source string, cfg Config) (*Renderer, *reapLog) {
	t.Helper()
	r, err := New(source, opts, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	log := &reapLog{}
	r.onReap = log.add
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r, log
}

var opts = chat.Options{BOSToken: "<s>", EOSToken: "</s>"}

func user(content string) []chat.Message {
	return []chat.Message{{Role: "user", Content: content}}
}

// gone reports whether pid has exited and been reaped (a zombie still
// answers signal 0).
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// hostile is a template that runs attack when the first message is
// "boom" and otherwise renders "ok:" and the message: the same Renderer
// then shows both that the attack was stopped and that the next
// ordinary render works.
func hostile(attack string) string {
	return "{% if messages[0].content == 'boom' %}" + attack +
		"{% else %}ok:{{ messages[0].content }}{% endif %}"
}

// TestLimits: each template would, rendered in process, exit the server
// (stack overflow, out of memory) or pin a core for hours. Sandboxed,
// the render fails with a LimitError naming the limit, its worker is
// reaped, and the next render works.
func TestLimits(t *testing.T) {
	tests := []struct {
		name   string
		attack string
		cfg    func(*Config)
		want   Limit
		killed bool // the worker died or was killed
	}{
		{
			name:   "infinite macro recursion",
			attack: "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
			cfg:    func(c *Config) { c.MaxStack = 8 << 20 },
			want:   LimitStack, killed: true,
		},
		{
			name:   "1e11 bytes by string repetition",
			attack: "{{ 'x' * 100000000000 }}",
			want:   LimitMemory, killed: true,
		},
		{
			name:   "a string doubled until memory runs out",
			attack: "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
			cfg:    func(c *Config) { c.MemoryLimit = 512 << 20 },
			want:   LimitMemory, killed: true,
		},
		{
			name:   "output size by many small writes",
			attack: "{% for i in range(10000) %}0123456789{% endfor %}",
			cfg:    func(c *Config) { c.MaxOutputBytes = 16 << 10 },
			want:   LimitOutput,
		},
		{
			name:   "output size through a macro's buffer",
			attack: "{% macro m() %}{% for i in range(10000) %}0123456789{% endfor %}{% endmacro %}{{ m() }}",
			cfg:    func(c *Config) { c.MaxOutputBytes = 16 << 10 },
			want:   LimitOutput,
		},
		{
			name:   "nested loops past the time limit",
			attack: loopAttack,
			cfg:    func(c *Config) { c.Timeout = 300 * time.Millisecond },
			want:   LimitTime, killed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			r, reaped := newRenderer(t, hostile(tt.attack), cfg)
			if got, err := r.Render(t.Context(), user("hi"), nil, true); err != nil || got != "ok:hi" {
				t.Fatalf("first Render = %q, %v; want ok:hi", got, err)
			}

			start := time.Now()
			got, err := r.Render(t.Context(), user("boom"), nil, true)
			elapsed := time.Since(start)
			var le *LimitError
			if !errors.As(err, &le) {
				t.Fatalf("Render = %q, %v (%T); want a *LimitError", got, err, err)
			}
			t.Logf("Render = %v (detail: %s)", le, le.Detail)
			if le.Limit != tt.want {
				t.Errorf("Limit = %v (%v; %s), want %v", le.Limit, le, le.Detail, tt.want)
			}
			// Far below what the attack would take; generous for a
			// loaded machine and a -race worker.
			if limit := cfg.Timeout + 10*time.Second; elapsed > limit {
				t.Errorf("Render took %v, want under %v", elapsed, limit)
			}
			pids := reaped.all()
			if tt.killed != (len(pids) == 1) {
				t.Errorf("reaped workers %v, want one: %v", pids, tt.killed)
			}
			for _, pid := range pids {
				if !gone(pid) {
					t.Errorf("worker %d still exists after Render returned", pid)
				}
			}

			if got, err := r.Render(t.Context(), user("again"), nil, true); err != nil || got != "ok:again" {
				t.Errorf("Render after the attack = %q, %v; want ok:again", got, err)
			}
		})
	}
}

// TestRetiresLeakyWorker: gonja leaks a goroutine for each range() not
// iterated to its end; a worker that has piled up too many is replaced
// after the render that did it, which still succeeds.
func TestRetiresLeakyWorker(t *testing.T) {
	r, reaped := newRenderer(t, hostile("{% for i in range(2000) %}{% set r = range(10) %}{% endfor %}leaked"), testConfig(t))
	if got, err := r.Render(t.Context(), user("boom"), nil, true); err != nil || got != "leaked" {
		t.Fatalf("Render = %q, %v; want leaked", got, err)
	}
	if pids := reaped.all(); len(pids) != 1 || !gone(pids[0]) {
		t.Errorf("reaped %v, want the leaky worker, gone", pids)
	}
	if got, err := r.Render(t.Context(), user("next"), nil, true); err != nil || got != "ok:next" {
		t.Errorf("next Render = %q, %v", got, err)
	}
	if pids := reaped.all(); len(pids) != 1 {
		t.Errorf("reaped %v; a fresh worker should not be retired", pids)
	}
}

// TestParseInWorker: gonja's parser recurses too, so a deeply nested
// template must blow only a worker's stack.
func TestParseInWorker(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxStack = 2 << 20
	// The time limit is not what this test is about: under -race on a
	// loaded machine, recursing down to even a small stack limit can take
	// longer than the default 5 s.
	cfg.Timeout = 2 * time.Minute
	const depth = 1 << 20
	src := "{{ " + strings.Repeat("(", depth) + "1" + strings.Repeat(")", depth) + " }}"
	r, reaped := newRenderer(t, src, cfg)
	err := r.Check(t.Context())
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitStack {
		t.Fatalf("Check = %v, want a stack LimitError", err)
	}
	if pids := reaped.all(); len(pids) != 1 || !gone(pids[0]) {
		t.Errorf("reaped %v, want the one worker, gone", pids)
	}
}

// loopAttack loops for hours (10^10 iterations) without printing.
const loopAttack = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"

// TestContextStopsRender: a render whose ctx ends mid-render returns
// ctx's error at once and its worker is killed and reaped.
func TestContextStopsRender(t *testing.T) {
	tests := []struct {
		name string
		// start returns the render's ctx; sent is called once the
		// request has reached the worker's pipe.
		start func(t *testing.T) (ctx context.Context, sent func())
		want  error
	}{
		{
			name: "cancelled once the request is sent",
			start: func(t *testing.T) (context.Context, func()) {
				ctx, cancel := context.WithCancel(t.Context())
				t.Cleanup(cancel)
				return ctx, cancel
			},
			want: context.Canceled,
		},
		{
			name: "deadline",
			start: func(t *testing.T) (context.Context, func()) {
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				t.Cleanup(cancel)
				return ctx, func() {}
			},
			want: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.Timeout = time.Minute // so that only ctx can stop it
			r, reaped := newRenderer(t, hostile(loopAttack), cfg)
			if _, err := r.Render(t.Context(), user("warm"), nil, true); err != nil {
				t.Fatal(err)
			}
			ctx, sent := tt.start(t)
			r.onSent = sent
			start := time.Now()
			_, err := r.Render(ctx, user("boom"), nil, true)
			r.onSent = nil
			if !errors.Is(err, tt.want) {
				t.Fatalf("Render = %v, want %v", err, tt.want)
			}
			var le *LimitError
			if errors.As(err, &le) {
				t.Errorf("Render = %v, a LimitError; want only ctx's error", err)
			}
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("Render took %v", elapsed)
			}
			pids := reaped.all()
			if len(pids) != 1 || !gone(pids[0]) {
				t.Errorf("reaped %v, want the one busy worker, gone", pids)
			}
			if got, err := r.Render(t.Context(), user("next"), nil, true); got != "ok:next" || err != nil {
				t.Errorf("next Render = %q, %v", got, err)
			}
		})
	}
	t.Run("done before the call", func(t *testing.T) {
		r, reaped := newRenderer(t, "", testConfig(t))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := r.Render(ctx, user("hi"), nil, true); !errors.Is(err, context.Canceled) {
			t.Errorf("Render = %v, want context.Canceled", err)
		}
		if pids := reaped.all(); len(pids) != 0 {
			t.Errorf("reaped %v; a done ctx should start nothing", pids)
		}
	})
}

// TestRenderErrors: errors other than limits come back as the in-process
// renderer gives them.
func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name      string
		template  string
		wantRaise string // the *chat.ExceptionError message; "" for other errors
		wantText  string // a substring of other errors
	}{
		{
			name:      "raise_exception",
			template:  "{{ raise_exception('Conversation roles must alternate') }}",
			wantRaise: "Conversation roles must alternate",
		},
		{name: "unknown filter", template: "{{ messages | no_such_filter }}", wantText: "rendering failed"},
		{name: "does not parse", template: "{% for m in messages %}{{ m.content }}", wantText: "does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, reaped := newRenderer(t, tt.template, testConfig(t))
			for range 2 { // the second time from the worker's cache
				got, err := r.Render(t.Context(), user("a"), nil, true)
				if err == nil {
					t.Fatalf("Render = %q, want an error", got)
				}
				var le *LimitError
				if errors.As(err, &le) {
					t.Fatalf("Render = %v, a LimitError", err)
				}
				var ex *chat.ExceptionError
				if isRaise := errors.As(err, &ex); isRaise != (tt.wantRaise != "") {
					t.Fatalf("Render = %v (%T): raised %v, want %v", err, err, isRaise, tt.wantRaise != "")
				}
				if ex != nil && ex.Message != tt.wantRaise {
					t.Errorf("raised %q, want %q", ex.Message, tt.wantRaise)
				}
				if !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("Render = %v, want it to mention %q", err, tt.wantText)
				}
			}
			if pids := reaped.all(); len(pids) != 0 {
				t.Errorf("workers %v died; an error in a template should not cost its worker", pids)
			}
		})
	}
}

// TestMatchesInProcess: a sandboxed render is byte for byte the
// in-process one, content that is not UTF-8 included.
func TestMatchesInProcess(t *testing.T) {
	const src = "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% if m.tool_calls %}" +
		"{{ m.tool_calls | tojson }}{% endif %}{% endfor %}{% if tools %}{{ tools | tojson }}{% endif %}" +
		"{% if add_generation_prompt %}[assistant]{% endif %}{{ eos_token }}"
	msgs := []chat.Message{
		{Role: "system", Content: "S \xff\xfe"},
		{Role: "user", Content: "héllo {{ not a template }}"},
		{Role: "assistant", ToolCalls: []chat.ToolCall{{ID: "c1", Name: "f", Arguments: `{"x":1}`}}},
		{Role: "tool", Content: "42", ToolCallID: "c1", Name: "f"},
	}
	tools := toolsFixture()
	in, err := chat.New(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := in.Render(t.Context(), msgs, tools, true)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := newRenderer(t, src, testConfig(t))
	got, err := r.Render(t.Context(), msgs, tools, true)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("sandboxed =\n%q\nin process =\n%q", got, want)
	}
}

// TestRenderConcurrent: renders share the pool and each gets its own
// answer; run with -race.
func TestRenderConcurrent(t *testing.T) {
	const src = "{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools: ' + m.content) }}{% endif %}" +
		"<{{ m.role }}>{{ m.content }}{% endfor %}"
	cfg := testConfig(t)
	cfg.Workers = 3
	r, reaped := newRenderer(t, src, cfg)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				content := fmt.Sprintf("g%d-%d", g, i)
				bad := (g+i)%3 == 0
				role := "user"
				if bad {
					role = "tool"
				}
				got, err := r.Render(t.Context(), []chat.Message{{Role: role, Content: content}}, nil, true)
				var ex *chat.ExceptionError
				switch {
				case bad && (!errors.As(err, &ex) || ex.Message != "no tools: "+content):
					t.Errorf("Render(%s) = %q, %v; want raised %q", content, got, err, "no tools: "+content)
				case !bad && (err != nil || got != "<user>"+content):
					t.Errorf("Render(%s) = %q, %v", content, got, err)
				}
			}
		})
	}
	wg.Wait()
	if pids := reaped.all(); len(pids) != 0 {
		t.Errorf("workers %v died", pids)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		template string
		wantErr  bool
		want     Limit // for a LimitError
	}{
		{name: "fallback", template: ""},
		{name: "chatml", template: chat.FallbackTemplate},
		{
			name:     "refuses a system message, renders a user one",
			template: "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ messages[0].content }}",
		},
		{name: "always raises", template: "{{ raise_exception('no') }}", wantErr: true},
		{name: "does not parse", template: "{{ messages[0]", wantErr: true},
		{name: "undefined function", template: "{{ no_such_function() }}", wantErr: true},
		{
			name:     "recursion without end",
			template: "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
			wantErr:  true, want: LimitStack,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.MaxStack = 8 << 20
			r, _ := newRenderer(t, tt.template, cfg)
			err := r.Check(t.Context())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Check = %v, want error %v", err, tt.wantErr)
			}
			var le *LimitError
			if got := Limit(0); errors.As(err, &le) {
				got = le.Limit
				if got != tt.want {
					t.Errorf("Check = %v, limit %v; want %v", err, got, tt.want)
				}
			} else if tt.want != 0 {
				t.Errorf("Check = %v, want a %v LimitError", err, tt.want)
			}
		})
	}
}

// TestClose: Close stops a render in flight, leaves no worker behind, and
// later renders fail with ErrClosed.
func TestClose(t *testing.T) {
	cfg := testConfig(t)
	cfg.Timeout = time.Minute
	r, reaped := newRenderer(t, hostile(loopAttack), cfg)
	if _, err := r.Render(t.Context(), user("warm"), nil, true); err != nil {
		t.Fatal(err)
	}
	sent := make(chan struct{})
	r.onSent = func() { close(sent) }
	errc := make(chan error, 1)
	go func() {
		_, err := r.Render(t.Context(), user("boom"), nil, true)
		errc <- err
	}()
	<-sent
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Render in flight = %v, want ErrClosed", err)
	}
	if pids := reaped.all(); len(pids) != 1 || !gone(pids[0]) {
		t.Errorf("reaped %v, want the one worker, gone", pids)
	}
	if _, err := r.Render(t.Context(), user("hi"), nil, true); !errors.Is(err, ErrClosed) {
		t.Errorf("Render after Close = %v, want ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWorkerDoesNotStart(t *testing.T) {
	cfg := testConfig(t)
	cfg.Env = append(os.Environ(), workerEnv+"=exit")
	r, _ := newRenderer(t, "", cfg)
	_, err := r.Render(t.Context(), user("hi"), nil, true)
	var le *LimitError
	if err == nil || errors.As(err, &le) || !strings.Contains(err.Error(), "failed to start") {
		t.Errorf("Render = %v, want a start failure that is not a LimitError", err)
	}
}

func TestNewNeedsCommand(t *testing.T) {
	if _, err := New("", opts, Config{}); err == nil {
		t.Error("New without Command succeeded")
	}
}

func toolsFixture() []toolcall.Tool {
	return []toolcall.Tool{
		{Name: "get_weather", Description: "Weather for a city", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)},
		{Name: "now"},
	}
}
