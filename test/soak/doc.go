// Package soak holds the soak test of the lumen binary (`make soak`): a
// bounded load of HTTP and gRPC generations at twice the server's
// capacity, about a third of them abandoned midway, after which the
// server must be back at rest (no request hung; slots, queue and KV cache
// empty; goroutines back; RSS bounded) and must still serve and stop
// cleanly on SIGTERM.
//
// The test runs the real binary (LUMEN_BIN) as a child process and checks
// only properties, never generated text: the model it generates has
// random weights. It is built only with the soak tag, so `go test ./...`
// skips it; `make soak` builds bin/lumen and runs it for SOAK_DURATION
// (10s by default, as part of `make test`; e.g. SOAK_DURATION=3m on
// demand). SOAK_SEED replays a run's request mix.
package soak
