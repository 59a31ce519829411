package recorder

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/scheduler"
)

// Histogram buckets from the OpenTelemetry GenAI semantic conventions.
var (
	durationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
	ttftBuckets     = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0}
	tpotBuckets     = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5}
)

// Metrics are Lumen's Prometheus metrics, on a registry of their own.
type Metrics struct {
	cacheInfo *prometheus.GaugeVec
	reg       *prometheus.Registry

	duration, ttft, tpot *prometheus.HistogramVec
	tokens               *prometheus.CounterVec
	requests             *prometheus.CounterVec
	batchSize            prometheus.Histogram
	steps                prometheus.Counter
	stepPhases           *prometheus.CounterVec
	cachedTokens         prometheus.Counter
	prefixHits           *prometheus.CounterVec
	prefixMisses         prometheus.Counter

	stats   atomic.Pointer[func() scheduler.Stats]
	dropped atomic.Pointer[func() int64]

	tenants tenantLabels
}

// MetricsConfig configures NewMetrics; the zero value is the defaults.
type MetricsConfig struct {
	// MaxTenants bounds the distinct values of the tenant label (default
	// DefaultMaxTenants): tenants are client-chosen, and every new label
	// value is a new series on every request metric. The first MaxTenants
	// tenants seen keep their own label for the life of the process; later
	// ones are counted under OtherTenant.
	MaxTenants int
	// Compat, when "vllm", also exports the gauges an inference gateway's
	// endpoint picker reads from vLLM (vllm:num_requests_waiting,
	// vllm:num_requests_running, vllm:kv_cache_usage_perc), labelled
	// model_name=ModelName.
	Compat    string
	ModelName string
}

// CompatVLLM is MetricsConfig.Compat for vLLM's metric names.
const CompatVLLM = "vllm"

// kvUsage is the share of the KV cache held by running sequences, 0–1:
// cells kept only for prefix reuse do not count, because a new request
// reclaims them (for routing, they are free).
func kvUsage(s scheduler.Stats) float64 {
	if s.KVSize <= 0 {
		return 0
	}
	return min(1, max(0, float64(s.KVUsed-s.CachedKV)/float64(s.KVSize)))
}

// DefaultMaxTenants is MetricsConfig.MaxTenants' default.
const DefaultMaxTenants = 100

// OtherTenant is the tenant label of tenants beyond MaxTenants. Its
// parentheses are outside the tenant-id charset, so no tenant can be it.
const OtherTenant = "(other)"

// tenantLabels admits tenant label values up to a bound.
type tenantLabels struct {
	max  int
	mu   sync.Mutex
	seen map[string]struct{}
}

