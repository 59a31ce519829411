package stacktest

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// sinkSpan is a span as an OTLP receiver got it.
type sinkSpan struct {
	service, name string
}

// otlpSink is an OTLP/gRPC trace receiver standing in for Jaeger (or for
// a collector when only Lumen's metrics matter): it records the spans it
// is sent, by trace id.
type otlpSink struct {
	collectortrace.UnimplementedTraceServiceServer
	addr string

	mu     sync.Mutex
	traces map[string][]sinkSpan
	notify chan struct{} // a token after each export
}

func startSink(t *testing.T) *otlpSink {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &otlpSink{addr: lis.Addr().String(), traces: map[string][]sinkSpan{}, notify: make(chan struct{}, 1)}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, s)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return s
}

func (s *otlpSink) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	s.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		svc := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				svc = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := hex.EncodeToString(sp.GetTraceId())
				s.traces[id] = append(s.traces[id], sinkSpan{service: svc, name: sp.GetName()})
			}
		}
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// waitFor returns once cond holds for the spans received so far, or
// false after timeout. It re-checks after every export.
func (s *otlpSink) waitFor(timeout time.Duration, cond func(traces map[string][]sinkSpan) bool) bool {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ok := cond(s.traces)
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-s.notify:
		case <-deadline:
			return false
		}
	}
}

// snapshot copies what the sink holds, for failure messages.
func (s *otlpSink) snapshot() map[string][]sinkSpan {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]sinkSpan, len(s.traces))
	for k, v := range s.traces {
		out[k] = append([]sinkSpan(nil), v...)
	}
	return out
}
