// Package stacktest proves the docker/ observability stack without a
// Docker engine. Each configuration is loaded by the code of the program
// that reads it in the stack (compose-go for the compose file,
// Prometheus's config and PromQL packages, the OpenTelemetry Collector's
// own component factories); the files are checked against each other
// (ports, hosts, mounts, label names); and the real lumen binary is run
// to prove that every metric the Grafana dashboard queries is exported
// and that its traces pass through the collector configuration.
//
// It is a module of its own so that these dependencies stay out of
// Lumen's go.mod. Run it with `make test-stack` (LUMEN_BIN names the
// binary; default: bin/lumen of this checkout).
package stacktest
