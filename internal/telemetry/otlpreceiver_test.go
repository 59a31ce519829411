package telemetry

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
)

// otlpReceiver is an in-process OTLP/gRPC receiver for traces and
// metrics: it decodes what it is sent (so an export pays the whole wire
// cost), counts spans and keeps the metrics requests.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	spans atomic.Int64

	mu      sync.Mutex
	metrics []*metricpb.ResourceMetrics
	pushed  chan struct{} // signalled on every metrics request
}

func (r *otlpReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans.Add(int64(len(ss.GetSpans())))
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// metricsService adapts the receiver to the metrics service, whose
// method is also named Export.
type metricsService struct {
	colmetricpb.UnimplementedMetricsServiceServer
	r *otlpReceiver
}

func (m metricsService) Export(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	m.r.mu.Lock()
	m.r.metrics = append(m.r.metrics, req.GetResourceMetrics()...)
	m.r.mu.Unlock()
	select {
	case m.r.pushed <- struct{}{}:
	default:
	}
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// resourceMetrics is every metrics payload received so far.
func (r *otlpReceiver) resourceMetrics() []*metricpb.ResourceMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*metricpb.ResourceMetrics(nil), r.metrics...)
}

func startReceiver(tb testing.TB) (string, *otlpReceiver) {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	rec := &otlpReceiver{pushed: make(chan struct{}, 1)}
	coltracepb.RegisterTraceServiceServer(srv, rec)
	colmetricpb.RegisterMetricsServiceServer(srv, metricsService{r: rec})
	go srv.Serve(lis)
	tb.Cleanup(srv.Stop)
	return lis.Addr().String(), rec
}
