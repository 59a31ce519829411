//go:build scale

// Package scale holds the scale-out test of the lumen binary (`make
// scale-test`): three replicas on the committed test model behind an
// HAProxy (Debian's package) that balances by least connections, checks
// each replica's /readyz, and retries only the failures where a replica
// did not run the request (see haproxyTemplate). Each replica exports its
// traces by OTLP/gRPC to a receiver in the test.
//
// Under a closed-loop load of short completions, each request carrying a
// traceparent of a fresh trace, one replica is sent SIGTERM while a long
// stream is in flight on it. The test then requires that no request was
// lost or cut, that HAProxy took the draining replica out of the pool
// within its health-check interval and sent it nothing afterwards, that
// every replica's request spans continue the client's trace (HAProxy
// passes traceparent through untouched), and that before the SIGTERM the
// load was split within ±20% of even.
//
// TestScaleBench (build tag scalebench: `make scale-bench`) measures throughput
// and time to first token through HAProxy with one replica and with
// three, under the same client load, and each replica's queue depth
// (docs/benchmarks.md, "Replicas behind HAProxy").
//
// The tests run the real binaries (LUMEN_BIN, haproxy on PATH) as child
// processes on loopback ports and check only properties, never generated
// text: the model has random weights. They are built only with the scale
// tag, so `go test ./...` skips them.
package scale
