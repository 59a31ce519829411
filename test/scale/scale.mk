# Replicas behind HAProxy (test/scale): three bin/lumen replicas on the
# committed test model behind Debian's haproxy (leastconn, /readyz checks,
# retries only of requests no replica ran), traces to an in-process OTLP
# receiver, a closed-loop load and one replica stopped with SIGTERM
# midway: no request lost, the replica out of the pool within its check
# interval, traces continued into every replica, an even split. ~1 min.
# SCALE_BENCH=1 also runs the 1-vs-3-replica benchmark (docs/benchmarks.md,
# "Replicas behind HAProxy"); make scale-bench runs it alone.
SCALE_TIMEOUT ?= 10m
SCALE_GO_TEST = LUMEN_BIN=$(abspath $(LUMEN)) $(GO) test -count=1 -v -timeout $(SCALE_TIMEOUT)

.PHONY: scale-test scale-bench scale-haproxy
scale-haproxy:
	@command -v haproxy >/dev/null || (apt-get update && apt-get install -y --no-install-recommends haproxy)

scale-test: build scale-haproxy
	$(SCALE_GO_TEST) -tags '$(if $(SCALE_BENCH),scale scalebench,scale)' ./test/scale/

scale-bench: build scale-haproxy
	$(SCALE_GO_TEST) -tags 'scale scalebench' -run '^TestScaleBench$$' ./test/scale/
