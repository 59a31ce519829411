// Package k8stest proves Lumen's Kubernetes packaging without a cluster.
//
// The Helm chart (deploy/helm/lumen) is linted and rendered by the helm
// binary for a table of values, and every rendered object is decoded
// strictly (an unknown field or an unknown kind fails) into its Go type:
// k8s.io/api for the Deployment, Service, ServiceAccount and
// HorizontalPodAutoscaler, prometheus-operator's for the ServiceMonitor,
// the Gateway API Inference Extension's for the InferencePool. The
// endpoint picker's configuration (deploy/epp/endpointpicker.yaml) is
// loaded by the picker's own config loader, and its metrics data source
// and extractor scrape a real `lumen serve`.
//
// It is a module of its own so that these dependencies stay out of
// Lumen's go.mod. Run it with `make test-k8s`, which builds helm into
// bin/tools/helm and lumen into bin/lumen (LUMEN_HELM and LUMEN_BIN name
// them; the defaults are those paths in this checkout).
package k8stest
