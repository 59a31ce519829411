// Package recorder turns the scheduler's records into telemetry: as the
// scheduler's Observer it ends each request's span with its queue,
// prefill and decode (or embed) children, writes a root span per engine
// step linked to the requests in it, updates the Prometheus metrics (with
// trace exemplars) and logs one line per finished request. It is handed
// the tracer provider and the metrics registry (built by package
// telemetry) and installs nothing globally; it runs on the scheduler's
// goroutine and must not block.
package recorder
