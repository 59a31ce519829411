package stacktest

import (
	"context"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docker/docker-compose.yaml the way `docker compose`
// does, with env as the whole environment: the caller's own variables
// never leak in, so the defaults are what is tested.
func loadCompose(t testing.TB, env map[string]string) *types.Project {
	t.Helper()
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{dockerPath(t, "docker-compose.yaml")},
		cli.WithWorkingDirectory(dockerPath(t)),
		cli.WithEnv(kv),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose file: %v", err)
	}
	return p
}

func service(t testing.TB, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("compose: no service %q", name)
	}
	return s
}

// env is a service's environment variable; the test fails if it is unset.
func env(t testing.TB, s types.ServiceConfig, name string) string {
	t.Helper()
	v, ok := s.Environment[name]
	if !ok || v == nil {
		t.Fatalf("service %s: environment %s is not set", s.Name, name)
	}
	return *v
}

// hostPathIn maps a path inside a service's container to the host file
// a bind mount puts there (the longest matching mount wins).
func hostPathIn(t testing.TB, s types.ServiceConfig, containerPath string) string {
	t.Helper()
	best := -1
	for i, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if containerPath == v.Target || strings.HasPrefix(containerPath, v.Target+"/") {
			if best < 0 || len(v.Target) > len(s.Volumes[best].Target) {
				best = i
			}
		}
	}
	if best < 0 {
		t.Fatalf("service %s: no bind mount provides %s", s.Name, containerPath)
	}
	v := s.Volumes[best]
	return filepath.Join(v.Source, filepath.FromSlash(strings.TrimPrefix(containerPath, v.Target)))
}

// flagValue finds --name=value or --name value in a command line.
func flagValue(cmd []string, name string) (string, bool) {
	for i, a := range cmd {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(cmd) {
			return cmd[i+1], true
		}
	}
	return "", false
}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t, nil)
	want := []string{"grafana", "jaeger", "lumen", "otel-collector", "prometheus"}
	got := p.ServiceNames()
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
}

func TestComposePublishedPorts(t *testing.T) {
	p := loadCompose(t, nil)
	for _, tc := range []struct {
		service   string
		container uint32
		host      string
	}{
		{"lumen", 8080, "8080"},
		{"lumen", 9090, "9090"},
		{"grafana", 3000, "3000"},
		{"jaeger", 16686, "16686"},
		{"jaeger", 5778, "5778"},
		// 9090 on the host is Lumen's gRPC port.
		{"prometheus", 9090, "9091"},
		{"otel-collector", 4317, "4317"},
		{"otel-collector", 4318, "4318"},
	} {
		s := service(t, p, tc.service)
		found := false
		for _, port := range s.Ports {
			if port.Target == tc.container {
				found = true
				if port.Published != tc.host {
					t.Errorf("%s: container port %d published on %q, want %q", tc.service, tc.container, port.Published, tc.host)
				}
			}
		}
		if !found {
			t.Errorf("%s: container port %d is not published", tc.service, tc.container)
		}
	}
	owner := map[string]string{}
	for _, name := range p.ServiceNames() {
		for _, port := range p.Services[name].Ports {
			if other, dup := owner[port.Published]; dup {
				t.Errorf("host port %s published by both %s and %s", port.Published, other, name)
			}
			owner[port.Published] = name
		}
	}
}

func TestComposeBuildsLumenFromThisCheckout(t *testing.T) {
	p := loadCompose(t, nil)
	s := service(t, p, "lumen")
	if s.Build == nil {
		t.Fatal("lumen has no build section")
	}
	if s.Build.Context != repoRoot(t) {
		t.Errorf("build context = %s, want the checkout %s", s.Build.Context, repoRoot(t))
	}
	df := filepath.Join(s.Build.Context, s.Build.Dockerfile)
	if df != dockerPath(t, "Dockerfile") {
		t.Errorf("dockerfile = %s, want docker/Dockerfile", df)
	}
	if _, err := os.Stat(df); err != nil {
		t.Error(err)
	}
	// Compose passes its own default for CPU_FLAGS; it must be the
	// Dockerfile's, or `docker build` and `docker compose` would differ.
	arg, ok := s.Build.Args["CPU_FLAGS"]
	if !ok || arg == nil {
		t.Fatal("lumen build args: no CPU_FLAGS")
	}
	if want := parseDockerfile(t).argDefault(t, "CPU_FLAGS"); *arg != want {
		t.Errorf("compose CPU_FLAGS default = %q, Dockerfile's = %q", *arg, want)
	}
	tuned := service(t, loadCompose(t, map[string]string{"LUMEN_CPU_FLAGS": "-march=x86-64-v3"}), "lumen")
	if got := *tuned.Build.Args["CPU_FLAGS"]; got != "-march=x86-64-v3" {
		t.Errorf("LUMEN_CPU_FLAGS=-march=x86-64-v3 gives CPU_FLAGS %q", got)
	}
}

