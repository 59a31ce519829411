# Lumen build. Every llama.cpp-specific build setting lives here (and in the
# blank imports of internal/engine/llama/cgo.go), so another llama.cpp source
# can be swapped in by changing only this file and that one.

GO      ?= go
BIN     ?= bin
LUMEN   := $(BIN)/lumen

# llama.cpp and ggml come from the pinned ollama module; its Go packages
# compile the C/C++ sources, we only point the compiler at their headers.
LLAMA_MODULE := github.com/ollama/ollama
LLAMA_DIR    := $(shell $(GO) mod download $(LLAMA_MODULE) >/dev/null 2>&1; $(GO) list -m -f '{{.Dir}}' $(LLAMA_MODULE))

# ggml's CPU kernels need optimisation and the host's vector extensions to be
# fast (AVX2/AVX-512). AMX is disabled because the cgo build does not compile
# ggml's AMX file. For a portable binary: make CPU_FLAGS=-march=x86-64-v3
CPU_FLAGS ?= -march=native -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
OPT_FLAGS ?= -O3

export CGO_ENABLED  := 1
export CGO_CPPFLAGS := -I$(LLAMA_DIR)/llama/llama.cpp/include -I$(LLAMA_DIR)/ml/backend/ggml/ggml/include
export CGO_CFLAGS   := $(OPT_FLAGS) $(CPU_FLAGS)
# GCC 12 warns -Wstringop-overflow on ggml's repack.cpp (a false positive
# of its array-bounds analysis through make_block_q4_0x4's by-value copy);
# the pinned sources are not ours to change, so the warning is silenced.
WARN_FLAGS ?= -Wno-stringop-overflow
export CGO_CXXFLAGS := $(OPT_FLAGS) $(CPU_FLAGS) $(WARN_FLAGS)

# The committed Llama-2 test model (testdata/models/README.md).
TEST_MODELS ?= $(abspath testdata/models)
export LUMEN_TEST_MODELS := $(TEST_MODELS)

# Where `make run` and `make bench` keep generated models.
MODEL_CACHE ?= $(HOME)/.cache/lumen/models

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run serve generate tools chromium test test-go fuzz lint bench clean tidy-check proto

all: build

build:
	@$(GO) list -f '{{.Stale}}' ./internal/engine/llama 2>/dev/null | grep -q false || \
		echo "building bin/lumen: the first build compiles llama.cpp through cgo (5-10 minutes on 2 cores, silent; cached afterwards)"
	$(GO) build -o $(LUMEN) ./cmd/lumen

# Serves the default demo model (generated once, offline) or MODEL=path
# on 127.0.0.1:8080 (HTTP) and 127.0.0.1:9090 (gRPC), and prints commands
# to try. `make generate` prints a completion instead.
# SERVE_FLAGS adds flags, e.g. SERVE_FLAGS="--http-addr 127.0.0.1:8081".
run serve: build
	$(LUMEN) serve $(if $(MODEL),--model $(MODEL)) $(SERVE_FLAGS)

generate: build
	$(LUMEN) generate $(if $(MODEL),--model $(MODEL)) --prompt "Once upon a time" --max-tokens 64

# Test tools, built from the Go module proxy into bin/tools.
GRPCURL := $(BIN)/tools/grpcurl
JAEGER  := $(BIN)/tools/jaeger
tools: $(GRPCURL) $(JAEGER) chromium openai-sdk
$(GRPCURL):
	GOBIN=$(abspath $(BIN))/tools $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
# Jaeger v2 (all-in-one collector + query) for the end-to-end tracing tests
# and bench-tracing. Its own module, tools/jaeger, because Jaeger's go.mod
# has a replace directive that `go install pkg@version` refuses; its go.sum
# is committed, so no checksum-database lookups. ~5 min on 2 cold cores.
$(JAEGER): tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && CGO_ENABLED=0 $(GO) build -mod=readonly -o $(abspath $(JAEGER)) github.com/jaegertracing/jaeger/cmd/jaeger

