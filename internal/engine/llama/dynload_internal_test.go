package llama

import "testing"

func TestBackendFamily(t *testing.T) {
	tests := []struct{ file, want string }{
		{"libggml-cuda.so", "cuda"},
		{"libggml-cpu-haswell.so", "cpu"},
		{"libggml-cpu.so", "cpu"},
		{"libggml-vulkan.so", "vulkan"},
		{"libggml-base.so", ""},   // linked by backends, not one itself
		{"libggml-base.so.0", ""}, // versioned names are never loaded
		{"libggml-cuda.so.0", ""},
		{"libggml.so", ""},         // ggml's loader library
		{"libggml-unknown.so", ""}, // a name ggml does not look for
		{"libcudart.so.12", ""},
		{"ggml-source.txt", ""},
		{"libggml-cuda-extra.txt", ""},
		{"xlibggml-cuda.so", ""},
		{"libggml-.so", ""},
		{"libggml-cpu-x64.so", "cpu"},
		{"libggml-rpc.so", "rpc"},
		{"libggml-hip-gfx1100.so", "hip"},
	}
	for _, tt := range tests {
		if got := backendFamily(tt.file); got != tt.want {
			t.Errorf("backendFamily(%q) = %q, want %q", tt.file, got, tt.want)
		}
	}
}
