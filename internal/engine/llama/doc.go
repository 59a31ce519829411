// Package llama owns Lumen's boundary with llama.cpp and ggml: it is the only
// package in Lumen that imports "C".
//
// Every exported type wraps exactly one C handle and has exactly one Close;
// only Go values cross the boundary (strings, slices and numbers are copied in
// and out). The package knows nothing of requests, queues or telemetry: the
// scheduler above it drives a Context from a single goroutine.
//
// llama.cpp is compiled from the sources vendored in the pinned
// github.com/ollama/ollama module; the header search path and CPU tuning flags
// come from the Makefile (CGO_CPPFLAGS, CGO_CFLAGS, CGO_CXXFLAGS), so another
// llama.cpp build can be swapped in by changing only the Makefile and the
// blank imports in cgo.go.
package llama
