package telemetry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Strategy types of a Jaeger sampling strategies file.
const (
	// StrategyProbabilistic samples a fraction (param, in [0, 1]) of
	// traces, decided by the trace id so every service deciding on the
	// same trace agrees.
	StrategyProbabilistic = "probabilistic"
	// StrategyRateLimiting samples at most param traces per second (a
	// token bucket holding max(param, 1) tokens).
	StrategyRateLimiting = "ratelimiting"
)

// FallbackSamplingProbability is the probabilistic strategy used when a
// strategies file has neither an entry for the service nor a
// default_strategy. It is the Jaeger collector's own default.
const FallbackSamplingProbability = 0.001

// FileSamplerConfig configures a FileSampler.
type FileSamplerConfig struct {
	// Path is the strategies file.
	Path string
	// ServiceName selects the entry of service_strategies that applies.
	ServiceName string
	// Now is the clock of the ratelimiting strategies; nil means time.Now.
	Now func() time.Time
}

// FileSampler decides root spans from a sampling strategies file in the
// format of Jaeger's file-based remote sampling:
//
//	{
//	  "service_strategies": [
//	    {"service": "lumen", "type": "probabilistic", "param": 1.0,
//	     "operation_strategies": [
//	       {"operation": "batch", "type": "probabilistic", "param": 0.1}]}
//	  ],
//	  "default_strategy": {"type": "probabilistic", "param": 0.5,
//	    "operation_strategies": [...]}
//	}
//
// A span whose name is listed in the service's operation_strategies uses
// that strategy; else one listed in default_strategy.operation_strategies
// (shared by all services, as in Jaeger); else the service's own strategy;
// else default_strategy; else probabilistic FallbackSamplingProbability.
// Both types are allowed at every level (Jaeger itself only takes
// probabilistic per-operation strategies). Unknown fields are errors, to
// catch misspelt keys.
//
// FileSampler ignores the parent: wrap it in sdktrace.ParentBased, as
// Setup does, so that only root spans consult it and a trace is sampled
// all or nothing. It is safe for concurrent use; reloads swap the
// strategies atomically, and a file that fails to load leaves the
// previous strategies in force.
type FileSampler struct {
	path    string
	service string
	now     func() time.Time

	strategies atomic.Pointer[strategySet]

	reloadMu sync.Mutex // serialises reloads; guards seen
	seen     fileState  // the file as of the last load attempt
}

var _ sdktrace.Sampler = (*FileSampler)(nil)

// NewFileSampler loads cfg.Path; a file that cannot be read or parsed is
// an error.
func NewFileSampler(cfg FileSamplerConfig) (*FileSampler, error) {
	if cfg.Path == "" {
		return nil, errors.New("telemetry: sampling strategies file: no path")
	}
	s := &FileSampler{path: cfg.Path, service: cfg.ServiceName, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the strategies file.
func (s *FileSampler) Path() string { return s.path }

// ShouldSample decides by the strategy for p.Name.
func (s *FileSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	set := s.strategies.Load()
	d, ok := set.operations[p.Name]
	if !ok {
		d = set.root
	}
	res := sdktrace.SamplingResult{
		Decision:   sdktrace.Drop,
		Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState(),
	}
	if d.sample(p) {
		res.Decision = sdktrace.RecordAndSample
	}
	return res
}

// Description names the sampler and its file.
func (s *FileSampler) Description() string {
	return fmt.Sprintf("JaegerStrategiesFile{%s}", s.path)
}

// Reload reads the file now, whether or not it changed. On error the
// previous strategies stay in force.
func (s *FileSampler) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	return s.loadLocked(statFile(s.path))
}

// ReloadIfChanged reloads the file when its modification time, size or
// existence differs from the last load attempt. It reports whether new
// strategies were installed; on error the previous ones stay in force,
// and the same unchanged bad file is not reported again.
func (s *FileSampler) ReloadIfChanged() (bool, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	st := statFile(s.path)
	if st.same(s.seen) {
		return false, nil
	}
	if err := s.loadLocked(st); err != nil {
		return false, err
	}
	return true, nil
}

// Watch calls ReloadIfChanged on every tick until ctx ends, and report
// (when not nil) after every reload attempt: with nil after new
// strategies were installed, or with the error that kept the old ones.
func (s *FileSampler) Watch(ctx context.Context, ticks <-chan time.Time, report func(error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			changed, err := s.ReloadIfChanged()
			if (changed || err != nil) && report != nil {
				report(err)
			}
		}
	}
}

