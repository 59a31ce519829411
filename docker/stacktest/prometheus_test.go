package stacktest

import (
	"log/slog"
	"strconv"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
)

// scrapeTargets loads docker/prometheus.yml with Prometheus's own loader
// (which validates it) and returns each job's config and static targets.
func scrapeTargets(t testing.TB) (map[string]*config.ScrapeConfig, map[string][]string) {
	t.Helper()
	cfg, err := config.LoadFile(dockerPath(t, "prometheus.yml"), false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	scs, err := cfg.GetScrapeConfigs()
	if err != nil {
		t.Fatal(err)
	}
	jobs := map[string]*config.ScrapeConfig{}
	targets := map[string][]string{}
	for _, sc := range scs {
		jobs[sc.JobName] = sc
		for _, sd := range sc.ServiceDiscoveryConfigs {
			static, ok := sd.(discovery.StaticConfig)
			if !ok {
				t.Errorf("job %s: %T discovery; the stack uses static targets", sc.JobName, sd)
				continue
			}
			for _, g := range static {
				for _, tg := range g.Targets {
					targets[sc.JobName] = append(targets[sc.JobName], string(tg[model.AddressLabel]))
				}
			}
		}
	}
	return jobs, targets
}

func TestPrometheusScrapesLumenAndTheCollector(t *testing.T) {
	jobs, targets := scrapeTargets(t)
	collector := readYAML(t, dockerPath(t, "otel-collector.yaml"))
	_, spanMetricsPort := hostPort(t, collector.str(t, "exporters", "prometheus", "endpoint"))
	_, lumenPort := hostPort(t, parseDockerfile(t).env(t)["LUMEN_HTTP_ADDR"])

	want := map[string]string{
		"lumen":                      "lumen:" + strconv.Itoa(lumenPort),
		"otel-collector-spanmetrics": "otel-collector:" + strconv.Itoa(spanMetricsPort),
		"otel-collector":             "otel-collector:" + strconv.Itoa(collectorTelemetryPort(t, collector)),
	}
	for job, target := range want {
		if got := targets[job]; len(got) != 1 || got[0] != target {
			t.Errorf("job %s targets %v, want [%s]", job, got, target)
		}
	}
	if len(jobs) != len(want) {
		t.Errorf("%d scrape jobs, want %d: %v", len(jobs), len(want), targets)
	}
	p := loadCompose(t, nil)
	for job, ts := range targets {
		for _, tg := range ts {
			host, _ := hostPort(t, tg)
			if _, ok := p.Services[host]; !ok {
				t.Errorf("job %s scrapes %s, not a compose service", job, tg)
			}
		}
	}
	if sc := jobs["lumen"]; sc != nil {
		if sc.MetricsPath != "/metrics" {
			t.Errorf("lumen metrics path %s, want /metrics", sc.MetricsPath)
		}
		// Exemplars (trace ids on latency buckets) exist only in OpenMetrics.
		if len(sc.ScrapeProtocols) == 0 || sc.ScrapeProtocols[0] != config.OpenMetricsText1_0_0 {
			t.Errorf("lumen scrape protocols %v: OpenMetrics must come first, or exemplars are lost", sc.ScrapeProtocols)
		}
	}
}

// collectorTelemetryPort is the port of the collector's own Prometheus
// metrics (service.telemetry.metrics.readers[].pull.exporter.prometheus).
func collectorTelemetryPort(t testing.TB, collector yamlDoc) int {
	t.Helper()
	readers, err := collector.lookup("service", "telemetry", "metrics", "readers")
	if err != nil {
		t.Fatal(err)
	}
	list, _ := readers.([]any)
	for _, r := range list {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		v, err := yamlDoc(m).lookup("pull", "exporter", "prometheus", "port")
		if err != nil {
			continue
		}
		if port, ok := v.(int); ok {
			return port
		}
	}
	t.Fatal("collector: no pull prometheus reader in service.telemetry.metrics.readers")
	return 0
}
