package liveview

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/scheduler"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultMaxTraces          = 200
	DefaultMaxSpansPerTrace   = 64
	DefaultMaxBatchesPerTrace = 256
	DefaultInterval           = time.Second
	DefaultHistory            = 600 // ten minutes at one sample a second
	DefaultTTFTWindow         = 10 * time.Second
	DefaultMaxTTFTSamples     = 4096
)

// Config says how to build a View. Zero fields take the defaults above.
type Config struct {
	// MaxTraces bounds the traces kept; the oldest is evicted first.
	MaxTraces int
	// MaxSpansPerTrace bounds the spans kept per trace; later ones are
	// counted as dropped.
	MaxSpansPerTrace int
	// MaxBatchesPerTrace bounds the linked batch steps kept per trace (a
	// long generation takes one step per token); the first ones are kept.
	MaxBatchesPerTrace int
	// Interval is the sampling period of the live series.
	Interval time.Duration
	// History is how many samples are kept.
	History int
	// TTFTWindow is how far back the TTFT median looks.
	TTFTWindow time.Duration
	// MaxTTFTSamples bounds the TTFTs held for the median.
	MaxTTFTSamples int

	// Stats reports the scheduler's load; nil until SetStats (the view is
	// built before the scheduler exists).
	Stats func() scheduler.Stats
	// Keys guard the JSON API; the zero value leaves it open. The page and
	// its static assets hold no data and are always open.
	Keys auth.Keys
	// TracingOff tells the page that no spans will come (for example
	// OTEL_SDK_DISABLED); SetTracing changes it later.
	TracingOff bool

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tick drives sampling; nil means a ticker of Interval. Tests inject a
	// channel to take samples at will.
	Tick <-chan time.Time
}

// View is the live view: its span processor, its series sampler and its
// HTTP handler. Build it with New and Close it when the server stops.
type View struct {
	cfg     Config
	now     func() time.Time
	store   *Store
	series  *series
	stats   atomic.Pointer[func() scheduler.Stats]
	tracing atomic.Bool
	handler http.Handler

	lastSample time.Time // sampler goroutine only

	done      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

// New builds a View and starts its sampler goroutine.
func New(cfg Config) (*View, error) {
	counts := []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxTraces", &cfg.MaxTraces, DefaultMaxTraces},
		{"MaxSpansPerTrace", &cfg.MaxSpansPerTrace, DefaultMaxSpansPerTrace},
		{"MaxBatchesPerTrace", &cfg.MaxBatchesPerTrace, DefaultMaxBatchesPerTrace},
		{"History", &cfg.History, DefaultHistory},
		{"MaxTTFTSamples", &cfg.MaxTTFTSamples, DefaultMaxTTFTSamples},
	}
	for _, c := range counts {
		if *c.v < 0 {
			return nil, fmt.Errorf("liveview: %s is %d: %w", c.name, *c.v, errNegative)
		}
		if *c.v == 0 {
			*c.v = c.def
		}
	}
	if cfg.Interval < 0 || cfg.TTFTWindow < 0 {
		return nil, fmt.Errorf("liveview: Interval %v, TTFTWindow %v: %w", cfg.Interval, cfg.TTFTWindow, errNegative)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.TTFTWindow == 0 {
		cfg.TTFTWindow = DefaultTTFTWindow
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	v := &View{
		cfg:        cfg,
		now:        now,
		store:      newStore(now, cfg.MaxTraces, cfg.MaxSpansPerTrace, cfg.MaxBatchesPerTrace, cfg.MaxTTFTSamples),
		series:     newSeries(cfg.History),
		lastSample: now(),
		done:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	v.tracing.Store(!cfg.TracingOff)
	if cfg.Stats != nil {
		v.SetStats(cfg.Stats)
	}
	v.handler = v.routes()
	tick, stop := cfg.Tick, func() {}
	if tick == nil {
		t := time.NewTicker(cfg.Interval)
		tick, stop = t.C, t.Stop
	}
	go v.run(tick, stop)
	return v, nil
}

var errNegative = errors.New("must not be negative")

func (v *View) run(tick <-chan time.Time, stop func()) {
	defer close(v.stopped)
	defer stop()
	for {
		select {
		case <-v.done:
			return
		case <-tick:
			v.sample(v.now())
		}
	}
}

// Processor is the span processor to pass to the tracer provider
// (telemetry.Config.SpanProcessors).
func (v *View) Processor() sdktrace.SpanProcessor { return v.store }

// Handler serves the page at "/" and everything under Prefix. Mount it
// with the exact-match pattern PagePattern and with Prefix, so that other
// paths stay with whatever handles "/".
func (v *View) Handler() http.Handler { return v.handler }

// SetStats sets where queue depth and KV cache use come from.
func (v *View) SetStats(f func() scheduler.Stats) {
	if f == nil {
		v.stats.Store(nil)
		return
	}
	v.stats.Store(&f)
}

// SetTracing says whether spans are being recorded at all; the page
// explains an empty trace list when they are not.
func (v *View) SetTracing(on bool) { v.tracing.Store(on) }

// Close stops the sampler and waits for it. The handler keeps serving
// what was collected; later calls do nothing.
func (v *View) Close() error {
	v.closeOnce.Do(func() { close(v.done) })
	<-v.stopped
	return nil
}