// label is tenant's label value: itself while there is room, else
// OtherTenant. "" (no tenant) is always itself.
func (t *tenantLabels) label(tenant string) string {
	if tenant == "" {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.seen[tenant]; ok {
		return tenant
	}
	if len(t.seen) >= t.max {
		return OtherTenant
	}
	t.seen[tenant] = struct{}{}
	return tenant
}

// NewMetrics registers the metrics on a new private registry.
func NewMetrics(cfg MetricsConfig) *Metrics {
	if cfg.MaxTenants <= 0 {
		cfg.MaxTenants = DefaultMaxTenants
	}
	m := &Metrics{reg: prometheus.NewRegistry(), tenants: tenantLabels{max: cfg.MaxTenants, seen: map[string]struct{}{}}}
	labels := []string{"gen_ai_operation_name", "gen_ai_request_model", "tenant"}
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gen_ai_server_request_duration_seconds", Help: "Time from request admission to its last token.", Buckets: durationBuckets,
	}, append(labels, "error_type"))
	m.ttft = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gen_ai_server_time_to_first_token_seconds", Help: "Time to the first output token, queueing included.", Buckets: ttftBuckets,
	}, labels)
	m.tpot = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gen_ai_server_time_per_output_token_seconds", Help: "Decode time per output token after the first.", Buckets: tpotBuckets,
	}, labels)
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gen_ai_server_tokens_total", Help: "Tokens processed, by type (input or output).",
	}, []string{"gen_ai_request_model", "gen_ai_token_type", "tenant"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lumen_requests_total", Help: "Finished requests by outcome (finish reason).",
	}, []string{"gen_ai_request_model", "outcome", "tenant"})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "lumen_batch_size_sequences", Help: "Sequences per engine step.", Buckets: prometheus.LinearBuckets(1, 1, 16),
	})
	m.steps = prometheus.NewCounter(prometheus.CounterOpts{Name: "lumen_engine_steps_total", Help: "Engine decode steps."})
	m.stepPhases = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lumen_step_phase_seconds_total",
		Help: "Time of engine steps by phase: build (the batch), decode (inside the engine), sample, emit (text, stops, events), gap (the loop's own work between steps).",
	}, []string{"phase"})
	// Every phase is exported from the start, at zero, so a scrape before
	// the first step (bench serve --metrics-url on a fresh server) sees it.
	for _, phase := range []string{"build", "decode", "sample", "emit", "gap"} {
		m.stepPhases.WithLabelValues(phase)
	}
	m.cachedTokens = prometheus.NewCounter(prometheus.CounterOpts{Name: "lumen_prefix_cache_tokens_total", Help: "Prompt tokens reused from the prefix cache."})
	m.prefixHits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lumen_prefix_cache_hits_total", Help: "Requests that reused cached prompt tokens, by where they were: slot (its own slot), shared (another slot's cells), host (restored from host memory)."}, []string{"source"})
	for _, source := range []scheduler.CacheSource{scheduler.CacheSlot, scheduler.CacheShared, scheduler.CacheHost} {
		m.prefixHits.WithLabelValues(string(source))
	}
	m.prefixMisses = prometheus.NewCounter(prometheus.CounterOpts{Name: "lumen_prefix_cache_misses_total", Help: "Requests that held a slot and reused no cached prompt tokens."})
	statF := func(name, help string, labels prometheus.Labels, get func(scheduler.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, func() float64 {
			if f := m.stats.Load(); f != nil {
				return get((*f)())
			}
			return 0
		})
	}
	stat := func(name, help string, get func(scheduler.Stats) int) prometheus.Collector {
		return statF(name, help, nil, func(s scheduler.Stats) float64 { return float64(get(s)) })
	}
	m.cacheInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lumen_cache_config_info",
		Help: "The KV cache's shape, as labels: block_size (cells per block: 1, llama.cpp allocates cells one by one), num_cells (total cells, all slots), slots, cells_per_slot.",
	}, []string{"block_size", "num_cells", "slots", "cells_per_slot"})
	if cfg.Compat == CompatVLLM {
		model := prometheus.Labels{"model_name": cfg.ModelName}
		m.reg.MustRegister(
			statF("vllm:num_requests_waiting", "Requests waiting for a slot (lumen_queue_depth_requests).", model, func(s scheduler.Stats) float64 { return float64(s.Queued) }),
			statF("vllm:num_requests_running", "Requests holding a slot (lumen_active_sequences).", model, func(s scheduler.Stats) float64 { return float64(s.Active) }),
			statF("vllm:kv_cache_usage_perc", "KV cache usage, 1 is full (lumen_kv_cache_usage_ratio).", model, kvUsage),
		)
	}
	m.reg.MustRegister(m.duration, m.ttft, m.tpot, m.tokens, m.requests, m.batchSize, m.steps, m.stepPhases, m.cachedTokens, m.prefixHits, m.prefixMisses,
		stat("lumen_queue_depth_requests", "Requests waiting for a slot.", func(s scheduler.Stats) int { return s.Queued }),
		stat("lumen_active_sequences", "Sequences holding a slot.", func(s scheduler.Stats) int { return s.Active }),
		stat("lumen_kv_cache_used_cells", "KV cache cells in use (prefix cache included).", func(s scheduler.Stats) int { return s.KVUsed }),
		stat("lumen_kv_cache_cached_cells", "KV cache cells held for prefix reuse.", func(s scheduler.Stats) int { return s.CachedKV }),
		stat("lumen_kv_cache_size_cells", "KV cache size.", func(s scheduler.Stats) int { return s.KVSize }),
		statF("lumen_kv_cache_usage_ratio", "Share of the KV cache held by running sequences, 0-1 (cells kept only for prefix reuse are reclaimable and do not count).", nil, kvUsage),
		stat("lumen_slots", "Sequence slots (serve --parallel): the most requests that run at once.", func(s scheduler.Stats) int { return s.Slots }),
		m.cacheInfo,
		stat("lumen_prefix_cache_host_bytes", "Host memory held by saved prefix-cache states (--cache-ram).", func(s scheduler.Stats) int { return int(s.HostCacheBytes) }),
		stat("lumen_prefix_cache_host_entries", "Sequences saved in the host-memory prefix cache.", func(s scheduler.Stats) int { return s.HostCacheEntries }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lumen_spans_dropped_total", Help: "Spans dropped by the exporter (queue full or export failed)."}, func() float64 {
			if f := m.dropped.Load(); f != nil {
				return float64((*f)())
			}
			return 0
		}),
		collectors.NewGoCollector(),
	)
	return m
}

