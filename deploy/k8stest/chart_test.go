package k8stest

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	inferencev1 "sigs.k8s.io/gateway-api-inference-extension/api/v1"
)

// Names the default values give the release's objects.
const (
	fullName   = releaseName + "-lumen"
	modelLabel = "lumen/model"
	engineKey  = "inference.networking.k8s.io/engine-type"
	gpuName    = corev1.ResourceName("nvidia.com/gpu")
	// shutdownFlush is what lumen serve allows its transports after the
	// drain (cmd/lumen/serve.go); the grace period must cover it.
	shutdownFlush = 5 * time.Second
)

// chartCase is one values set and what its rendering must show, or the
// error helm must stop with.
type chartCase struct {
	name   string
	values string

	// The model volume's source ("" for the generated demo model, which
	// has none), the --model argument and the model's name.
	source, modelArg, modelName   string
	gpu, otel, monitoring, apiKey bool
	// terminationGracePeriodSeconds the pod must get.
	grace int64
	// The preStop hook runs `sleep` in the container rather than the
	// kubelet's sleep action.
	preStopExec bool
	// More assertions of the case.
	check func(t *testing.T, r *rendered)

	// Non-empty: helm template must fail with it (and helm lint report it).
	wantErr string
}

var chartCases = []chartCase{
	{
		name:      "defaults",
		modelName: "demo",
		grace:     40, // 5 s preStop + 30 s drain + 5 s flush
		check: func(t *testing.T, r *rendered) {
			if got := *r.Deployment.Spec.Replicas; got != 1 {
				t.Errorf("replicas %d, want 1", got)
			}
		},
	},
	{
		name: "pvc",
		values: `
model:
  source: pvc
  file: llama/llama-3-8b.Q4_K_M.gguf
  pvc: {claimName: models}
`,
		source: "pvc", modelArg: "/models/llama/llama-3-8b.Q4_K_M.gguf", modelName: "llama-3-8b.Q4_K_M", grace: 40,
		check: func(t *testing.T, r *rendered) {
			if v := modelVolume(t, r); v.PersistentVolumeClaim.ClaimName != "models" || !v.PersistentVolumeClaim.ReadOnly {
				t.Errorf("PVC volume %+v, want claim models, read-only", v.PersistentVolumeClaim)
			}
		},
	},
	{
		name: "hostPath",
		values: `
model:
  source: hostPath
  file: tiny.gguf
  name: tiny-chat
  mountPath: /srv/models/
  hostPath: {path: /var/lib/models}
`,
		source: "hostPath", modelArg: "/srv/models/tiny.gguf", modelName: "tiny-chat", grace: 40,
		check: func(t *testing.T, r *rendered) {
			v := modelVolume(t, r)
			if v.HostPath.Path != "/var/lib/models" || v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectory {
				t.Errorf("hostPath volume %+v, want /var/lib/models, type Directory", v.HostPath)
			}
		},
	},
	{
		name: "OCI image volume",
		values: `
model:
  source: image
  file: model.gguf
  name: qwen
  image: {reference: registry.example.com/models/qwen:q4, pullPolicy: Always}
`,
		source: "image", modelArg: "/models/model.gguf", modelName: "qwen", grace: 40,
		check: func(t *testing.T, r *rendered) {
			v := modelVolume(t, r)
			if v.Image.Reference != "registry.example.com/models/qwen:q4" || v.Image.PullPolicy != corev1.PullAlways {
				t.Errorf("image volume %+v", v.Image)
			}
		},
	},
	{
		name: "GPU",
		values: `
gpu: {enabled: true, layers: "all", count: 2}
resources:
  requests: {cpu: "4", memory: 16Gi}
  limits: {memory: 16Gi}
model:
  source: pvc
  pvc: {claimName: models}
`,
		source: "pvc", modelArg: "/models/model.gguf", modelName: "model", gpu: true, grace: 40,
		check: func(t *testing.T, r *rendered) {
			c := container(t, r)
			if got := c.Resources.Limits[gpuName]; got.Cmp(resource.MustParse("2")) != 0 {
				t.Errorf("GPU limit %v, want 2", got.String())
			}
			// The chart adds the GPU to the limits given, keeping them.
			if got := c.Resources.Limits[corev1.ResourceMemory]; got.Cmp(resource.MustParse("16Gi")) != 0 {
				t.Errorf("memory limit %v, want 16Gi kept", got.String())
			}
			if got := args(t, c)["--gpu-layers"]; got != "all" {
				t.Errorf("--gpu-layers=%q, want all", got)
			}
		},
	},
	{
		name: "ServiceMonitor, HPA and InferencePool",
		values: `
serviceMonitor: {enabled: true, labels: {release: prometheus}}
hpa: {enabled: true, minReplicas: 2, maxReplicas: 6}
inferencePool: {enabled: true}
`,
		modelName: "demo", monitoring: true, grace: 40,
		check: func(t *testing.T, r *rendered) {
			if r.Deployment.Spec.Replicas != nil {
				t.Errorf("replicas %d set although the HPA owns them", *r.Deployment.Spec.Replicas)
			}
			if r.HPA.Spec.MinReplicas == nil || *r.HPA.Spec.MinReplicas != 2 || r.HPA.Spec.MaxReplicas != 6 {
				t.Errorf("HPA replicas %v..%d, want 2..6", deref(r.HPA.Spec.MinReplicas), r.HPA.Spec.MaxReplicas)
			}
			if r.ServiceMonitor.Labels["release"] != "prometheus" {
				t.Errorf("ServiceMonitor labels %v lack release: prometheus", r.ServiceMonitor.Labels)
			}
		},
	},
	{
		name: "OTEL endpoint",
		values: `
otel:
  endpoint: http://otel-collector.observability:4317
  sampler: parentbased_traceidratio
  samplerArg: "0.25"
  resourceAttributes: deployment.environment=prod
`,
		modelName: "demo", otel: true, grace: 40,
		check: func(t *testing.T, r *rendered) {
			env := envMap(container(t, r))
			for k, want := range map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4317",
				"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
				"OTEL_SERVICE_NAME":           fullName,
				"OTEL_TRACES_SAMPLER":         "parentbased_traceidratio",
				"OTEL_TRACES_SAMPLER_ARG":     "0.25",
				"OTEL_RESOURCE_ATTRIBUTES":    "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),deployment.environment=prod",
			} {
				if got := env[k].Value; got != want {
					t.Errorf("%s=%q, want %q", k, got, want)
				}
			}
		},
	},
	{
		name:      "API key",
		values:    "server:\n  apiKey: {existingSecret: lumen-keys, key: token}\n",
		modelName: "demo", apiKey: true, grace: 40,
		check: func(t *testing.T, r *rendered) {
			ref := envMap(container(t, r))["LUMEN_API_KEY"].ValueFrom
			if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "lumen-keys" || ref.SecretKeyRef.Key != "token" {
				t.Errorf("LUMEN_API_KEY from %+v, want secret lumen-keys, key token", ref)
			}
		},
	},
	{
		name: "long drain, grace period given",
		values: `
server: {drainTimeoutSeconds: 120}
lifecycle: {preStopSleepSeconds: 10, preStopAction: exec}
terminationGracePeriodSeconds: 135
`,
		modelName: "demo", grace: 135, preStopExec: true,
	},
	{
		name:      "grace period exactly enough",
		values:    "terminationGracePeriodSeconds: 40\n",
		modelName: "demo", grace: 40,
	},
	{
		name:    "grace period shorter than the drain",
		values:  "server: {drainTimeoutSeconds: 60}\nterminationGracePeriodSeconds: 30\n",
		wantErr: "terminationGracePeriodSeconds 30 is shorter than lifecycle.preStopSleepSeconds (5) + server.drainTimeoutSeconds (60) + Lumen's 5 s shutdown flush = 70",
	},
	{
		name:    "grace period one second short",
		values:  "terminationGracePeriodSeconds: 39\n",
		wantErr: "terminationGracePeriodSeconds 39 is shorter than",
	},
	{
		name:    "PVC without a claim",
		values:  "model: {source: pvc}\n",
		wantErr: "model.source pvc needs model.pvc.claimName",
	},
	{
		name:    "unknown model source",
		values:  "model: {source: s3}\n",
		wantErr: `model.source "s3": want demo, pvc, hostPath or image`,
	},
	{
		name:    "model name not a label value",
		values:  "model: {name: Llama 3 8B}\n",
		wantErr: `model name "Llama 3 8B" is not a valid label value`,
	},
	{
		name:    "unknown metrics compat",
		values:  "server: {metricsCompat: sglang}\n",
		wantErr: `server.metricsCompat "sglang": want vllm`,
	},
}

