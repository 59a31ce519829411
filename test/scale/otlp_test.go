//go:build scale

package scale

import (
	"context"
	"encoding/hex"
	"net"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// span is what the test keeps of an exported span.
type span struct {
	replica         string // the resource's service.instance.id
	traceID, spanID string // hex
	parentID        string // hex; "" for a root
	name            string
	kind            tracepb.Span_SpanKind
	start           time.Time
	status          int64 // http.response.status_code; 0 when absent
}

// receiver is an in-process OTLP/gRPC trace receiver: it keeps every
// span it is sent.
type receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	addr string

	mu    sync.Mutex
	spans []span
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	r := &receiver{addr: lis.Addr().String()}
	coltracepb.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return r
}

func (r *receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	var got []span
	for _, rs := range req.GetResourceSpans() {
		replica := stringAttr(rs.GetResource().GetAttributes(), "service.instance.id")
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := span{
					replica: replica,
					traceID: hex.EncodeToString(s.GetTraceId()),
					spanID:  hex.EncodeToString(s.GetSpanId()),
					name:    s.GetName(),
					kind:    s.GetKind(),
					start:   time.Unix(0, int64(s.GetStartTimeUnixNano())),
				}
				if p := s.GetParentSpanId(); len(p) > 0 {
					sp.parentID = hex.EncodeToString(p)
				}
				for _, kv := range s.GetAttributes() {
					if kv.GetKey() == "http.response.status_code" {
						sp.status = kv.GetValue().GetIntValue()
					}
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// byTrace is every span received so far, by trace id.
func (r *receiver) byTrace() map[string][]span {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string][]span{}
	for _, s := range r.spans {
		m[s.traceID] = append(m[s.traceID], s)
	}
	return m
}

func stringAttr(attrs []*commonpb.KeyValue, key string) string {
	for _, kv := range attrs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}
