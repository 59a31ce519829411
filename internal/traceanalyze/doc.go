// Package traceanalyze owns the offline analysis of Lumen's traces: it
// reads spans from OTLP JSON (as the OpenTelemetry Collector's file
// exporter writes it) or from Jaeger's JSON (a saved file or its query
// API), converts both into one span model, and computes per-operation
// latency statistics, critical paths, a bottleneck ranking, the
// queue/prefill/decode breakdown, batch contention, token usage and cost,
// rendered as text, JSON or one self-contained HTML report.
//
// It knows Lumen's span and attribute names (see internal/telemetry) but
// not how spans are produced; it never talks to a running Lumen and keeps
// no state between calls. Every decoder here reads untrusted bytes: bad
// input is an error, never a panic.
package traceanalyze
