package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/engine/llama"
)

func TestGPULayersFlag(t *testing.T) {
	tests := []struct {
		in       string
		wantN    int
		wantAuto bool
		wantStr  string
		wantErr  bool
	}{
		{in: "0", wantN: 0, wantStr: "0"},
		{in: "12", wantN: 12, wantStr: "12"},
		{in: "all", wantN: llama.AllLayers, wantStr: "all"},
		{in: "-1", wantN: llama.AllLayers, wantStr: "all"},
		{in: "auto", wantN: llama.AllLayers, wantAuto: true, wantStr: "auto"},
		{in: "-2", wantErr: true},
		{in: "some", wantErr: true},
		{in: "1.5", wantErr: true},
		{in: "", wantErr: true},
		{in: "ALL", wantErr: true},
	}
	for _, tt := range tests {
		fs := newFlagSet("x", "", io.Discard)
		var lf loadFlags
		lf.register(fs)
		_, err := parseFlags(fs, []string{"--gpu-layers", tt.in}, func(string) string { return "" })
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), "all or auto") {
				t.Errorf("--gpu-layers %q: err = %v, want one naming the accepted values", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("--gpu-layers %q: %v", tt.in, err)
			continue
		}
		if lf.gpuLayers.n != tt.wantN || lf.gpuLayers.auto != tt.wantAuto || lf.gpuLayers.String() != tt.wantStr {
			t.Errorf("--gpu-layers %q = {n %d auto %v %q}, want {n %d auto %v %q}", tt.in,
				lf.gpuLayers.n, lf.gpuLayers.auto, lf.gpuLayers.String(), tt.wantN, tt.wantAuto, tt.wantStr)
		}
	}

	// The environment works too, and the default is the CPU.
	fs := newFlagSet("x", "", io.Discard)
	var lf loadFlags
	lf.register(fs)
	if _, err := parseFlags(fs, nil, func(string) string { return "" }); err != nil || lf.gpuLayers.n != 0 || lf.gpuLayers.auto {
		t.Errorf("default --gpu-layers = %+v (err %v), want 0", lf.gpuLayers, err)
	}
	fs = newFlagSet("x", "", io.Discard)
	lf = loadFlags{}
	lf.register(fs)
	env := map[string]string{"LUMEN_GPU_LAYERS": "auto", "LUMEN_ALLOW_CPU_FALLBACK": "true"}
	if _, err := parseFlags(fs, nil, func(k string) string { return env[k] }); err != nil || !lf.gpuLayers.auto || !lf.allowFallback {
		t.Errorf("LUMEN_GPU_LAYERS=auto LUMEN_ALLOW_CPU_FALLBACK=true: %+v allow %v (err %v)", lf.gpuLayers, lf.allowFallback, err)
	}
}

// tinyModel writes a tiny generated model for CLI tests.
func tinyModel(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.gguf")
	if _, stderr, err := runCLI(t, "model", "synth", "--out", p, "--preset", "tiny"); err != nil {
		t.Fatalf("synth: %v\n%s", err, stderr)
	}
	return p
}

// runCLIEnv is runCLI with the parts of env that tests vary.
func runCLIEnv(t *testing.T, exeDir string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }, exeDir: exeDir})
	return out.String(), errOut.String(), err
}

