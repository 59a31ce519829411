package k8stest

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lumenModule is the module this one sits inside (two levels up).
const lumenModule = "github.com/lumenllm/lumen"

// repoRoot is the Lumen checkout that holds this module.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("k8stest must run from deploy/k8stest of a Lumen checkout: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			if mod = strings.TrimSpace(mod); mod != lumenModule {
				t.Fatalf("%s/go.mod is module %q, want %q", root, mod, lumenModule)
			}
			return root
		}
	}
	t.Fatalf("%s/go.mod names no module", root)
	return ""
}

// chartDir is the Helm chart under test.
func chartDir(t testing.TB) string {
	return filepath.Join(repoRoot(t), "deploy", "helm", "lumen")
}

// toolPath is the program that env names, else def in the checkout; the
// test fails, never skips, when it is missing.
func toolPath(t testing.TB, env, def, hint string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		path = filepath.Join(repoRoot(t), def)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s (%s): %v; %s", def, env, err, hint)
	}
	return path
}

// helmBinary is helm: $LUMEN_HELM, else bin/tools/helm.
func helmBinary(t testing.TB) string {
	return toolPath(t, "LUMEN_HELM", filepath.Join("bin", "tools", "helm"),
		"`make test-k8s` builds helm from the Go module proxy")
}

// lumenBinary is the server under test: $LUMEN_BIN, else bin/lumen.
func lumenBinary(t testing.TB) string {
	return toolPath(t, "LUMEN_BIN", filepath.Join("bin", "lumen"),
		"`make test-k8s` builds it (or `make build`)")
}