// loadLocked reads and installs the file; st, taken before reading, is
// remembered either way so that an unchanged file is not retried.
func (s *FileSampler) loadLocked(st fileState) error {
	s.seen = st
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("telemetry: sampling strategies: %w", err)
	}
	set, err := parseStrategies(data, s.service, s.now)
	if err != nil {
		return fmt.Errorf("telemetry: sampling strategies %s: %w", s.path, err)
	}
	s.strategies.Store(set)
	return nil
}

// fileState is what polling compares to notice a changed file. The
// content hash catches an edit that keeps the size within the file
// system's timestamp granularity; strategy files are small, so reading
// one per poll costs nothing.
type fileState struct {
	exists  bool
	modTime time.Time
	size    int64
	sum     [sha256.Size]byte
}

func (f fileState) same(g fileState) bool {
	return f.exists == g.exists && f.size == g.size && f.modTime.Equal(g.modTime) && f.sum == g.sum
}

func statFile(path string) fileState {
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{}
	}
	st := fileState{exists: true, modTime: fi.ModTime(), size: fi.Size()}
	if data, err := os.ReadFile(path); err == nil {
		st.sum = sha256.Sum256(data)
	}
	return st
}

// The JSON document. Param is a pointer so that a missing one is an error
// rather than a silent zero.
type (
	strategyJSON struct {
		Type  string   `json:"type"`
		Param *float64 `json:"param"`
	}
	operationStrategyJSON struct {
		Operation string `json:"operation"`
		strategyJSON
	}
	serviceStrategyJSON struct {
		Service string `json:"service"`
		strategyJSON
		OperationStrategies []operationStrategyJSON `json:"operation_strategies"`
	}
	defaultStrategyJSON struct {
		strategyJSON
		OperationStrategies []operationStrategyJSON `json:"operation_strategies"`
	}
	strategiesJSON struct {
		ServiceStrategies []serviceStrategyJSON `json:"service_strategies"`
		DefaultStrategy   *defaultStrategyJSON  `json:"default_strategy"`
	}
)

// strategySet is a parsed file as it applies to one service.
type strategySet struct {
	operations map[string]decider // by span name
	root       decider            // for any other span name
}

// decider makes one root sampling decision.
type decider interface {
	sample(p sdktrace.SamplingParameters) bool
	String() string
}

// parseStrategies validates the whole document, including the entries of
// other services, and resolves it for service.
func parseStrategies(data []byte, service string, now func() time.Time) (*strategySet, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc strategiesJSON
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("parse: data after the JSON object")
	}

	set := &strategySet{
		operations: map[string]decider{},
		root:       probabilistic(FallbackSamplingProbability),
	}
	if def := doc.DefaultStrategy; def != nil {
		d, err := def.decider("default_strategy", now)
		if err != nil {
			return nil, err
		}
		set.root = d
		ops, err := operationDeciders("default_strategy", def.OperationStrategies, now)
		if err != nil {
			return nil, err
		}
		set.operations = ops
	}
	services := map[string]bool{}
	for i, ss := range doc.ServiceStrategies {
		where := fmt.Sprintf("service_strategies[%d]", i)
		if ss.Service == "" {
			return nil, fmt.Errorf("%s: no service", where)
		}
		if services[ss.Service] {
			return nil, fmt.Errorf("%s: service %q listed twice", where, ss.Service)
		}
		services[ss.Service] = true
		d, err := ss.decider(where, now)
		if err != nil {
			return nil, err
		}
		ops, err := operationDeciders(where, ss.OperationStrategies, now)
		if err != nil {
			return nil, err
		}
		if ss.Service != service {
			continue
		}
		set.root = d
		for name, od := range ops { // the service's own win over the defaults
			set.operations[name] = od
		}
	}
	return set, nil
}

