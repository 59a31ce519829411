// Package gpumon owns Lumen's GPU telemetry: it reads utilization, memory,
// temperature and power of every NVIDIA GPU through NVML and reports them as
// Prometheus gauges when scraped.
//
// A machine without NVML (no NVIDIA driver, or the library is not installed)
// is the normal case on CPU servers: the monitor then reports nothing and
// says nothing. gpumon only observes; it must not change any GPU setting,
// and it keeps NVML's process-wide state inside its driver, released once by
// Monitor.Close.
package gpumon

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names. A Grafana dashboard refers to these names; change them only
// together with it.
const (
	MetricUtilization = "lumen_gpu_utilization_ratio"
	MetricMemoryUsed  = "lumen_gpu_memory_used_bytes"
	MetricMemoryTotal = "lumen_gpu_memory_total_bytes"
	MetricTemperature = "lumen_gpu_temperature_celsius"
	MetricPower       = "lumen_gpu_power_watts"
)

// Label names on every GPU metric. gpu_id is the device index as a decimal
// string, the same number as the gpu.id span attribute.
const (
	LabelGPUID   = "gpu_id"
	LabelGPUName = "gpu_name"
)

// MetricNames lists every metric a Monitor may report. They appear only on
// machines with at least one GPU that NVML can read.
func MetricNames() []string {
	return []string{MetricUtilization, MetricMemoryUsed, MetricMemoryTotal, MetricTemperature, MetricPower}
}

// Config configures a Monitor. The zero value is ready to use.
type Config struct {
	// Logger receives debug messages about GPU queries that fail while
	// scraping. nil discards them.
	Logger *slog.Logger
	// LibraryPath is the NVML shared library to load; "" means
	// libnvidia-ml.so.1 from the dynamic loader's search path.
	LibraryPath string
}

// driver is the part of NVML a Monitor uses, so that the collector can be
// tested with a fake. The real one wraps go-nvml (nvml.go).
type driver interface {
	// deviceCount is the number of GPUs, indexed from 0.
	deviceCount() (int, error)
	device(index int) (device, error)
	// shutdown releases the library; no method may be called after it.
	shutdown() error
}

// device queries one GPU.
type device interface {
	name() (string, error)
	// utilizationPercent is the share of the last sample period in which a
	// kernel ran, 0–100.
	utilizationPercent() (uint32, error)
	memoryBytes() (used, total uint64, err error)
	temperatureCelsius() (uint32, error)
	powerMilliwatts() (uint32, error)
}

// errUnavailable marks an NVML that is not there: no library, or no
// driver behind it. New treats it as "no GPUs", not as a failure.
var errUnavailable = errors.New("NVML not available")

// gpu is one device being monitored, with the labels of its series.
type gpu struct {
	dev    device
	labels []string // gpu_id, gpu_name
}

// Monitor is a prometheus.Collector of GPU metrics. It is safe for
// concurrent scrapes; after Close it collects nothing.
type Monitor struct {
	log *slog.Logger

	util, memUsed, memTotal, temp, power *prometheus.Desc

	mu   sync.RWMutex // Collect holds it shared, Close exclusively
	drv  driver       // nil without NVML or after Close
	gpus []gpu
}

var _ prometheus.Collector = (*Monitor)(nil)

// New loads NVML and finds the GPUs to monitor. Without NVML it returns a
// Monitor that reports nothing, a nil error and no log output. It returns
// an error only when NVML is present but cannot be used (for example no
// permission to the devices). The caller must Close the Monitor.
func New(cfg Config) (*Monitor, error) {
	drv, err := openNVML(cfg.LibraryPath)
	if errors.Is(err, errUnavailable) {
		return newMonitor(nil, cfg.Logger)
	}
	if err != nil {
		return nil, err
	}
	return newMonitor(drv, cfg.Logger)
}

// newMonitor enumerates drv's devices. drv may be nil (no NVML). On error
// drv has been shut down.
func newMonitor(drv driver, log *slog.Logger) (*Monitor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	labels := []string{LabelGPUID, LabelGPUName}
	m := &Monitor{
		log:      log,
		util:     prometheus.NewDesc(MetricUtilization, "Fraction of the last sample period in which the GPU ran a kernel (0-1).", labels, nil),
		memUsed:  prometheus.NewDesc(MetricMemoryUsed, "GPU memory in use, in bytes.", labels, nil),
		memTotal: prometheus.NewDesc(MetricMemoryTotal, "GPU memory installed, in bytes.", labels, nil),
		temp:     prometheus.NewDesc(MetricTemperature, "GPU core temperature, in degrees Celsius.", labels, nil),
		power:    prometheus.NewDesc(MetricPower, "GPU power draw, in watts.", labels, nil),
	}
	if drv == nil {
		return m, nil
	}
	n, err := drv.deviceCount()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("gpumon: counting GPUs: %w", err), shutdownErr(drv))
	}
	for i := range n {
		dev, err := drv.device(i)
		if err != nil {
			// A device NVML cannot open (lost, or not ours) is left out;
			// the others are still worth reporting.
			log.Debug("gpumon: skipping GPU", "gpu_id", i, "err", err)
			continue
		}
		name, err := dev.name()
		if err != nil {
			log.Debug("gpumon: GPU name unknown", "gpu_id", i, "err", err)
			name = ""
		}
		m.gpus = append(m.gpus, gpu{dev: dev, labels: []string{strconv.Itoa(i), name}})
	}
	m.drv = drv
	log.Debug("gpumon: monitoring GPUs", "count", len(m.gpus))
	return m, nil
}

// Devices is the number of GPUs the Monitor reports on: 0 without NVML
// and after Close.
func (m *Monitor) Devices() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.gpus)
}

// Describe implements prometheus.Collector.
func (m *Monitor) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.util
	ch <- m.memUsed
	ch <- m.memTotal
	ch <- m.temp
	ch <- m.power
}

// Collect implements prometheus.Collector. A query that fails leaves out
// that one series for that one GPU; the scrape itself never fails.
func (m *Monitor) Collect(ch chan<- prometheus.Metric) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, g := range m.gpus {
		m.collect(ch, g)
	}
}

func (m *Monitor) collect(ch chan<- prometheus.Metric, g gpu) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, g.labels...)
	}
	skip := func(metric string, err error) {
		m.log.Debug("gpumon: GPU query failed", "gpu_id", g.labels[0], "metric", metric, "err", err)
	}

	if pct, err := g.dev.utilizationPercent(); err != nil {
		skip(MetricUtilization, err)
	} else {
		gauge(m.util, float64(pct)/100)
	}
	if used, total, err := g.dev.memoryBytes(); err != nil {
		skip(MetricMemoryUsed+" and "+MetricMemoryTotal, err)
	} else {
		gauge(m.memUsed, float64(used))
		gauge(m.memTotal, float64(total))
	}
	if c, err := g.dev.temperatureCelsius(); err != nil {
		skip(MetricTemperature, err)
	} else {
		gauge(m.temp, float64(c))
	}
	if mw, err := g.dev.powerMilliwatts(); err != nil {
		skip(MetricPower, err)
	} else {
		gauge(m.power, float64(mw)/1000)
	}
}

// Close shuts NVML down. Later calls, and scrapes after it, do nothing.
func (m *Monitor) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	drv := m.drv
	m.drv, m.gpus = nil, nil
	if drv == nil {
		return nil
	}
	return shutdownErr(drv)
}

func shutdownErr(drv driver) error {
	if err := drv.shutdown(); err != nil {
		return fmt.Errorf("gpumon: shutting NVML down: %w", err)
	}
	return nil
}
