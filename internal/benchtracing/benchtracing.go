// Package benchtracing owns the harness of `lumen bench tracing`: what
// tracing costs, measured as aggregate output tokens/s of two servers
// that differ only in their tracing mode, both up for the whole run and
// loaded in turns, each pair of measurements in the opposite order to
// the one before, so that drift of the machine cancels out of the on/off
// ratio. How a server is started is the caller's (the CLI starts them in
// process); the load comes from loadgen.
package benchtracing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"text/tabwriter"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lumenllm/lumen/internal/loadgen"
	"github.com/lumenllm/lumen/internal/telemetry"
)

// Mode is one side of the comparison: how its server is configured.
// Telemetry adjusts the server's telemetry.Config just before Setup, so
// the mode is set in Go, winning over the caller's environment where it
// sets something (the caller's LUMEN_* variables are not the server's
// either). The caller's other OTEL_* variables, such as
// OTEL_EXPORTER_OTLP_HEADERS or OTEL_EXPORTER_OTLP_COMPRESSION, do reach
// the "on" server, and OTEL_SDK_DISABLED=true would disable it too: the
// CLI refuses that.
type Mode struct {
	Name string
	// What says what the mode means, for the report.
	What      string
	Telemetry func(*telemetry.Config)
	Args      []string // serve flags
}

// Modes are the two sides: off (the SDK disabled) and on (every span,
// batch spans included, sampled and exported to endpoint over OTLP gRPC,
// and no metrics push, with the export queue's default batching,
// whatever OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER, OTEL_TRACES_SAMPLER
// and OTEL_BSP_* say).
func Modes(endpoint string) (off, on Mode) {
	off = Mode{
		Name:      "off",
		What:      "the SDK disabled (as by OTEL_SDK_DISABLED=true): a no-op tracer provider, so no span is created, sampled or exported",
		Telemetry: func(c *telemetry.Config) { c.Disabled = true },
	}
	on = Mode{
		Name: "on",
		What: "every span sampled (an always-on sampler, --batch-span-rate 0: every engine step's batch span too) and exported over OTLP gRPC to " + endpoint + " with the default batching",
		Telemetry: func(c *telemetry.Config) {
			c.Exporter, c.MetricsExporter = telemetry.ExporterOTLPGRPC, telemetry.ExporterNone
			c.Sampler = sdktrace.AlwaysSample()
			c.MaxQueueSize, c.MaxExportBatchSize = telemetry.DefaultMaxQueueSize, telemetry.DefaultMaxExportBatchSize
			c.BatchTimeout, c.ExportTimeout = telemetry.DefaultBatchTimeout, telemetry.DefaultExportTimeout
		},
		Args: []string{"--otlp-endpoint", endpoint, "--batch-span-rate", "0"},
	}
	return off, on
}

// Server is one mode's running server.
type Server struct {
	// HTTPAddr serves /metrics (lumen_spans_dropped_total is read there).
	HTTPAddr string
	// Target is where the load goes.
	Target loadgen.Target
	// Spans counts the sampled spans the server ended.
	Spans *SpanCounter
	// Stop stops the server; called once.
	Stop func() error
}

// Config is one run.
type Config struct {
	// Concurrency levels measured, each round; the servers must have
	// at least slices.Max(Concurrency) slots.
	Concurrency []int
	Rounds      int
	// Load is every measurement's request shape (without concurrency and
	// request count).
	Load loadgen.Config
	// PerWorker requests per in-flight slot in one measurement.
	PerWorker int
	// Start starts a mode's server and returns once it serves.
	Start func(ctx context.Context, m Mode) (*Server, error)
}

// Run starts both servers (one after the other, so the model loads do
// not compete), warms each up (every slot used once), measures the
// rounds, printing progress to w, and ends with the summary table.
func Run(ctx context.Context, w io.Writer, cfg Config, off, on Mode) (err error) {
	servers := map[string]*Server{}
	defer func() {
		for _, s := range servers {
			err = errors.Join(err, s.Stop())
		}
	}()
	maxC := slices.Max(cfg.Concurrency)
	for _, m := range []Mode{off, on} {
		s, err := cfg.Start(ctx, m)
		if err != nil {
			return fmt.Errorf("bench tracing: tracing %s: %w", m.Name, err)
		}
		servers[m.Name] = s
		warm := cfg.Load
		warm.MaxTokens = min(warm.MaxTokens, 8)
		if _, err := load(ctx, warm, s.Target, maxC, 1); err != nil {
			return fmt.Errorf("bench tracing: tracing %s: warm-up: %w", m.Name, err)
		}
	}

	results := map[string]*totals{off.Name: newTotals(), on.Name: newTotals()}
	spansBefore := servers[on.Name].Spans.Load()
	for r := range cfg.Rounds {
		fmt.Fprintf(w, "round %d", r+1)
		for i, c := range cfg.Concurrency {
			// Each concurrency's pairs alternate their order from round
			// to round, and neighbouring concurrencies start opposite.
			order := []Mode{off, on}
			if (r+i)%2 == 1 {
				order = []Mode{on, off}
			}
			tps := map[string]float64{}
			for _, m := range order {
				rep, err := load(ctx, cfg.Load, servers[m.Name].Target, c, cfg.PerWorker)
				if err != nil {
					fmt.Fprintln(w)
					return fmt.Errorf("bench tracing: round %d, concurrency %d, tracing %s: %w", r+1, c, m.Name, err)
				}
				results[m.Name].add(c, rep)
				tps[m.Name] = rep.OutputTokensPerS
			}
			fmt.Fprintf(w, "  c=%d %s-first off %.1f on %.1f tok/s", c, order[0].Name, tps[off.Name], tps[on.Name])
		}
		fmt.Fprintln(w)
	}
	onTotals := results[on.Name]
	onTotals.spans = servers[on.Name].Spans.Load() - spansBefore
	dropped, err := loadgen.ScrapeSample(ctx, servers[on.Name].HTTPAddr, "lumen_spans_dropped_total")
	if err != nil {
		return fmt.Errorf("bench tracing: %w", err)
	}
	onTotals.dropped = int64(dropped)
	return printSummary(w, cfg.Concurrency, results[off.Name], onTotals)
}

