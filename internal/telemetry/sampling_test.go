package telemetry

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// fakeClock is a settable clock for the ratelimiting strategy.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// writeStrategies writes content to a file in a fresh temporary directory.
func writeStrategies(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "strategies.json")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func rewrite(t *testing.T, path, content string) {
	t.Helper()
	// Write and rename, as editors and config managers do, so a watcher
	// running concurrently never reads a half-written file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// traceIDs returns n pseudo-random trace ids, the same on every run.
func traceIDs(n int) []trace.TraceID {
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]trace.TraceID, n)
	for i := range ids {
		binary.BigEndian.PutUint64(ids[i][:8], r.Uint64())
		binary.BigEndian.PutUint64(ids[i][8:], r.Uint64())
	}
	return ids
}

func rootParams(name string, id trace.TraceID) sdktrace.SamplingParameters {
	return sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: id, Name: name}
}

func sampledRatio(s sdktrace.Sampler, name string, ids []trace.TraceID) float64 {
	n := 0
	for _, id := range ids {
		if s.ShouldSample(rootParams(name, id)).Decision == sdktrace.RecordAndSample {
			n++
		}
	}
	return float64(n) / float64(len(ids))
}

func TestParseStrategiesErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"not json", `{`, "parse"},
		{"trailing data", `{} {}`, "data after"},
		{"unknown field", `{"default_strategy":{"type":"probabilistic","param":0.5,"max_traces_per_second":3}}`, "unknown field"},
		{"misspelt key", `{"service_strategy":[]}`, "unknown field"},
		{"unknown type", `{"default_strategy":{"type":"const","param":1}}`, `unknown type "const"`},
		{"no type", `{"default_strategy":{"param":1}}`, "default_strategy: no type"},
		{"no param", `{"default_strategy":{"type":"probabilistic"}}`, "default_strategy: no param"},
		{"probability above 1", `{"default_strategy":{"type":"probabilistic","param":1.5}}`, "outside [0, 1]"},
		{"negative probability", `{"service_strategies":[{"service":"x","type":"probabilistic","param":-0.1}]}`, "service_strategies[0]: probabilistic param -0.1"},
		{"negative rate", `{"service_strategies":[{"service":"x","type":"ratelimiting","param":-1}]}`, "ratelimiting param -1"},
		{"no service", `{"service_strategies":[{"type":"probabilistic","param":1}]}`, "service_strategies[0]: no service"},
		{"duplicate service", `{"service_strategies":[{"service":"x","type":"probabilistic","param":1},{"service":"x","type":"probabilistic","param":1}]}`, `service "x" listed twice`},
		{"no operation", `{"default_strategy":{"type":"probabilistic","param":1,"operation_strategies":[{"type":"probabilistic","param":1}]}}`, "default_strategy.operation_strategies[0]: no operation"},
		{"duplicate operation", `{"service_strategies":[{"service":"other","type":"probabilistic","param":1,"operation_strategies":[{"operation":"a","type":"probabilistic","param":1},{"operation":"a","type":"probabilistic","param":0}]}]}`, `operation "a" listed twice`},
		{"bad operation strategy", `{"service_strategies":[{"service":"lumen","type":"probabilistic","param":1,"operation_strategies":[{"operation":"a","type":"probabilistic","param":2}]}]}`, "service_strategies[0].operation_strategies[0]: probabilistic param 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseStrategies([]byte(tt.doc), "lumen", time.Now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestStrategySelection(t *testing.T) {
	const doc = `{
	  "service_strategies": [
	    {"service": "lumen", "type": "probabilistic", "param": 0.8,
	     "operation_strategies": [
	       {"operation": "chat llama", "type": "probabilistic", "param": 1.0},
	       {"operation": "shared", "type": "probabilistic", "param": 0.3}]},
	    {"service": "limited", "type": "ratelimiting", "param": 5}
	  ],
	  "default_strategy": {"type": "probabilistic", "param": 0.1,
	    "operation_strategies": [
	      {"operation": "shared", "type": "probabilistic", "param": 0.0},
	      {"operation": "healthz", "type": "probabilistic", "param": 0.0}]}
	}`
	tests := []struct {
		doc, service, op, want string
	}{
		{doc, "lumen", "chat llama", "probabilistic(1)"},      // service operation
		{doc, "lumen", "shared", "probabilistic(0.3)"},        // service operation wins over default operation
		{doc, "lumen", "healthz", "probabilistic(0)"},         // default operation inherited
		{doc, "lumen", "embed", "probabilistic(0.8)"},         // service strategy
		{doc, "limited", "embed", "ratelimiting(5)"},          // another service's strategy
		{doc, "limited", "healthz", "probabilistic(0)"},       // default operations apply to it too
		{doc, "unknown", "chat llama", "probabilistic(0.1)"},  // default strategy
		{doc, "unknown", "shared", "probabilistic(0)"},        // default operation
		{`{}`, "lumen", "chat llama", "probabilistic(0.001)"}, // documented fallback
		{`{"service_strategies":[{"service":"other","type":"probabilistic","param":1}]}`, "lumen", "x", "probabilistic(0.001)"},
		{`{"default_strategy":{"type":"ratelimiting","param":2.5}}`, "lumen", "x", "ratelimiting(2.5)"},
	}
	for _, tt := range tests {
		t.Run(tt.service+"/"+tt.op, func(t *testing.T) {
			set, err := parseStrategies([]byte(tt.doc), tt.service, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			d, ok := set.operations[tt.op]
			if !ok {
				d = set.root
			}
			if got := d.String(); got != tt.want {
				t.Errorf("strategy = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestProbabilisticRatios(t *testing.T) {
	path := writeStrategies(t, `{
	  "service_strategies": [
	    {"service": "lumen", "type": "probabilistic", "param": 0.5,
	     "operation_strategies": [
	       {"operation": "chat llama", "type": "probabilistic", "param": 1.0},
	       {"operation": "batch", "type": "probabilistic", "param": 0.1},
	       {"operation": "quarter", "type": "probabilistic", "param": 0.25},
	       {"operation": "never", "type": "probabilistic", "param": 0}]}
	  ],
	  "default_strategy": {"type": "probabilistic", "param": 0.05}
	}`)
	s, err := NewFileSampler(FileSamplerConfig{Path: path, ServiceName: "lumen"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewFileSampler(FileSamplerConfig{Path: path, ServiceName: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	ids := traceIDs(20000)
	tests := []struct {
		sampler *FileSampler
		op      string
		want    float64
	}{
		{s, "chat llama", 1},
		{s, "batch", 0.1},
		{s, "quarter", 0.25},
		{s, "never", 0},
		{s, "embed", 0.5},
		{other, "chat llama", 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.sampler.service+"/"+tt.op, func(t *testing.T) {
			got := sampledRatio(tt.sampler, tt.op, ids)
			if got < tt.want-0.02 || got > tt.want+0.02 {
				t.Errorf("sampled ratio = %.4f, want %.2f ± 0.02", got, tt.want)
			}
		})
	}
}

func TestProbabilisticIsDeterministicPerTraceID(t *testing.T) {
	path := writeStrategies(t, `{"default_strategy":{"type":"probabilistic","param":0.5}}`)
	s, err := NewFileSampler(FileSamplerConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range traceIDs(1000) {
		first := s.ShouldSample(rootParams("a", id)).Decision
		for range 3 {
			if got := s.ShouldSample(rootParams("b", id)).Decision; got != first {
				t.Fatalf("trace %s: decision %v then %v", id, first, got)
			}
		}
	}
}

func TestRateLimiting(t *testing.T) {
	tests := []struct {
		name  string
		rate  string
		steps []struct {
			advance time.Duration
			allowed int // then the next one is refused
		}
	}{
		{
			name: "3 per second",
			rate: "3",
			steps: []struct {
				advance time.Duration
				allowed int
			}{
				{0, 3},                      // starts full
				{time.Second, 3},            // refilled
				{500 * time.Millisecond, 1}, // 1.5 tokens
				{500 * time.Millisecond, 2}, // 0.5 left + 1.5
				{time.Hour, 3},              // never more than the capacity
			},
		},
		{
			name: "one every 2s",
			rate: "0.5",
			steps: []struct {
				advance time.Duration
				allowed int
			}{
				{0, 1},
				{time.Second, 0},
				{time.Second, 1},
			},
		},
		{
			name: "zero",
			rate: "0",
			steps: []struct {
				advance time.Duration
				allowed int
			}{{0, 0}, {time.Hour, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			path := writeStrategies(t, `{"service_strategies":[{"service":"lumen","type":"ratelimiting","param":`+tt.rate+`}]}`)
			s, err := NewFileSampler(FileSamplerConfig{Path: path, ServiceName: "lumen", Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			ids := traceIDs(1)
			for i, step := range tt.steps {
				clock.Advance(step.advance)
				for j := range step.allowed {
					if d := s.ShouldSample(rootParams("op", ids[0])).Decision; d != sdktrace.RecordAndSample {
						t.Fatalf("step %d: trace %d refused, want %d allowed", i, j, step.allowed)
					}
				}
				if d := s.ShouldSample(rootParams("op", ids[0])).Decision; d != sdktrace.Drop {
					t.Fatalf("step %d: trace %d allowed, want refused", i, step.allowed)
				}
			}
		})
	}
}

func TestParentBased(t *testing.T) {
	never := writeStrategies(t, `{"default_strategy":{"type":"probabilistic","param":0}}`)
	always := writeStrategies(t, `{"default_strategy":{"type":"probabilistic","param":1}}`)
	parent := func(sampled, remote bool) context.Context {
		cfg := trace.SpanContextConfig{
			TraceID: trace.TraceID{1, 2, 3},
			SpanID:  trace.SpanID{4, 5, 6},
			Remote:  remote,
		}
		if sampled {
			cfg.TraceFlags = trace.FlagsSampled
		}
		return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(cfg))
	}
	tests := []struct {
		name    string
		file    string
		parent  context.Context
		sampled bool
	}{
		{"root, file says no", never, context.Background(), false},
		{"root, file says yes", always, context.Background(), true},
		{"sampled remote parent beats a no", never, parent(true, true), true},
		{"sampled local parent beats a no", never, parent(true, false), true},
		{"unsampled remote parent beats a yes", always, parent(false, true), false},
		{"unsampled local parent beats a yes", always, parent(false, false), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := NewFileSampler(FileSamplerConfig{Path: tt.file, ServiceName: "lumen"})
			if err != nil {
				t.Fatal(err)
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(fs)))
			defer tp.Shutdown(context.Background())
			_, span := tp.Tracer("test").Start(tt.parent, "chat llama")
			defer span.End()
			if got := span.SpanContext().IsSampled(); got != tt.sampled {
				t.Errorf("sampled = %v, want %v", got, tt.sampled)
			}
			if got := span.IsRecording(); got != tt.sampled {
				t.Errorf("recording = %v, want %v", got, tt.sampled)
			}
		})
	}
}

func TestReload(t *testing.T) {
	path := writeStrategies(t, `{"default_strategy":{"type":"probabilistic","param":0}}`)
	s, err := NewFileSampler(FileSamplerConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ids := traceIDs(2000)
	check := func(want float64) {
		t.Helper()
		if got := sampledRatio(s, "op", ids); got < want-0.05 || got > want+0.05 {
			t.Fatalf("sampled ratio = %.3f, want %.2f", got, want)
		}
	}
	check(0)

	rewrite(t, path, `{"default_strategy":{"type":"probabilistic","param":1}}`)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	check(1)

	rewrite(t, path, `{"default_strategy":{"type":"probabilistic","param":7}}`)
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("reload of a bad file: err = %v, want one naming %s", err, path)
	}
	check(1) // previous strategies kept

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("reload of a missing file: no error")
	}
	check(1)
}

func TestWatchReloadsChangedFile(t *testing.T) {
	path := writeStrategies(t, `{"default_strategy":{"type":"probabilistic","param":0}}`)
	s, err := NewFileSampler(FileSamplerConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ticks := make(chan time.Time)
	reports := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		s.Watch(ctx, ticks, func(err error) { reports <- err })
	}()
	defer func() { cancel(); <-watching }()

	ids := traceIDs(2000)
	tick := func() { ticks <- time.Time{} }
	// quiet sends two ticks: the second is taken only once the first has
	// been handled, so an unwanted report would be queued by then.
	quiet := func() { tick(); tick() }

	quiet() // unchanged: no report
	rewrite(t, path, `{"default_strategy":{"type":"probabilistic","param":0.25}}`)
	tick()
	if err := <-reports; err != nil {
		t.Fatalf("reload after change: %v", err)
	}
	if got := sampledRatio(s, "op", ids); got < 0.2 || got > 0.3 {
		t.Fatalf("after reload sampled ratio = %.3f, want about 0.25", got)
	}

	rewrite(t, path, `{"default_strategy":{"type":"probabilistic"}}`)
	tick()
	if err := <-reports; err == nil {
		t.Fatal("bad file: no error reported")
	}
	if got := sampledRatio(s, "op", ids); got < 0.2 || got > 0.3 {
		t.Fatalf("after bad file sampled ratio = %.3f, want the previous 0.25", got)
	}

	quiet() // the same bad file is not reported again
	rewrite(t, path, `{"default_strategy":{"type":"probabilistic","param":1}}`)
	tick()
	if err := <-reports; err != nil {
		t.Fatalf("first report after fixing the file = %v, want the successful reload", err)
	}
	if got := sampledRatio(s, "op", ids); got != 1 {
		t.Fatalf("after fix sampled ratio = %.3f, want 1", got)
	}
	quiet() // unchanged: nothing more to report
	select {
	case err := <-reports:
		t.Fatalf("unexpected report %v", err)
	default:
	}
}

func TestNewFileSamplerErrors(t *testing.T) {
	tests := []struct {
		name string
		path string
	}{
		{"no path", ""},
		{"missing file", filepath.Join(t.TempDir(), "nope.json")},
		{"bad file", writeStrategies(t, `{"default_strategy":{"type":"nope","param":1}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewFileSampler(FileSamplerConfig{Path: tt.path}); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestShippedStrategiesFile(t *testing.T) {
	const path = "../../configs/sampling-strategies.json"
	tests := []struct {
		service, op, want string
	}{
		{"lumen", "batch", "probabilistic(0.1)"},
		{"lumen", "chat llama", "probabilistic(1)"},
		{"other", "batch", "probabilistic(0.5)"},
	}
	for _, tt := range tests {
		t.Run(tt.service+"/"+tt.op, func(t *testing.T) {
			s, err := NewFileSampler(FileSamplerConfig{Path: path, ServiceName: tt.service})
			if err != nil {
				t.Fatal(err)
			}
			set := s.strategies.Load()
			d, ok := set.operations[tt.op]
			if !ok {
				d = set.root
			}
			if d.String() != tt.want {
				t.Errorf("strategy = %s, want %s", d, tt.want)
			}
		})
	}
}
