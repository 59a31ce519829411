package llama_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/engine/llama"
)

const testSource = "github.com/ollama/ollama v0.17.4"

// backendDir makes a directory holding files with the given contents.
func backendDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A backend directory that cannot be used is an error that says why, and
// nothing of it reaches ggml's registry. (Loading a real backend library
// changes the process for good, so that path is tested against the lumen
// binary in cmd/lumen, in a process of its own.)
func TestBackendDirErrors(t *testing.T) {
	stamp := testSource + "\n"
	tests := []struct {
		name    string
		files   map[string]string
		missing bool
		source  string
		want    error
		wantMsg []string
	}{
		{name: "missing directory", missing: true, want: llama.ErrNoBackendDir},
		{name: "empty directory", want: llama.ErrNoBackends, wantMsg: []string{"libggml-NAME.so"}},
		{name: "no backend library", files: map[string]string{"libggml-base.so": "", "libcudart.so.12": "", "libggml-cuda.so.0": ""},
			want: llama.ErrNoBackends},
		{name: "no source stamp", files: map[string]string{"libggml-cuda.so": ""}, source: testSource,
			want: llama.ErrBackendMismatch, wantMsg: []string{"ggml-source.txt", "make cuda"}},
		{name: "other ggml sources", files: map[string]string{"libggml-cuda.so": "", "ggml-source.txt": "github.com/ollama/ollama v0.12.0\n"},
			source: testSource, want: llama.ErrBackendMismatch, wantMsg: []string{"v0.12.0", "v0.17.4"}},
		{name: "no base library", files: map[string]string{"libggml-cuda.so": "", "ggml-source.txt": stamp}, source: testSource,
			want: llama.ErrBackendLoad, wantMsg: []string{"libggml-base.so"}},
		{name: "no base library, stamp not checked", files: map[string]string{"libggml-cuda.so": ""},
			want: llama.ErrBackendLoad, wantMsg: []string{"libggml-base.so"}},
		{name: "base library is not a library", files: map[string]string{"libggml-cuda.so": "", "libggml-base.so": "not ELF", "ggml-source.txt": stamp},
			source: testSource, want: llama.ErrBackendLoad, wantMsg: []string{"libggml-base.so", "file too short"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := backendDir(t, tt.files)
			if tt.missing {
				dir = filepath.Join(dir, "absent")
			}
			before := len(llama.Devices())
			opts := llama.BackendOptions{LogLevel: llama.LogError, BackendDir: dir, GGMLSource: tt.source}
			err := llama.Init(opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Init(%v) = %v, want %v", tt.files, err, tt.want)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if again := llama.Init(opts); !errors.Is(again, tt.want) {
				t.Errorf("second Init = %v, want the same error", again)
			}
			if n := len(llama.Devices()); n != before {
				t.Errorf("devices: %d, then %d after a failed backend directory", before, n)
			}
		})
	}
}

// Without a loaded backend the model runs on the CPU backend compiled into
// the binary, and says so.
func TestCPUModelNamesItsDevice(t *testing.T) {
	m := load(t, synthModel(t))
	d := m.Device()
	if d.Kind != llama.DeviceCPU || d.ID() != "cpu" || d.Name != "CPU" || d.Library != "" {
		t.Errorf("Device() = %+v, want the built-in CPU device (id cpu, no library)", d)
	}
	for _, dev := range llama.Devices() {
		if dev.Library != "" {
			t.Errorf("device %+v comes from a library, but none was loaded", dev)
		}
	}
}