// TestChart lints and renders the chart for every case and checks the
// objects: probes and ports, the drain timing, the model volume, GPU,
// tracing and the optional monitoring objects.
func TestChart(t *testing.T) {
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			values := valuesFile(t, c.values)
			_, lintLog, lintErr := helm(t, "lint", "--strict", chartDir(t), "--namespace", namespace, "-f", values)
			if c.wantErr != "" {
				// helm lint renders in lint mode, where fail is logged
				// ("[INFO] Fail: ...") rather than fatal; helm template
				// and install stop.
				if lintErr != nil || !strings.Contains(lintLog, "Fail: "+c.wantErr) {
					t.Errorf("helm lint: %v\n%s\nwant it to report %q", lintErr, lintLog, c.wantErr)
				}
				_, _, err := helm(t, "template", releaseName, chartDir(t), "--namespace", namespace, "-f", values)
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("helm template: %v\nwant an error containing %q", err, c.wantErr)
				}
				return
			}
			if lintErr != nil {
				t.Fatal(lintErr)
			}
			r := render(t, c.values)
			checkWorkload(t, c, r)
			checkService(t, r)
			checkMonitoring(t, c, r)
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

// container is the pod's one container, lumen.
func container(t *testing.T, r *rendered) *corev1.Container {
	t.Helper()
	cs := r.Deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "lumen" {
		t.Fatalf("containers %v, want one named lumen", cs)
	}
	return &cs[0]
}

