package stacktest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
)

// collectorVersion is the otel/opentelemetry-collector-contrib image the
// compose file runs; the factories here come from the same release.
const collectorVersion = "0.140.1"

// collectorFactories are the components docker/otel-collector.yaml may
// use, from the same collector release as the image.
func collectorFactories() (otelcol.Factories, error) {
	var f otelcol.Factories
	var err error
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return f, err
	}
	if f.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		batchprocessor.NewFactory(), memorylimiterprocessor.NewFactory(), tailsamplingprocessor.NewFactory()); err != nil {
		return f, err
	}
	if f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](otlpexporter.NewFactory(), prometheusexporter.NewFactory()); err != nil {
		return f, err
	}
	if f.Connectors, err = otelcol.MakeFactoryMap[connector.Factory](spanmetricsconnector.NewFactory()); err != nil {
		return f, err
	}
	f.Telemetry = otelconftelemetry.NewFactory()
	return f, nil
}

// newCollector builds a collector from the config file plus overrides
// (confmap URIs such as "yaml:processors::batch::timeout: 1s").
func newCollector(t testing.TB, path string, overrides ...string) *otelcol.Collector {
	t.Helper()
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "stacktest", Description: "stack test collector", Version: collectorVersion},
		Factories: collectorFactories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              append([]string{"file:" + path}, overrides...),
			ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory(), yamlprovider.NewFactory()},
		}},
		// Warnings and errors go to the test log; the rest is noise.
		LoggingOptions: []zap.Option{zap.WrapCore(func(zapcore.Core) zapcore.Core {
			return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core()
		})},
		SkipSettingGRPCLogger: true,
		// The test process's signals are not the collector's to handle.
		DisableGracefulShutdown: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return col
}

func TestCollectorConfigValidatesWithItsOwnFactories(t *testing.T) {
	col := newCollector(t, dockerPath(t, "otel-collector.yaml"))
	if err := col.DryRun(context.Background()); err != nil {
		t.Fatalf("docker/otel-collector.yaml: %v", err)
	}
}

// The validation above can fail: broken variants of the file are refused.
func TestCollectorValidationRefusesBrokenConfigs(t *testing.T) {
	orig, err := os.ReadFile(dockerPath(t, "otel-collector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new string
	}{
		{"undefined processor", "processors: [memory_limiter, tail_sampling, batch]", "processors: [memory_limiter, tail_sampling, batch, attributes]"},
		{"connector without a receiving pipeline", "receivers: [spanmetrics]", "receivers: [otlp]"},
		// (An unknown policy type passes validation and fails only at
		// start: TestCollectorKeepsErrorAndSlowTraces starts this config.)
		{"ill-typed setting", "threshold_ms: 2000", "threshold_ms: two seconds"},
		{"misspelt setting", "decision_wait:", "decision_wiat:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(orig), tc.old) {
				t.Fatalf("otel-collector.yaml no longer contains %q; update this test", tc.old)
			}
			path := filepath.Join(t.TempDir(), "broken.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(string(orig), tc.old, tc.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := newCollector(t, path).DryRun(context.Background()); err == nil {
				t.Errorf("replacing %q with %q: config accepted", tc.old, tc.new)
			}
		})
	}
}

// collectorConfig is the part of docker/otel-collector.yaml the stack's
// design rests on.
type collectorConfig struct {
	Processors struct {
		TailSampling struct {
			Policies []struct {
				Name       string `yaml:"name"`
				Type       string `yaml:"type"`
				StatusCode struct {
					StatusCodes []string `yaml:"status_codes"`
				} `yaml:"status_code"`
				Latency struct {
					ThresholdMs int `yaml:"threshold_ms"`
				} `yaml:"latency"`
				Probabilistic struct {
					SamplingPercentage float64 `yaml:"sampling_percentage"`
				} `yaml:"probabilistic"`
			} `yaml:"policies"`
		} `yaml:"tail_sampling"`
	} `yaml:"processors"`
	Service struct {
		Pipelines map[string]struct {
			Receivers  []string `yaml:"receivers"`
			Processors []string `yaml:"processors"`
			Exporters  []string `yaml:"exporters"`
		} `yaml:"pipelines"`
	} `yaml:"service"`
}

func TestCollectorPipelines(t *testing.T) {
	path := dockerPath(t, "otel-collector.yaml")
	raw := readYAML(t, path)
	var cfg collectorConfig
	decodeYAML(t, path, &cfg)

	// Tail sampling keeps errors, slow requests and a baseline share.
	kinds := map[string]bool{}
	for _, p := range cfg.Processors.TailSampling.Policies {
		kinds[p.Type] = true
		switch p.Type {
		case "status_code":
			if !slices.Equal(p.StatusCode.StatusCodes, []string{"ERROR"}) {
				t.Errorf("policy %s keeps status codes %v, want [ERROR]", p.Name, p.StatusCode.StatusCodes)
			}
		case "latency":
			if p.Latency.ThresholdMs <= 0 {
				t.Errorf("policy %s: latency threshold %dms", p.Name, p.Latency.ThresholdMs)
			}
		case "probabilistic":
			if pc := p.Probabilistic.SamplingPercentage; pc <= 0 || pc >= 100 {
				t.Errorf("policy %s: baseline %v%%, want between 0 and 100", p.Name, pc)
			}
		}
	}
	for _, k := range []string{"status_code", "latency", "probabilistic"} {
		if !kinds[k] {
			t.Errorf("tail_sampling has no %s policy", k)
		}
	}

	// Jaeger gets tail-sampled traces; span metrics see every span and
	// reach the Prometheus exporter through a metrics pipeline.
	var toJaeger, toSpanMetrics, fromSpanMetrics bool
	for name, p := range cfg.Service.Pipelines {
		kind, _, _ := strings.Cut(name, "/")
		switch {
		case kind == "traces" && slices.Contains(p.Exporters, "otlp/jaeger"):
			toJaeger = true
			if !slices.Contains(p.Processors, "tail_sampling") {
				t.Errorf("pipeline %s sends to Jaeger without tail_sampling", name)
			}
		case kind == "traces" && slices.Contains(p.Exporters, "spanmetrics"):
			toSpanMetrics = true
			if slices.Contains(p.Processors, "tail_sampling") {
				t.Errorf("pipeline %s computes span metrics after tail sampling: rates would be undercounted", name)
			}
		case kind == "metrics" && slices.Contains(p.Receivers, "spanmetrics"):
			fromSpanMetrics = slices.Contains(p.Exporters, "prometheus")
		}
	}
	if !toJaeger || !toSpanMetrics || !fromSpanMetrics {
		t.Errorf("pipelines: to Jaeger %v, to spanmetrics %v, spanmetrics to prometheus %v; want all", toJaeger, toSpanMetrics, fromSpanMetrics)
	}

	// Inside a container, a localhost listener is unreachable from the others.
	for _, keys := range [][]string{
		{"receivers", "otlp", "protocols", "grpc", "endpoint"},
		{"receivers", "otlp", "protocols", "http", "endpoint"},
		{"exporters", "prometheus", "endpoint"},
	} {
		if host, _ := hostPort(t, raw.str(t, keys...)); host != "0.0.0.0" {
			t.Errorf("%s listens on %s, want 0.0.0.0", strings.Join(keys, "."), host)
		}
	}
}
