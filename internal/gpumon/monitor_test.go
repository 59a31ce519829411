package gpumon

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Queries a fakeDevice can be told to fail.
const (
	qName        = "name"
	qUtilization = "utilization"
	qMemory      = "memory"
	qTemperature = "temperature"
	qPower       = "power"
)

var errFake = errors.New("fake NVML failure")

type fakeDevice struct {
	gpuName           string
	utilPct           uint32
	memUsed, memTotal uint64
	tempC, powerMW    uint32
	fail              map[string]bool // query → returns errFake
	mu                sync.Mutex
	calls             int
}

func (d *fakeDevice) query(q string) error {
	d.mu.Lock()
	d.calls++
	d.mu.Unlock()
	if d.fail[q] {
		return errFake
	}
	return nil
}

func (d *fakeDevice) callCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

func (d *fakeDevice) name() (string, error) { return d.gpuName, d.query(qName) }
func (d *fakeDevice) utilizationPercent() (uint32, error) {
	return d.utilPct, d.query(qUtilization)
}
func (d *fakeDevice) memoryBytes() (uint64, uint64, error) {
	return d.memUsed, d.memTotal, d.query(qMemory)
}
func (d *fakeDevice) temperatureCelsius() (uint32, error) { return d.tempC, d.query(qTemperature) }
func (d *fakeDevice) powerMilliwatts() (uint32, error)    { return d.powerMW, d.query(qPower) }

type fakeDriver struct {
	devs      []*fakeDevice
	countErr  error
	openErr   map[int]error
	mu        sync.Mutex
	shutdowns int
}

func (f *fakeDriver) deviceCount() (int, error) { return len(f.devs), f.countErr }

func (f *fakeDriver) device(i int) (device, error) {
	if err := f.openErr[i]; err != nil {
		return nil, err
	}
	return f.devs[i], nil
}

func (f *fakeDriver) shutdown() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdowns++
	return nil
}

func (f *fakeDriver) shutdownCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shutdowns
}

// twoGPUs is a fake of an H100 and an L4.
func twoGPUs() *fakeDriver {
	return &fakeDriver{devs: []*fakeDevice{
		{gpuName: "NVIDIA H100 80GB HBM3", utilPct: 37, memUsed: 1 << 30, memTotal: 80 << 30, tempC: 45, powerMW: 123456},
		{gpuName: "NVIDIA L4", utilPct: 100, memUsed: 0, memTotal: 22 << 30, tempC: 71, powerMW: 72000},
	}}
}