func operationDeciders(where string, list []operationStrategyJSON, now func() time.Time) (map[string]decider, error) {
	ops := make(map[string]decider, len(list))
	for i, op := range list {
		at := fmt.Sprintf("%s.operation_strategies[%d]", where, i)
		if op.Operation == "" {
			return nil, fmt.Errorf("%s: no operation", at)
		}
		if _, dup := ops[op.Operation]; dup {
			return nil, fmt.Errorf("%s: operation %q listed twice", at, op.Operation)
		}
		d, err := op.decider(at, now)
		if err != nil {
			return nil, err
		}
		ops[op.Operation] = d
	}
	return ops, nil
}

func (s strategyJSON) decider(where string, now func() time.Time) (decider, error) {
	if s.Param == nil {
		return nil, fmt.Errorf("%s: no param", where)
	}
	p := *s.Param
	switch s.Type {
	case StrategyProbabilistic:
		if math.IsNaN(p) || p < 0 || p > 1 {
			return nil, fmt.Errorf("%s: probabilistic param %v outside [0, 1]", where, p)
		}
		return probabilistic(p), nil
	case StrategyRateLimiting:
		if math.IsNaN(p) || math.IsInf(p, 0) || p < 0 {
			return nil, fmt.Errorf("%s: ratelimiting param %v: want traces per second >= 0", where, p)
		}
		return newRateLimiter(p, now), nil
	case "":
		return nil, fmt.Errorf("%s: no type", where)
	default:
		return nil, fmt.Errorf("%s: unknown type %q (want %s or %s)", where, s.Type, StrategyProbabilistic, StrategyRateLimiting)
	}
}

// probabilisticDecider samples by trace id, like the SDK's
// TraceIDRatioBased (which it delegates to), so the same trace id gets
// the same answer everywhere.
type probabilisticDecider struct {
	p     float64
	ratio sdktrace.Sampler
}

func probabilistic(p float64) probabilisticDecider {
	return probabilisticDecider{p: p, ratio: sdktrace.TraceIDRatioBased(p)}
}

func (d probabilisticDecider) sample(p sdktrace.SamplingParameters) bool {
	return d.ratio.ShouldSample(p).Decision == sdktrace.RecordAndSample
}

func (d probabilisticDecider) String() string {
	return fmt.Sprintf("%s(%g)", StrategyProbabilistic, d.p)
}

// rateLimiter is a token bucket: rate tokens a second, at most capacity
// held, one spent per sampled trace. It starts full.
type rateLimiter struct {
	rate     float64
	capacity float64
	now      func() time.Time

	mu      sync.Mutex
	balance float64
	last    time.Time
}

func newRateLimiter(rate float64, now func() time.Time) *rateLimiter {
	capacity := math.Max(rate, 1)
	return &rateLimiter{rate: rate, capacity: capacity, now: now, balance: capacity, last: now()}
}

func (r *rateLimiter) sample(sdktrace.SamplingParameters) bool {
	if r.rate <= 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if elapsed := now.Sub(r.last); elapsed > 0 {
		r.balance = math.Min(r.capacity, r.balance+elapsed.Seconds()*r.rate)
		r.last = now
	}
	if r.balance < 1 {
		return false
	}
	r.balance--
	return true
}

func (r *rateLimiter) String() string {
	return fmt.Sprintf("%s(%g)", StrategyRateLimiting, r.rate)
}