// load runs c × perWorker requests with c in flight and insists that
// every request succeeded: a failed request would make the throughput
// meaningless.
func load(ctx context.Context, cfg loadgen.Config, target loadgen.Target, c, perWorker int) (loadgen.Report, error) {
	cfg.Concurrency, cfg.Requests = c, c*perWorker
	rep, err := loadgen.Run(ctx, cfg, target)
	if err != nil {
		return rep, err
	}
	if rep.OK != rep.Requests {
		return rep, fmt.Errorf("%d of %d requests failed or were interrupted: %v", rep.Requests-rep.OK, rep.Requests, rep.ErrorExamples)
	}
	return rep, nil
}

// totals accumulates one mode over the rounds.
type totals struct {
	tokens  map[int]int       // completion tokens by concurrency
	wallS   map[int]float64   // measurement windows by concurrency
	rounds  map[int][]float64 // tokens/s of each round by concurrency
	reqs    int
	spans   int64 // sampled spans ended during the measurements (not the warm-up)
	dropped int64 // lumen_spans_dropped_total at the end
}

func newTotals() *totals {
	return &totals{tokens: map[int]int{}, wallS: map[int]float64{}, rounds: map[int][]float64{}}
}

func (t *totals) add(c int, rep loadgen.Report) {
	t.tokens[c] += rep.CompletionTokens
	t.wallS[c] += rep.WallS
	t.rounds[c] = append(t.rounds[c], rep.OutputTokensPerS)
	t.reqs += rep.Requests
}

// tps is the aggregate output tokens/s at concurrency c over all rounds.
func (t *totals) tps(c int) float64 {
	if t.wallS[c] <= 0 {
		return 0
	}
	return float64(t.tokens[c]) / t.wallS[c]
}

// pairRatios are on ÷ off of each round's pair at concurrency c, sorted.
func pairRatios(c int, off, on *totals) []float64 {
	var rs []float64
	for i := range min(len(on.rounds[c]), len(off.rounds[c])) {
		if off.rounds[c][i] > 0 {
			rs = append(rs, on.rounds[c][i]/off.rounds[c][i])
		}
	}
	slices.Sort(rs)
	return rs
}

// sortedMedian is the median of sorted xs (0 for none).
func sortedMedian(xs []float64) float64 {
	switch n := len(xs); {
	case n == 0:
		return 0
	case n%2 == 1:
		return xs[n/2]
	default:
		return (xs[n/2-1] + xs[n/2]) / 2
	}
}

func printSummary(w io.Writer, concs []int, off, on *totals) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\toff tok/s\ton tok/s\ton/off\tmedian pair\tpair range\t")
	for _, c := range concs {
		rs := pairRatios(c, off, on)
		ratio := 0.0
		if off.tps(c) > 0 {
			ratio = on.tps(c) / off.tps(c)
		}
		spread := "-"
		if len(rs) > 0 {
			spread = fmt.Sprintf("%.3f–%.3f", rs[0], rs[len(rs)-1])
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.3f\t%.3f\t%s\t\n", c, off.tps(c), on.tps(c), ratio, sortedMedian(rs), spread)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "tracing on: %d spans sampled (%.1f per request, batch spans included), %d dropped by the exporter\n",
		on.spans, float64(on.spans)/float64(max(on.reqs, 1)), on.dropped)
	fmt.Fprintln(w, "on/off is aggregate output tokens/s with tracing on ÷ off over all rounds (goal ≥ 0.99);")
	fmt.Fprintln(w, "median pair and pair range are of the per-round ratios: a range wider than the distance from 1 is machine noise, not tracing")
	if on.dropped > 0 {
		fmt.Fprintln(w, "warning: spans were dropped, so part of the export cost was not paid: check the receiver")
	}
	return nil
}

// SpanCounter is a span processor counting the sampled spans that end.
type SpanCounter struct{ n atomic.Int64 }

var _ sdktrace.SpanProcessor = (*SpanCounter)(nil)

// Load is the count so far.
func (c *SpanCounter) Load() int64 { return c.n.Load() }

// OnStart does nothing.
func (c *SpanCounter) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd counts s when it is sampled.
func (c *SpanCounter) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.SpanContext().IsSampled() {
		c.n.Add(1)
	}
}

// Shutdown does nothing.
func (c *SpanCounter) Shutdown(context.Context) error { return nil }

// ForceFlush does nothing.
func (c *SpanCounter) ForceFlush(context.Context) error { return nil }