// Registry is the private registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetStats connects the scheduler's load gauges, and records the cache's
// shape (which does not change) in lumen_cache_config_info.
func (m *Metrics) SetStats(f func() scheduler.Stats) {
	m.stats.Store(&f)
	s := f()
	perSlot := 0
	if s.Slots > 0 {
		perSlot = s.KVSize / s.Slots
	}
	m.cacheInfo.Reset()
	m.cacheInfo.WithLabelValues("1", strconv.Itoa(s.KVSize), strconv.Itoa(s.Slots), strconv.Itoa(perSlot)).Set(1)
}

// SetDropped connects the exporter's dropped-span count.
func (m *Metrics) SetDropped(f func() int64) { m.dropped.Store(&f) }

// Handler serves /metrics, OpenMetrics included (exemplars need it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// observe records v with the trace as exemplar when the span is sampled,
// so a latency bucket links to a trace that fell in it.
func observe(o prometheus.Observer, v float64, sc trace.SpanContext) {
	if eo, ok := o.(prometheus.ExemplarObserver); ok && sc.IsSampled() {
		eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String()})
		return
	}
	o.Observe(v)
}

func (m *Metrics) finished(sc trace.SpanContext, info RequestInfo, r scheduler.Result) {
	model, op, tenant := info.Model, info.Operation, m.tenants.label(info.Tenant)
	tm := r.Timings
	errType := ""
	if r.Finish == scheduler.FinishError || r.Finish == scheduler.FinishCancelled {
		errType = string(r.Finish)
	}
	observe(m.duration.WithLabelValues(op, model, tenant, errType), tm.Finished.Sub(tm.Enqueued).Seconds(), sc)
	if !tm.FirstToken.IsZero() {
		observe(m.ttft.WithLabelValues(op, model, tenant), tm.TTFT().Seconds(), sc)
	}
	if r.CompletionTokens > 1 {
		observe(m.tpot.WithLabelValues(op, model, tenant), tm.Decode().Seconds()/float64(r.CompletionTokens-1), sc)
	}
	m.tokens.WithLabelValues(model, "input", tenant).Add(float64(r.PromptTokens))
	m.tokens.WithLabelValues(model, "output", tenant).Add(float64(r.CompletionTokens))
	m.requests.WithLabelValues(model, string(r.Finish), tenant).Inc()
	switch {
	case r.CachedTokens > 0:
		m.prefixHits.WithLabelValues(string(r.CacheSource)).Inc()
		m.cachedTokens.Add(float64(r.CachedTokens))
	case r.Slot >= 0 && !tm.Admitted.IsZero():
		m.prefixMisses.Inc()
	}
}

func (m *Metrics) step(si scheduler.StepInfo) {
	m.steps.Inc()
	m.batchSize.Observe(float64(len(si.Seqs)))
	if !si.DecodeStart.IsZero() {
		m.stepPhases.WithLabelValues("build").Add(si.DecodeStart.Sub(si.Start).Seconds())
		m.stepPhases.WithLabelValues("decode").Add(si.End.Sub(si.DecodeStart).Seconds())
		m.stepPhases.WithLabelValues("sample").Add(si.Sample.Seconds())
		m.stepPhases.WithLabelValues("emit").Add(si.Emit.Seconds())
		m.stepPhases.WithLabelValues("gap").Add(si.Gap.Seconds())
	}
}
