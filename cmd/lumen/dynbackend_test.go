package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cpuBackendDir is the loadable CPU backend that `make backend-cpu` builds
// from the same ggml sources with CMake: the CUDA backend's loading path
// (GGML_BACKEND_DL library + its libggml-base.so + source stamp), on a
// machine without a GPU.
func cpuBackendDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LUMEN_TEST_BACKEND_CPU") // set by the Makefile
	if dir == "" {
		root, _ := filepath.Abs(repoRoot(t))
		dir = filepath.Join(root, "bin", "backend-cpu")
	}
	if _, err := os.Stat(filepath.Join(dir, "libggml-cpu-x64.so")); err != nil {
		t.Fatalf("loadable CPU backend missing (make backend-cpu builds it): %v", err)
	}
	return dir
}

// runBinary runs the real lumen binary (a backend, once loaded, stays in
// the process, so these runs must not share the test's process).
func runBinary(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s (make test builds bin/lumen): %v", bin, err)
	}
	return out.String(), errOut.String(), code
}

// A backend library loaded at run time gets the model: lumen lists its
// device first (ggml ranks loaded backends by score above the built-in
// one), runs the model on it, and says so.
func TestLoadableBackend(t *testing.T) {
	root, _ := filepath.Abs(repoRoot(t))
	lumen := filepath.Join(root, "bin", "lumen")
	dir := cpuBackendDir(t)
	lib := filepath.Join(dir, "libggml-cpu-x64.so")
	model := tinyModel(t)

	out, stderr, code := runBinary(t, lumen, "devices", "--backend-dir", dir)
	if code != 0 {
		t.Fatalf("devices: exit %d\n%s", code, stderr)
	}
	loaded := regexp.MustCompile(`(?m)^cpu:0 +CPU .*` + regexp.QuoteMeta(lib) + `$`)
	builtin := regexp.MustCompile(`(?m)^cpu:1 +CPU .*built in$`)
	if !loaded.MatchString(out) || !builtin.MatchString(out) {
		t.Errorf("devices: want cpu:0 from %s and cpu:1 built in:\n%s", lib, out)
	}

	gen := []string{"generate", "--backend-dir", dir, "--model", model, "--prompt", "Hello", "--max-tokens", "6",
		"--temperature", "0", "--threads", "1"}
	out, stderr, code = runBinary(t, lumen, gen...)
	if code != 0 || strings.TrimSpace(out) == "" || !strings.Contains(stderr, "6 tokens") {
		t.Fatalf("generate on the loaded backend: exit %d\nstdout %q\nstderr %s", code, out, stderr)
	}
	if want := "[device cpu (CPU, "; !strings.Contains(stderr, want) || !strings.Contains(stderr, lib+")]") {
		t.Errorf("generate does not name the loaded backend %s:\n%s", lib, stderr)
	}

	// Asking for a GPU still fails clearly: this backend has none.
	_, stderr, code = runBinary(t, lumen, append(gen, "--gpu-layers", "all")...)
	if code != 1 || !strings.Contains(stderr, "0 GPU device(s)") || !strings.Contains(stderr, "make cuda") {
		t.Errorf("--gpu-layers all: exit %d, stderr %s", code, stderr)
	}
}

// lib/ beside the binary is loaded without --backend-dir, and a backend
// built from other ggml sources is refused before it is loaded.
func TestBackendBesideBinaryAndSourceStamp(t *testing.T) {
	root, _ := filepath.Abs(repoRoot(t))
	src := cpuBackendDir(t)
	exeDir := t.TempDir()
	copyFile(t, filepath.Join(root, "bin", "lumen"), filepath.Join(exeDir, "lumen"), 0o755)
	lib := filepath.Join(exeDir, "lib")
	if err := os.Mkdir(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"libggml-base.so", "libggml-cpu-x64.so", "ggml-source.txt"} {
		copyFile(t, filepath.Join(src, name), filepath.Join(lib, name), 0o755)
	}
	lumen := filepath.Join(exeDir, "lumen")

	out, stderr, code := runBinary(t, lumen, "devices")
	if code != 0 || !strings.Contains(out, filepath.Join(lib, "libggml-cpu-x64.so")) {
		t.Errorf("devices with lib/ beside the binary: exit %d\n%s\n%s", code, out, stderr)
	}

	if err := os.WriteFile(filepath.Join(lib, "ggml-source.txt"), []byte("github.com/ollama/ollama v0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Beside the binary a bad directory is a warning, and the CPU runs ...
	out, stderr, code = runBinary(t, lumen, "devices")
	if code != 0 || !strings.Contains(stderr, "was built from") || strings.Contains(out, "libggml-cpu-x64.so") {
		t.Errorf("devices with a mismatched lib/: exit %d\n%s\n%s", code, out, stderr)
	}
	// ... while a directory named on the command line must load.
	_, stderr, code = runBinary(t, lumen, "devices", "--backend-dir", lib)
	if code != 1 || !strings.Contains(stderr, `built from "github.com/ollama/ollama v0.0.1"`) {
		t.Errorf("devices --backend-dir with a mismatched stamp: exit %d\n%s", code, stderr)
	}
}

// copyFile copies src (following symbolic links) to dst.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}