# The official openai npm SDK, for the client test of structured output
# and tool calls (cmd/lumen TestOpenAISDK), from the npm registry.
OPENAI_SDK_VERSION ?= 6.30.1
OPENAI_SDK := $(BIN)/tools/openai-sdk
export LUMEN_TEST_OPENAI_SDK := $(abspath $(OPENAI_SDK))
.PHONY: openai-sdk
openai-sdk: $(OPENAI_SDK)/node_modules/openai/package.json
$(OPENAI_SDK)/node_modules/openai/package.json:
	@command -v npm >/dev/null || (apt-get update && apt-get install -y --no-install-recommends nodejs npm)
	mkdir -p $(OPENAI_SDK)
	npm install --prefix $(OPENAI_SDK) --no-audit --no-fund --no-save openai@$(OPENAI_SDK_VERSION)

# Headless Chromium for the live view's browser test (Debian package; the
# test runs it with --no-sandbox, as root in CI). ~1-2 min when missing.
chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

# Loadable ggml backends (README "CUDA"), built with CMake from the same
# pinned ggml sources the binary compiles (scripts/build-cuda.sh), into
# $(BIN)/lib beside the binary, where lumen looks by default.
# CUDA_ARCHS: 80 A100, 86 RTX 30xx/A10, 89 L4/RTX 40xx, 90 H100/H200.
CUDA_ARCHS  ?= 80;90
BACKEND_LIB ?= $(BIN)/lib
GGML_BUILD  := $(BIN)/ggml-build
# The ggml sources as "module version", stamped into each backend directory;
# lumen refuses a backend built from other sources (they share structs).
GGML_SOURCE = $(shell $(GO) list -m -f '{{.Path}} {{.Version}}' $(LLAMA_MODULE))
# A loadable CPU backend: the same loading path as CUDA, testable without a
# GPU (cmd/lumen's dynamic backend test). ~1 min on 2 cores.
BACKEND_CPU := $(BIN)/backend-cpu
export LUMEN_TEST_BACKEND_CPU := $(abspath $(BACKEND_CPU))
# Sources + build script for a GPU machine without Go (see cuda-src).
CUDA_SRC := $(BIN)/lumen-ggml-src.tar.gz

.PHONY: cuda cuda-src backend-cpu cmake-tool

cuda: cmake-tool
	CUDA_ARCHS='$(CUDA_ARCHS)' GGML_SOURCE='$(GGML_SOURCE)' scripts/build-cuda.sh cuda $(LLAMA_DIR) $(GGML_BUILD)/cuda $(BACKEND_LIB)

backend-cpu: cmake-tool
	GGML_SOURCE='$(GGML_SOURCE)' scripts/build-cuda.sh cpu $(LLAMA_DIR) $(GGML_BUILD)/cpu $(BACKEND_CPU)

# On the GPU machine: tar xzf lumen-ggml-src.tar.gz && cd lumen-ggml-src &&
#   ./build-cuda.sh cuda . build lib    (needs CMake, nvcc and a C++ compiler)
cuda-src:
	mkdir -p $(BIN)/cuda-src
	printf '%s\n' '$(GGML_SOURCE)' > $(BIN)/cuda-src/GGML_SOURCE
	tar -czf $(CUDA_SRC) --mode=u+w --transform 's,^,lumen-ggml-src/,' \
		-C $(LLAMA_DIR) CMakeLists.txt ml/backend/ggml/ggml \
		-C $(abspath scripts) build-cuda.sh -C $(abspath $(BIN)/cuda-src) GGML_SOURCE
	@echo "$(CUDA_SRC): $$(du -h $(CUDA_SRC) | cut -f1)"

# CMake (and ninja) for the backend builds, from Debian when missing (~1 min).
cmake-tool:
	@command -v cmake >/dev/null || (apt-get update && apt-get install -y --no-install-recommends cmake ninja-build)

