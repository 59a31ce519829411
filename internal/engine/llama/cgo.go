package llama

/*
#cgo CFLAGS: -std=c11
#cgo CXXFLAGS: -std=c++17
#cgo linux LDFLAGS: -ldl
#include "bridge.h"
*/
import "C"

// The blank imports compile llama.cpp and ggml (CPU backend included) into
// the binary. Include paths for their headers are provided by the Makefile.
import (
	_ "github.com/ollama/ollama/llama/llama.cpp/src"
	_ "github.com/ollama/ollama/ml/backend/ggml/ggml/src"
)
