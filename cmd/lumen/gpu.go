package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"text/tabwriter"

	"github.com/lumenllm/lumen/internal/engine/llama"
)

// ggmlModule provides the ggml sources compiled into the binary (the
// Makefile's LLAMA_MODULE); loadable backends must be built from the same.
const ggmlModule = "github.com/ollama/ollama"

// ggmlSource names the ggml sources this binary was built from, as the
// Makefile writes them into a backend directory's ggml-source.txt. It is
// empty where the build carries no module information (test binaries).
func ggmlSource() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range bi.Deps {
		if d.Path == ggmlModule {
			return d.Path + " " + d.Version
		}
	}
	return ""
}

// gpuLayers is the --gpu-layers value: a layer count, "all" (or -1), or
// "auto": all layers on the GPU when one is present, else the CPU.
type gpuLayers struct {
	n    int
	auto bool
}

func (g *gpuLayers) String() string {
	switch {
	case g.auto:
		return "auto"
	case g.n == llama.AllLayers:
		return "all"
	}
	return strconv.Itoa(g.n)
}

func (g *gpuLayers) Set(s string) error {
	switch s {
	case "all", "-1":
		*g = gpuLayers{n: llama.AllLayers}
		return nil
	case "auto":
		*g = gpuLayers{n: llama.AllLayers, auto: true}
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("want a layer count, all or auto")
	}
	*g = gpuLayers{n: n}
	return nil
}

// initBackends initialises llama.cpp with --backend-dir, or else with the
// lib directory beside the executable when there is one. An explicit
// directory that does not load is an error; the implicit one only warns
// (and is remembered for the no-GPU message), so a CPU run still works on
// a machine where the GPU backend cannot load.
func (l *loadFlags) initBackends(e env, warn func(string)) error {
	lvl, err := l.logLevel()
	if err != nil {
		return err
	}
	dir, explicit := l.backendDir, l.backendDir != ""
	if !explicit && e.exeDir != "" {
		if st, err := os.Stat(filepath.Join(e.exeDir, "lib")); err == nil && st.IsDir() {
			dir = filepath.Join(e.exeDir, "lib")
		}
	}
	err = llama.Init(llama.BackendOptions{LogLevel: lvl, BackendDir: dir, GGMLSource: e.ggmlSource})
	if err == nil || explicit {
		return err
	}
	l.backendErr = err
	warn(fmt.Sprintf("GPU backends not loaded: %v", err))
	return nil
}

// gpuPlacement is how many layers to offload: --gpu-layers when the chosen
// GPU exists; 0 with a warning when it does not and the user allowed the
// CPU (--gpu-layers auto, --allow-cpu-fallback); otherwise an error that
// says how to get a GPU backend.
func (l *loadFlags) gpuPlacement(warn func(string)) (int, error) {
	if l.gpuLayers.n == 0 {
		return 0, nil
	}
	gpus := 0
	for _, d := range llama.Devices() {
		if d.Kind == llama.DeviceGPU {
			gpus++
		}
	}
	if l.mainGPU < gpus {
		return l.gpuLayers.n, nil
	}
	why := fmt.Sprintf("%d GPU device(s) found, --main-gpu is %d", gpus, l.mainGPU)
	if l.backendErr != nil {
		why += fmt.Sprintf(" (%v)", l.backendErr)
	}
	if l.gpuLayers.auto || l.allowFallback {
		warn(fmt.Sprintf("no GPU to run the model: %s; running on the CPU", why))
		return 0, nil
	}
	return 0, fmt.Errorf("--gpu-layers %s needs a GPU: %s. Build the CUDA backend with `make cuda` (it goes to lib/ beside the lumen binary) "+
		"or pass --backend-dir DIR; --gpu-layers auto or --allow-cpu-fallback runs on the CPU instead: %w", l.gpuLayers.String(), why, llama.ErrNoGPU)
}

// deviceLabel says which device runs the model and where its backend
// comes from, for people (telemetry uses Device.ID alone).
func deviceLabel(d llama.Device) string {
	lib := d.Library
	if lib == "" {
		lib = "built in"
	}
	return fmt.Sprintf("%s (%s, %s, %s)", d.ID(), d.Name, d.Description, lib)
}

func runDevices(_ context.Context, args []string, e env) error {
	fs := newFlagSet("devices", "Lists the devices llama.cpp can run a model on: the built-in CPU and those of loaded backends (--backend-dir, or lib/ beside the binary).", e.stderr)
	var lf loadFlags
	fs.StringVar(&lf.backendDir, "backend-dir", "", "directory of loadable ggml backends (default: lib/ beside the lumen binary, when present)")
	fs.StringVar(&lf.llamaLog, "llama-log", "error", "llama.cpp log level: debug, info, warn, error, none")
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parseFlags(fs, args, e.getenv)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError{"usage: lumen devices [--backend-dir DIR] [--json]"}
	}
	if err := lf.initBackends(e, stderrWarn(e)); err != nil {
		return err
	}
	devs := llama.Devices()
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(devs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tNAME\tDESCRIPTION\tMEMORY FREE/TOTAL\tBACKEND")
	for _, d := range devs {
		lib := d.Library
		if lib == "" {
			lib = "built in"
		}
		fmt.Fprintf(tw, "%s:%d\t%s\t%s\t%.1f/%.1f GiB\t%s\n", d.Kind, d.Index, d.Name, d.Description,
			float64(d.MemoryFree)/(1<<30), float64(d.MemoryTotal)/(1<<30), lib)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !containsKind(devs, llama.DeviceGPU) {
		fmt.Fprintln(e.stderr, "no GPU device: build the CUDA backend with `make cuda`, or pass --backend-dir DIR")
	}
	return nil
}

func containsKind(devs []llama.Device, kind llama.DeviceKind) bool {
	for _, d := range devs {
		if d.Kind == kind {
			return true
		}
	}
	return false
}

// stderrWarn prints warnings of the CLI commands that do not log.
func stderrWarn(e env) func(string) {
	return func(msg string) { fmt.Fprintln(e.stderr, "lumen: warning:", msg) }
}