# docker/Dockerfile.cuda read by BuildKit's parser and linter (no Docker
# engine, no GPU); its own module keeps BuildKit out of go.mod.
.PHONY: test-docker-cuda
test-docker-cuda:
	cd docker/cudacheck && $(GO) test -count=1 ./...

# The docker-compose stack's files (compose, Dockerfile, Prometheus,
# collector, Jaeger, Grafana) read by each program's own loader and run
# against bin/lumen, no Docker engine; its own module keeps Prometheus and
# the collector out of go.mod.
.PHONY: test-stack
test-stack: build
	cd docker/stacktest && LUMEN_BIN=$(abspath $(LUMEN)) $(GO) test -count=1 -timeout 10m ./...

test: build tools backend-cpu test-go test-docker-cuda test-stack test-k8s scale-test soak fuzz bench-smoke

test-go:
	$(GO) test -race -count=1 -timeout 20m ./...

# Soak test (test/soak): bin/lumen under a bounded load at twice its
# capacity, ~30% of requests cut midway; then 0 hung, slots, queue and KV
# cache back at rest, goroutines back, RSS bounded, clean SIGTERM. Briefly
# in `make test`; for minutes with e.g. make soak SOAK_DURATION=3m
# (SOAK_SEED=n replays a run's request mix, as logged).
SOAK_DURATION ?= 10s
SOAK_TIMEOUT  ?= 30m
.PHONY: soak
soak: build
	LUMEN_BIN=$(abspath $(LUMEN)) SOAK_DURATION=$(SOAK_DURATION) $(if $(SOAK_SEED),SOAK_SEED=$(SOAK_SEED)) \
		$(GO) test -tags soak -count=1 -v -timeout $(SOAK_TIMEOUT) -run '^TestSoak$$' ./test/soak/

# Every Go benchmark once, so none rots between measurements (the figures
# are not looked at; see bench-tracing-cost).
.PHONY: bench-smoke
bench-smoke:
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...

# A short fuzz run of every decoder of untrusted bytes. Budgets are counts
# of executions, not durations: Go 1.26's fuzz coordinator can fail a
# duration-bounded run with a spurious "context deadline exceeded" when the
# time runs out while a worker is mid-input (golang/go#75804, fixed in Go
# 1.27). Each count is about 10-20 s on 2 cores; FUZZ_SCALE multiplies
# them (make fuzz FUZZ_SCALE=10 for a longer hunt). Minimizing a new input
# is bounded too, so that large seeds (traceanalyze's Jaeger document)
# do not stall the run.
FUZZ_SCALE ?= 1
FUZZ_MINIMIZE ?= 500x
fuzz = $(GO) test -run='^$$' -fuzz='^$(1)$$' -fuzztime=$$(($(2)*$(FUZZ_SCALE)))x -fuzzminimizetime=$(FUZZ_MINIMIZE) $(3)
fuzz:
	$(call fuzz,FuzzRead,300000,./internal/gguf/)
	$(call fuzz,FuzzStream,300000,./internal/detok/)
	$(call fuzz,FuzzRender,50000,./internal/chat/)
	$(call fuzz,FuzzDecode,50000,./internal/traceanalyze/)
	$(call fuzz,FuzzFromJSONSchema,100000,./internal/grammar/)
	$(call fuzz,FuzzFromRegex,120000,./internal/grammar/)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Regenerates gen/ from proto/ (buf lint + buf generate, pinned plugins).
proto:
	./proto/generate.sh

tidy-check:
	$(GO) mod tidy -diff

# gen/ must be what proto/ generates (make proto), with buf's format and
# lint rules holding.
.PHONY: proto-check ci
proto-check: proto
	git diff --exit-code -- gen/

# What CI runs (.ci/run): the shape checks, then the tests.
ci: lint tidy-check proto-check test

# Engine benchmark: ~250M-parameter F16 model, 2 threads.
bench: build
	$(LUMEN) bench engine --preset 250m --threads 2

