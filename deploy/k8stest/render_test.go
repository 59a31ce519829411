package k8stest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	inferencev1 "sigs.k8s.io/gateway-api-inference-extension/api/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Release and namespace every case renders as.
const (
	releaseName = "demo"
	namespace   = "models"
)

// helm runs the helm binary with an isolated home (no repositories,
// plugins or kube config of the user's) and returns its stdout and
// stderr; a non-zero exit is an error carrying both.
func helm(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "kubeconfig"),
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, errOut.String(), out.String())
	}
	return out.String(), errOut.String(), nil
}

// valuesFile writes a values YAML for helm's -f, in a directory whose
// name has no comma (-f splits its argument at commas; t.TempDir's name
// comes from the test's).
func valuesFile(t testing.TB, values string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "k8stest-values-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(path, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// rendered is a chart's output, one field per kind it may contain.
type rendered struct {
	ServiceAccount *corev1.ServiceAccount
	Service        *corev1.Service
	Deployment     *appsv1.Deployment
	HPA            *autoscalingv2.HorizontalPodAutoscaler
	ServiceMonitor *monitoringv1.ServiceMonitor
	InferencePool  *inferencev1.InferencePool
}

// kinds are the objects the chart may render, by apiVersion and kind, each
// with the slot of rendered it decodes into. A kind not listed fails the
// decode: a new template needs its type here first.
var kinds = map[string]func(r *rendered) any{
	"v1/ServiceAccount": func(r *rendered) any { r.ServiceAccount = new(corev1.ServiceAccount); return r.ServiceAccount },
	"v1/Service":        func(r *rendered) any { r.Service = new(corev1.Service); return r.Service },
	"apps/v1/Deployment": func(r *rendered) any {
		r.Deployment = new(appsv1.Deployment)
		return r.Deployment
	},
	"autoscaling/v2/HorizontalPodAutoscaler": func(r *rendered) any {
		r.HPA = new(autoscalingv2.HorizontalPodAutoscaler)
		return r.HPA
	},
	"monitoring.coreos.com/v1/ServiceMonitor": func(r *rendered) any {
		r.ServiceMonitor = new(monitoringv1.ServiceMonitor)
		return r.ServiceMonitor
	},
	"inference.networking.k8s.io/v1/InferencePool": func(r *rendered) any {
		r.InferencePool = new(inferencev1.InferencePool)
		return r.InferencePool
	},
}

// decodeManifests splits a multi-document YAML stream and decodes every
// object strictly into its Go type: unknown, duplicate or wrongly cased
// fields, an unknown kind, or a kind rendered twice are errors.
func decodeManifests(stream string) (*rendered, error) {
	r := &rendered{}
	seen := map[string]bool{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, err
		}
		if s := string(bytes.TrimSpace(js)); s == "null" || s == "{}" {
			continue // only comments (helm's "# Source:" of an empty template)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(js, &tm); err != nil {
			return nil, err
		}
		gvk := tm.APIVersion + "/" + tm.Kind
		slot, ok := kinds[gvk]
		if !ok {
			return nil, fmt.Errorf("unknown kind %q in:\n%s", gvk, doc)
		}
		if seen[gvk] {
			return nil, fmt.Errorf("%s rendered twice", gvk)
		}
		seen[gvk] = true
		// The API server's strict decoding (fieldValidation=Strict):
		// case-sensitive field names, unlike encoding/json.
		strictErrs, err := kjson.UnmarshalStrict(js, slot(r))
		if err = errors.Join(append(strictErrs, err)...); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", gvk, err, doc)
		}
	}
	return r, nil
}

// render runs helm template on the chart with values and decodes the result.
func render(t testing.TB, values string) *rendered {
	t.Helper()
	out, _, err := helm(t, "template", releaseName, chartDir(t), "--namespace", namespace, "-f", valuesFile(t, values))
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeManifests(out)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDecodeIsStrict: the decoder the chart tests rely on refuses what a
// cluster would refuse or silently drop, so a chart mistake cannot pass.
func TestDecodeIsStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n",
		"nested typo":   "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - port: 80\n      appProtocl: http\n",
		"field case":    "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - port: 80\n      targetport: 8080\n",
		"duplicate key": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"unknown kind":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
		"wrong version": "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n",
		"no kind":       "metadata: {name: x}\n",
		"twice":         "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: y}\n",
	} {
		if _, err := decodeManifests(doc); err == nil {
			t.Errorf("%s: decoded without an error:\n%s", name, doc)
		}
	}
	r, err := decodeManifests("# Source: empty\n---\napiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - port: 80\n      appProtocol: http\n")
	if err != nil || r.Service == nil || r.Service.Spec.Ports[0].AppProtocol == nil || *r.Service.Spec.Ports[0].AppProtocol != "http" {
		t.Fatalf("a valid Service: %+v, %v", r, err)
	}
}
