// Package scheduler owns continuous batching: the admission queue, the
// sequence slots and the batch loop. One goroutine (Run) owns the engine;
// requests reach it over channels and their results leave over channels,
// so no lock is ever held across a decode.
//
// Each step builds one batch holding a decode token for every running
// sequence plus prompt chunks of newly admitted ones, under a per-step
// token budget; requests join between steps and leave as soon as they
// finish or their caller goes away, their KV cells freed at once.
//
// The package depends on the small Engine interface, not on llama.cpp, so
// it is tested with a fake engine. It records timings as plain data; the
// telemetry package turns them into spans and metrics.
package scheduler
