package stacktest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
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
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("stacktest must run from docker/stacktest of a Lumen checkout: %v", err)
	}
	if got := modfile.ModulePath(data); got != lumenModule {
		t.Fatalf("%s/go.mod is module %q, want %q", root, got, lumenModule)
	}
	return root
}

// dockerPath is a path under the checkout's docker/ directory.
func dockerPath(t testing.TB, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{repoRoot(t), "docker"}, elem...)...)
}

// lumenBinary is the lumen binary under test: $LUMEN_BIN, else bin/lumen.
func lumenBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("LUMEN_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), "bin", "lumen")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("lumen binary: %v (build it with `make build`, or run `make test-stack`)", err)
	}
	return bin
}

// insideRepo reports whether path lies in the checkout.
func insideRepo(t testing.TB, path string) bool {
	t.Helper()
	rel, err := filepath.Rel(repoRoot(t), path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