func TestComposeBindMountsExistInCheckout(t *testing.T) {
	p := loadCompose(t, nil)
	mounts := 0
	for _, name := range p.ServiceNames() {
		for _, v := range p.Services[name].Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			mounts++
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: mount %s: %v", name, v.Target, err)
			}
			if !insideRepo(t, v.Source) {
				t.Errorf("%s: mount %s comes from %s, outside the checkout", name, v.Target, v.Source)
			}
			if !v.ReadOnly {
				t.Errorf("%s: mount %s is writable; configuration mounts are read-only", name, v.Target)
			}
		}
	}
	if mounts == 0 {
		t.Fatal("no bind mounts found")
	}
}

func TestComposeModelDirectory(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantDir string
		model   string
	}{
		{"default", nil, dockerPath(t, "models"), ""},
		{"LUMEN_MODEL_DIR", map[string]string{"LUMEN_MODEL_DIR": "/srv/models", "LUMEN_MODEL": "/models/llama.gguf"}, "/srv/models", "/models/llama.gguf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := service(t, loadCompose(t, tc.env), "lumen")
			if got := hostPathIn(t, s, "/models"); got != tc.wantDir {
				t.Errorf("/models comes from %s, want %s", got, tc.wantDir)
			}
			// Empty LUMEN_MODEL means "no --model": the demo model.
			if got := env(t, s, "LUMEN_MODEL"); got != tc.model {
				t.Errorf("LUMEN_MODEL = %q, want %q", got, tc.model)
			}
		})
	}
}

