// Package cudacheck checks docker/Dockerfile.cuda without a Docker engine
// or a GPU: BuildKit's own Dockerfile parser and linter read it (as
// `docker build --check` would), and the tests state what the image must
// do: build the binary and the CUDA backend from one source tree, and
// ship the backend in lib/ beside the binary, where lumen looks for it.
//
// It is a module of its own so that BuildKit stays out of Lumen's go.mod.
// Run it with `make test-docker-cuda` (part of `make test`).
package cudacheck
