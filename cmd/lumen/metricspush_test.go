package main

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
)

// metricsReceiver is an OTLP/HTTP metrics endpoint that keeps what it
// gets.
type metricsReceiver struct {
	mu  sync.Mutex
	got []*metricpb.ResourceMetrics
}

func (m *metricsReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/metrics" {
		http.NotFound(w, r)
		return
	}
	b, err := otlpBody(r)
	req := &colmetricpb.ExportMetricsServiceRequest{}
	if err == nil {
		err = proto.Unmarshal(b, req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m.mu.Lock()
	m.got = append(m.got, req.GetResourceMetrics()...)
	m.mu.Unlock()
	out, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// otlpBody reads an OTLP/HTTP request's protobuf body, gzipped or not.
func otlpBody(r *http.Request) ([]byte, error) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		body = zr
	}
	return io.ReadAll(body)
}

// latest returns, from the newest payload that has them, each named
// metric (or the first whose name has the prefix, for names ending in
// "."), with that payload's resource attributes.
func (m *metricsReceiver) latest(names ...string) (map[string]*metricpb.Metric, map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.got) - 1; i >= 0; i-- {
		found := map[string]*metricpb.Metric{}
		for _, sm := range m.got[i].GetScopeMetrics() {
			for _, met := range sm.GetMetrics() {
				for _, n := range names {
					if met.GetName() == n || strings.HasSuffix(n, ".") && strings.HasPrefix(met.GetName(), n) {
						found[n] = met
					}
				}
			}
		}
		if len(found) == len(names) {
			res := map[string]string{}
			for _, kv := range m.got[i].GetResource().GetAttributes() {
				res[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			return found, res
		}
	}
	return nil, nil
}

// With --metrics-exporter otlp-http, the /metrics registry and the
// transports' RPC and HTTP metrics are pushed to the collector, under
// the service's resource naming the model and the device.
func TestServePushesMetricsOverOTLP(t *testing.T) {
	rec := &metricsReceiver{}
	collector := httptest.NewServer(rec)
	t.Cleanup(collector.Close)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "100") // ms: the SDK's reader pushes that often
	httpAddr, grpcAddr := startServeHooked(t, serveHooks{}, nil,
		"--trace-exporter", "none", "--metrics-exporter", "otlp-http", "--otlp-endpoint", collector.URL)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := lumenv1.NewLumenServiceClient(conn).Generate(context.Background(), &lumenv1.GenerateRequest{Prompt: "Hello", MaxTokens: 4}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+httpAddr+"/generate", "application/json", strings.NewReader(`{"prompt":"Hello","max_tokens":4}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	const duration = "gen_ai_server_request_duration_seconds"
	pollUntil(t, 30*time.Second, func(context.Context) error {
		got, res := rec.latest(duration, "rpc.server.", "http.server.")
		if got == nil {
			return errors.New("no push yet holds the request duration, an rpc.server.* and an http.server.* metric")
		}
		var count uint64
		for _, p := range got[duration].GetHistogram().GetDataPoints() {
			count += p.GetCount()
		}
		if count != 2 {
			return fmt.Errorf("%s counts %d requests, want 2", duration, count)
		}
		for k, want := range map[string]string{"service.name": "lumen", "lumen.model": "tiny", "lumen.device": "cpu"} {
			if res[k] != want {
				return fmt.Errorf("resource %s = %q, want %q (resource %v)", k, res[k], want, res)
			}
		}
		return nil
	})
}
