package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/lumenllm/lumen/internal/traceanalyze"
)

const traceUsage = `usage:
  lumen trace analyze --file PATH [--format auto|otlp|jaeger] [--trace-id ID] [--prices FILE] [--json] [--html FILE]
  lumen trace analyze --jaeger URL --trace-id ID [...]
  lumen trace analyze --jaeger URL --service NAME [--operation NAME] [--since 1h] [--end TIME] [--limit 20] [...]

Analyses Lumen traces: latency per operation, critical paths, bottlenecks,
queue/prefill/decode breakdown, batch contention, tokens and cost.
Run 'lumen trace analyze -h' for its flags.
`

// runTrace runs 'lumen trace ...'.
func runTrace(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, traceUsage)
		return usageError{"trace: no subcommand given"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "analyze", "analyse":
		return runTraceAnalyze(ctx, rest, e)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, traceUsage)
		return nil
	default:
		fmt.Fprint(e.stderr, traceUsage)
		return usageError{fmt.Sprintf("trace: unknown subcommand %q", cmd)}
	}
}

type traceFlags struct {
	file      string
	format    string
	jaeger    string
	traceID   string
	service   string
	operation string
	since     time.Duration
	end       string
	limit     int
	timeout   time.Duration
	prices    string
	json      bool
	html      string
}

func runTraceAnalyze(ctx context.Context, args []string, e env) error {
	var f traceFlags
	fs := newFlagSet("trace analyze", "Analyses traces from an OTLP JSON or Jaeger JSON file, or from Jaeger's query API.", e.stderr)
	fs.StringVar(&f.file, "file", "", "OTLP JSON (one object, or one per line, as the Collector's file exporter writes) or Jaeger JSON file")
	fs.StringVar(&f.format, "format", "auto", "format of --file: auto, otlp or jaeger")
	fs.StringVar(&f.jaeger, "jaeger", "", "Jaeger query API base URL, e.g. http://localhost:16686")
	fs.StringVar(&f.traceID, "trace-id", "", "with --jaeger: the trace to fetch; with --file: the trace whose critical path and waterfall to show (default: the slowest)")
	fs.StringVar(&f.service, "service", "", "with --jaeger: search this service's traces")
	fs.StringVar(&f.operation, "operation", "", "with --jaeger --service: only traces with this operation (e.g. 'chat tiny')")
	fs.DurationVar(&f.since, "since", time.Hour, "with --jaeger --service: how far back from --end to search")
	fs.StringVar(&f.end, "end", "", "with --jaeger --service: end of the search window, RFC 3339 (default: now)")
	fs.IntVar(&f.limit, "limit", 20, "with --jaeger --service: most traces to fetch")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "with --jaeger: bound on each query")
	fs.StringVar(&f.prices, "prices", "", "prices file (YAML, or JSON when named *.json) to add costs, e.g. configs/prices.yaml")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON instead of text")
	fs.StringVar(&f.html, "html", "", "also write a self-contained HTML report to this file")
	rest, err := parseFlags(fs, args, e.getenv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Sprintf("trace analyze: unexpected arguments %q", rest)}
	}
	if err := f.check(); err != nil {
		return err
	}
	opts := traceanalyze.Options{}
	if f.traceID != "" {
		if opts.TraceID, err = traceanalyze.NormalizeTraceID(f.traceID); err != nil {
			return usageError{fmt.Sprintf("trace analyze: --trace-id: %v", err)}
		}
	}
	if f.prices != "" {
		if opts.Prices, err = traceanalyze.LoadPrices(f.prices); err != nil {
			return err
		}
	}
	spans, err := f.load(ctx, opts.TraceID)
	if err != nil {
		return err
	}
	report, err := traceanalyze.Analyze(spans, opts)
	if err != nil {
		return fmt.Errorf("trace analyze: %w", err)
	}
	if f.html != "" {
		if err := writeHTMLReport(f.html, report); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "wrote %s\n", f.html)
	}
	if f.json {
		return report.WriteJSON(e.stdout)
	}
	return report.WriteText(e.stdout)
}

// check rejects flag combinations that cannot work.
func (f *traceFlags) check() error {
	if _, err := traceanalyze.ParseFormat(f.format); err != nil {
		return usageError{"trace analyze: --" + err.Error()}
	}
	switch {
	case (f.file == "") == (f.jaeger == ""):
		return usageError{"trace analyze: give exactly one of --file and --jaeger"}
	case f.jaeger != "" && f.traceID == "" && f.service == "":
		return usageError{"trace analyze: --jaeger needs --trace-id or --service"}
	case f.jaeger != "" && f.traceID != "" && f.service != "":
		return usageError{"trace analyze: --trace-id and --service are alternatives"}
	case f.file != "" && (f.service != "" || f.operation != ""):
		return usageError{"trace analyze: --service and --operation need --jaeger"}
	case f.service != "" && (f.limit < 1 || f.since <= 0):
		return usageError{"trace analyze: --limit and --since must be positive"}
	case f.timeout <= 0:
		return usageError{"trace analyze: --timeout must be positive"}
	}
	return nil
}

// load reads the spans from the file or from Jaeger.
func (f *traceFlags) load(ctx context.Context, traceID string) ([]traceanalyze.Span, error) {
	if f.file != "" {
		format, _ := traceanalyze.ParseFormat(f.format)
		return traceanalyze.ReadFile(f.file, format)
	}
	jc := &traceanalyze.JaegerClient{BaseURL: f.jaeger, HTTP: &http.Client{Timeout: f.timeout}}
	if f.service == "" {
		return jc.Trace(ctx, traceID)
	}
	end := time.Now()
	if f.end != "" {
		var err error
		if end, err = time.Parse(time.RFC3339Nano, f.end); err != nil {
			return nil, usageError{fmt.Sprintf("trace analyze: --end %q: want RFC 3339, e.g. 2025-01-02T15:04:05Z", f.end)}
		}
	}
	spans, err := jc.SearchRequests(ctx, traceanalyze.JaegerQuery{
		Service: f.service, Operation: f.operation, Start: end.Add(-f.since), End: end, Limit: f.limit,
	})
	if errors.Is(err, traceanalyze.ErrNoSpans) {
		return nil, fmt.Errorf("jaeger: no traces of service %q between %s and %s", f.service,
			end.Add(-f.since).Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return spans, err
}

func writeHTMLReport(path string, r *traceanalyze.Report) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	if err := r.WriteHTML(out); err != nil {
		out.Close()
		return fmt.Errorf("html report %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("html report %s: %w", path, err)
	}
	return nil
}
