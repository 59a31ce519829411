package gpumon

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// These tests load a real shared library through go-nvml. The first library
// that provides NVML's symbols stays bound to them for the life of the
// process, so each test runs its body in a fresh test process.

const isolatedEnv = "GPUMON_ISOLATED_TEST"

// isolated reports whether the caller is the fresh process and should run
// the test body. In the parent it runs the test again in a child process
// with env added, fails t if the child fails, and returns false.
func isolated(t *testing.T, env ...string) bool {
	t.Helper()
	if os.Getenv(isolatedEnv) == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(append(os.Environ(), isolatedEnv+"="+t.Name()), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in a child process: %v\n%s", t.Name(), err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("child process did not run %s:\n%s", t.Name(), out)
	}
	return false
}

// fakeNVML compiles testdata/fakenvml.c into a shared library and returns
// its path. cgo already needs a C compiler, so one is always present.
func fakeNVML(t *testing.T) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	lib := filepath.Join(t.TempDir(), "libnvidia-ml.so.1")
	out, err := exec.Command(cc, "-shared", "-fPIC", "-o", lib, filepath.Join("testdata", "fakenvml.c")).CombinedOutput()
	if err != nil {
		t.Fatalf("compiling the fake NVML with %s: %v\n%s", cc, err, out)
	}
	return lib
}

func debugLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// assertSilentAndEmpty checks the CPU-server case: a usable Monitor with no
// GPUs that logs nothing, even at debug level, and closes cleanly.
func assertSilentAndEmpty(t *testing.T, cfg Config) {
	t.Helper()
	var logs bytes.Buffer
	cfg.Logger = debugLogger(&logs)
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v, want no error without NVML", err)
	}
	if got := m.Devices(); got != 0 {
		t.Errorf("Devices() = %d, want 0", got)
	}
	if got := series(t, register(t, m)); len(got) != 0 {
		t.Errorf("series = %v, want none", got)
	}
	for range 2 {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("logged %q, want nothing", logs.String())
	}
}

func TestNVMLMissingLibraryIsSilent(t *testing.T) {
	if !isolated(t) {
		return
	}
	assertSilentAndEmpty(t, Config{LibraryPath: filepath.Join(t.TempDir(), "libnvidia-ml.so.1")})
}

func TestNVMLDriverNotLoadedIsSilent(t *testing.T) {
	lib := fakeNVML(t)
	calls := filepath.Join(t.TempDir(), "calls")
	if !isolated(t, "FAKE_NVML_LIB="+lib, "FAKE_NVML_LOG="+calls,
		"FAKE_NVML_INIT="+strconv.Itoa(int(nvml.ERROR_DRIVER_NOT_LOADED))) {
		if got := readLines(t, calls); strings.Join(got, ",") != "init" {
			t.Errorf("NVML calls = %v, want [init] and no shutdown of a library that failed to start", got)
		}
		return
	}
	assertSilentAndEmpty(t, Config{LibraryPath: os.Getenv("FAKE_NVML_LIB")})
}

func TestNVMLInitFailureIsAnError(t *testing.T) {
	lib := fakeNVML(t)
	if !isolated(t, "FAKE_NVML_LIB="+lib, "FAKE_NVML_INIT="+strconv.Itoa(int(nvml.ERROR_NO_PERMISSION))) {
		return
	}
	m, err := New(Config{LibraryPath: os.Getenv("FAKE_NVML_LIB")})
	if !errors.Is(err, nvml.ERROR_NO_PERMISSION) {
		t.Fatalf("New error = %v, want one wrapping ERROR_NO_PERMISSION", err)
	}
	if errors.Is(err, errUnavailable) {
		t.Errorf("New error %v claims NVML is absent; it is present but refused", err)
	}
	if !strings.Contains(err.Error(), "Insufficient Permissions") {
		t.Errorf("New error %q does not carry NVML's own message", err)
	}
	if m != nil {
		t.Errorf("New returned a Monitor with its error")
	}
}

// The fake library has two GPUs; the second cannot report power.
func TestNVMLDriverReadsDevices(t *testing.T) {
	lib := fakeNVML(t)
	calls := filepath.Join(t.TempDir(), "calls")
	if !isolated(t, "FAKE_NVML_LIB="+lib, "FAKE_NVML_LOG="+calls) {
		if got := readLines(t, calls); strings.Join(got, ",") != "init,shutdown" {
			t.Errorf("NVML calls = %v, want [init shutdown]: shut down exactly once", got)
		}
		return
	}
	var logs bytes.Buffer
	m, err := New(Config{LibraryPath: os.Getenv("FAKE_NVML_LIB"), Logger: debugLogger(&logs)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got := m.Devices(); got != 2 {
		t.Errorf("Devices() = %d, want 2", got)
	}
	want := `
# HELP lumen_gpu_memory_total_bytes GPU memory installed, in bytes.
# TYPE lumen_gpu_memory_total_bytes gauge
lumen_gpu_memory_total_bytes{gpu_id="0",gpu_name="Fake GPU Zero"} 85899345920
lumen_gpu_memory_total_bytes{gpu_id="1",gpu_name="Fake GPU One"} 23622320128
# HELP lumen_gpu_memory_used_bytes GPU memory in use, in bytes.
# TYPE lumen_gpu_memory_used_bytes gauge
lumen_gpu_memory_used_bytes{gpu_id="0",gpu_name="Fake GPU Zero"} 1073741824
lumen_gpu_memory_used_bytes{gpu_id="1",gpu_name="Fake GPU One"} 0
# HELP lumen_gpu_power_watts GPU power draw, in watts.
# TYPE lumen_gpu_power_watts gauge
lumen_gpu_power_watts{gpu_id="0",gpu_name="Fake GPU Zero"} 123.456
# HELP lumen_gpu_temperature_celsius GPU core temperature, in degrees Celsius.
# TYPE lumen_gpu_temperature_celsius gauge
lumen_gpu_temperature_celsius{gpu_id="0",gpu_name="Fake GPU Zero"} 45
lumen_gpu_temperature_celsius{gpu_id="1",gpu_name="Fake GPU One"} 71
# HELP lumen_gpu_utilization_ratio Fraction of the last sample period in which the GPU ran a kernel (0-1).
# TYPE lumen_gpu_utilization_ratio gauge
lumen_gpu_utilization_ratio{gpu_id="0",gpu_name="Fake GPU Zero"} 0.37
lumen_gpu_utilization_ratio{gpu_id="1",gpu_name="Fake GPU One"} 1
`
	if err := testutil.GatherAndCompare(register(t, m), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if l := logs.String(); !strings.Contains(l, MetricPower) || !strings.Contains(l, "Not Supported") {
		t.Errorf("debug log %q does not say why GPU 1 has no power metric", l)
	}
	for range 2 {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

// Whatever this machine has — usually no NVML at all — the default library
// must not make New fail or log, and may only report the documented names.
func TestNVMLDefaultLibrary(t *testing.T) {
	if !isolated(t) {
		return
	}
	var logs bytes.Buffer
	m, err := New(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	families, err := register(t, m).Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if !slices.Contains(MetricNames(), f.GetName()) || len(f.GetMetric()) > m.Devices() {
			t.Errorf("%s: %d series from %d GPUs", f.GetName(), len(f.GetMetric()), m.Devices())
		}
	}
	if len(families) > len(MetricNames()) {
		t.Errorf("%d metric families, want at most %d", len(families), len(MetricNames()))
	}
	if logs.Len() != 0 {
		t.Errorf("logged %q at info level or above, want nothing", logs.String())
	}
	t.Logf("%d GPU(s) found through NVML", m.Devices())
}
