# Kubernetes packaging (included by the root Makefile, which defines GO,
# BIN and LUMEN): the Helm chart in deploy/helm/lumen, the endpoint
# picker's config in deploy/epp, their tests in deploy/k8stest.

# Helm, built from the Go module proxy into bin/tools (~3 min on 2 cold
# cores). The ldflags are those of Helm's own release build: its version,
# and the Kubernetes version (that of its client-go, 1.37) that helm lint
# checks deprecated APIs against and helm template renders for.
HELM_VERSION   ?= v3.22.0
HELM_K8S_MINOR ?= 37
HELM           := $(BIN)/tools/helm
HELM_LDFLAGS   := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	$(foreach p,pkg/lint/rules pkg/chartutil,-X helm.sh/helm/v3/$(p).k8sVersionMajor=1 -X helm.sh/helm/v3/$(p).k8sVersionMinor=$(HELM_K8S_MINOR))

.PHONY: helm test-k8s
helm: $(HELM)
$(HELM):
	GOBIN=$(abspath $(BIN))/tools CGO_ENABLED=0 $(GO) install -trimpath -ldflags '$(HELM_LDFLAGS)' helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# The chart linted and rendered by helm for a table of values, each object
# decoded strictly into its Kubernetes, prometheus-operator or Inference
# Extension Go type; the endpoint picker's config loaded by the picker's
# own loader, and its metrics scrape run against bin/lumen. No cluster.
# Its own module keeps these dependencies out of go.mod.
test-k8s: build $(HELM)
	cd deploy/k8stest && $(GO) vet ./... && \
		LUMEN_HELM=$(abspath $(HELM)) LUMEN_BIN=$(abspath $(LUMEN)) $(GO) test -count=1 -timeout 10m ./...
