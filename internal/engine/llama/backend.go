package llama

/*
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"
)

// LogLevel selects which llama.cpp/ggml log lines reach stderr.
type LogLevel int

// Log levels, matching ggml_log_level.
const (
	LogDebug LogLevel = C.GGML_LOG_LEVEL_DEBUG
	LogInfo  LogLevel = C.GGML_LOG_LEVEL_INFO
	LogWarn  LogLevel = C.GGML_LOG_LEVEL_WARN
	LogError LogLevel = C.GGML_LOG_LEVEL_ERROR
	// LogNone silences llama.cpp entirely.
	LogNone LogLevel = 100
)

// BackendOptions configure the process-wide llama.cpp runtime.
type BackendOptions struct {
	// LogLevel is the least severe llama.cpp message printed to stderr.
	// The zero value prints debug output; use LogError for quiet operation.
	LogLevel LogLevel
	// BackendDir, when set, is searched for loadable ggml backend libraries
	// (libggml-cuda.so and friends) so that a GPU backend can be added
	// without rebuilding the Go binary. See loadBackendDir for what the
	// directory must hold.
	BackendDir string
	// GGMLSource names the ggml sources this binary was compiled from, as
	// "module version" (for example "github.com/ollama/ollama v0.17.4").
	// When set, BackendDir must carry a ggml-source.txt stamp with the
	// same text: a backend built from other ggml sources shares structs
	// with the binary's ggml and would corrupt memory instead of failing.
	GGMLSource string
}

// runtimeState mirrors llama.cpp's own process-wide state (its logger and
// backend registry live in C globals), so initialisation happens once and
// each backend directory is loaded at most once (ggml cannot unload a
// backend, and loading one twice would register its devices twice).
var runtimeState struct {
	sync.Mutex
	initialised bool
	dirs        map[string]error
}

// Init initialises llama.cpp. It must be called before loading a model. Later
// calls only load backend directories not loaded before (a directory's
// first result is returned again); the log level of the first call stays
// in force.
func Init(opts BackendOptions) error {
	runtimeState.Lock()
	defer runtimeState.Unlock()
	if !runtimeState.initialised {
		C.lumen_log_init(C.int(opts.LogLevel))
		C.llama_backend_init()
		runtimeState.initialised = true
		runtimeState.dirs = map[string]error{}
	}
	if opts.BackendDir == "" {
		return nil
	}
	dir, err := filepath.Abs(opts.BackendDir)
	if err != nil {
		return fmt.Errorf("llama: backend directory %q: %w", opts.BackendDir, err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("llama: backend directory %q: %w", opts.BackendDir, ErrNoBackendDir)
	}
	if err, done := runtimeState.dirs[dir]; done {
		return err
	}
	err = loadBackendDir(dir, opts.GGMLSource)
	runtimeState.dirs[dir] = err
	return err
}

// DeviceKind says what sort of processor a ggml device is.
type DeviceKind string

// Device kinds.
const (
	DeviceCPU   DeviceKind = "cpu"
	DeviceGPU   DeviceKind = "gpu"
	DeviceIGPU  DeviceKind = "igpu"
	DeviceAccel DeviceKind = "accel"
)

// Device describes one ggml backend device.
type Device struct {
	// Kind is cpu, gpu, igpu or accel.
	Kind DeviceKind
	// Index is the device's position among devices of its kind (the
	// gpu.id reported in telemetry for GPUs; 0 for the CPU).
	Index int
	// Name is ggml's device name, such as "CPU" or "CUDA0".
	Name string
	// Description is the human-readable device name.
	Description string
	// MemoryFree and MemoryTotal are in bytes, as reported by the backend.
	MemoryFree, MemoryTotal uint64
	// Library is the backend library the device comes from, or "" for a
	// backend compiled into the binary (the CPU).
	Library string
}

// ID is the stable label for telemetry: "cpu" or "gpu:<index>".
func (d Device) ID() string {
	if d.Kind == DeviceCPU {
		return "cpu"
	}
	return fmt.Sprintf("%s:%d", d.Kind, d.Index)
}

// Devices lists the ggml devices known to the runtime, in registry order
// (ggml sorts loaded backends by their score, so a loaded CPU backend comes
// before the built-in one).
func Devices() []Device {
	n := int(C.ggml_backend_dev_count())
	out := make([]Device, 0, n)
	perKind := map[DeviceKind]int{}
	for i := range n {
		dev := C.ggml_backend_dev_get(C.size_t(i))
		d := describeDevice(dev)
		d.Index = perKind[d.Kind]
		perKind[d.Kind]++
		out = append(out, d)
	}
	return out
}

func describeDevice(dev C.ggml_backend_dev_t) Device {
	var free, total C.size_t
	C.ggml_backend_dev_memory(dev, &free, &total)
	kind := DeviceCPU
	switch C.ggml_backend_dev_type(dev) {
	case C.GGML_BACKEND_DEVICE_TYPE_GPU:
		kind = DeviceGPU
	case C.GGML_BACKEND_DEVICE_TYPE_IGPU:
		kind = DeviceIGPU
	case C.GGML_BACKEND_DEVICE_TYPE_ACCEL:
		kind = DeviceAccel
	}
	return Device{
		Kind:        kind,
		Name:        C.GoString(C.ggml_backend_dev_name(dev)),
		Description: C.GoString(C.ggml_backend_dev_description(dev)),
		MemoryFree:  uint64(free),
		MemoryTotal: uint64(total),
		Library:     objectPath(unsafe.Pointer(C.ggml_backend_dev_backend_reg(dev))),
	}
}

// findDevice returns the C handle of the index-th device of a kind, or nil.
// llama.cpp runs its CPU work on the first CPU device (index 0).
func findDevice(kind DeviceKind, index int) (C.ggml_backend_dev_t, Device) {
	n := int(C.ggml_backend_dev_count())
	seen := 0
	for i := range n {
		dev := C.ggml_backend_dev_get(C.size_t(i))
		d := describeDevice(dev)
		if d.Kind != kind {
			continue
		}
		if seen == index {
			d.Index = index
			return dev, d
		}
		seen++
	}
	return nil, Device{}
}

// countDevices is how many devices of a kind the registry holds.
func countDevices(kind DeviceKind) int {
	n := 0
	for _, d := range Devices() {
		if d.Kind == kind {
			n++
		}
	}
	return n
}
