package stacktest

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// endpoint is a collector-style server setting.
type endpoint struct {
	Endpoint string `yaml:"endpoint"`
}

// jaegerConfig is docker/jaeger.yaml, decoded strictly: a key Jaeger v2
// (2.13, collector 0.140) does not have in these places fails the test.
// The field names follow the mapstructure tags of jaeger v1.76.0
// (cmd/jaeger/internal/extension/...).
type jaegerConfig struct {
	Service struct {
		Extensions []string `yaml:"extensions"`
		Pipelines  map[string]struct {
			Receivers  []string `yaml:"receivers"`
			Processors []string `yaml:"processors"`
			Exporters  []string `yaml:"exporters"`
		} `yaml:"pipelines"`
		Telemetry struct {
			Resource map[string]string `yaml:"resource"`
			Logs     struct {
				Level string `yaml:"level"`
			} `yaml:"logs"`
		} `yaml:"telemetry"`
	} `yaml:"service"`
	Extensions struct {
		JaegerStorage *struct {
			Backends map[string]struct {
				Memory *struct {
					MaxTraces int `yaml:"max_traces"`
				} `yaml:"memory"`
			} `yaml:"backends"`
		} `yaml:"jaeger_storage"`
		JaegerQuery *struct {
			Storage struct {
				Traces string `yaml:"traces"`
			} `yaml:"storage"`
			HTTP endpoint `yaml:"http"`
			GRPC endpoint `yaml:"grpc"`
		} `yaml:"jaeger_query"`
		RemoteSampling *struct {
			File *struct {
				Path           string `yaml:"path"`
				ReloadInterval string `yaml:"reload_interval"`
			} `yaml:"file"`
			HTTP endpoint `yaml:"http"`
			GRPC endpoint `yaml:"grpc"`
		} `yaml:"remote_sampling"`
		HealthCheck *struct {
			UseV2 bool     `yaml:"use_v2"`
			HTTP  endpoint `yaml:"http"`
		} `yaml:"healthcheckv2"`
	} `yaml:"extensions"`
	Receivers struct {
		OTLP *struct {
			Protocols struct {
				GRPC endpoint `yaml:"grpc"`
				HTTP endpoint `yaml:"http"`
			} `yaml:"protocols"`
		} `yaml:"otlp"`
	} `yaml:"receivers"`
	Processors map[string]struct{} `yaml:"processors"`
	Exporters  struct {
		Storage *struct {
			TraceStorage string `yaml:"trace_storage"`
		} `yaml:"jaeger_storage_exporter"`
	} `yaml:"exporters"`
}