# Tracing overhead (docs/benchmarks.md): the server's throughput with
# tracing off vs 100% sampling exported to a real Jaeger, started here on
# loopback ports of its own (BENCH_OTLP_PORT; its log: $(BIN)/bench-tracing-jaeger.log).
# BENCH_TRACING_FLAGS adds or overrides flags, e.g. "--rounds 5".
BENCH_OTLP_PORT ?= 24317
BENCH_TRACING_FLAGS ?=
# What tracing costs per engine step and per request, off vs on (OTLP to
# an in-process receiver), in one run (docs/benchmarks.md).
.PHONY: bench-tracing-cost
bench-tracing-cost:
	$(GO) test -run='^$$' -bench=BenchmarkTracingCost -benchtime=2s -count=3 ./internal/telemetry

.PHONY: bench-tracing
bench-tracing: build $(JAEGER)
	@LUMEN_JAEGER_OTLP_GRPC_PORT=$(BENCH_OTLP_PORT) LUMEN_JAEGER_OTLP_HTTP_PORT=$$(($(BENCH_OTLP_PORT)+1)) \
	LUMEN_JAEGER_QUERY_HTTP_PORT=$$(($(BENCH_OTLP_PORT)+2)) LUMEN_JAEGER_QUERY_GRPC_PORT=$$(($(BENCH_OTLP_PORT)+3)) \
		$(JAEGER) --config cmd/lumen/testdata/jaeger.yaml >$(BIN)/bench-tracing-jaeger.log 2>&1 & jaeger=$$!; \
	trap 'kill $$jaeger' EXIT; \
	$(LUMEN) bench tracing --preset 250m --threads 2 --otlp-endpoint 127.0.0.1:$(BENCH_OTLP_PORT) $(BENCH_TRACING_FLAGS)

# What one token's sampling costs, free and under a JSON Schema grammar,
# on the shared model's 32,000-token vocabulary (docs/benchmarks.md).
.PHONY: bench-sample
bench-sample:
	$(GO) test -run='^$$' -bench=BenchmarkSample -benchtime=2000x -count=3 ./internal/engine/llama

# Constrained decoding's cost (docs/benchmarks.md): one server on the
# 250m model, then decode tok/s of free, json_schema, tool_prompt (the
# tool request without its grammar) and tool_call requests side by side at
# concurrency 1 and 8, rounds interleaved. BENCH_CONSTRAINED_FLAGS adds
# or overrides flags of lumen bench serve.
BENCH_CONSTRAINED_FLAGS ?=
BENCH_250M := $(MODEL_CACHE)/bench-250m-f16-ctx8192.gguf
.PHONY: bench-constrained
bench-constrained: build
	@test -f $(BENCH_250M) || $(LUMEN) model synth --out $(BENCH_250M) --preset 250m --type f16 --ctx 8192
	@OTEL_SDK_DISABLED=true $(LUMEN) serve --model $(BENCH_250M) --parallel 8 --ctx-size 8192 --threads 2 \
		--http-addr 127.0.0.1:18080 --grpc-addr 127.0.0.1:19090 >$(BIN)/bench-constrained-serve.log 2>&1 & serve=$$!; \
	trap 'kill $$serve' EXIT; \
	for i in $$(seq 120); do curl -sf http://127.0.0.1:18080/readyz >/dev/null && break; sleep 1; done; \
	for c in 1 8; do echo "concurrency $$c"; \
		$(LUMEN) bench serve --addr 127.0.0.1:19090 --concurrency $$c --requests $$((4*c)) --prompt-tokens 16 --max-tokens 64 \
			--temperature 1 --constraint none,json_schema,tool_prompt,tool_call --rounds 3 $(BENCH_CONSTRAINED_FLAGS) || exit 1; done

clean:
	rm -rf $(BIN)

# Kubernetes packaging (deploy/): the Helm chart's lint/template tests and
# the endpoint picker's view of /metrics; replicas behind HAProxy (test/scale).
include deploy/deploy.mk
include test/scale/scale.mk
