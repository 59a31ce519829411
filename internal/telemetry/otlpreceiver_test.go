package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// otlpReceiver is an in-process OTLP/gRPC receiver for traces and
// metrics: it decodes what it is sent (so an export pays the whole wire
// cost), counts spans, keeps the metrics requests and the metadata of
// the last trace request.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	spans atomic.Int64

	mu       sync.Mutex
	metrics  []*metricpb.ResourceMetrics
	metadata metadata.MD
	pushed   chan struct{} // signalled on every metrics request
}

func (r *otlpReceiver) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	r.mu.Lock()
	r.metadata = md
	r.mu.Unlock()
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

// header is a metadata value of the last trace request.
func (r *otlpReceiver) header(key string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.metadata.Get(key)
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

// httpReceiver is an in-process OTLP/HTTP receiver that accepts
// anything and records the paths posted to.
type httpReceiver struct {
	mu    sync.Mutex
	paths []string
}

func (h *httpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	h.mu.Lock()
	h.paths = append(h.paths, r.URL.Path)
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// posted is the paths posted to so far.
func (h *httpReceiver) posted() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.paths)
}

// startHTTPReceiver returns the receiver's base URL (http://host:port).
func startHTTPReceiver(tb testing.TB) (string, *httpReceiver) {
	tb.Helper()
	rec := &httpReceiver{}
	srv := httptest.NewServer(rec)
	tb.Cleanup(srv.Close)
	return srv.URL, rec
}
