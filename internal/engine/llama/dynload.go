package llama

/*
#include "bridge.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"
)

// Loadable backends and the two copies of ggml.
//
// The binary has ggml (with its CPU backend) compiled in statically. A
// loadable backend such as libggml-cuda.so is built with GGML_BACKEND_DL
// and links its own libggml-base.so, so the process then holds two copies
// of ggml's base library. They cooperate only through ggml's backend
// interface: the binary's scheduler builds graphs of ggml_tensor structs
// and calls the backend's function tables, and the backend reads those
// structs with its own copy of ggml's helpers. That is sound only when
// both copies were compiled from the same sources (ggml checks nothing but
// GGML_BACKEND_API_VERSION), which is what the ggml-source.txt stamp
// guards.
//
// Which copy a backend's calls reach is up to the dynamic linker. The
// binary exports its ggml symbols when any cgo dependency links with
// --export-dynamic (go-nvml does), and a library opened the ordinary way
// then binds to the binary's copy before its own: a loadable CPU backend's
// ggml_backend_init even returns the built-in CPU backend, registering it
// twice. Lumen therefore opens libggml-base.so and every backend library
// itself first, with RTLD_DEEPBIND, so each binds to its own symbols
// however the binary was linked; ggml's loader then finds them loaded.
//
// Process-wide state is not shared between the copies: each has its own
// logger (the backend's copy gets Lumen's callback here, before any
// backend initialises and logs) and its own critical-section mutex, which
// guards only one-time initialisation inside each copy.

// baseLibrary is the name of ggml's base library, which every loadable
// backend links; Lumen opens the directory's copy before the backends so
// that the dynamic loader reuses it (matching its soname) rather than
// searching the system for another one.
const baseLibrary = "libggml-base.so"

// sourceStamp is the file in a backend directory that names the ggml
// sources its libraries were built from (written by scripts/build-cuda.sh).
const sourceStamp = "ggml-source.txt"

// ggmlFamilies are the backend names ggml_backend_load_all_from_path looks
// for, as libggml-NAME.so or libggml-NAME-VARIANT.so (it loads the variant
// whose ggml_backend_score is highest).
var ggmlFamilies = []string{"blas", "zendnn", "cann", "cuda", "hip", "metal", "rpc", "sycl", "vulkan", "opencl", "hexagon", "musa", "cpu"}

// backendFamily is the backend name of a library file name: "cuda" for
// libggml-cuda.so, "cpu" for libggml-cpu-haswell.so; "" for other files.
func backendFamily(file string) string {
	name, ok := strings.CutPrefix(file, "libggml-")
	if !ok {
		return ""
	}
	name, ok = strings.CutSuffix(name, ".so")
	if !ok || name == "base" {
		return ""
	}
	name, _, _ = strings.Cut(name, "-")
	if !slices.Contains(ggmlFamilies, name) {
		return ""
	}
	return name
}

// loadBackendDir loads the backend libraries in dir: it checks the source
// stamp, opens libggml-base.so, lets ggml pick and load the best library of
// each backend, and then explains every backend that did not load (ggml
// itself is silent about failures in release builds).
func loadBackendDir(dir, source string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("llama: backend directory: %w", err)
	}
	byFamily := map[string][]string{}
	for _, e := range entries {
		if f := backendFamily(e.Name()); f != "" && !e.IsDir() {
			byFamily[f] = append(byFamily[f], e.Name())
		}
	}
	if len(byFamily) == 0 {
		return fmt.Errorf("llama: backend directory %s has no libggml-NAME.so library: %w", dir, ErrNoBackends)
	}
	if source != "" {
		if err := checkSourceStamp(dir, source); err != nil {
			return err
		}
	}
	var msg [4096]C.char
	base := filepath.Join(dir, baseLibrary)
	if _, err := os.Stat(base); err != nil {
		return fmt.Errorf("llama: backend directory %s lacks %s, which every backend library links: %w", dir, baseLibrary, ErrBackendLoad)
	}
	cbase := C.CString(base)
	defer C.free(unsafe.Pointer(cbase))
	if !C.lumen_backend_base_open(cbase, &msg[0], C.size_t(len(msg))) {
		return fmt.Errorf("llama: %s: %s: %w", base, C.GoString(&msg[0]), ErrBackendLoad)
	}

	// Open every library first (see above); a library that does not open
	// is reported with the loader's reason, which ggml would not give.
	var errs []error
	opened := map[string]bool{}
	for _, family := range ggmlFamilies {
		for _, f := range byFamily[family] {
			cpath := C.CString(filepath.Join(dir, f))
			ok := C.lumen_backend_open(cpath, &msg[0], C.size_t(len(msg)))
			C.free(unsafe.Pointer(cpath))
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %s", f, C.GoString(&msg[0])))
				continue
			}
			opened[family] = true
		}
	}

	before := int(C.ggml_backend_reg_count())
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	C.ggml_backend_load_all_from_path(cdir)
	registered := map[string]bool{}
	for i := before; i < int(C.ggml_backend_reg_count()); i++ {
		lib := objectPath(unsafe.Pointer(C.ggml_backend_reg_get(C.size_t(i))))
		registered[backendFamily(filepath.Base(lib))] = true
	}
	for _, family := range ggmlFamilies {
		if opened[family] && !registered[family] {
			errs = append(errs, fmt.Errorf("%s: loads, but ggml registered no backend from it (its ggml_backend_score rules this machine out, or it is not a ggml backend)",
				strings.Join(byFamily[family], ", ")))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("llama: backend directory %s: %w: %w", dir, ErrBackendLoad, errors.Join(errs...))
	}
	return nil
}

// checkSourceStamp compares dir's ggml-source.txt with the binary's source.
func checkSourceStamp(dir, source string) error {
	stamp, err := os.ReadFile(filepath.Join(dir, sourceStamp))
	if err != nil {
		return fmt.Errorf("llama: backend directory %s has no %s naming the ggml sources it was built from (build it with make cuda): %w", dir, sourceStamp, ErrBackendMismatch)
	}
	if got := string(bytes.TrimSpace(stamp)); got != source {
		return fmt.Errorf("llama: backend directory %s was built from %q, this binary from %q: %w", dir, got, source, ErrBackendMismatch)
	}
	return nil
}

// objectPath is the shared library holding addr, or "" when addr is in the
// executable.
func objectPath(addr unsafe.Pointer) string {
	var out [4096]C.char
	if !C.lumen_object_path(addr, &out[0], C.size_t(len(out))) {
		return ""
	}
	return C.GoString(&out[0])
}
