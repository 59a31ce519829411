package k8stest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// scaleOutSection is the README's part about many replicas.
const scaleOutSection = "## Scale out"

// readmeSection returns the shell commands of the README section named
// heading: each ```sh block's lines, backslash continuations joined and
// trailing comments dropped.
func readmeSection(t *testing.T, heading string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	text = text[start+len(heading)+2:]
	if end := strings.Index(text, "\n## "); end >= 0 {
		text = text[:end]
	}
	var cmds []string
	inBlock, pending := false, ""
	for line := range strings.SplitSeq(text, "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inBlock = true
		case strings.HasPrefix(line, "```"):
			inBlock = false
		case inBlock:
			if i := strings.Index(line, "  # "); i >= 0 {
				line = line[:i]
			}
			line = strings.TrimSpace(line)
			if cont, ok := strings.CutSuffix(line, "\\"); ok {
				pending += cont
				continue
			}
			if line = pending + line; line != "" {
				cmds = append(cmds, line)
			}
			pending = ""
		}
	}
	return cmds
}

// TestReadmeScaleOut runs the README's "Scale out" commands as far as
// no cluster is needed: each `helm install` is rendered by `helm
// template` with the same chart and values and every object decoded
// strictly; each `make` target it names exists in the Makefiles (make
// test runs them).
func TestReadmeScaleOut(t *testing.T) {
	cmds := readmeSection(t, scaleOutSection)
	var helms, makes int
	for _, cmd := range cmds {
		f := strings.Fields(cmd)
		switch {
		case len(f) > 4 && f[0] == "helm" && f[1] == "install":
			helms++
			// helm install NAME CHART flags... -> helm template NAME CHART flags...
			args := append([]string{"template", f[2], filepath.Join(repoRoot(t), f[3])}, f[4:]...)
			out, _, err := helm(t, args...)
			if err != nil {
				t.Fatalf("README command %q: %v", cmd, err)
			}
			r, err := decodeManifests(out)
			if err != nil {
				t.Fatalf("README command %q renders objects that do not decode: %v", cmd, err)
			}
			if r.Deployment == nil || r.Service == nil {
				t.Errorf("README command %q renders no Deployment or Service", cmd)
			}
		case len(f) == 2 && f[0] == "make":
			makes++
			// make -n prints the recipe without running it and fails on an
			// unknown target.
			c := exec.Command("make", "-n", f[1])
			c.Dir = repoRoot(t)
			if out, err := c.CombinedOutput(); err != nil {
				t.Errorf("README command %q: no such target: %v\n%s", cmd, err, out)
			}
		default:
			t.Errorf("README %q section: command %q is neither helm install nor make TARGET; teach this test to run it", scaleOutSection, cmd)
		}
	}
	if helms == 0 || makes == 0 {
		t.Errorf("README %q section: %d helm install and %d make commands, want some of each", scaleOutSection, helms, makes)
	}
}

// The README's prose names the pod label the chart sets and the metric
// names the picker reads; both must be what the chart and Lumen use.
func TestReadmeScaleOutNames(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	text = text[strings.Index(text, scaleOutSection):]
	if !strings.Contains(text, engineKey+": lumen") {
		t.Errorf("README %q section does not name the pod label %s: lumen", scaleOutSection, engineKey)
	}
	helpers, err := os.ReadFile(filepath.Join(chartDir(t), "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(helpers), engineKey+": lumen") {
		t.Errorf("the chart's helpers do not set %s: lumen", engineKey)
	}
	names := regexp.MustCompile("`((?:lumen_|vllm:)[a-z_]+)`").FindAllStringSubmatch(text[:strings.Index(text, "**HAProxy.**")], -1)
	if len(names) < 6 {
		t.Fatalf("README names %d metrics, want Lumen's three and vLLM's three", len(names))
	}
	picker := string(eppConfig(t))
	for _, n := range names {
		if strings.HasPrefix(n[1], "lumen_") && !strings.Contains(picker, n[1]) {
			t.Errorf("README names %s, which deploy/epp/endpointpicker.yaml does not read", n[1])
		}
	}
}