func TestJaegerConfig(t *testing.T) {
	var cfg jaegerConfig
	decodeStrict(t, dockerPath(t, "jaeger.yaml"), &cfg)
	ext := cfg.Extensions
	if ext.JaegerStorage == nil || ext.JaegerQuery == nil || ext.RemoteSampling == nil || ext.HealthCheck == nil || cfg.Receivers.OTLP == nil || cfg.Exporters.Storage == nil {
		t.Fatalf("jaeger.yaml lacks a component the stack needs: %+v", cfg)
	}

	// Every extension the service starts is configured, and the reverse.
	configured := map[string]bool{"jaeger_storage": true, "jaeger_query": true, "remote_sampling": true, "healthcheckv2": true}
	for _, e := range cfg.Service.Extensions {
		if !configured[e] {
			t.Errorf("service.extensions names %s, which is not configured", e)
		}
		delete(configured, e)
	}
	for e := range configured {
		t.Errorf("extension %s is configured but not started (service.extensions)", e)
	}
	if len(cfg.Service.Pipelines) == 0 {
		t.Fatal("no pipelines")
	}
	for name, p := range cfg.Service.Pipelines {
		if !slices.Equal(p.Receivers, []string{"otlp"}) || !slices.Equal(p.Exporters, []string{"jaeger_storage_exporter"}) {
			t.Errorf("pipeline %s: %v -> %v, want [otlp] -> [jaeger_storage_exporter]", name, p.Receivers, p.Exporters)
		}
		for _, proc := range p.Processors {
			if _, ok := cfg.Processors[proc]; !ok {
				t.Errorf("pipeline %s uses processor %s, which is not configured", name, proc)
			}
		}
	}

	// The UI and the exporter read the backend the query service names.
	backends := ext.JaegerStorage.Backends
	for what, name := range map[string]string{"jaeger_query.storage.traces": ext.JaegerQuery.Storage.Traces, "jaeger_storage_exporter.trace_storage": cfg.Exporters.Storage.TraceStorage} {
		if b, ok := backends[name]; !ok || b.Memory == nil || b.Memory.MaxTraces <= 0 {
			t.Errorf("%s = %q: no bounded memory backend of that name in jaeger_storage.backends", what, name)
		}
	}

	// Every listener binds all interfaces (the image's defaults are
	// localhost once a config file is given), on the ports compose uses.
	compose := service(t, loadCompose(t, nil), "jaeger")
	reachable := map[int]bool{}
	for _, p := range compose.Ports {
		reachable[int(p.Target)] = true
	}
	for _, e := range compose.Expose {
		n, err := strconv.Atoi(e)
		if err != nil {
			t.Fatalf("jaeger expose %q: %v", e, err)
		}
		reachable[n] = true
	}
	for what, ep := range map[string]string{
		"query UI":             ext.JaegerQuery.HTTP.Endpoint,
		"query gRPC":           ext.JaegerQuery.GRPC.Endpoint,
		"remote sampling HTTP": ext.RemoteSampling.HTTP.Endpoint,
		"remote sampling gRPC": ext.RemoteSampling.GRPC.Endpoint,
		"health check":         ext.HealthCheck.HTTP.Endpoint,
		"OTLP gRPC":            cfg.Receivers.OTLP.Protocols.GRPC.Endpoint,
		"OTLP HTTP":            cfg.Receivers.OTLP.Protocols.HTTP.Endpoint,
	} {
		host, port := hostPort(t, ep)
		if host != "0.0.0.0" {
			t.Errorf("%s listens on %s", what, ep)
		}
		switch what {
		case "query gRPC", "health check":
		default:
			if !reachable[port] {
				t.Errorf("%s port %d is neither published nor exposed by compose", what, port)
			}
		}
	}
	if _, port := hostPort(t, ext.JaegerQuery.HTTP.Endpoint); port != 16686 {
		t.Errorf("UI on port %d, want 16686", port)
	}

	// Remote sampling serves Lumen's strategies file (mounted from configs/).
	f := ext.RemoteSampling.File
	if f == nil || f.Path == "" {
		t.Fatal("remote_sampling has no file strategy")
	}
	if d, err := time.ParseDuration(f.ReloadInterval); err != nil || d <= 0 {
		t.Errorf("remote_sampling.file.reload_interval %q: want a positive duration (%v)", f.ReloadInterval, err)
	}
	checkSamplingStrategies(t, hostPathIn(t, compose, f.Path), env(t, service(t, loadCompose(t, nil), "lumen"), "OTEL_SERVICE_NAME"))
}

// samplingStrategies is Jaeger's file-based sampling format, the one
// Lumen's --sampling-config reads too.
type samplingStrategy struct {
	Service             string              `json:"service,omitempty"`
	Operation           string              `json:"operation,omitempty"`
	Type                string              `json:"type"`
	Param               float64             `json:"param"`
	OperationStrategies []*samplingStrategy `json:"operation_strategies,omitempty"`
}

type samplingStrategies struct {
	ServiceStrategies []*samplingStrategy `json:"service_strategies"`
	DefaultStrategy   *samplingStrategy   `json:"default_strategy"`
}

func checkSamplingStrategies(t *testing.T, path, service string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s samplingStrategies
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var check func(where string, st *samplingStrategy)
	check = func(where string, st *samplingStrategy) {
		switch st.Type {
		case "probabilistic":
			if st.Param < 0 || st.Param > 1 {
				t.Errorf("%s: probability %v outside [0, 1]", where, st.Param)
			}
		case "ratelimiting":
			if st.Param < 0 {
				t.Errorf("%s: negative rate %v", where, st.Param)
			}
		default:
			t.Errorf("%s: strategy type %q", where, st.Type)
		}
		for _, op := range st.OperationStrategies {
			check(where+"/"+op.Operation, op)
		}
	}
	named := false
	for _, st := range s.ServiceStrategies {
		check(st.Service, st)
		named = named || st.Service == service
	}
	if s.DefaultStrategy != nil {
		check("default", s.DefaultStrategy)
	}
	if !named {
		t.Errorf("%s has no strategy for service %q (OTEL_SERVICE_NAME)", path, service)
	}
}