func TestComposeTracesFlowLumenCollectorJaeger(t *testing.T) {
	p := loadCompose(t, nil)
	lumen := service(t, p, "lumen")

	// Lumen -> collector: an http:// URL, so the gRPC exporter is plaintext.
	u, err := url.Parse(env(t, lumen, "LUMEN_OTLP_ENDPOINT"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "http" {
		t.Errorf("LUMEN_OTLP_ENDPOINT scheme %q: want http (plaintext inside the compose network)", u.Scheme)
	}
	if u.Hostname() != "otel-collector" {
		t.Errorf("LUMEN_OTLP_ENDPOINT host %q, want otel-collector", u.Hostname())
	}
	service(t, p, u.Hostname())
	collector := readYAML(t, dockerPath(t, "otel-collector.yaml"))
	_, grpcPort := hostPort(t, collector.str(t, "receivers", "otlp", "protocols", "grpc", "endpoint"))
	if u.Port() != strconv.Itoa(grpcPort) {
		t.Errorf("Lumen sends to port %s, the collector's OTLP gRPC receiver listens on %d", u.Port(), grpcPort)
	}
	if got := env(t, lumen, "OTEL_SERVICE_NAME"); got != "lumen" {
		t.Errorf("OTEL_SERVICE_NAME = %q, want lumen (the service the sampling strategies name)", got)
	}

	// Collector -> Jaeger over OTLP gRPC.
	host, port := hostPort(t, collector.str(t, "exporters", "otlp/jaeger", "endpoint"))
	if host != "jaeger" {
		t.Errorf("collector exports to %q, want jaeger", host)
	}
	service(t, p, host)
	jaeger := readYAML(t, dockerPath(t, "jaeger.yaml"))
	if _, jport := hostPort(t, jaeger.str(t, "receivers", "otlp", "protocols", "grpc", "endpoint")); jport != port {
		t.Errorf("collector exports to port %d, Jaeger's OTLP gRPC receiver listens on %d", port, jport)
	}
}

// The programs in the stack read their configuration from the files in
// this checkout: each container path resolves, through the mounts, to
// the file these tests check.
func TestComposeMountsTheCheckedFiles(t *testing.T) {
	p := loadCompose(t, nil)
	sampling := filepath.Join(repoRoot(t), "configs", "sampling-strategies.json")
	flagPath := func(svc, flag string) (types.ServiceConfig, string) {
		s := service(t, p, svc)
		v, ok := flagValue(s.Command, flag)
		if !ok {
			t.Fatalf("%s: command %q has no %s", svc, s.Command, flag)
		}
		return s, v
	}
	collector, collectorCfg := flagPath("otel-collector", "--config")
	jaeger, jaegerCfg := flagPath("jaeger", "--config")
	prom, promCfg := flagPath("prometheus", "--config.file")
	lumen := service(t, p, "lumen")
	grafana := service(t, p, "grafana")
	jaegerSampling := readYAML(t, dockerPath(t, "jaeger.yaml")).str(t, "extensions", "remote_sampling", "file", "path")
	dashboards := readYAML(t, dockerPath(t, "grafana", "provisioning", "dashboards", "dashboards.yaml"))
	providers, _ := dashboards["providers"].([]any)
	if len(providers) != 1 {
		t.Fatalf("grafana dashboard providers: %d, want 1", len(providers))
	}
	providerPath := yamlDoc(providers[0].(map[string]any)).str(t, "options", "path")

	for _, tc := range []struct {
		what    string
		service types.ServiceConfig
		path    string
		want    string
	}{
		{"collector config", collector, collectorCfg, dockerPath(t, "otel-collector.yaml")},
		{"jaeger config", jaeger, jaegerCfg, dockerPath(t, "jaeger.yaml")},
		{"jaeger sampling strategies", jaeger, jaegerSampling, sampling},
		{"prometheus config", prom, promCfg, dockerPath(t, "prometheus.yml")},
		{"lumen sampling strategies", lumen, env(t, lumen, "LUMEN_SAMPLING_CONFIG"), sampling},
		{"grafana provisioning", grafana, "/etc/grafana/provisioning", dockerPath(t, "grafana", "provisioning")},
		{"grafana dashboards", grafana, providerPath, dockerPath(t, "grafana", "dashboards")},
		{"grafana home dashboard", grafana, env(t, grafana, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"), dockerPath(t, "grafana", "dashboards", "lumen.json")},
	} {
		if got := hostPathIn(t, tc.service, tc.path); got != tc.want {
			t.Errorf("%s: %s in %s is %s, want %s", tc.what, tc.path, tc.service.Name, got, tc.want)
		}
		if _, err := os.Stat(tc.want); err != nil {
			t.Errorf("%s: %v", tc.what, err)
		}
	}
}

func TestComposePrometheusStoresExemplars(t *testing.T) {
	s := service(t, loadCompose(t, nil), "prometheus")
	if v, _ := flagValue(s.Command, "--enable-feature"); !slices.Contains(strings.Split(v, ","), "exemplar-storage") {
		t.Errorf("prometheus command %q lacks --enable-feature=exemplar-storage", s.Command)
	}
	// A command replaces the image's default arguments, storage path included.
	if v, _ := flagValue(s.Command, "--storage.tsdb.path"); v == "" {
		t.Errorf("prometheus command %q lacks --storage.tsdb.path", s.Command)
	}
}

func TestComposeGrafanaOpensToAnonymousViewers(t *testing.T) {
	s := service(t, loadCompose(t, nil), "grafana")
	for k, want := range map[string]string{
		"GF_AUTH_ANONYMOUS_ENABLED":  "true",
		"GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
	} {
		if got := env(t, s, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestComposeImagesArePinned(t *testing.T) {
	p := loadCompose(t, nil)
	for _, name := range p.ServiceNames() {
		img := p.Services[name].Image
		_, tag, ok := strings.Cut(path.Base(img), ":")
		if !ok || tag == "" || tag == "latest" {
			t.Errorf("%s: image %q has no pinned tag", name, img)
		}
	}
}

func TestComposeLumenHealthcheckAsksReadyz(t *testing.T) {
	s := service(t, loadCompose(t, nil), "lumen")
	hc := s.HealthCheck
	if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
		t.Fatalf("lumen healthcheck = %+v, want an exec-form CMD", hc)
	}
	if !strings.Contains(strings.Join(hc.Test, " "), "/readyz") {
		t.Errorf("healthcheck %q does not ask /readyz", hc.Test)
	}
	// The first start generates and loads the demo model before /readyz
	// turns 200; failures before then must not count.
	if hc.StartPeriod == nil || time.Duration(*hc.StartPeriod) < time.Minute {
		t.Errorf("healthcheck start_period = %v, want at least 1m", hc.StartPeriod)
	}
	// TestHealthcheckAgainstLumen runs this command against the binary.
}

// README's "Run the stack" gives the command and the addresses compose
// actually publishes.
func TestReadmeRunTheStack(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Run the stack\n")
	if !ok {
		t.Fatal(`README has no "## Run the stack" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	if !strings.Contains(section, "docker compose -f docker/docker-compose.yaml up --build") {
		t.Error("README does not give `docker compose -f docker/docker-compose.yaml up --build`")
	}
	p := loadCompose(t, nil)
	for svc, container := range map[string]uint32{"grafana": 3000, "jaeger": 16686, "prometheus": 9090} {
		for _, port := range service(t, p, svc).Ports {
			if port.Target == container && !strings.Contains(section, "http://localhost:"+port.Published) {
				t.Errorf("README does not send readers to %s at http://localhost:%s", svc, port.Published)
			}
		}
	}
}
