package semconv

import "testing"

func TestProbes(t *testing.T) {
	for _, tt := range []struct {
		name string
		got  bool
		want bool
	}{
		{"/healthz", IsProbePath("/healthz"), true},
		{"/readyz", IsProbePath("/readyz"), true},
		{"/metrics", IsProbePath("/metrics"), false},
		{"/v1/completions", IsProbePath("/v1/completions"), false},
		{"/grpc.health.v1.Health/Check", IsProbeRPC("/grpc.health.v1.Health/Check"), true},
		{"grpc.health.v1.Health/Watch", IsProbeRPC("grpc.health.v1.Health/Watch"), true},
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", IsProbeRPC("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"), true},
		{"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", IsProbeRPC("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"), true},
		{"/lumen.v1.LumenService/Generate", IsProbeRPC("/lumen.v1.LumenService/Generate"), false},
		{"span GET /readyz", IsProbeSpan("GET /readyz"), true},
		{"span POST /readyz", IsProbeSpan("POST /readyz"), false},
		{"span grpc.health.v1.Health/Check", IsProbeSpan("grpc.health.v1.Health/Check"), true},
		{"span POST /v1/chat/completions", IsProbeSpan("POST /v1/chat/completions"), false},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: probe %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}
