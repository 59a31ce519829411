package main

import (
	"context"
	"net/http"
	"slices"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// Health checks, readiness probes and reflection are not traced unless
// --trace-probes asks: a load balancer's probes every second would
// otherwise crowd requests out of the exporter, the console and trace
// searches.
func TestProbesAreNotTraced(t *testing.T) {
	for _, traced := range []bool{false, true} {
		log := newSpanLog()
		args := []string{}
		if traced {
			args = append(args, "--trace-probes")
		}
		httpAddr, grpcAddr := startServeHooked(t, serveHooks{spanProcessors: []sdktrace.SpanProcessor{log}}, nil, args...)
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get("http://" + httpAddr + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		st, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		st.CloseSend()
		conn.Close()
		// A request afterwards: once its span has ended, the probes'
		// would have too.
		resp := post(t, "http://"+httpAddr+"/generate", "", `{"prompt":"Hello","max_tokens":2}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		spans := log.waitFor(t, "the request's HTTP span", func(spans []sdktrace.ReadOnlySpan) bool {
			return slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "POST /generate" })
		})
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		for _, probe := range []string{"GET /healthz", "GET /readyz", "grpc.health.v1.Health/Check", "grpc.reflection.v1.ServerReflection/ServerReflectionInfo"} {
			if got := slices.Contains(names, probe); got != traced {
				t.Errorf("--trace-probes=%v: span %q present %v, in %v", traced, probe, got, names)
			}
		}
	}
}