// This machine has no GPU: asking for GPU layers fails at once, saying
// how to get a GPU backend and how to run on the CPU instead, unless the
// user allowed the CPU; then the model runs there and says so.
func TestGPULayersWithoutGPU(t *testing.T) {
	model := tinyModel(t)
	base := []string{"generate", "--model", model, "--prompt", "Hi", "--max-tokens", "3", "--threads", "1", "--temperature", "0"}
	tests := []struct {
		name     string
		args     []string
		wantErr  bool
		wantWarn bool
	}{
		{"cpu by default", nil, false, false},
		{"zero layers", []string{"--gpu-layers", "0"}, false, false},
		{"some layers", []string{"--gpu-layers", "8"}, true, false},
		{"all layers", []string{"--gpu-layers", "all"}, true, false},
		{"all layers as -1", []string{"--gpu-layers", "-1"}, true, false},
		{"second GPU", []string{"--gpu-layers", "all", "--main-gpu", "1"}, true, false},
		{"auto", []string{"--gpu-layers", "auto"}, false, true},
		{"fallback allowed", []string{"--gpu-layers", "8", "--allow-cpu-fallback"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := runCLI(t, append(base, tt.args...)...)
			if tt.wantErr {
				if !errors.Is(err, llama.ErrNoGPU) || exitCode(err) != 1 {
					t.Fatalf("err = %v (exit %d), want ErrNoGPU with exit code 1", err, exitCode(err))
				}
				for _, s := range []string{"0 GPU device(s)", "make cuda", "--backend-dir", "--gpu-layers auto", "--allow-cpu-fallback"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				if out != "" {
					t.Errorf("generated %q although the load failed", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v\n%s", err, stderr)
			}
			if strings.TrimSpace(out) == "" || !strings.Contains(stderr, "[device cpu (CPU, ") || !strings.Contains(stderr, "built in)]") {
				t.Errorf("want text and the built-in CPU named on stderr; stdout %q stderr %q", out, stderr)
			}
			if warned := strings.Contains(stderr, "running on the CPU"); warned != tt.wantWarn {
				t.Errorf("fallback warning %v, want %v; stderr %q", warned, tt.wantWarn, stderr)
			}
		})
	}
}

func TestNegativeMainGPUIsAUsageError(t *testing.T) {
	_, _, err := runCLI(t, "generate", "--prompt", "Hi", "--main-gpu", "-1", "--gpu-layers", "all")
	var ue usageError
	if !errors.As(err, &ue) || exitCode(err) != 2 {
		t.Errorf("--main-gpu -1: err = %v (exit %d), want a usage error", err, exitCode(err))
	}
}

// serve fails the same way, before it reports ready.
func TestServeGPULayersWithoutGPU(t *testing.T) {
	model := tinyModel(t)
	ready := make(chan [2]string, 1)
	err := runServeWith(context.Background(), []string{"--model", model, "--gpu-layers", "all", "--threads", "1",
		"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"},
		env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}, ready)
	if !errors.Is(err, llama.ErrNoGPU) || !strings.Contains(err.Error(), "make cuda") {
		t.Errorf("serve --gpu-layers all: err = %v, want ErrNoGPU naming make cuda", err)
	}
	if len(ready) != 0 {
		t.Error("serve reported ready without a model")
	}
}

// An explicit --backend-dir that cannot be used is an error; lib/ beside
// the binary is only a warning, remembered for the no-GPU message.
func TestBackendDirFailures(t *testing.T) {
	model := tinyModel(t)
	gen := []string{"generate", "--model", model, "--prompt", "Hi", "--max-tokens", "2", "--threads", "1"}

	empty := t.TempDir()
	_, _, err := runCLI(t, append(gen, "--backend-dir", empty)...)
	if !errors.Is(err, llama.ErrNoBackends) || exitCode(err) != 1 {
		t.Errorf("--backend-dir with no backend: err = %v (exit %d), want ErrNoBackends, exit 1", err, exitCode(err))
	}
	_, _, err = runCLI(t, append(gen, "--backend-dir", filepath.Join(empty, "absent"))...)
	if !errors.Is(err, llama.ErrNoBackendDir) {
		t.Errorf("missing --backend-dir: err = %v, want ErrNoBackendDir", err)
	}

	exeDir := t.TempDir()
	if err := os.Mkdir(filepath.Join(exeDir, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A CUDA backend whose libggml-base.so is missing.
	if err := os.WriteFile(filepath.Join(exeDir, "lib", "libggml-cuda.so"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCLIEnv(t, exeDir, gen...)
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("CPU run with a broken lib/: err = %v, stdout %q", err, out)
	}
	if !strings.Contains(stderr, "warning: GPU backends not loaded") || !strings.Contains(stderr, "libggml-base.so") {
		t.Errorf("stderr %q does not warn about lib/", stderr)
	}
	_, _, err = runCLIEnv(t, exeDir, append(gen, "--gpu-layers", "all")...)
	if !errors.Is(err, llama.ErrNoGPU) || !strings.Contains(err.Error(), "libggml-base.so") {
		t.Errorf("GPU run with a broken lib/: err = %v, want ErrNoGPU explaining why lib/ did not load", err)
	}

	// No lib/ at all is the normal CPU case: nothing to say.
	_, stderr, err = runCLIEnv(t, t.TempDir(), gen...)
	if err != nil || strings.Contains(stderr, "warning") {
		t.Errorf("no lib/: err %v, stderr %q", err, stderr)
	}
}

func TestDevicesCommand(t *testing.T) {
	out, stderr, err := runCLI(t, "devices")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "DEVICE") || !strings.Contains(out, "cpu:0") || !strings.Contains(out, "built in") {
		t.Errorf("devices table lacks the built-in CPU:\n%s", out)
	}
	if !strings.Contains(stderr, "no GPU device") || !strings.Contains(stderr, "make cuda") {
		t.Errorf("devices without a GPU should say how to get one; stderr %q", stderr)
	}
	out, _, err = runCLI(t, "devices", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var devs []llama.Device
	if err := json.Unmarshal([]byte(out), &devs); err != nil || len(devs) == 0 || devs[0].Kind != llama.DeviceCPU {
		t.Errorf("devices --json = %s (err %v), want the CPU device", out, err)
	}
	_, _, err = runCLI(t, "devices", "extra")
	if exitCode(err) != 2 {
		t.Errorf("devices extra: err = %v, want a usage error", err)
	}
	_, _, err = runCLI(t, "devices", "-h")
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("devices -h: err = %v, want help", err)
	}
}
