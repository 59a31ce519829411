#!/usr/bin/env bash
# Regenerates gen/ (Go code of the protobuf API) from proto/.
#
# Installs the protoc plugins at pinned versions into bin/tools (git-ignored)
# and runs buf, also pinned, through `go run`, so nothing but Go and the Go
# module proxy is needed. Run from anywhere: make proto, or proto/generate.sh.
set -euo pipefail

BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12     # keep equal to google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

GOBIN="$root/bin/tools" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
GOBIN="$root/bin/tools" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

buf() { go run "github.com/bufbuild/buf/cmd/buf@$BUF_VERSION" "$@"; }
buf format --diff --exit-code
buf lint
buf generate