func newTestMonitor(t *testing.T, drv driver, log *slog.Logger) *Monitor {
	t.Helper()
	m, err := newMonitor(drv, log)
	if err != nil {
		t.Fatalf("newMonitor: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// register puts m on a fresh pedantic registry, which also checks that
// what Collect sends matches what Describe announced.
func register(t *testing.T, m *Monitor) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return reg
}

// series lists what reg exports as "metric{gpu_id}" strings, sorted.
func series(t *testing.T, reg prometheus.Gatherer) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var out []string
	for _, f := range families {
		for _, m := range f.GetMetric() {
			id := "?"
			for _, l := range m.GetLabel() {
				if l.GetName() == LabelGPUID {
					id = l.GetValue()
				}
			}
			out = append(out, f.GetName()+"{"+id+"}")
		}
	}
	slices.Sort(out)
	return out
}

func allSeries(ids ...string) []string {
	var out []string
	for _, id := range ids {
		for _, n := range MetricNames() {
			out = append(out, n+"{"+id+"}")
		}
	}
	slices.Sort(out)
	return out
}

func TestMonitorReportsEveryGPU(t *testing.T) {
	m := newTestMonitor(t, twoGPUs(), nil)
	if got := m.Devices(); got != 2 {
		t.Errorf("Devices() = %d, want 2", got)
	}
	want := `
# HELP lumen_gpu_memory_total_bytes GPU memory installed, in bytes.
# TYPE lumen_gpu_memory_total_bytes gauge
lumen_gpu_memory_total_bytes{gpu_id="0",gpu_name="NVIDIA H100 80GB HBM3"} 85899345920
lumen_gpu_memory_total_bytes{gpu_id="1",gpu_name="NVIDIA L4"} 23622320128
# HELP lumen_gpu_memory_used_bytes GPU memory in use, in bytes.
# TYPE lumen_gpu_memory_used_bytes gauge
lumen_gpu_memory_used_bytes{gpu_id="0",gpu_name="NVIDIA H100 80GB HBM3"} 1073741824
lumen_gpu_memory_used_bytes{gpu_id="1",gpu_name="NVIDIA L4"} 0
# HELP lumen_gpu_power_watts GPU power draw, in watts.
# TYPE lumen_gpu_power_watts gauge
lumen_gpu_power_watts{gpu_id="0",gpu_name="NVIDIA H100 80GB HBM3"} 123.456
lumen_gpu_power_watts{gpu_id="1",gpu_name="NVIDIA L4"} 72
# HELP lumen_gpu_temperature_celsius GPU core temperature, in degrees Celsius.
# TYPE lumen_gpu_temperature_celsius gauge
lumen_gpu_temperature_celsius{gpu_id="0",gpu_name="NVIDIA H100 80GB HBM3"} 45
lumen_gpu_temperature_celsius{gpu_id="1",gpu_name="NVIDIA L4"} 71
# HELP lumen_gpu_utilization_ratio Fraction of the last sample period in which the GPU ran a kernel (0-1).
# TYPE lumen_gpu_utilization_ratio gauge
lumen_gpu_utilization_ratio{gpu_id="0",gpu_name="NVIDIA H100 80GB HBM3"} 0.37
lumen_gpu_utilization_ratio{gpu_id="1",gpu_name="NVIDIA L4"} 1
`
	if err := testutil.GatherAndCompare(register(t, m), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestMetricNamesFollowPrometheusConventions(t *testing.T) {
	m := newTestMonitor(t, twoGPUs(), nil)
	problems, err := testutil.CollectAndLint(m)
	if err != nil {
		t.Fatalf("CollectAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if got, want := testutil.CollectAndCount(m), 2*len(MetricNames()); got != want {
		t.Errorf("collected %d series, want %d (every name in MetricNames for both GPUs)", got, want)
	}
}

func TestFailedQueryDropsOnlyItsSeries(t *testing.T) {
	tests := []struct {
		fail string // query that fails on GPU 1
		drop []string
	}{
		{fail: qPower, drop: []string{MetricPower}},
		{fail: qUtilization, drop: []string{MetricUtilization}},
		{fail: qTemperature, drop: []string{MetricTemperature}},
		{fail: qMemory, drop: []string{MetricMemoryUsed, MetricMemoryTotal}},
	}
	for _, tt := range tests {
		t.Run(tt.fail, func(t *testing.T) {
			drv := twoGPUs()
			drv.devs[1].fail = map[string]bool{tt.fail: true}
			var logs bytes.Buffer
			m := newTestMonitor(t, drv, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

			want := slices.DeleteFunc(allSeries("0", "1"), func(s string) bool {
				for _, d := range tt.drop {
					if s == d+"{1}" {
						return true
					}
				}
				return false
			})
			if got := series(t, register(t, m)); !slices.Equal(got, want) {
				t.Errorf("series:\n got %v\nwant %v", got, want)
			}
			line := logs.String()
			for _, w := range []string{"level=DEBUG", "gpu_id=1", tt.drop[0], errFake.Error()} {
				if !strings.Contains(line, w) {
					t.Errorf("debug log %q does not mention %q", line, w)
				}
			}
		})
	}
}

func TestUnknownNameStillReportsTheGPU(t *testing.T) {
	drv := twoGPUs()
	drv.devs[0].fail = map[string]bool{qName: true}
	m := newTestMonitor(t, drv, nil)
	want := `
# HELP lumen_gpu_utilization_ratio Fraction of the last sample period in which the GPU ran a kernel (0-1).
# TYPE lumen_gpu_utilization_ratio gauge
lumen_gpu_utilization_ratio{gpu_id="0",gpu_name=""} 0.37
lumen_gpu_utilization_ratio{gpu_id="1",gpu_name="NVIDIA L4"} 1
`
	if err := testutil.GatherAndCompare(register(t, m), strings.NewReader(want), MetricUtilization); err != nil {
		t.Error(err)
	}
}

func TestGPUThatCannotBeOpenedIsLeftOut(t *testing.T) {
	drv := twoGPUs()
	drv.openErr = map[int]error{0: errFake}
	m := newTestMonitor(t, drv, nil)
	if got := m.Devices(); got != 1 {
		t.Errorf("Devices() = %d, want 1", got)
	}
	// GPU 1 keeps its own index: gpu_id must match the gpu.id span attribute.
	if got, want := series(t, register(t, m)), allSeries("1"); !slices.Equal(got, want) {
		t.Errorf("series:\n got %v\nwant %v", got, want)
	}
}

func TestCountFailureIsAnErrorAndReleasesNVML(t *testing.T) {
	drv := twoGPUs()
	drv.countErr = errFake
	m, err := newMonitor(drv, nil)
	if !errors.Is(err, errFake) {
		t.Fatalf("newMonitor error = %v, want it to wrap %v", err, errFake)
	}
	if m != nil {
		t.Errorf("newMonitor returned a Monitor with its error")
	}
	if got := drv.shutdownCount(); got != 1 {
		t.Errorf("shutdown called %d times, want 1", got)
	}
}

func TestWithoutDriverNothingIsCollected(t *testing.T) {
	var logs bytes.Buffer
	m := newTestMonitor(t, nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if got := m.Devices(); got != 0 {
		t.Errorf("Devices() = %d, want 0", got)
	}
	if got := series(t, register(t, m)); len(got) != 0 {
		t.Errorf("series = %v, want none", got)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if logs.Len() != 0 {
		t.Errorf("logged %q, want nothing", logs.String())
	}
}

func TestCloseShutsDownOnceAndStopsCollecting(t *testing.T) {
	drv := twoGPUs()
	m := newTestMonitor(t, drv, nil)
	reg := register(t, m)
	for range 3 {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if got := drv.shutdownCount(); got != 1 {
		t.Errorf("shutdown called %d times, want 1", got)
	}
	before := drv.devs[0].callCount()
	if got := series(t, reg); len(got) != 0 {
		t.Errorf("series after Close = %v, want none", got)
	}
	if after := drv.devs[0].callCount(); after != before {
		t.Errorf("a scrape after Close queried the device %d times; NVML is shut down", after-before)
	}
	if got := m.Devices(); got != 0 {
		t.Errorf("Devices() after Close = %d, want 0", got)
	}
}

// Scrapes and Close may race at server shutdown; -race checks the locking.
func TestConcurrentScrapesAndClose(t *testing.T) {
	drv := twoGPUs()
	m := newTestMonitor(t, drv, nil)
	reg := register(t, m)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			<-start
			for range 20 {
				if _, err := reg.Gather(); err != nil {
					t.Errorf("Gather: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		<-start
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	close(start)
	wg.Wait()
	if got := drv.shutdownCount(); got != 1 {
		t.Errorf("shutdown called %d times, want 1", got)
	}
}