// args maps the container's --flag=value arguments after `serve`; a flag
// given twice or an argument of another form fails the test.
func args(t *testing.T, c *corev1.Container) map[string]string {
	t.Helper()
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("command %q args %q: want the image's entrypoint (lumen) with serve first", c.Command, c.Args)
	}
	m := map[string]string{}
	for _, a := range c.Args[1:] {
		name, value, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(name, "--") {
			t.Fatalf("argument %q is not --flag=value", a)
		}
		if _, dup := m[name]; dup {
			t.Fatalf("%s given twice in %q", name, c.Args)
		}
		m[name] = value
	}
	return m
}

// deref is *p for messages, or "<nil>".
func deref[T any](p *T) any {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func envMap(c *corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

// modelVolume is the pod's model volume, which must have exactly one
// source.
func modelVolume(t *testing.T, r *rendered) corev1.Volume {
	t.Helper()
	for _, v := range r.Deployment.Spec.Template.Spec.Volumes {
		if v.Name == "model" {
			return v
		}
	}
	t.Fatal("no model volume")
	return corev1.Volume{}
}

// volumeSource names the source a volume has ("" if none of those the
// chart uses).
func volumeSource(v corev1.Volume) string {
	var kinds []string
	if v.PersistentVolumeClaim != nil {
		kinds = append(kinds, "pvc")
	}
	if v.HostPath != nil {
		kinds = append(kinds, "hostPath")
	}
	if v.Image != nil {
		kinds = append(kinds, "image")
	}
	if v.EmptyDir != nil {
		kinds = append(kinds, "emptyDir")
	}
	return strings.Join(kinds, "+")
}

// containsLabels reports whether every label of sub is in labels.
func containsLabels[K, V ~string](labels map[string]string, sub map[K]V) bool {
	for k, v := range sub {
		if got, ok := labels[string(k)]; !ok || got != string(v) {
			return false
		}
	}
	return len(sub) > 0
}

// portNumber resolves a probe's or Service's target port (a name or a
// number) against the container's ports.
func portNumber(t *testing.T, c *corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	t.Fatalf("port %s is not a container port (%v)", p.String(), c.Ports)
	return 0
}

// checkWorkload checks the Deployment every case renders.
func checkWorkload(t *testing.T, c chartCase, r *rendered) {
	t.Helper()
	if r.Deployment == nil || r.Service == nil || r.ServiceAccount == nil {
		t.Fatalf("want a Deployment, a Service and a ServiceAccount: %+v", r)
	}
	pod := r.Deployment.Spec.Template
	ctr := container(t, r)
	a := args(t, ctr)

	// Labels: the selector's, and those the InferencePool and the endpoint
	// picker's engine mapping read.
	if !containsLabels(pod.Labels, r.Deployment.Spec.Selector.MatchLabels) {
		t.Errorf("pod labels %v lack the Deployment's selector %v", pod.Labels, r.Deployment.Spec.Selector.MatchLabels)
	}
	for k, v := range pod.Labels {
		if errs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(errs) > 0 {
			t.Errorf("pod label %s=%q: %v", k, v, errs)
		}
	}
	if errs := validation.IsDNS1035Label(r.Service.Name); len(errs) > 0 {
		t.Errorf("Service name %q: %v", r.Service.Name, errs)
	}
	for k, want := range map[string]string{"app.kubernetes.io/name": "lumen", modelLabel: c.modelName, engineKey: "lumen"} {
		if pod.Labels[k] != want {
			t.Errorf("pod label %s=%q, want %q", k, pod.Labels[k], want)
		}
	}
	if got := a["--model-name"]; got != c.modelName {
		t.Errorf("--model-name=%q, want %q", got, c.modelName)
	}
	if got, ok := a["--model"]; got != c.modelArg || ok != (c.modelArg != "") {
		t.Errorf("--model=%q (given %v), want %q", got, ok, c.modelArg)
	}
	if got := a["--metrics-compat"]; got != "vllm" {
		t.Errorf("--metrics-compat=%q, want vllm (the stock endpoint picker's names)", got)
	}

	// Listeners and container ports agree.
	for flag, name := range map[string]string{"--http-addr": "http", "--grpc-addr": "grpc"} {
		host, port, err := net.SplitHostPort(a[flag])
		if err != nil || host != "" {
			t.Errorf("%s=%q: want :PORT (every address)", flag, a[flag])
			continue
		}
		if want := strconv.Itoa(int(portNumber(t, ctr, intstr.FromString(name)))); port != want {
			t.Errorf("%s port %s, container port %s is %s", flag, port, name, want)
		}
	}
	if got := portNumber(t, ctr, intstr.FromString("http")); got != 8080 {
		t.Errorf("http container port %d, want 8080", got)
	}
	if got := portNumber(t, ctr, intstr.FromString("grpc")); got != 9090 {
		t.Errorf("grpc container port %d, want 9090", got)
	}

	// Probes: startup and readiness on /readyz, liveness on /healthz, all
	// on the HTTP port.
	for name, p := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{
		"startup":   {ctr.StartupProbe, "/readyz"},
		"liveness":  {ctr.LivenessProbe, "/healthz"},
		"readiness": {ctr.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe %+v: want an HTTP GET", name, p.probe)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || portNumber(t, ctr, p.probe.HTTPGet.Port) != 8080 {
			t.Errorf("%s probe GET %s on %s, want %s on the http port", name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	if s := ctr.StartupProbe; s != nil && time.Duration(s.PeriodSeconds*s.FailureThreshold)*time.Second < 5*time.Minute {
		t.Errorf("startup probe allows %ds for the model to load, want minutes", s.PeriodSeconds*s.FailureThreshold)
	}

	// Drain timing: preStop sleep, then SIGTERM and the drain, then the
	// transports' flush, all before SIGKILL.
	var preStop time.Duration
	switch h := ctr.Lifecycle; {
	case h == nil || h.PreStop == nil:
		t.Fatal("no preStop hook")
	case c.preStopExec:
		cmd := h.PreStop.Exec
		if cmd == nil || len(cmd.Command) != 2 || cmd.Command[0] != "sleep" {
			t.Fatalf("preStop %+v, want exec sleep N", h.PreStop)
		}
		n, err := strconv.Atoi(cmd.Command[1])
		if err != nil {
			t.Fatal(err)
		}
		preStop = time.Duration(n) * time.Second
	default:
		if h.PreStop.Sleep == nil {
			t.Fatalf("preStop %+v, want the sleep action", h.PreStop)
		}
		preStop = time.Duration(h.PreStop.Sleep.Seconds) * time.Second
	}
	if preStop <= 0 {
		t.Errorf("preStop sleeps %v, want a few seconds for endpoints to update", preStop)
	}
	drain, err := time.ParseDuration(a["--drain-timeout"])
	if err != nil {
		t.Fatalf("--drain-timeout: %v", err)
	}
	grace := pod.Spec.TerminationGracePeriodSeconds
	if grace == nil || *grace != c.grace {
		t.Fatalf("terminationGracePeriodSeconds %v, want %d", deref(grace), c.grace)
	}
	if least := preStop + drain + shutdownFlush; time.Duration(*grace)*time.Second < least {
		t.Errorf("grace period %ds < preStop %v + drain %v + flush %v", *grace, preStop, drain, shutdownFlush)
	}

	// Non-root, read-only root filesystem, writable emptyDirs where Lumen
	// writes, and no API token.
	if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("pod security context %+v: want non-root", sc)
	}
	if sc := ctr.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container security context %+v: want a read-only root, no escalation, all capabilities dropped", sc)
	}
	if a := pod.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Error("the service account token is mounted; Lumen does not call the API")
	}
	if pod.Spec.ServiceAccountName != r.ServiceAccount.Name {
		t.Errorf("pod service account %q, chart's %q", pod.Spec.ServiceAccountName, r.ServiceAccount.Name)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range ctr.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			t.Errorf("mount of %s, which is not a volume", m.Name)
		}
		mounts[m.MountPath] = m
	}
	for _, dir := range []string{"/tmp", "/var/cache/lumen"} {
		if m, ok := mounts[dir]; !ok || m.ReadOnly || volumeSource(volumes[m.Name]) != "emptyDir" {
			t.Errorf("%s: mount %+v, want a writable emptyDir", dir, m)
		}
	}
	if env := envMap(ctr); env["LUMEN_CACHE_DIR"].Value != "/var/cache/lumen/models" {
		t.Errorf("LUMEN_CACHE_DIR=%q, want the cache volume", env["LUMEN_CACHE_DIR"].Value)
	}

	// The model volume, by source.
	model, hasModel := volumes["model"]
	if got := volumeSource(model); got != c.source || hasModel != (c.source != "") {
		t.Errorf("model volume source %q (present %v), want %q", got, hasModel, c.source)
	}
	if hasModel {
		dir := strings.TrimSuffix(c.modelArg[:strings.LastIndex(c.modelArg, "/")+1], "/")
		var m *corev1.VolumeMount
		for i := range ctr.VolumeMounts {
			if ctr.VolumeMounts[i].Name == "model" {
				m = &ctr.VolumeMounts[i]
			}
		}
		if m == nil || !m.ReadOnly || !strings.HasPrefix(dir+"/", strings.TrimSuffix(m.MountPath, "/")+"/") {
			t.Errorf("model mount %+v: want read-only, holding %s", m, c.modelArg)
		}
	}

	// GPU: the limit, --gpu-layers and the CUDA image only when enabled.
	_, gpuLimit := ctr.Resources.Limits[gpuName]
	_, gpuLayers := a["--gpu-layers"]
	if gpuLimit != c.gpu || gpuLayers != c.gpu {
		t.Errorf("GPU limit %v, --gpu-layers %v; want both %v", gpuLimit, gpuLayers, c.gpu)
	}
	wantImage := map[bool]string{false: "lumen:cpu", true: "lumen:cuda"}[c.gpu]
	if ctr.Image != wantImage {
		t.Errorf("image %q, want %q", ctr.Image, wantImage)
	}

	// Tracing: the OTEL_* variables only with an endpoint; a $(VAR) the
	// kubelet expands must be defined before its use.
	env := envMap(ctr)
	var otelVars []string
	for name := range env {
		if strings.HasPrefix(name, "OTEL_") {
			otelVars = append(otelVars, name)
		}
	}
	if (len(otelVars) > 0) != c.otel {
		t.Errorf("OTEL variables %v, want them %v", otelVars, c.otel)
	}
	defined := map[string]bool{}
	for _, e := range ctr.Env {
		for _, ref := range strings.Split(e.Value, "$(")[1:] {
			if name, _, _ := strings.Cut(ref, ")"); !defined[name] {
				t.Errorf("%s uses $(%s) before it is defined", e.Name, name)
			}
		}
		defined[e.Name] = true
	}
	if c.otel {
		for _, name := range []string{"POD_NAME", "POD_NAMESPACE"} {
			if f := env[name].ValueFrom; f == nil || f.FieldRef == nil {
				t.Errorf("%s not from the downward API: %+v", name, env[name])
			}
		}
	}

	// The API key comes from a Secret, never an argument; without a key
	// the Service's names are allowed Hosts (Lumen refuses other names).
	if _, ok := a["--api-key"]; ok {
		t.Error("--api-key is an argument, visible in the pod spec and ps")
	}
	if _, ok := env["LUMEN_API_KEY"]; ok != c.apiKey {
		t.Errorf("LUMEN_API_KEY set %v, want %v", ok, c.apiKey)
	}
	hosts := strings.Split(a["--allowed-hosts"], ",")
	svcName := fmt.Sprintf("%s.%s.svc.cluster.local", fullName, namespace)
	if slices.Contains(hosts, svcName) == c.apiKey {
		t.Errorf("--allowed-hosts=%q with API key %v: want the Service name %s only without a key", a["--allowed-hosts"], c.apiKey, svcName)
	}
}

// checkService checks the Service's ports against the container's.
func checkService(t *testing.T, r *rendered) {
	t.Helper()
	ctr := container(t, r)
	svc := r.Service.Spec
	if !containsLabels(r.Deployment.Spec.Template.Labels, svc.Selector) || !maps.Equal(svc.Selector, r.Deployment.Spec.Selector.MatchLabels) {
		t.Errorf("Service selector %v, Deployment selector %v", svc.Selector, r.Deployment.Spec.Selector.MatchLabels)
	}
	want := map[string]struct {
		port     int32
		protocol string
	}{
		"http": {8080, "http"},
		"grpc": {9090, "kubernetes.io/h2c"},
	}
	if len(svc.Ports) != len(want) {
		t.Errorf("Service ports %v, want %d", svc.Ports, len(want))
	}
	for _, p := range svc.Ports {
		w, ok := want[p.Name]
		if !ok {
			t.Errorf("unexpected Service port %s", p.Name)
			continue
		}
		if p.Port != w.port || p.AppProtocol == nil || *p.AppProtocol != w.protocol || p.Protocol != corev1.ProtocolTCP {
			t.Errorf("Service port %s: %d appProtocol %v %s, want %d appProtocol %s TCP", p.Name, p.Port, deref(p.AppProtocol), p.Protocol, w.port, w.protocol)
		}
		if got := portNumber(t, ctr, p.TargetPort); got != w.port {
			t.Errorf("Service port %s targets container port %d, want %d", p.Name, got, w.port)
		}
	}
}

// checkMonitoring checks the ServiceMonitor, HPA and InferencePool, which
// must be rendered exactly when the case enables them.
func checkMonitoring(t *testing.T, c chartCase, r *rendered) {
	t.Helper()
	if (r.ServiceMonitor != nil) != c.monitoring || (r.HPA != nil) != c.monitoring || (r.InferencePool != nil) != c.monitoring {
		t.Fatalf("ServiceMonitor %v, HPA %v, InferencePool %v; want them %v", r.ServiceMonitor != nil, r.HPA != nil, r.InferencePool != nil, c.monitoring)
	}
	if !c.monitoring {
		return
	}
	ctr := container(t, r)
	podLabels := r.Deployment.Spec.Template.Labels

	sm := r.ServiceMonitor.Spec
	if !containsLabels(r.Service.Labels, sm.Selector.MatchLabels) || !slices.Equal(sm.NamespaceSelector.MatchNames, []string{namespace}) {
		t.Errorf("ServiceMonitor selects %v in %v; Service labels %v in %s", sm.Selector.MatchLabels, sm.NamespaceSelector.MatchNames, r.Service.Labels, namespace)
	}
	if len(sm.Endpoints) != 1 || sm.Endpoints[0].Port != "http" || sm.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want /metrics on port http", sm.Endpoints)
	}

	hpa := r.HPA.Spec
	if ref := hpa.ScaleTargetRef; ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != r.Deployment.Name {
		t.Errorf("HPA scales %+v, want the Deployment %s", ref, r.Deployment.Name)
	}
	if len(hpa.Metrics) != 1 || hpa.Metrics[0].Pods == nil {
		t.Fatalf("HPA metrics %+v, want one Pods metric", hpa.Metrics)
	}
	if m := hpa.Metrics[0].Pods; m.Metric.Name != "lumen_queue_depth_requests" || m.Target.AverageValue == nil ||
		m.Target.AverageValue.Cmp(resource.MustParse("2")) != 0 {
		t.Errorf("HPA metric %s target %+v, want lumen_queue_depth_requests averaging 2", m.Metric.Name, m.Target)
	}

	pool := r.InferencePool.Spec
	if !containsLabels(podLabels, pool.Selector.MatchLabels) {
		t.Errorf("InferencePool selects %v, pod labels %v", pool.Selector.MatchLabels, podLabels)
	}
	for _, k := range []string{"app.kubernetes.io/name", modelLabel} {
		if _, ok := pool.Selector.MatchLabels[inferencev1.LabelKey(k)]; !ok {
			t.Errorf("InferencePool selector %v lacks %s", pool.Selector.MatchLabels, k)
		}
	}
	if _, ok := pool.Selector.MatchLabels["app.kubernetes.io/instance"]; ok {
		t.Error("InferencePool selects one release; it should pool every release of the model")
	}
	if len(pool.TargetPorts) != 1 || int32(pool.TargetPorts[0].Number) != portNumber(t, ctr, intstr.FromString("http")) {
		t.Errorf("InferencePool target ports %+v, want the http port", pool.TargetPorts)
	}
	if ref := pool.EndpointPickerRef; ref.Name != fullName+"-epp" || ref.Port == nil || ref.Port.Number != 9002 {
		t.Errorf("InferencePool endpoint picker %+v, want %s-epp:9002", ref, fullName)
	}
}
