package semconv

import "strings"

// IsProbePath reports whether an HTTP path is a health or readiness
// probe: infrastructure traffic, untraced unless --trace-probes, and left
// out of trace analyses.
func IsProbePath(path string) bool { return path == "/healthz" || path == "/readyz" }

// IsProbeRPC reports whether a gRPC method ("/service/method", or
// "service/method" as the transport span names it) is a health check or
// reflection.
func IsProbeRPC(method string) bool {
	method = strings.TrimPrefix(method, "/")
	return strings.HasPrefix(method, "grpc.health.v1.Health/") ||
		strings.HasPrefix(method, "grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(method, "grpc.reflection.v1alpha.ServerReflection/")
}

// IsProbeSpan reports whether a transport span's name is that of a probe
// ("GET /healthz", "grpc.health.v1.Health/Check", ...).
func IsProbeSpan(name string) bool {
	if path, ok := strings.CutPrefix(name, "GET "); ok {
		return IsProbePath(path)
	}
	return IsProbeRPC(name)
}
