// Package liveview owns Lumen's built-in live view: the page served at
// GET / on the HTTP port, its JSON API under /live/api/, and the
// in-memory state behind them.
//
// That state is fed by a span processor (Store) that keeps the most
// recent request traces in a bounded ring, grouped by trace id, with the
// batch spans of the engine steps each request took part in indexed by
// their links (a batch span is the root of a trace of its own), and by a
// sampler goroutine that once a second turns what the processor counted,
// and the scheduler's Stats, into live series (requests/s, TTFT, output
// tokens/s, batch size, queue depth, KV cache use) with a bounded
// history.
//
// It must never slow serving down: the processor's OnStart and OnEnd run
// on serving goroutines, so they do O(1) work under one short-held
// mutex, copy nothing the SDK has not already snapshotted, and never
// block. Everything is bounded (traces, spans per trace, batch steps per
// trace, samples), oldest dropped first. It exports nothing and installs
// nothing globally; the page loads no resource from outside the server.
package liveview
